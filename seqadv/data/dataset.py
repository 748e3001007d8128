"""Tokenised corpora as fixed-length tensors, ready for the generator and discriminator.

Every sequence has the same length T: text tokens, then (for corpora with
variable-length lines) one <eos> and <pad> up to T. Lines longer than the maximum
length are truncated and counted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch
from torch import Tensor

from seqadv.core.errors import DataError
from seqadv.data.corpus import Recipe, load_recipe, locate, package_splits, read_lines, split_lines, held_out_recipe
from seqadv.data.oracle import oracle_corpus
from seqadv.data.tokenizer import HFTokenizer, Vocab, make_tokenizer


@dataclass
class SequenceData:
    name: str
    train: Tensor  # (num_train, T) int64
    test: Tensor  # (num_test, T) int64
    vocab_size: int
    start_token: int
    eos_token: Optional[int] = None
    pad_token: Optional[int] = None
    vocab: Optional[Vocab] = None  # None when ids are the tokens (the oracle)
    tokenizer: Optional[object] = None
    oracle: Optional[torch.nn.Module] = None  # the oracle corpus's data-generating LSTM
    info: dict = field(default_factory=dict)
    # BLEU's references where they are not `test` (coco-texygen: every test line, as tokenised,
    # where `test` keeps those a model can be scored on); None: `test` itself
    reference_tokens: Optional[list] = None

    @property
    def length(self) -> int:
        return self.train.shape[1]

    def tokens(self, ids: Sequence[int] | Tensor) -> list:
        """One sequence's tokens, up to its end token, as BLEU compares them."""
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        if self.vocab is not None:
            return self.vocab.decode(ids)
        if self.eos_token is not None and self.eos_token in ids:
            ids = ids[: ids.index(self.eos_token)]
        return ids

    def references(self) -> list:
        """BLEU's references: each test line's tokens."""
        if self.reference_tokens is not None:
            return self.reference_tokens
        return [self.tokens(s) for s in self.test]

    def text(self, ids: Sequence[int] | Tensor) -> str:
        tokens = self.tokens(ids)
        if self.tokenizer is not None:
            return self.tokenizer.detokenize(tokens)
        return " ".join(str(t) for t in tokens)


def encode_lines(tokenized: list[list[str]], vocab: Vocab, max_length: int, eos: bool) -> tuple[Tensor, int]:
    """Token lists -> (num, max_length [+1 with eos]) ids, and how many lines were truncated."""
    return encode_ids([vocab.encode(tokens) for tokens in tokenized], max_length, vocab.eos if eos else None,
                      vocab.pad)


def encode_ids(lines: list[list[int]], max_length: int, eos: Optional[int], pad: int) -> tuple[Tensor, int]:
    """Id lists -> (num, max_length [+1 with an eos]) rows: each line's ids cut to max_length,
    the end token, then padding. Returns the rows and how many lines were cut."""
    length = max_length + (1 if eos is not None else 0)
    out = torch.full((len(lines), length), pad, dtype=torch.long)
    truncated = 0
    for row, ids in enumerate(lines):
        if len(ids) > max_length:
            truncated += 1
            ids = ids[:max_length]
        ids = list(ids) + ([eos] if eos is not None else [])
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out, truncated


def _is_path(corpus: str) -> bool:
    return os.sep in corpus or "/" in corpus or Path(corpus).suffix != "" or Path(corpus).is_file()


def load_corpus(
    corpus: str,
    *,
    data_dir: Optional[str] = None,
    tokenizer: Optional[str] = None,
    vocab_size: Optional[int] = None,
    max_length: Optional[int] = None,
    oracle: str = "random",
    max_train: Optional[int] = None,
    max_test: Optional[int] = None,
    hf_tokenizer: Optional[HFTokenizer] = None,
) -> SequenceData:
    """A named corpus (`poems`, `coco`, `oracle`) or any text file, tokenised and split.

    Named corpora follow their recipe (`corpora/<name>.toml`); `tokenizer`,
    `vocab_size` and `max_length` override it. A text file gets the word
    tokenizer, a 10% test split and the longest training line (at most 64
    tokens) unless told otherwise. `max_train` / `max_test` keep only the first
    lines of each split (small experiments and tests). `hf_tokenizer`: a Hugging Face
    model's tokenizer encodes the lines instead (its ids, its end and padding tokens;
    lengths in its tokens, by default the longest training line, at most 64).
    """
    if corpus == "oracle" and hf_tokenizer is not None:
        raise DataError("--corpus oracle: its tokens are the oracle LSTM's own ids, which a Hugging Face "
                        "model's tokenizer does not share: give a text corpus for --generator hf:DIR")
    if corpus == "oracle":
        return SequenceData(**oracle_corpus(load_recipe("oracle"), kind=oracle, data_dir=data_dir, max_train=max_train,
                                            max_test=max_test))
    recipe, path, train_lines, test_lines = _corpus_lines(corpus, data_dir)
    if hf_tokenizer is not None:
        return _hf_corpus(recipe, path, train_lines[:max_train], test_lines[:max_test], hf_tokenizer, max_length)
    if recipe.extra.get("stream"):
        return _stream_corpus(recipe, train_lines, test_lines, max_length, max_train, max_test)
    return _encoded_corpus(recipe, path, train_lines[:max_train], test_lines[:max_test], tokenizer, vocab_size,
                           max_length)


