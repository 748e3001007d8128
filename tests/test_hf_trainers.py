"""`--generator hf:DIR`: a local Hugging Face causal LM (tiny, built from a config, with a
word-level tokenizer trained here on the poems; nothing downloaded) trained by the SeqGAN,
ScratchGAN-style and MLE trainers, handed back as a directory `transformers` loads, resumed
bit for bit after a kill, and refused in one line when the directory or the corpus is wrong."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from hf_models import write_tiny_model  # noqa: E402
from test_resume import assert_same_tensors  # noqa: E402
from test_script_errors import call  # noqa: E402

from seqadv import HFGenerator, ScratchGANConfig, ScratchGANTrainer, SeqGANConfig, SeqGANTrainer, load  # noqa: E402
from seqadv.data.dataset import _corpus_lines  # noqa: E402
from seqadv.eval.metrics import nll  # noqa: E402
from seqadv.runtime.checkpoint import load_checkpoint  # noqa: E402
from seqadv.trainers import MLEConfig, MLETrainer  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SMALL = dict(preset="tiny", max_train=256, max_test=64, max_length=12, eval_samples=64)  # half of each poem line


@pytest.fixture(scope="module")
def poems() -> list[str]:
    _, _, train, test = _corpus_lines("poems", None)
    return train + test


@pytest.fixture(scope="module")
def models(tmp_path_factory, poems) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {kind: write_tiny_model(root / kind, poems, kind) for kind in ("gpt2", "llama")}


@pytest.fixture(scope="module")
def seqgan_run(tmp_path_factory, models):
    out = tmp_path_factory.mktemp("seqgan") / "run"
    trainer = SeqGANTrainer(SeqGANConfig(corpus="poems", generator=f"hf:{models['gpt2']}", g_lr=3e-3, out=str(out),
                                         **SMALL))
    return trainer, trainer.train(), out


def test_seqgan_trains_a_local_gpt2_on_its_own_tokens_and_mle_lowers_its_nll(seqgan_run, models):
    trainer, results, out = seqgan_run
    data = trainer.data
    tokenizer = transformers.AutoTokenizer.from_pretrained(models["gpt2"])
    # the corpus is the model's tokens: each row its ids, its end token, then padding
    first = data.train[0].tolist()
    end = first.index(tokenizer.eos_token_id)
    assert tokenizer.decode(first[:end]).split() == data.tokens(data.train[0]) and end == 12
    assert data.info["truncated_train_lines"] > 200
    assert data.vocab_size == len(tokenizer) and data.start_token == tokenizer.bos_token_id
    start, _ = HFGenerator.from_pretrained(models["gpt2"])
    before = nll(start, data.test, eos_token=data.eos_token, pad_token=data.pad_token)
    after = results["models"]["pretrained"]["nll_test"]
    assert after < before - 0.5, (before, after)  # eight MLE updates, from random weights near ln(4,775) = 8.5
    for name in ("pretrained", "mle", "seqgan"):
        assert 0.0 < results["models"][name]["bleu2"] <= 1.0
    # BLEU compares decoded words, and the samples file is decoded text
    lines = (out / "samples_seqgan.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 64 and all("[" not in line for line in lines)


def test_each_trained_generator_is_handed_back_as_a_directory_transformers_loads(seqgan_run):
    trainer, _, out = seqgan_run
    inputs = trainer.data.test[:4]
    for name in ("pretrained", "mle", "seqgan"):
        directory = out / f"{name}-hf"
        model = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
        saved = load(out / f"{name}.pt").model
        torch.testing.assert_close(model(input_ids=inputs).logits, saved(inputs))
        assert tokenizer.eos_token_id == trainer.data.eos_token
        run = json.loads((directory / "seqadv.json").read_text())
        assert run["recipe"] == "seqgan" and run["length"] == trainer.data.length
        assert not list(out.glob(f".{name}-hf.*"))  # written beside, then renamed
    # the adversarial phase moved G: the handed-back SeqGAN differs from the pretrained G
    a, b = (transformers.AutoModelForCausalLM.from_pretrained(out / f"{n}-hf") for n in ("pretrained", "seqgan"))
    assert not torch.equal(a.lm_head.weight, b.lm_head.weight)


def test_load_sample_and_evaluate_take_the_handed_back_directories(seqgan_run, tmp_path, capsys):
    trainer, results, out = seqgan_run
    model, codec = load(out / "seqgan-hf")
    assert isinstance(model, HFGenerator)
    line = trainer.data.text(trainer.data.test[0])
    assert codec.decode(codec.encode(line) + [trainer.data.eos_token]) == line
    capsys.readouterr()
    assert call("sample", [str(out / "seqgan-hf"), "--num", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert call("evaluate", [str(out / "mle-hf"), str(out / "seqgan-hf"), "--samples", "64", "--temperatures", "1.0",
                             "--no-lm-score", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    # NLL-test is the model's whichever form it is read from: the run's own figure
    row = next(line for line in printed.splitlines() if line.startswith("seqgan-hf "))
    assert float(row.split()[2]) == pytest.approx(results["models"]["seqgan"]["nll_test"], abs=1e-4)


def test_scratchgan_starts_a_pretrained_llama_style_model_directly_with_a_kl_penalty(models, tmp_path):
    trainer = ScratchGANTrainer(ScratchGANConfig(corpus="poems", generator=f"hf:{models['llama']}", pretrain_epochs=0,
                                                 kl_coef=0.5, out=str(tmp_path / "run"), **SMALL))
    results = trainer.train()
    assert results["generator_updates"]["pretrain_epochs"] == 0
    start = transformers.AutoModelForCausalLM.from_pretrained(models["llama"])
    pretrained = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "pretrained-hf")
    assert_same_tensors(start.state_dict(), pretrained.state_dict())  # no MLE: the directory's weights start it
    trained = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "scratchgan-hf")
    assert not torch.equal(trained.lm_head.weight, start.lm_head.weight)


def test_the_mle_trainer_hands_back_its_best_epoch(models, tmp_path):
    trainer = MLETrainer(MLEConfig(corpus="poems", generator=f"hf:{models['gpt2']}", g_lr=3e-3, out=str(tmp_path),
                                   pretrain_epochs=2, **SMALL))
    results = trainer.train()
    best = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "mle_best-hf")
    assert_same_tensors({f"lm.{k}": v for k, v in best.state_dict().items()},
                        load_checkpoint(tmp_path / "mle_best.pt")["generator"])
    assert results["best_validation_nll"] < 8.0


def test_a_directory_trains_in_float32_without_dropout_and_is_the_same_model_from_any_path(models, tmp_path):
    import shutil

    half = tmp_path / "bf16"
    shutil.copytree(models["gpt2"], half)
    transformers.AutoModelForCausalLM.from_pretrained(half).to(torch.bfloat16).save_pretrained(half)
    g, _ = HFGenerator.from_pretrained(half)
    f, _ = HFGenerator.from_pretrained(models["gpt2"])
    assert all(p.dtype == torch.float32 for p in g.parameters())  # Adam's small steps are not rounded away
    assert g.config_dict() == f.config_dict()  # another path, another saved dtype: the same model to resume
    g.train()
    assert g.training and not g.lm.training  # no dropout of any kind in the model, whatever the wrapper's mode
    inputs = torch.randint(0, 50, (2, 6))
    torch.testing.assert_close(g(inputs), g(inputs), rtol=0, atol=0)


def test_the_kl_penalty_is_the_exact_divergence_and_pulls_g_back_to_its_reference():
    from seqadv.models.transformer import TransformerGenerator
    from seqadv.rl.losses import kl_to_reference
    from seqadv.rl.update import policy_gradient_update, reference_logits

    logits, reference = torch.randn(3, 5, 7), torch.randn(3, 5, 7)
    mask = torch.tensor([[1.0] * 5, [1.0] * 3 + [0.0] * 2, [1.0] * 5])
    expected = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=logits),
                                                 torch.distributions.Categorical(logits=reference))
    torch.testing.assert_close(kl_to_reference(logits, reference, mask, 13.0), (expected * mask).sum() / 13.0)
    torch.testing.assert_close(kl_to_reference(logits, logits, mask, 13.0), torch.tensor(0.0), atol=1e-6, rtol=0)
    # with no reward to follow, the penalty alone moves a drifted G back toward its reference
    torch.manual_seed(0)
    g = TransformerGenerator(7, d_model=16, num_layers=1, num_heads=2, max_length=6, start_token=0)
    ref = TransformerGenerator(7, d_model=16, num_layers=1, num_heads=2, max_length=6, start_token=0)
    samples = torch.randint(0, 7, (8, 5))
    divergence = lambda: kl_to_reference(g.target_logits(samples), reference_logits(ref, samples)).item()  # noqa: E731
    before = divergence()
    opt = torch.optim.Adam(g.parameters(), lr=0.01)
    for _ in range(5):
        policy_gradient_update(g, opt, g.target_logits(samples), samples, torch.zeros(8, 5), None, 40.0, 0.0, "test",
                               reference_logits=reference_logits(ref, samples), kl_coef=1.0)
    assert divergence() < 0.5 * before, (before, divergence())


def script(name: str, *args, crash_at=None, timeout=240):
    env = {k: v for k, v in os.environ.items() if k != "SEQADV_CRASH_AT"}
    if crash_at:
        env["SEQADV_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_a_killed_hf_run_resumes_bitwise(models, tmp_path):
    args = ["--corpus", "poems", "--preset", "tiny", "--max-train", "128", "--max-test", "32", "--eval-samples", "32",
            "--max-length", "8",
            "--generator", f"hf:{models['gpt2']}", "--kl-coef", "0.1"]
    whole = script("train_seqgan.py", *args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = script("train_seqgan.py", *args, "--out", tmp_path / "run", crash_at="adversarial:2")
    assert killed.returncode == -signal.SIGKILL
    resumed = script("train_seqgan.py", "--resume", tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = load_checkpoint(tmp_path / "run" / "checkpoint.pt"), load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    for name in ("generator", "g_optimizer", "discriminator", "mle_generator", "rollout_policy", "g_adv_optimizer"):
        assert_same_tensors(a[name], b[name], name)
    handed = [transformers.AutoModelForCausalLM.from_pretrained(tmp_path / r / "seqgan-hf") for r in ("run", "whole")]
    assert_same_tensors(handed[0].state_dict(), handed[1].state_dict())


def one_line_error(capsys, name: str, argv: list, *fragments):
    """The script's main in this process: exit 2 and one line on stderr holding `fragments`."""
    capsys.readouterr()
    assert call(name, [str(a) for a in argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("name", ["train_seqgan", "train_scratchgan", "train_mle"])
def test_bad_model_directories_are_one_line(models, poems, tmp_path, capsys, name):
    argv = lambda directory, *more: ["--corpus", "poems", "--preset", "tiny", "--generator", f"hf:{directory}",  # noqa: E731
                                     "--out", tmp_path / "out", *more]
    one_line_error(capsys, name, argv(tmp_path / "missing"), "no such directory")
    if name != "train_seqgan":
        return  # the checks are the generator's, the same for every recipe: the rest once
    encoder = tmp_path / "encoder"
    transformers.DistilBertModel(transformers.DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2,
                                                               hidden_dim=32)).save_pretrained(encoder)
    one_line_error(capsys, name, argv(encoder), "not a causal language model")
    no_end = write_tiny_model(tmp_path / "no-end", poems[:50], eos=False)
    one_line_error(capsys, name, argv(no_end), "no end-of-sequence token")
    narrow = write_tiny_model(tmp_path / "narrow", poems, positions=8)
    one_line_error(capsys, name, argv(narrow), "8 positions", "--max-length 7")
    other = write_tiny_model(tmp_path / "other", ["a b c", "d e f"])
    one_line_error(capsys, name, argv(other), "cannot encode", "training lines")
    pickled = write_tiny_model(tmp_path / "pickled", poems[:50])
    model = transformers.AutoModelForCausalLM.from_pretrained(pickled)
    (pickled / "model.safetensors").unlink()
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    one_line_error(capsys, name, argv(pickled), "no .safetensors weights", "pytorch_model.bin")
    one_line_error(capsys, name, argv(models["gpt2"], "--tokenizer", "char"), "--tokenizer does not apply")
    one_line_error(capsys, name, ["--corpus", "oracle", "--preset", "tiny", "--generator", f"hf:{models['gpt2']}",
                                  "--out", tmp_path / "out"], "oracle")
    # and once as a user types it
    result = script("train_seqgan.py", *argv(tmp_path / "missing"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
