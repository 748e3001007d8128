import pytest
import torch

from seqadv.core.errors import DataError
from seqadv.data.corpus import embedded_path, load_recipe, locate, read_lines, sha256_of, held_out_recipe
from seqadv.data.dataset import batches, load_corpus


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """Nowhere to find data and no network: an empty data dir and an empty cache."""
    monkeypatch.setenv("SEQADV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SEQADV_OFFLINE", "1")
    return tmp_path


def test_poems_follow_the_recipe():
    data = load_corpus("poems")  # from $SEQADV_DATA_DIR, or the copy shipped inside the package
    assert len(data.train) + len(data.test) == 16394
    assert len(data.test) == round(0.25 * 16394)
    assert data.train.shape[1] == 24 and data.eos_token is None
    assert data.text(data.train[0]).count("，") == 2  # a quatrain: two commas, two full stops
    again = load_corpus("poems")
    assert torch.equal(again.test, data.test)  # the split is fixed


def test_coco_has_end_and_padding():
    data = load_corpus("coco", max_train=200, max_test=50)
    row = data.train[0].tolist()
    assert data.eos_token in row and row[row.index(data.eos_token) + 1 :] == [data.pad_token] * (len(row) - row.index(data.eos_token) - 1)
    assert data.text(data.train[0]).split()[0] and "<eos>" not in data.text(data.train[0])


def test_coco_texygen_is_the_published_protocol():
    """All 10,000 training captions train; all 10,000 of Texygen's test captions are BLEU's
    references, tokenised as Texygen does; NLL-test keeps the ones whose tokens training has."""
    from nltk.tokenize import word_tokenize

    data = load_corpus("coco-texygen")
    recipe = load_recipe("coco-texygen")
    train_lines = read_lines(locate(recipe))
    test_lines = read_lines(locate(held_out_recipe(recipe)))
    assert len(train_lines) == len(data.train) == 10000 and len(test_lines) == 10000
    expected = [word_tokenize(line.lower(), preserve_line=True) for line in test_lines]
    assert data.references() == expected
    assert data.references()[0][-1] != "." and "wheel" in data.text(data.train[0]).split()  # punctuation split off
    known = set(data.vocab.itos)
    scored = [t for t in expected if all(w in known for w in t)]
    assert 0 < len(scored) < 10000 and len(data.test) == len(scored) == data.info["test_scored"]
    assert [data.tokens(s) for s in data.test] == scored
    assert not (data.test == data.vocab.unk).any()
    # the 8,000/2,000 split of the same file is unchanged, its BLEU references its own test split
    coco = load_corpus("coco")
    assert len(coco.train) == 8000 and coco.references() == [coco.tokens(s) for s in coco.test]


def test_coco_texygen_test_file_is_checked(no_data, tmp_path):
    recipe = held_out_recipe(load_recipe("coco-texygen"))
    bad = tmp_path / "bad" / recipe.file
    bad.parent.mkdir(parents=True)
    bad.write_text("not the captions\n")
    with pytest.raises(DataError, match="test_coco.txt: sha256") as err:
        load_corpus("coco-texygen", data_dir=str(tmp_path / "bad"))
    assert "\n" not in str(err.value)


def test_missing_file_gives_one_line_with_where_and_url(no_data):
    recipe = load_recipe("oracle")  # the paper's oracle is not shipped inside the package
    with pytest.raises(DataError) as err:
        locate(recipe)
    message = str(err.value)
    assert "\n" not in message
    assert recipe.file in message and recipe.url in message and str(no_data / "data") in message


@pytest.mark.parametrize("name", ["poems", "coco", "coco-texygen"])
def test_poems_and_coco_ship_inside_the_package(no_data, name):
    """With no data directory, no cache and no network the shipped copies are found and checked."""
    recipe = load_recipe(name)
    path = locate(recipe)
    assert path == embedded_path(recipe) and path.is_file()
    assert sha256_of(path) == recipe.sha256
    assert len(load_corpus(name, max_train=100, max_test=10).train) == 100


def test_data_dir_comes_first_and_checksums_are_checked(no_data, tmp_path):
    recipe = load_recipe("poems")
    mine = tmp_path / "mine"
    (mine / recipe.file).parent.mkdir(parents=True)
    (mine / recipe.file).write_bytes(embedded_path(recipe).read_bytes())
    assert locate(recipe, data_dir=mine) == mine / recipe.file  # before the shipped copy
    bad = tmp_path / "bad" / recipe.file
    bad.parent.mkdir(parents=True)
    bad.write_text("not the poems\n")
    with pytest.raises(DataError, match="sha256"):
        locate(recipe, data_dir=tmp_path / "bad")


def test_unknown_corpus_names_the_choices():
    with pytest.raises(DataError, match="poems"):
        load_corpus("peoms")


@pytest.mark.parametrize("tokenizer", ["char", "word", "sentencepiece"])
def test_any_text_file(tmp_path, tokenizer):
    lines = [f"the {w} sat on the mat number {i % 7}" for i, w in enumerate(["cat", "dog", "bird", "fox"] * 30)]
    lines.append("a much longer line " * 10)
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_corpus(str(path), tokenizer=tokenizer, vocab_size=60, max_length=12)
    assert data.train.shape[1] == 13 and len(data.train) + len(data.test) == len(lines)
    assert data.info["truncated_train_lines"] + data.info["truncated_test_lines"] >= 1
    row = next(r for r in data.train if data.eos_token in r.tolist())
    assert data.text(row) in "\n".join(lines)  # decoding gives back the text


def test_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "broken.txt"
    path.write_bytes(b"fine line\nalso fine\nbad \xff\xfe bytes\n")
    with pytest.raises(DataError, match="line 3 is not valid UTF-8"):
        read_lines(path)


def test_batches_cover_an_epoch_once():
    data = torch.arange(10).unsqueeze(1).expand(10, 3)
    seen = torch.cat(list(batches(data, 3, torch.Generator().manual_seed(0))))
    assert len(seen) == 9 and len(set(seen[:, 0].tolist())) == 9
    with pytest.raises(DataError, match="fewer than one batch"):
        next(batches(data, 11, torch.Generator()))