def _corpus_lines(corpus: str, data_dir: Optional[str]) -> tuple[Recipe, Optional[Path], list[str], list[str]]:
    """The corpus's recipe, its file (None for one shipped as a package's splits) and its
    training and test lines (a text file: split by the recipe's seeded permutation)."""
    if _is_path(corpus):
        path = Path(corpus)
        recipe = Recipe(name=path.stem, description=str(path), file=str(path), url="", sha256="", max_length=0)
    else:
        recipe = load_recipe(corpus)
        path = None if "package" in recipe.extra else locate(recipe, data_dir)
    if path is None:
        splits = package_splits(recipe)
        return recipe, path, splits["train"], splits["test"]
    test = held_out_recipe(recipe) if not _is_path(corpus) else None
    if test is not None:  # the corpus's own test file: every line of the training file trains
        return recipe, path, read_lines(path), read_lines(locate(test, data_dir))
    lines = read_lines(path)
    train_lines, test_lines = split_lines(lines, recipe.test_fraction, recipe.split_seed)
    if not train_lines:
        raise DataError(f"{path}: only {len(lines)} non-empty line(s), too few for a corpus: the "
                        f"{recipe.test_fraction:.0%} test split takes them all (give at least one batch of "
                        f"training lines besides it, 64 by default)")
    return recipe, path, train_lines, test_lines


def split_description(recipe: Recipe) -> str:
    test = held_out_recipe(recipe)
    if test is not None:
        return f"every line of {recipe.file} to train, {test.file} to test"
    return f"seeded permutation (seed {recipe.split_seed}), {recipe.test_fraction:.0%} held out for test"


def _encoded_corpus(recipe: Recipe, path: Optional[Path], train_lines: list[str], test_lines: list[str],
                    tokenizer: Optional[str], vocab_size: Optional[int], max_length: Optional[int]) -> SequenceData:
    """Lines tokenised (a tokenizer trained on the training lines), a vocabulary of the
    training tokens, each line one row of `length` ids (the end token, then padding)."""
    kind = tokenizer or recipe.tokenizer
    tok = make_tokenizer(kind, train_lines, vocab_size or 8000, seed=recipe.split_seed)
    train_tokens = [tok.tokenize(line) for line in train_lines]
    test_tokens = [tok.tokenize(line) for line in test_lines]
    vocab = Vocab.build(train_tokens, max_size=vocab_size if kind != "sentencepiece" else None)
    length = max_length or recipe.max_length or min(64, max(len(t) for t in train_tokens))
    references = None
    scored = recipe.extra.get("scored_test")
    if scored == "known-words":
        # every test line is a BLEU reference; NLL-test and the reverse-LM score take only those
        # whose words the training lines hold: a model would otherwise be scored on an <unk> that
        # no training line has, whose probability training never set
        references = test_tokens
        test_tokens = [t for t in test_tokens if all(w in vocab.stoi for w in t)]
    elif scored is not None:
        raise DataError(f"corpus {recipe.name}: scored_test must be \"known-words\", got {scored!r}")
    train, cut_train = encode_lines(train_tokens, vocab, length, recipe.eos)
    test, cut_test = encode_lines(test_tokens, vocab, length, recipe.eos)
    info_scored = {} if references is None else {"test_references": len(references), "test_scored": len(test_tokens)}
    return SequenceData(
        name=recipe.name,
        train=train,
        test=test,
        vocab_size=len(vocab),
        start_token=vocab.bos,
        eos_token=vocab.eos if recipe.eos else None,
        pad_token=vocab.pad,
        vocab=vocab,
        tokenizer=tok,
        info={
            "file": str(path),
            "tokenizer": kind,
            "max_length": length,
            "truncated_train_lines": cut_train,
            "truncated_test_lines": cut_test,
            "split": split_description(recipe),
            **info_scored,
        },
        reference_tokens=references,
    )


