"""Crash, resume, Ctrl-C and the numerical guard of train_seqgan.py, as a user meets them."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqadv.runtime.checkpoint import CheckpointError, load_checkpoint, previous_path, save_checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_seqgan.py"


def toy_text(path: Path, lines: int = 400) -> Path:
    """Counting sequences of words: small, learnable, and quick to train on."""
    gen = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(lines):
        start, stride = torch.randint(0, 20, (2,), generator=gen).tolist()
        rows.append(" ".join(f"w{(start + (stride % 3 + 1) * k) % 20}" for k in range(6)))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def train(*args, crash_at=None, timeout=180):
    env = {k: v for k, v in os.environ.items() if k != "SEQADV_CRASH_AT"}
    if crash_at is not None:
        env["SEQADV_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env)


def assert_same_tensors(a, b, where=""):
    """Every tensor equal bit for bit, through nested dicts, lists and tuples."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tensors(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")


MODELS = ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
          "rollout_policy", "g_adv_optimizer"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    corpus = toy_text(root / "toy.txt")
    out = root / "whole"
    result = train("--corpus", str(corpus), "--preset", "tiny", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return corpus, out


@pytest.mark.parametrize("crash_at", ["pretrain_g:2", "pretrain_d:1", "mle_baseline:3", "adversarial:2",
                                      "adversarial:3:write"])
def test_killed_then_resumed_run_ends_bitwise_equal(uninterrupted, tmp_path, crash_at):
    corpus, whole = uninterrupted
    out = tmp_path / "run"
    killed = train("--corpus", str(corpus), "--preset", "tiny", "--out", str(out), crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL
    phase, saved = crash_at.split(":")[0], load_checkpoint(out / "checkpoint.pt")
    kept = saved["timings"][f"{phase}_s"] if saved["progress"]["phase"] == phase else 0.0
    if crash_at in ("pretrain_g:2", "mle_baseline:3"):  # stopped after a checkpoint inside the phase
        assert kept > 0, saved["timings"]
    resumed = train("--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    # the time of the work kept from before the stop is counted: the resumed run's is added to it
    assert json.loads((out / "results.json").read_text())["timings"][f"{phase}_s"] > kept
    final, reference = load_checkpoint(out / "checkpoint.pt"), load_checkpoint(whole / "checkpoint.pt")
    for name in MODELS:
        assert_same_tensors(final[name], reference[name], name)
    for name in ("mle.pt", "seqgan.pt"):
        assert_same_tensors(load_checkpoint(out / name)["generator"], load_checkpoint(whole / name)["generator"], name)
    assert (out / "samples_seqgan.txt").read_text() == (whole / "samples_seqgan.txt").read_text()
    assert not list(out.glob(".checkpoint.pt.tmp-*"))  # what a writer killed before its rename left is gone


def test_ctrl_c_writes_a_checkpoint_and_the_run_goes_on_exactly(uninterrupted, tmp_path):
    corpus, whole = uninterrupted
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--corpus", str(corpus), "--preset", "tiny",
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "stopped after" in stderr and "--resume" in stderr and "Traceback" not in stderr
    resumed = train("--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_tensors(load_checkpoint(out / "seqgan.pt")["generator"], load_checkpoint(whole / "seqgan.pt")["generator"])


@pytest.mark.parametrize("lr, fragment", [
    ("1e36", "the MLE loss is inf; the update was not made"),  # weights ~1e36 after one step: the next loss overflows
    ("1e38", "the update for the MLE loss overflowed"),  # Adam's step itself overflows float32
])
def test_a_non_finite_loss_or_update_stops_the_run_and_saves_nothing_from_it(tmp_path, lr, fragment):
    corpus = toy_text(tmp_path / "toy.txt")
    result = train("--corpus", str(corpus), "--preset", "tiny", "--out", str(tmp_path / "run"), "--g-lr", lr)
    assert result.returncode == 3, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if "error" in line]  # the rest is tqdm's progress
    assert len(lines) == 1 and "pretrain G epoch 1" in lines[0] and fragment in lines[0], lines
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()  # nothing was saved from the broken epoch


def test_a_damaged_checkpoint_is_detected_and_the_previous_one_used(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1, "w": torch.arange(1000.0)}, path, keep_previous=True)
    save_checkpoint({"step": 2, "w": torch.arange(1000.0) * 2}, path, keep_previous=True)
    assert load_checkpoint(previous_path(path))["step"] == 1
    data = path.read_bytes()
    gen = torch.Generator().manual_seed(0)
    cut = int(torch.randint(1, len(data) - 1, (1,), generator=gen))
    path.write_bytes(data[:cut])  # truncated at a random byte
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        load_checkpoint(path)
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF  # one flipped byte inside a tensor: torch.load alone would not notice
    path.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def test_a_crash_while_writing_leaves_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1}, path, keep_previous=True)

    def crash():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path, keep_previous=True, _before_rename=crash)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def copy_run(source: Path, target: Path) -> Path:
    target.mkdir()
    for name in ("checkpoint.pt", "checkpoint.pt.prev"):
        (target / name).write_bytes((source / name).read_bytes())
    return target


