"""The training script end to end, as a user runs it."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqadv.checkpoint import load_checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_seqgan.py"


def run_script(*args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_tiny_run_on_the_poem_corpus(shared_dir, tmp_path):
    start = time.time()
    result = run_script("--corpus", "poems", "--preset", "tiny", "--out", str(tmp_path), "--seed", "3")
    elapsed = time.time() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert elapsed < 60
    results = json.loads((tmp_path / "results.json").read_text())
    for model in ("pretrained", "mle", "seqgan"):
        metrics = results["models"][model]
        assert 0.0 < metrics["bleu2"] <= 1.0 and 0.0 < metrics["self_bleu2"] <= 1.0 and metrics["nll_test"] > 0
    assert results["generator_updates"]["mle_baseline"] == results["generator_updates"]["seqgan"] == 3
    assert "SeqGAN" in result.stdout and "bleu2" in result.stdout  # the printed table
    for name in ("pretrained.pt", "mle.pt", "seqgan.pt", "checkpoint.pt"):
        assert "generator" in load_checkpoint(tmp_path / name)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["phase"] == "adversarial"
    samples = (tmp_path / "samples_seqgan.txt").read_text(encoding="utf-8").splitlines()
    assert len(samples) == 200 and all(len(s.split()) == 24 for s in samples)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert not list(tmp_path.glob("*.tmp*"))


def test_tiny_run_on_the_oracle(tmp_path):
    result = run_script("--corpus", "oracle", "--preset", "tiny", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    models = json.loads((tmp_path / "results.json").read_text())["models"]
    # a barely trained generator is far from the oracle; the uniform one is at log(5000) = 8.5
    assert all(6.0 < m["nll_oracle"] < 12.0 for m in models.values())


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--corpus", "peoms"], "unknown corpus 'peoms'"),
        (["--corpus", "missing/file.txt"], "missing/file.txt: no such file"),
        (["--num-rollouts", "0"], "--num-rollouts must be positive"),
        (["--rollout-rate", "1.5"], "--rollout-rate must be in [0, 1]"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, args, fragment):
    result = run_script(*args, "--preset", "tiny", "--out", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr
