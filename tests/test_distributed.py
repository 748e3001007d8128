"""Data-parallel training with torch.distributed (gloo, 2 processes on CPU): the split
step equals the one-process step, rank 0 alone writes, and a 2-process run resumes."""
import os
import subprocess
import sys
from pathlib import Path

import distributed_step as step
import pytest
import torch
from test_resume import MODELS, RECIPES, assert_same_tensors, toy_text
from torch.testing import assert_close

from seqadv.core.masks import tokens_mask
from seqadv.rl.losses import mle_loss, policy_gradient_loss
from seqadv.runtime.checkpoint import load_checkpoint
from seqadv.runtime.distributed import Group

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "train_seqgan.py"


def torchrun(nproc: int, *args, env_extra=None, log_dir=None, timeout=240):
    """`torchrun --standalone --nproc-per-node nproc ...`, as a user types it."""
    env = {k: v for k, v in os.environ.items() if k != "SEQADV_CRASH_AT"}
    env.update(env_extra or {})
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    if log_dir is not None:  # each process's stdout and stderr in its own file
        launcher += ["--log-dir", str(log_dir), "--redirects", "3"]
    return subprocess.run(launcher + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env)


def test_per_token_losses_divide_by_the_normalizer():
    gen = torch.Generator().manual_seed(0)
    logits, tokens = torch.randn(4, 5, 7, generator=gen), torch.randint(0, 7, (4, 5), generator=gen)
    rewards, mask = torch.rand(4, 5, generator=gen), (torch.rand(4, 5, generator=gen) > 0.3).float()
    for loss in (lambda **kw: mle_loss(logits, tokens, mask, **kw),
                 lambda **kw: policy_gradient_loss(logits, tokens, rewards, mask, **kw)):
        assert_close(loss(normalizer=Group().token_normalizer(mask)), loss())
        assert_close(loss(normalizer=2.5) * 2.5, loss() * mask.sum())


def test_a_single_process_group_leaves_everything_as_it_is():
    group, rows = Group(), torch.arange(12).view(6, 2)
    assert group.is_main and not group.active
    assert group.shard(rows) is rows and group.all_gather(rows) is rows and group.gather_objects(3) == [3]
    assert Group(rank=1, world_size=3).shard(rows).tolist() == [[4, 5], [6, 7]]
    with pytest.raises(ValueError, match="does not split evenly over 4 processes"):
        Group(rank=0, world_size=4).shard(rows)


@pytest.mark.parametrize("kind", ["lstm", "hf", "maligan", "rankgan", "leakgan"])
def test_two_processes_make_the_one_process_step(tmp_path, kind):
    """2 adversarial steps (rollout rewards, G's policy-gradient update with clipping, the
    delayed policy's average, a D update) split over 2 processes equal the same steps on one
    process with the whole batch, given the same samples and the same rollout seeds; for a
    Hugging Face generator too (`hf`, with a KL penalty), and MaliGAN's steps (`maligan`: its
    weights normalised over both processes' completions, its summed loss) and RankGAN's
    (`rankgan`: ranking scores over both processes' completions, the ranker's batch whole on each), and
    LeakGAN's (`leakgan`: block rewards ranked over both processes' samples, its two losses)."""
    if kind == "hf":
        pytest.importorskip("transformers")
    result = torchrun(2, REPO / "tests" / "distributed_step.py", tmp_path, kind)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))

    samples, real, seeds = step.fixed_batch()
    b = len(samples) // 2
    shards = [slice(0, b), slice(b, None)]
    counts = [tokens_mask(samples[s], step.EOS, step.PAD).sum().item() for s in shards]
    assert counts[0] < counts[1]  # unequal shards: the mean of the shards' means would be wrong
    gens = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    single = step.steps(Group(), samples, real, lambda engine, reward, **options: torch.cat(
        [engine.rewards(samples[s], reward, generator=gen, **options) for s, gen in zip(shards, gens)]), kind)

    assert_same_tensors(rank0, rank1, "rank 0 vs rank 1")  # every process made the same update
    for key in ("generator", "g_optimizer", "rollout_policy", "discriminator", "d_optimizer", "losses"):
        assert_close(rank0[key], single[key], msg=lambda m, key=key: f"{key}: {m}")
    start = step.build(kind)[1].state_dict()
    assert any(not torch.equal(single["generator"][k], start[k]) for k in start)
    assert rank0["gathered"].tolist() == [[0] * step.T] * 2 + [[1] * step.T] * 2


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchrun")
    corpus = toy_text(root / "toy.txt")
    out, logs = root / "whole", root / "logs"
    result = torchrun(2, SCRIPT, "--corpus", corpus, "--preset", "tiny", "--device", "cpu", "--out", out, log_dir=logs)
    assert result.returncode == 0, result.stderr[-3000:]
    return corpus, out, logs


