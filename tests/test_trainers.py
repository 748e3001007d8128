"""The trainers called from Python, as a user of the library calls them: training that
does something, models of one's own, self-describing saved models, configs and presets."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_irgan import write_ratings
from test_resume import toy_text
from torch import nn

import seqadv
from seqadv import IRGANConfig, IRGANTrainer, MaskGANConfig, MaskGANTrainer, SeqGANConfig, SeqGANTrainer
from seqadv.core.masks import mask_after_eos
from seqadv.core.sampling import generate
from seqadv.eval.metrics import nll
from seqadv.models.discriminator import Discriminator
from seqadv.models.generator import Generator
from seqadv.models.infiller import InfillingGenerator
from seqadv.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def seqgan_run(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("seqgan")
    trainer = SeqGANTrainer(SeqGANConfig(corpus=str(toy), preset="tiny", out=str(out), pretrain_epochs=30,
                                         d_pretrain_rounds=8, d_lr=2e-3, d_epochs=2))
    return trainer, trainer.train()


def test_seqgan_pretraining_lowers_nll_and_d_tells_real_from_generated(seqgan_run):
    trainer, results = seqgan_run
    data = trainer.data
    untrained = Generator(data.vocab_size, 16, 16, start_token=data.start_token, eos_token=data.eos_token,
                          pad_token=data.pad_token)
    start = nll(untrained, data.test, eos_token=data.eos_token, pad_token=data.pad_token)
    assert start > math.log(data.vocab_size) - 0.1  # about uniform before training
    assert results["models"]["pretrained"]["nll_test"] < 0.6 * start
    curve = [h["nll_test"] for h in results["history"]["pretrain"]]
    assert len(curve) == 30 and curve[-1] < curve[0]
    # D on held-out real sequences (the test split) against fresh samples of the final G
    rng = torch.Generator().manual_seed(123)
    fake = trainer.g.sample(len(data.test), data.length, generator=rng)

    @torch.no_grad()
    def accuracy(d):
        return ((d(data.test) > 0).float().mean() + (d(fake) < 0).float().mean()).item() / 2

    untrained = Discriminator(data.vocab_size, 16, (1, 2, 3, 5), (8, 8, 8, 8), pad_token=data.pad_token).eval()
    assert accuracy(trainer.d.eval()) > max(0.6, accuracy(untrained) + 0.1), (accuracy(trainer.d), accuracy(untrained))


def test_the_results_dict_is_results_json(seqgan_run):
    trainer, results = seqgan_run
    on_disk = json.loads((trainer.out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["recipe"] == "seqgan" and on_disk["config"]["pretrain_epochs"] == 30
    assert set(on_disk["models"]) == {"pretrained", "mle", "seqgan"}


def test_a_saved_model_loads_with_its_tokenizer_and_samples_as_trained(seqgan_run):
    trainer, _ = seqgan_run
    model, tokenizer = seqadv.load(trainer.out / "seqgan.pt")
    for p, q in zip(model.parameters(), trainer.g.parameters()):
        assert torch.equal(p, q)
    text = tokenizer.decode(model.sample(1, trainer.data.length, generator=torch.Generator().manual_seed(0))[0])
    assert text == trainer.data.text(trainer.g.sample(1, trainer.data.length, generator=torch.Generator().manual_seed(0))[0])
    assert tokenizer.decode(tokenizer.encode("w1 w4 w7")) == "w1 w4 w7"
    assert seqadv.load(trainer.out).path.name == "seqgan.pt"  # a run directory stands for its adversarial model


def test_a_file_that_holds_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    save_checkpoint({"generator": {}, "model": {"class": "x"}, "payload": Path("/etc/passwd")}, path)
    with pytest.raises(CheckpointError, match="holds objects other than tensors and plain data"):
        load_checkpoint(path)


def test_sample_py_prints_decoded_samples(seqgan_run):
    trainer, _ = seqgan_run
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "sample.py"), str(trainer.out), "--num", "4",
                             "--temperature", "0.8", "--top-k", "5", "--seed", "1"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all(w.startswith("w") for line in lines for w in line.split())


class GRUPolicy(nn.Module):
    """A generator of one's own: a GRU with the policy protocol and what SeqGAN needs."""

    def __init__(self, vocab_size, start_token, eos_token, pad_token, hidden=12):
        super().__init__()
        self.start_token, self.eos_token, self.pad_token = start_token, eos_token, pad_token
        self.embedding, self.gru = nn.Embedding(vocab_size, hidden), nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, self.gru.hidden_size, device=self.head.weight.device)

    def step(self, tokens, state):
        y, h = self.gru(self.embedding(tokens).unsqueeze(1), state.unsqueeze(0).contiguous())
        return self.head(y[:, 0]), h[0]

    def target_logits(self, targets):
        inputs = torch.cat([torch.full_like(targets[:, :1], self.start_token), targets[:, :-1]], dim=1)
        return self.head(self.gru(self.embedding(inputs))[0])

    @torch.no_grad()
    def sample(self, num, length, temperature=1.0, generator=None):
        return mask_after_eos(generate(self, num, length, temperature=temperature, generator=generator,
                                       device=self.head.weight.device), self.eos_token, self.pad_token)


