"""Does a change keep behaviour bit for bit? Record it before, record it after, compare.

    python tools/same_behaviour.py record before.pt       # on the old code
    python tools/same_behaviour.py record after.pt        # on the new code
    python tools/same_behaviour.py compare before.pt after.pt

`record` trains a tiny run of every recipe (SeqGAN with the LSTM and with the Transformer
generator, SeqGAN on the oracle, ScratchGAN with both generators, MLE, MaskGAN, IRGAN) from
fixed seeds and keeps every tensor of every checkpoint each run writes (models, optimisers,
random streams) and every number of its results.json, then the rollout engine's rewards on
32 cases (three policies, rollout counts, chunk and block sizes, fixed positions, end tokens,
temperatures, initial states and contexts), then evaluate.py's JSON on one run. `compare`
says, for each entry, equal, or the largest difference. It uses only the public names that
stay the same across the change (`seqadv`'s top level and the scripts' command lines). It
runs on one thread: how many threads split a float sum changes its last bits.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' corpus and ratings writers
SKIP = {"timings", "wall_seconds", "seconds", "elapsed", "time", "out", "path", "command", "started", "finished"}


def flatten(obj, prefix: str, out: dict) -> None:
    """Every tensor and plain number or string under `obj`, keyed by its path."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k) not in SKIP and not str(k).endswith("_s") and "wall" not in str(k):
                flatten(v, f"{prefix}/{k}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}/{i}", out)
    elif isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().cpu().clone()
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        out[prefix] = obj


def runs(tmp: Path) -> list[tuple[str, object]]:
    from seqadv import (
        IRGANConfig,
        IRGANTrainer,
        MaskGANConfig,
        MaskGANTrainer,
        ScratchGANConfig,
        ScratchGANTrainer,
        SeqGANConfig,
        SeqGANTrainer,
    )
    from seqadv.trainers import MLEConfig, MLETrainer

    from test_irgan import write_ratings  # the tests' own data, so the record trains on what they do
    from test_resume import toy_text

    toy = str(toy_text(tmp / "toy.txt"))
    small = dict(pretrain_epochs=3, d_pretrain_rounds=2, d_epochs=1, adv_epochs=2)
    return [
        ("seqgan", lambda o: SeqGANTrainer(SeqGANConfig(corpus=toy, preset="tiny", out=o, **small))),
        ("seqgan-loo", lambda o: SeqGANTrainer(SeqGANConfig(corpus=toy, preset="tiny", out=o, pg_baseline="loo",
                                                           sample_temperature=0.8, **small))),
        ("seqgan-transformer", lambda o: SeqGANTrainer(SeqGANConfig(
            corpus=toy, preset="tiny", out=o, generator="transformer", g_hidden_dim=16, g_heads=2, g_layers=1,
            **small))),
        ("seqgan-oracle", lambda o: SeqGANTrainer(SeqGANConfig(corpus="oracle", preset="tiny", out=o, **small))),
        ("scratchgan", lambda o: ScratchGANTrainer(ScratchGANConfig(corpus=toy, preset="tiny", out=o,
                                                                     pretrain_epochs=2, adv_steps=6))),
        ("scratchgan-g", lambda o: ScratchGANTrainer(ScratchGANConfig(corpus=toy, preset="tiny", out=o,
                                                                       generator="scratchgan", pretrain_epochs=0,
                                                                       adv_steps=6))),
        ("mle", lambda o: MLETrainer(MLEConfig(corpus=toy, preset="tiny", out=o, pretrain_epochs=3))),
        ("maskgan", lambda o: MaskGANTrainer(MaskGANConfig(corpus=toy, preset="tiny", out=o, pretrain_epochs=2,
                                                           adv_epochs=4, eval_samples=16))),
        ("maskgan-rollout", lambda o: MaskGANTrainer(MaskGANConfig(corpus=toy, preset="tiny", out=o, pretrain_epochs=2,
                                                                   adv_epochs=4, reward="rollout", eval_samples=16))),
        ("irgan", lambda o: IRGANTrainer(IRGANConfig(data=str(write_ratings(tmp / "r.tsv")), preset="tiny", out=o,
                                                     bpr_epochs=3, gan_epochs=2))),
    ]


