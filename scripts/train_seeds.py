#!/usr/bin/env python
"""The MLE-vs-SeqGAN comparison over several seeds: mean ± std of every metric.

    python scripts/train_seeds.py --seeds 3 -- --corpus poems
    python scripts/train_seeds.py --seeds 3 --evaluate -- --corpus oracle --oracle paper

Everything after `--` is train_seqgan.py's options (except --seed and --out): each
seed is a `seqadv.SeqGANTrainer` run in <out>/seed-<s>; a seed whose results.json
exists is not run again, and one that was stopped goes on from its checkpoint, so
the whole command can be rerun after an interruption. With --evaluate, evaluate.py's
temperature sweep runs on each seed's models too, and its metrics are averaged
per model and temperature. Writes <out>/seeds.json and prints the tables.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Optional

import evaluate as sweep  # scripts/evaluate.py, beside this script

from seqadv.eval.report import matched_diversity, plot_sweep, sweep_axes, sweep_planes
from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import (
    OneLineParser,
    below_minimum,
    guarded,
    parse_config,
    writable_dir,
)
from seqadv.trainers import SeqGANConfig, SeqGANTrainer


def mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def aggregate(per_seed: list[dict]) -> dict:
    """{model: {metric: value}} per seed -> {model: {metric: {mean, std, values}}}."""
    return {model: {metric: mean_std([run[model][metric] for run in per_seed]) for metric in per_seed[0][model]}
            for model in per_seed[0]}


def aggregate_sweeps(per_seed: list[dict]) -> dict:
    """evaluate.py's {model: [metrics per temperature]} per seed -> the same with mean/std per metric.

    A point keeps the metrics every seed has there: the reverse-LM score is measured at
    some temperatures only, and a seed evaluated by an older evaluate.py lacks the LM
    scores (a mean over some of the seeds would pass for one over all of them)."""
    out = {}
    for model, curve in per_seed[0].items():
        out[model] = []
        for i, point in enumerate(curve):
            out[model].append({"temperature": point["temperature"],
                               **{k: mean_std([run[model][i][k] for run in per_seed])
                                  for k in point if k != "temperature" and all(k in run[model][i] for run in per_seed)}})
    return out


def sweep_statistic(sweep: dict, statistic: str) -> dict:
    """`aggregate_sweeps`' {model: [point]} with each metric's mean (or std) in place of its
    {mean, std, values}: curves as evaluate.py writes them (a temperature's std is 0)."""
    return {model: [{k: (v[statistic] if isinstance(v, dict) else (v if statistic == "mean" else 0.0))
                     for k, v in point.items()} for point in curve] for model, curve in sweep.items()}


def run_seed(seed: int, out: Path, train_args: list[str], evaluate: bool, eval_args: list[str]) -> None:
    """One seed's SeqGAN run (resumed if it was stopped), then, if asked, its sweep."""
    if not (out / "results.json").is_file():
        if (out / "checkpoint.pt").is_file():
            config = SeqGANConfig(resume=str(out))
        else:
            config = parse_config(SeqGANConfig, [*train_args, "--seed", str(seed), "--out", str(out)], "train_seqgan.py")
        print(f"seed {seed}: {'resuming' if config.resume else 'training'} in {out}", flush=True)
        SeqGANTrainer(config).train()
    if evaluate and not (out / "eval" / "eval.json").is_file():
        sweep.run(sweep.parse_args([str(out), *eval_args]))


def print_models(summary: dict, seeds: list[int]) -> None:
    models = list(summary)
    print(f"\nmean ± std over seeds {', '.join(map(str, seeds))}")
    print(f"{'metric':<14}" + "".join(f"{m:>22}" for m in models))
    for metric in summary[models[0]]:
        print(f"{metric:<14}" + "".join(
            f"{summary[m][metric]['mean']:>13.4f} ± {summary[m][metric]['std']:.4f}" for m in models))


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, train_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=88)
    parser.add_argument("--out", default=None, help="default: runs/seeds-<corpus>")
    parser.add_argument("--evaluate", action="store_true", help="also run evaluate.py's sweep on every seed")
    parser.add_argument("--eval-args", default="", help="options for evaluate.py, e.g. \"--samples 1000\"")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(own)
    problem = below_minimum(args, 1, ["seeds"])
    if problem:
        parser.error(problem)
    if args.first_seed < 0:
        parser.error(f"--first-seed must not be negative, got {args.first_seed}")
    if any(a in ("--seed", "--out", "--resume") for a in train_args):
        parser.error("--seed, --out and --resume are set per seed by train_seeds.py; leave them out after --")
    eval_args = args.eval_args.split()
    if eval_args and not args.evaluate:
        parser.error("--eval-args is for evaluate.py's sweep: give --evaluate too")
    if any(a.split("=")[0] == "--out" for a in eval_args):
        parser.error("--eval-args: leave out --out (each seed's sweep goes into <out>/seed-<s>/eval)")
    corpus = train_args[train_args.index("--corpus") + 1] if "--corpus" in train_args[:-1] else "poems"
    out = Path(args.out or f"runs/seeds-{Path(corpus).stem}")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))

    def check():
        # every option, for training and the sweep, before the first seed trains
        parse_config(SeqGANConfig, [*train_args, "--seed", str(seeds[0]), "--out", str(out / f"seed-{seeds[0]}")],
                     "train_seqgan.py")
        if args.evaluate:
            sweep.parse_args([str(out), *eval_args])
        writable_dir(out, "--out")
    code = guarded("train_seeds.py", check, argv)
    if code != 0:
        return code
    for seed in seeds:
        code = guarded("train_seeds.py", lambda: run_seed(seed, out / f"seed-{seed}", train_args, args.evaluate,
                                                          eval_args), argv)
        if code != 0:
            if code != 2:  # bad input is its one line; a stop or a NaN can be gone on from
                print(f"train_seeds.py: seed {seed} stopped (exit {code}); rerun the same command to go on",
                      file=sys.stderr)
            return code

    results = [json.loads((out / f"seed-{s}" / "results.json").read_text()) for s in seeds]
    summary = {"seeds": seeds, "train_args": train_args, "models": aggregate([r["models"] for r in results]),
               "wall_time_s": mean_std([r["timings"]["total_s"] for r in results])}
    if args.evaluate:
        sweeps = [json.loads((out / f"seed-{s}" / "eval" / "eval.json").read_text())["models"] for s in seeds]
        summary["sweep"] = aggregate_sweeps(sweeps)
    write_text_atomic(out / "seeds.json", json.dumps(summary, indent=2))
    print_models(summary["models"], seeds)
    if args.evaluate:
        report_sweep(summary["sweep"], seeds, results[0]["corpus"], out / "seeds.png")
    wall = summary["wall_time_s"]
    print(f"wall time per seed {wall['mean']:.0f} ± {wall['std']:.0f} s; wrote {out / 'seeds.json'}")
    return 0


def report_sweep(sweep: dict, seeds: list[int], corpus: str, path: Path) -> None:
    """The mean curves over seeds (std as error bars), and each model at temperature 1
    against the others' mean curves at the same diversity, in each plane the sweep has."""
    means, stds = sweep_statistic(sweep, "mean"), sweep_statistic(sweep, "std")
    oracle = "nll_oracle" in next(iter(means.values()))[0]
    plot_sweep(means, *sweep_axes(oracle),
               f"{corpus}: quality against diversity, mean ± std over {len(seeds)} seeds (star: T = 1)", path, stds)
    for x_key, y_key, _, _ in sweep_planes(means, oracle):
        for line in matched_diversity(means, x_key, y_key, prefix="mean over seeds, ", sweep="mean sweep"):
            print(line)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