class BagDiscriminator(nn.Module):
    """A discriminator of one's own: mean of token embeddings -> a logit (no prefix sharing, no L2)."""

    def __init__(self, vocab_size):
        super().__init__()
        self.embedding, self.out = nn.EmbeddingBag(vocab_size, 8), nn.Linear(8, 1)

    def forward(self, sequences):
        return self.out(self.embedding(sequences)).squeeze(1)


def test_seqgan_with_a_generator_and_discriminator_of_ones_own(toy, tmp_path):
    config = SeqGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=20)
    trainer = SeqGANTrainer(config, generator=lambda data: GRUPolicy(data.vocab_size, data.start_token,
                                                                     data.eos_token, data.pad_token),
                            discriminator=lambda data: BagDiscriminator(data.vocab_size))
    results = trainer.train()
    assert isinstance(trainer.g, GRUPolicy) and isinstance(trainer.d, BagDiscriminator)
    assert results["models"]["pretrained"]["nll_test"] < 0.8 * math.log(trainer.data.vocab_size)
    assert not torch.equal(trainer.g.head.weight, trainer.mle.head.weight)  # SeqGAN and the baseline moved apart
    saved = load_checkpoint(tmp_path / "seqgan.pt")
    assert saved["model"] == {"class": "test_trainers.GRUPolicy", "config": None}
    with pytest.raises(CheckpointError, match="test_trainers.GRUPolicy of one's own"):
        seqadv.load(tmp_path / "seqgan.pt")


def test_maskgan_pretraining_lowers_the_infill_perplexity(tmp_path):
    corpus = toy_text(tmp_path / "toy.txt", lines=1000)
    trainer = MaskGANTrainer(MaskGANConfig(corpus=str(corpus), preset="tiny", out=str(tmp_path / "run"),
                                           pretrain_epochs=4, g_lr=1e-2, eval_samples=40, adv_epochs=2))
    results = trainer.train()
    untrained = InfillingGenerator(trainer.data.vocab_size, 16, 16, start_token=trainer.data.start_token)
    start = trainer.evaluate(untrained)[0]["infill_ppl"]
    curve = [h["infill_ppl"] for h in results["history"]["pretrain"]]
    assert start > 0.8 * trainer.data.vocab_size  # about uniform over the vocabulary
    assert curve[0] > curve[-1] and curve[-1] < 0.5 * start, (start, curve)
    model, tokenizer = seqadv.load(tmp_path / "run")  # maskgan.pt, with its tokenizer
    assert isinstance(model, InfillingGenerator) and tokenizer.decode(trainer.data.test[0]).startswith("w")
    wrong = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), str(tmp_path / "run" / "maskgan.pt")],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "a maskgan model; evaluate.py sweeps the text generators" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