def _hf_corpus(recipe: Recipe, path: Optional[Path], train_lines: list[str], test_lines: list[str],
               tokenizer: HFTokenizer, max_length: Optional[int]) -> SequenceData:
    """Lines encoded by a Hugging Face tokenizer: each row its ids, its end token, then its
    padding token (the end token where it has none)."""
    vocab = tokenizer.vocab
    train_ids, test_ids = tokenizer.encode_lines(train_lines), tokenizer.encode_lines(test_lines)
    if vocab.unk is not None:
        unknown = [i for i, ids in enumerate(train_ids) if vocab.unk in ids]
        if unknown:
            word = next((w for w in train_lines[unknown[0]].split() if vocab.unk in tokenizer.encode_lines([w])[0]),
                        None)
            where = f"{word!r} in line {unknown[0] + 1}" if word is not None else f"in line {unknown[0] + 1}"
            raise DataError(f"{recipe.name}: the model's tokenizer cannot encode {len(unknown)} of "
                            f"{len(train_ids)} training lines (unknown tokens, e.g. {where}): give a corpus in its "
                            f"vocabulary or a model whose tokenizer covers it")
    length = max_length or min(64, max(len(ids) for ids in train_ids))
    train, cut_train = encode_ids(train_ids, length, vocab.eos, vocab.pad)
    test, cut_test = encode_ids(test_ids, length, vocab.eos, vocab.pad)
    return SequenceData(
        name=recipe.name, train=train, test=test, vocab_size=len(vocab), start_token=vocab.bos,
        eos_token=vocab.eos, pad_token=vocab.pad, vocab=vocab, tokenizer=tokenizer,
        info={"file": str(path), "tokenizer": f"hf ({type(tokenizer.hf).__name__}, {len(vocab)} tokens)",
              # unknown tokens in the test split are scored as the tokenizer encodes them, and counted here
              "test_lines_with_unknown_tokens": 0 if vocab.unk is None else sum(vocab.unk in ids for ids in test_ids),
              "max_length": length, "truncated_train_lines": cut_train, "truncated_test_lines": cut_test,
              "split": split_description(recipe)},
    )


SENTENCE_END = "</s>"  # a word of the stream, not the vocabulary's <eos>: a window goes on after it


def _stream_corpus(recipe: Recipe, train_lines: list[str], test_lines: list[str], max_length: Optional[int],
                   max_train: Optional[int], max_test: Optional[int]) -> SequenceData:
    """Each split as one stream of words (every line ending in SENTENCE_END), cut into
    consecutive windows of `max_length` words: the language-model setup of PTB."""
    length = max_length or recipe.max_length
    vocab = Vocab.build([line.split() + [SENTENCE_END] for line in train_lines])

    def windows(lines: list[str], limit: Optional[int]) -> Tensor:
        ids = torch.tensor(vocab.encode([w for line in lines for w in line.split() + [SENTENCE_END]]), dtype=torch.long)
        out = ids[: len(ids) // length * length].view(-1, length)
        return out[:limit]

    return SequenceData(
        name=recipe.name, train=windows(train_lines, max_train), test=windows(test_lines, max_test),
        vocab_size=len(vocab), start_token=vocab.bos, eos_token=None, pad_token=vocab.pad, vocab=vocab, tokenizer=make_tokenizer("word"),
        info={"source": recipe.extra.get("package", recipe.file), "tokenizer": "word", "max_length": length,
              "split": f"the corpus's own train and test splits, each one stream cut into windows of {length} words"},
    )


def batches(data: Tensor, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """One shuffled epoch of full batches. Shape: data (num, T) -> each (batch_size, T)."""
    if len(data) < batch_size:
        raise DataError(f"the corpus has {len(data)} training sequences, fewer than one batch of {batch_size}")
    order = torch.randperm(len(data), generator=generator)
    for begin in range(0, len(data) - batch_size + 1, batch_size):
        yield data[order[begin : begin + batch_size]]


class BatchStream:
    """Endless shuffled epochs of full batches, whose place a checkpoint can hold.

    Shape: data (num, T) -> each `next()` (batch_size, T). A new permutation is drawn
    from `generator` when the current one has no full batch left, as `batches` draws
    one per epoch; `state_dict()` / `load_state_dict()` carry the permutation and the
    position, so a resumed run takes the very batches an uninterrupted one would.
    """

    def __init__(self, data: Tensor, batch_size: int, generator: torch.Generator):
        self.data, self.batch_size, self.generator = data, batch_size, generator
        self.order: Optional[Tensor] = None
        self.position = 0

    def next(self) -> Tensor:
        if self.order is None or self.position + self.batch_size > len(self.data):
            self.order = torch.randperm(len(self.data), generator=self.generator)
            self.position = 0
        idx = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.data[idx.to(self.data.device)]

    def state_dict(self) -> dict:
        return {"order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position = state["order"], state["position"]