def test_only_rank_0_prints_and_writes(two_process_run):
    _, out, logs = two_process_run
    stdout = {r: next(logs.rglob(f"{r}/stdout.log")).read_text() for r in (0, 1)}
    assert "SeqGAN   better" in stdout[0] and "x 2 processes" in stdout[0]
    assert stdout[1] == ""
    assert "%|" not in next(logs.rglob("1/stderr.log")).read_text()  # no progress bars from rank 1
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1  # one writer
    names = {p.name for p in out.iterdir()}
    assert names == {"checkpoint.pt", "checkpoint.pt.prev", "pretrained.pt", "mle.pt", "seqgan.pt", "results.json",
                     "samples_pretrained.txt", "samples_mle.txt", "samples_seqgan.txt", "tb"}
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["sampling"], state["rng"][1]["sampling"])  # each its own draws


def test_a_two_process_run_resumes_to_the_same_end(two_process_run, tmp_path):
    corpus, whole, _ = two_process_run
    out = tmp_path / "crashed"
    args = ["--corpus", corpus, "--preset", "tiny", "--device", "cpu", "--out", out]
    crashed = torchrun(2, SCRIPT, *args, env_extra={"SEQADV_CRASH_AT": "adversarial:2"})
    assert crashed.returncode != 0
    progress = load_checkpoint(out / "checkpoint.pt")["progress"]
    assert (progress["phase"], progress["done"]) == ("adversarial", 1)

    plain = subprocess.run([sys.executable, str(SCRIPT), "--resume", str(out)], capture_output=True, text=True, timeout=240)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines()[-1].endswith("resume it with torchrun --nproc-per-node 2")

    resumed = torchrun(2, SCRIPT, "--resume", out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = load_checkpoint(whole / "checkpoint.pt"), load_checkpoint(out / "checkpoint.pt")
    for name in MODELS:
        assert_same_tensors(a[name], b[name], name)
    assert_same_tensors(load_checkpoint(whole / "seqgan.pt")["generator"], load_checkpoint(out / "seqgan.pt")["generator"])


def test_one_process_under_torchrun_is_the_plain_run(two_process_run, tmp_path):
    corpus = two_process_run[0]
    args = ["--corpus", corpus, "--preset", "tiny", "--device", "cpu"]
    launched = torchrun(1, SCRIPT, *args, "--out", tmp_path / "torchrun")
    assert launched.returncode == 0, launched.stderr[-3000:]
    plain = subprocess.run([sys.executable, str(SCRIPT), *map(str, args), "--out", str(tmp_path / "plain")],
                           capture_output=True, text=True, timeout=240)
    assert plain.returncode == 0, plain.stderr[-3000:]
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("torchrun", "plain"))
    for name in MODELS:
        assert_same_tensors(a[name], b[name], name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_tiny_run_on_gpus_with_nccl(two_process_run, tmp_path):
    """One process per GPU (two where there are two), NCCL."""
    nproc = min(2, torch.cuda.device_count())
    result = torchrun(nproc, SCRIPT, "--corpus", two_process_run[0], "--preset", "tiny", "--device", "cuda",
                      "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["world_size"] == nproc
    assert "device cuda:0" in result.stdout


def test_a_batch_that_does_not_split_is_one_line(two_process_run, tmp_path):
    result = torchrun(2, SCRIPT, "--corpus", two_process_run[0], "--preset", "tiny", "--device", "cpu",
                      "--batch-size", "63", "--out", tmp_path)
    assert result.returncode != 0
    assert "train_seqgan.py: error: --batch-size 63 does not split evenly over 2 processes" in result.stderr
    assert result.stderr.count("does not split evenly") == 1  # rank 0 says it, once


@pytest.mark.parametrize("name, crash_at", [("maskgan", "adversarial:2"), ("irgan", "irgan:1"), ("relgan", "adversarial:3"),
                                            ("dpgan", "adversarial:2")])
def test_maskgan_and_irgan_on_two_processes_resume_to_the_same_end(tmp_path, name, crash_at):
    script, options, run_dir, models = RECIPES[name]
    args = [*options(tmp_path), "--preset", "tiny", "--device", "cpu"]
    whole = torchrun(2, REPO / "scripts" / script, *args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert whole.stdout.count("x 2 processes") >= 1 and whole.stdout.count("wall time") == 1  # rank 0 alone prints
    crashed = torchrun(2, REPO / "scripts" / script, *args, "--out", tmp_path / "run",
                       env_extra={"SEQADV_CRASH_AT": crash_at})
    assert crashed.returncode != 0
    resumed = torchrun(2, REPO / "scripts" / script, "--resume", tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = (load_checkpoint(tmp_path / d / run_dir / "checkpoint.pt") for d in ("whole", "run"))
    assert a["world_size"] == 2
    for model in models:
        assert_same_tensors(a[model], b[model], model)