def test_irgan_beats_a_popularity_ranking(tmp_path):
    path = write_ratings(tmp_path / "ratings.tsv", users=60, items=30)
    trainer = IRGANTrainer(IRGANConfig(data=str(path), preset="tiny", out=str(tmp_path / "run"), bpr_epochs=30,
                                       batch_size=32, device="cpu"))
    results = trainer.train()
    data = trainer.data
    popularity = data.train_positive.sum(dim=0).float().expand(data.num_users, -1)
    from seqadv.eval.metrics import ranking_metrics

    popular = ranking_metrics(popularity, data.test_positive, data.train_positive)["p@3"]
    assert results["models"]["irgan"]["p@3"] > popular + 0.1, (results["models"], popular)
    before, after = (load_checkpoint(tmp_path / "run" / name)["generator"] for name in ("bpr.pt", "irgan.pt"))
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the adversarial phase moved G
    model, ids = seqadv.load(tmp_path / "run")
    assert ids["users"][:2] == ["u0", "u1"] and len(ids["items"]) == data.num_items


def test_presets_fill_what_is_not_given_and_given_values_win():
    config = SeqGANConfig(preset="tiny", pretrain_epochs=120)  # 120 is the dataclass default: still given
    assert (config.pretrain_epochs, config.adv_epochs) == (120, 3)
    assert SeqGANConfig().pretrain_epochs == 40  # the default preset is cpu
    assert config.given == {"preset", "pretrain_epochs"}
    with pytest.raises(ValueError, match="--g-steps must be positive, got 0"):
        SeqGANConfig(g_steps=0)
    with pytest.raises(ValueError, match="--preset huge: choose one of tiny, cpu, paper"):
        MaskGANConfig(preset="huge")


def test_help_shows_the_value_under_the_default_preset_and_booleans_switch(tmp_path):
    from seqadv.runtime.cli import build_parser, parse_config

    text = build_parser(SeqGANConfig, "").format_help()
    assert "(default: 40; tiny: 2, paper: 120)" in " ".join(text.split())  # --pretrain-epochs
    assert "default: None" not in text
    assert parse_config(SeqGANConfig, ["--debug"], "").debug and not parse_config(SeqGANConfig, ["--no-debug"], "").debug


