"""The training script end to end, as a user runs it."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqadv.runtime.checkpoint import load_checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_seqgan.py"


def run_script(*args, timeout=120, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})


def test_tiny_run_on_the_poem_corpus(tmp_path):
    start = time.time()
    result = run_script("--corpus", "poems", "--preset", "tiny", "--out", str(tmp_path), "--seed", "3",
                        env={"OMP_NUM_THREADS": "1"})
    elapsed = time.time() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert elapsed < 60
    results = json.loads((tmp_path / "results.json").read_text())
    for model in ("pretrained", "mle", "seqgan"):
        metrics = results["models"][model]
        assert 0.0 < metrics["bleu2"] <= 1.0 and 0.0 < metrics["self_bleu2"] <= 1.0 and metrics["nll_test"] > 0
    assert results["generator_updates"]["mle_baseline"] == results["generator_updates"]["seqgan"] == 3
    # what the figures depend on beyond code, config and seed: the run's thread count and CPU
    machine = results["machine"]
    assert machine["threads"] == 1 and machine["torch"] == torch.__version__ and machine["cpu"]
    assert "SeqGAN" in result.stdout and "bleu2" in result.stdout  # the printed table
    for name in ("pretrained.pt", "mle.pt", "seqgan.pt", "checkpoint.pt"):
        assert "generator" in load_checkpoint(tmp_path / name)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["progress"]["phase"] == "adversarial"
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


def _file(name, content):
    """A corpus file written into the test's folder: (folder) -> its path."""
    def make(folder):
        path = folder / name
        path.write_bytes(content)
        return str(path)
    return make


BAD_INPUTS = [
    # (what, options (a callable makes a file in the test's folder), the fragment the one line must hold)
    ("unknown corpus", ["--corpus", "peoms"], "unknown corpus 'peoms'"),
    ("missing file", ["--corpus", "missing/file.txt"], "missing/file.txt: no such file"),
    ("empty file", ["--corpus", _file("empty.txt", b"\n\n")], "empty.txt: no non-empty lines"),
    ("a directory", ["--corpus", lambda folder: str(folder)], "a directory, not a text file"),
    ("not UTF-8", ["--corpus", _file("latin1.txt", "ein Satz\nnoch einer\nüber\n".encode("latin-1"))],
     "latin1.txt: line 3 is not valid UTF-8"),
    ("fewer lines than a batch", ["--corpus", _file("short.txt", b"a b c\n" * 20)], "fewer than one batch of 64"),
    ("zero rollouts", ["--num-rollouts", "0"], "--num-rollouts must be positive"),
    ("a rate above 1", ["--rollout-rate", "1.5"], "--rollout-rate must be in [0, 1]"),
    ("a negative learning rate", ["--g-lr", "-0.01"], "--g-lr must be positive"),
    ("not a number", ["--d-lr", "fast"], "--d-lr: invalid float value: 'fast'"),
    ("no checkpoint to resume", ["--resume", "nowhere"], "nowhere/checkpoint.pt: no such checkpoint"),
    ("no generator steps", ["--g-steps", "0"], "--g-steps must be positive, got 0"),
    ("a dropout of 1", ["--d-dropout", "1"], "--d-dropout must be below 1"),
    ("filters that do not pair", ["--d-filter-sizes", "1,2", "--d-num-filters", "4"], "must have the same length"),
    ("not a list of integers", ["--d-filter-sizes", "1,two"], "expected comma-separated int values"),
    ("an unknown preset", ["--preset", "huge"], "invalid choice: 'huge'"),
]
if not torch.cuda.is_available():
    BAD_INPUTS.append(("cuda without CUDA", ["--device", "cuda"], "--device cuda: CUDA is not available"))


@pytest.mark.parametrize("what, args, fragment", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, what, args, fragment):
    args = [a(tmp_path) if callable(a) else a for a in args]
    result = run_script(*args, "--preset", "tiny", "--out", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr, lines


def test_debug_shows_the_traceback(tmp_path):
    result = run_script("--corpus", "peoms", "--preset", "tiny", "--out", str(tmp_path), "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_lines_longer_than_the_maximum_are_cut_and_counted(tmp_path):
    corpus = tmp_path / "long.txt"
    corpus.write_text("".join(f"w{i % 7} w{i % 5} w3 w4 w5 w6 w7 w8\n" if i % 10 == 0 else f"w{i % 7} w2\n"
                              for i in range(300)), encoding="utf-8")
    result = run_script("--corpus", str(corpus), "--max-length", "4", "--preset", "tiny", "--out", str(tmp_path / "run"),
                        "--adv-epochs", "1", "--pretrain-epochs", "1", "--d-pretrain-rounds", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(30 longer lines cut to it)" in result.stdout


def test_the_run_reports_the_rollouts_it_skipped_for_finished_text(tmp_path):
    """Lines of 1 to 8 words: G's samples end early, and the prefixes that already ended are
    not rolled out; results.json and the printed table count both kinds of completion."""
    gen = torch.Generator().manual_seed(0)
    lines = [" ".join(f"w{int(w)}" for w in torch.randint(0, 12, (int(n),), generator=gen))
             for n in torch.randint(1, 9, (400,), generator=gen)]
    corpus = tmp_path / "short.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_script("--corpus", str(corpus), "--preset", "tiny", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    t, c = results["timings"], results["config"]
    rolled, skipped = t["adversarial_epoch_rollout_rows"], t["adversarial_epoch_rollout_rows_skipped"]
    T = 9  # the longest line and its end token
    assert rolled + skipped == c["g_steps"] * c["batch_size"] * (T - 1) * c["num_rollouts"]
    assert skipped > 0 and rolled > 0
    line = f"{rolled:,.0f} completions rolled out, {skipped:,.0f} skipped"
    assert line in result.stdout
    # history.py --timings says the same, from results.json and, for a run not finished, from its checkpoint
    history = Path(__file__).resolve().parents[1] / "scripts" / "history.py"
    shown = subprocess.run([sys.executable, str(history), str(tmp_path / "run"), "--timings"], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0 and line in shown.stdout and "(results.json)" in shown.stdout, shown.stderr
    (tmp_path / "run" / "results.json").unlink()
    shown = subprocess.run([sys.executable, str(history), str(tmp_path / "run"), "--timings"], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0 and line in shown.stdout and "over 3 epochs in its checkpoint" in shown.stdout, \
        shown.stdout + shown.stderr