def record_runs(tmp: Path, out: dict) -> Path:
    first = None
    for name, make in runs(tmp):
        run_dir = tmp / name
        trainer = make(str(run_dir))
        results = trainer.train()
        flatten(json.loads(json.dumps(results)), f"{name}/results", out)
        for path in sorted(run_dir.glob("*.pt")):
            flatten(read_checkpoint(path), f"{name}/{path.name}", out)
        first = first or run_dir
        print(f"  {name}: {sum(1 for k in out if k.startswith(name + '/'))} entries", flush=True)
    return first


def read_checkpoint(path: Path):
    """What load_checkpoint reads (a seqadv file wraps its pickled payload in bytes), without
    importing the module, whose path the change may move."""
    outer = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(outer, dict) and isinstance(outer.get("payload"), bytes):
        return torch.load(io.BytesIO(outer["payload"]), map_location="cpu", weights_only=True)
    return outer


def engine_cases() -> list[dict]:
    cases = []
    for policy in ["lstm", "transformer", "scratchgan"]:
        for n, chunk, block in [(1, None, None), (4, None, None), (4, 7, None), (6, 5, 3)]:
            cases.append(dict(policy=policy, n=n, max_batch_rows=chunk, block_rows=block))
    for policy in ["lstm", "transformer"]:
        cases.append(dict(policy=policy, n=4, eos=True))
        cases.append(dict(policy=policy, n=5, eos=True, max_batch_rows=6, block_rows=2))
        cases.append(dict(policy=policy, n=4, fixed=True))
        cases.append(dict(policy=policy, n=3, temperature=0.7))
        cases.append(dict(policy=policy, n=4, initial_state=True))
        cases.append(dict(policy=policy, n=4, context=True))
        cases.append(dict(policy=policy, n=3, eos=True, fixed=True, max_batch_rows=4))
    cases.append(dict(policy="scratchgan", n=4, eos=True, fixed=True, temperature=1.3))
    cases.append(dict(policy="lstm", n=8, memory_budget_mb=0.01))
    cases.append(dict(policy="transformer", n=8, memory_budget_mb=0.01, eos=True))
    cases.append(dict(policy="lstm", n=2, length=1))
    cases.append(dict(policy="lstm", n=4, fixed=True, context=True, initial_state=True, max_batch_rows=3))
    cases.append(dict(policy="transformer", n=3, length=9, eos=True, block_rows=1))
    assert len(cases) == 32, len(cases)
    return cases


def engine_rewards(case: dict) -> torch.Tensor:
    import seqadv

    torch.manual_seed(0)
    V, E, B, T = 9, 3, 5, case.get("length", 6)
    if case["policy"] == "lstm":
        g = seqadv.Generator(V, 8, 8, start_token=0, eos_token=E if case.get("eos") else None, pad_token=2)
    elif case["policy"] == "transformer":
        g = seqadv.TransformerGenerator(V, 16, 2, 2, max_length=12, start_token=0)
    else:
        from seqadv.models.generator import ScratchGANGenerator
        g = ScratchGANGenerator(V, 8, 8, num_layers=2, start_token=0)
    g.eval()
    seqs = torch.randint(1, V, (B, T), generator=torch.Generator().manual_seed(1))
    if case.get("eos"):
        seqs[1, 2] = E
        seqs[3, 0] = E
    fixed = None
    if case.get("fixed"):
        fixed = torch.zeros(B, T, dtype=torch.bool)
        fixed[:, -2] = True
        fixed[2, 1] = True
    weights = torch.linspace(0.2, 1.0, V)

    def reward(s, context=None):
        r = weights[s].mean(1)
        return r if context is None else r * context

    kwargs = {}
    if case.get("context"):
        kwargs["context"] = torch.linspace(0.5, 1.5, B)
    if case.get("initial_state"):
        state = g.initial_state(B)
        kwargs["initial_state"] = state
    engine = seqadv.RolloutEngine(g, case["n"], temperature=case.get("temperature", 1.0),
                                  max_batch_rows=case.get("max_batch_rows"), block_rows=case.get("block_rows"),
                                  memory_budget_mb=case.get("memory_budget_mb", 512.0),
                                  eos_token=E if case.get("eos") else None, pad_token=2 if case.get("eos") else None)
    return engine.rewards(seqs, reward, fixed=fixed, generator=torch.Generator().manual_seed(2), **kwargs)