def test_a_package_built_as_a_wheel_trains_and_ships_the_corpora(tmp_path):
    import shutil

    # built from a copy of the tracked files, so that the build leaves nothing in the checkout
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / "src" / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "wheel"), str(tmp_path / "src")], capture_output=True, text=True,
                           timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("seqadv-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert {"seqadv/trainers/seqgan.py", "seqadv/corpora/data/shi.txt", "seqadv/corpora/data/image_coco.txt"} <= set(names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("from seqadv import SeqGANTrainer, MaskGANTrainer, IRGANTrainer, SeqGANConfig; import seqadv; "
            "from seqadv.data.corpus import locate, load_recipe; print(seqadv.__file__, locate(load_recipe('poems')))")
    env = {"PATH": "/usr/bin:/bin", "SEQADV_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    module, corpus = result.stdout.split()
    assert module.startswith(str(target)) and corpus.startswith(str(target))


def test_other_scripts_refuse_bad_input_in_one_line(seqgan_run, tmp_path):
    trainer, _ = seqgan_run
    run = trainer.out
    cases = [
        ("train_maskgan.py", ["--resume", run], "a checkpoint of seqgan, not of a maskgan run"),
        ("train_maskgan.py", ["--d-steps", "-1"], "--d-steps must not be negative"),
        ("train_irgan.py", ["--resume", tmp_path], "no config.json of train_irgan.py there"),
        ("train_irgan.py", ["--mix", "1"], "--mix must be in [0, 1)"),
        ("sample.py", [tmp_path / "none"], "no such run directory or model file"),
        ("sample.py", [run, "--user", "7"], "a seqgan model generates text; --infill and --user do not apply"),
        ("sample.py", [run / "checkpoint.pt", "--num", "0"], "--num must be at least 1, got 0"),
        ("evaluate.py", [run / "results.json"], "results.json: unreadable checkpoint"),
    ]
    for script, args, fragment in cases:
        result = subprocess.run([sys.executable, str(REPO / "scripts" / script), *map(str, args)],
                                capture_output=True, text=True, timeout=60)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and fragment in lines[0], (script, args, result.stderr)


def test_a_sampling_stream_from_another_kind_of_device_is_left_as_seeded():
    """A CPU run resumed on a GPU (or back): the generator state cannot move; the rest is restored."""
    from seqadv.trainers.base import rng_states, set_rng_states

    saved = rng_states(torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    same, order = torch.Generator().manual_seed(5), torch.Generator()
    assert set_rng_states(saved, same, order) and torch.equal(same.get_state(), saved["sampling"])
    saved["sampling"] = torch.zeros(16, dtype=torch.uint8)  # what a CUDA generator's state looks like
    other = torch.Generator().manual_seed(5)
    before = other.get_state()
    assert not set_rng_states(saved, other, order)
    assert torch.equal(other.get_state(), before) and torch.equal(order.get_state(), saved["order"])


def test_a_sentencepiece_run_saves_its_tokenizer(tmp_path):
    lines = [f"the {w} sat on the mat number {i % 7}" for i, w in enumerate(["cat", "dog", "bird", "fox"] * 40)]
    corpus = tmp_path / "mats.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = SeqGANConfig(corpus=str(corpus), tokenizer="sentencepiece", vocab_size=40, preset="tiny",
                          out=str(tmp_path / "run"), adv_epochs=1, d_pretrain_rounds=1)
    trainer = SeqGANTrainer(config)
    trainer.train()
    loaded = seqadv.load(tmp_path / "run" / "mle.pt")
    ids = trainer.data.test[0]
    assert loaded.tokenizer.decode(ids) == trainer.data.text(ids)
    assert loaded.tokenizer.decode(loaded.tokenizer.encode("the fox sat on the mat")) == "the fox sat on the mat"
    assert loaded.state["tokenizer"]["kind"] == "sentencepiece" and loaded.length == trainer.data.length


def test_a_model_saved_before_the_layered_package_still_loads(tmp_path):
    """Files written before models registered themselves name the class by its old module
    path; `load` still rebuilds it, and nothing outside the registry."""
    g = Generator(7, 8, 8, start_token=0)
    config = dict(vocab_size=7, embedding_dim=8, hidden_dim=8, start_token=0)
    save_checkpoint({"generator": g.state_dict(), "model": {"class": "seqadv.generator.Generator", "config": config}},
                    tmp_path / "old.pt")
    model, _ = seqadv.load(tmp_path / "old.pt")
    assert type(model) is Generator and all(torch.equal(p, q) for p, q in zip(model.parameters(), g.parameters()))
    save_checkpoint({"generator": g.state_dict(), "model": {"class": "mypackage.Generator", "config": config}},
                    tmp_path / "theirs.pt")
    with pytest.raises(CheckpointError, match="of one's own"):
        seqadv.load(tmp_path / "theirs.pt")


def test_a_run_begun_before_the_layered_package_resumes_with_the_same_model():
    from seqadv.core.registry import same_model

    old = {"class": "seqadv.generator.Generator", "config": {"vocab_size": 7}}
    assert same_model(old, {"class": "Generator", "config": {"vocab_size": 7}})
    assert not same_model(old, {"class": "Generator", "config": {"vocab_size": 8}})
    assert not same_model(old, {"class": "TransformerGenerator", "config": {"vocab_size": 7}})