def test_resume_refuses_a_changed_option_or_corpus(uninterrupted, tmp_path):
    corpus, whole = uninterrupted
    out = copy_run(whole, tmp_path / "run")
    changed = train("--resume", str(out), "--adv-epochs", "5")
    assert changed.returncode == 2
    lines = changed.stderr.strip().splitlines()
    assert len(lines) == 1 and "--adv-epochs 5 differs from the run's 3" in lines[0]
    # the corpus file edited since the run began: its vocabulary no longer matches
    state = load_checkpoint(out / "checkpoint.pt")
    edited = toy_text(tmp_path / "edited.txt", lines=300)
    edited.write_text(edited.read_text().replace("w7", "w77"), encoding="utf-8")
    state["config"]["corpus"] = str(edited)
    save_checkpoint(state, out / "checkpoint.pt")
    moved = train("--resume", str(out))
    assert moved.returncode == 2
    lines = moved.stderr.strip().splitlines()
    assert len(lines) == 1 and "vocabulary does not match" in lines[0], lines
    assert load_checkpoint(out / "checkpoint.pt")["progress"]["phase"] == "adversarial"  # nothing lost


def test_resume_falls_back_to_the_previous_checkpoint_and_says_so(uninterrupted, tmp_path):
    corpus, whole = uninterrupted
    out = copy_run(whole, tmp_path / "run")
    data = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    result = train("--resume", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "checkpoint.pt" in warnings[0] and "previous checkpoint" in warnings[0]
    # the previous checkpoint was one epoch earlier: the run redid that epoch and ends as the whole run did
    assert_same_tensors(load_checkpoint(out / "seqgan.pt")["generator"], load_checkpoint(whole / "seqgan.pt")["generator"])
    # both damaged: one line naming the file, exit code 2
    for name in ("checkpoint.pt", "checkpoint.pt.prev"):
        (out / name).write_bytes(b"not a checkpoint")
    result = train("--resume", str(out))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "checkpoint.pt.prev: unreadable checkpoint" in result.stderr


# --- the same guarantees for the other recipes ------------------------------------------------

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def recipe_run(script, *args, crash_at=None, timeout=180):
    env = {k: v for k, v in os.environ.items() if k != "SEQADV_CRASH_AT"}
    if crash_at is not None:
        env["SEQADV_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def ratings_file(path: Path) -> Path:
    """Users who like the items of their class (user + item divisible by 3): learnable."""
    gen = torch.Generator().manual_seed(0)
    lines = ["user\titem\trating"]
    for u in range(40):
        for i in torch.randperm(25, generator=gen)[:12].tolist():
            lines.append(f"u{u}\ti{i}\t{5 if (u + i) % 3 == 0 else 2}")
    path.write_text("\n".join(lines) + "\n")
    return path


RECIPES = {
    # script, options, the run directory holding checkpoint.pt (IRGAN: one per seed), its models
    "maskgan": ("train_maskgan.py", lambda root: ["--corpus", toy_text(root / "toy.txt", lines=1000)], ".",
                ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
                 "g_adv_optimizer", "critic", "critic_optimizer"]),
    "scratchgan": ("train_scratchgan.py", lambda root: ["--corpus", toy_text(root / "toy.txt")], ".",
                   ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
                    "g_adv_optimizer"]),
    "maligan": ("train_maligan.py", lambda root: ["--corpus", toy_text(root / "toy.txt")], ".",
                ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
                 "rollout_policy", "g_adv_optimizer"]),
    "rankgan": ("train_rankgan.py", lambda root: ["--corpus", toy_text(root / "toy.txt")], ".",
                ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
                 "rollout_policy", "g_adv_optimizer"]),
    "leakgan": ("train_leakgan.py", lambda root: ["--corpus", toy_text(root / "toy.txt")], ".",
                ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
                 "g_adv_optimizer"]),
    "relgan": ("train_relgan.py", lambda root: ["--corpus", toy_text(root / "toy.txt")], ".",
               ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
                "g_adv_optimizer"]),
    "cot": ("train_cot.py", lambda root: ["--corpus", toy_text(root / "toy.txt")], ".",
            ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
             "g_adv_optimizer"]),
    "dpgan": ("train_dpgan.py", lambda root: ["--corpus", toy_text(root / "toy.txt")], ".",
              ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator", "mle_optimizer",
               "g_adv_optimizer"]),
    # DPGAN with TextGAN-PyTorch's credit: no teacher-forcing step, no stream of real batches
    "dpgan-paper": ("train_dpgan.py", lambda root: ["--corpus", toy_text(root / "toy.txt"), "--reward", "paper"],
                       ".", ["generator", "g_optimizer", "discriminator", "d_optimizer", "mle_generator",
                             "mle_optimizer", "g_adv_optimizer"]),
    "irgan": ("train_irgan.py", lambda root: ["--data", ratings_file(root / "r.tsv"), "--seeds", "1"], "seed-88",
              ["generator", "bpr_optimizer", "discriminator", "d_optimizer", "g_optimizer"]),
}