def script(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def record_scripts(tmp: Path, first: Path, out: dict) -> None:
    """The sweep, the seeds' aggregation and the matched-diversity report, through the scripts."""
    scripts = REPO / "scripts"
    evaluation = tmp / "eval"
    script(str(scripts / "evaluate.py"), str(first / "seqgan.pt"), "--samples", "64", "--temperatures", "0.8,1.0",
           "--lm-steps", "20", "--lm-seeds", "2", "--reverse-lm-samples", "64", "--out", str(evaluation))
    flatten(json.loads((evaluation / "eval.json").read_text()), "evaluate", out)
    out["evaluate/csv"] = (evaluation / "eval.csv").read_text()
    seeds = tmp / "seeds"
    script(str(scripts / "train_seeds.py"), "--seeds", "2", "--out", str(seeds), "--evaluate", "--eval-args",
           "--samples 64 --temperatures 0.8,1.0 --lm-steps 20 --reverse-lm-samples 64", "--", "--corpus",
           str(tmp / "toy.txt"), "--preset", "tiny", "--pretrain-epochs", "2", "--adv-epochs", "1")
    flatten(json.loads((seeds / "seeds.json").read_text()), "train_seeds", out)
    for corpus in ["poems", "coco"]:
        results = tmp / "compare"
        shutil.copytree(REPO / "results" / "compare", results, dirs_exist_ok=True)
        printed = script(str(scripts / "compare_recipes.py"), "--corpus", corpus, "--report", "--results",
                         str(results))
        results = results / corpus
        out[f"compare/{corpus}/printed"] = printed.replace(str(tmp), "<tmp>")
        flatten(json.loads((results / "summary.json").read_text()), f"compare/{corpus}/summary", out)


def record(path: Path) -> None:
    out: dict = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        first = record_runs(tmp, out)
        for i, case in enumerate(engine_cases()):
            out[f"engine/{i:02d} {json.dumps(case, sort_keys=True)}"] = engine_rewards(case)
        record_scripts(tmp, first, out)
        for key, value in out.items():  # where the runs were is not behaviour
            if isinstance(value, str):
                out[key] = value.replace(str(tmp), "<tmp>")
    torch.save(out, path)
    print(f"{len(out)} entries in {path}")


def compare(a: Path, b: Path) -> int:
    old, new = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
    bad = renamed = 0
    for key in sorted(set(old) | set(new)):
        if key not in old or key not in new:
            print(f"only in {'the first' if key in old else 'the second'}: {key}")
            bad += 1
            continue
        x, y = old[key], new[key]
        if key.endswith("/model/class") and isinstance(x, str) and isinstance(y, str) and x != y \
                and x.rsplit(".", 1)[-1] == y.rsplit(".", 1)[-1]:
            renamed += 1  # the layered package records a model by its registry name, not its module path
            continue
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            same = x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y)
            if not same:
                diff = (x.double() - y.double()).abs().max().item() if x.shape == y.shape else math.inf
                print(f"differs: {key} (max |difference| {diff:.3g})")
                bad += 1
        elif x != y and not (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)):
            print(f"differs: {key}: {x!r} != {y!r}")
            bad += 1
    print(f"{len(set(old) | set(new))} entries, {bad} differ" + (
        f" ({renamed} model class names recorded by registry name instead of module path)" if renamed else ""))
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("record").add_argument("file", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("first", type=Path)
    c.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.file)
        return 0
    return compare(args.first, args.second)


if __name__ == "__main__":
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    # float sums depend on how many threads split them: every record uses one (the scripts too)
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    sys.exit(main())