@pytest.fixture(scope="module")
def uninterrupted_recipes(tmp_path_factory):
    runs = {}
    for name, (script, options, _, _) in RECIPES.items():
        root = tmp_path_factory.mktemp(name)
        args = [*options(root), "--preset", "tiny", "--device", "cpu"]
        result = recipe_run(script, *args, "--out", root / "whole")
        assert result.returncode == 0, result.stderr[-2000:]
        runs[name] = (args, root / "whole")
    return runs


@pytest.mark.parametrize("name, crash_at", [("maskgan", "pretrain_d:2"), ("maskgan", "mle_baseline:4"),
                                            ("maskgan", "adversarial:4:write"), ("irgan", "bpr:2"),
                                            ("irgan", "irgan:2:write"), ("scratchgan", "mle_baseline:3"),
                                            ("scratchgan", "adversarial:3:write"), ("maligan", "adversarial:2"),
                                            ("rankgan", "pretrain_d:2:write"), ("leakgan", "pretrain:2"),
                                            ("leakgan", "adversarial:2:write"), ("relgan", "adversarial:3:write"),
                                            ("cot", "adversarial:20:write"), ("dpgan", "adversarial:2:write"),
                                            ("dpgan-paper", "adversarial:3:write")])
def test_maskgan_and_irgan_killed_then_resumed_end_bitwise_equal(uninterrupted_recipes, tmp_path, name, crash_at):
    script, _, run_dir, models = RECIPES[name]
    args, whole = uninterrupted_recipes[name]
    killed = recipe_run(script, *args, "--out", tmp_path, crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL
    resumed = recipe_run(script, "--resume", tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    final, reference = (load_checkpoint(d / run_dir / "checkpoint.pt") for d in (tmp_path, whole))
    for model in models:
        assert_same_tensors(final[model], reference[model], model)
    assert final["history"] == reference["history"]
    if name == "scratchgan":
        assert final["reward_baseline"] == reference["reward_baseline"]


@pytest.mark.parametrize("name", ["maskgan", "irgan", "scratchgan", "relgan"])
def test_maskgan_and_irgan_stop_on_a_non_finite_update_and_on_ctrl_c(uninterrupted_recipes, tmp_path, name):
    script, _, _, _ = RECIPES[name]
    args, _ = uninterrupted_recipes[name]
    lr = {"maskgan": ["--g-lr", "1e38"], "irgan": ["--bpr-lr", "1e38"], "scratchgan": ["--adv-g-lr", "1e38"],
          "relgan": ["--adv-g-lr", "1e38"]}[name]
    broken = recipe_run(script, *args, *lr, "--out", tmp_path / "nan")
    assert broken.returncode == 3, broken.stderr[-2000:]
    lines = [line for line in broken.stderr.splitlines() if "error" in line]
    # MaskGAN's, IRGAN's and RelGAN's first updates overflow; ScratchGAN's G diverges: its next loss or samples say so
    fragments = ("is nan", "NaN or infinite") if name == "scratchgan" else ("overflowed",)
    assert len(lines) == 1 and any(f in lines[0] for f in fragments) and "Traceback" not in broken.stderr, lines
    longer = {"maskgan": ["--adv-epochs", "400"], "irgan": ["--gan-epochs", "400"],
              "scratchgan": ["--adv-steps", "4000"],
              "relgan": ["--adv-steps", "4000", "--temperature-steps", "5000"]}[name]  # still running at the signal
    process = subprocess.Popen([sys.executable, str(SCRIPTS / script), *map(str, args), *longer,
                                "--out", str(tmp_path / "c")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "c").rglob("checkpoint.pt")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "stopped after" in stderr and "--resume" in stderr and "Traceback" not in stderr
