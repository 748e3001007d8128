#!/usr/bin/env python
"""The MLE-vs-SeqGAN comparison over several seeds: mean ± std of every metric.

    python scripts/train_seeds.py --seeds 3 -- --corpus poems
    python scripts/train_seeds.py --seeds 3 --evaluate -- --corpus oracle --oracle paper

Everything after `--` is train_seqgan.py's options (except --seed and --out): each
seed is a `seqadv.SeqGANTrainer` run in <out>/seed-<s>; a seed whose results.json
exists is not run again, and one that was stopped goes on from its checkpoint, so
the whole command can be rerun after an interruption. With --evaluate, evaluate.py's
temperature sweep runs on each seed's models too, and its metrics are averaged
per model and temperature. Writes <out>/seeds.json and prints the tables. The seed's
run, the aggregation and the tables are `seqadv.eval.seeds`; this script is their
command line.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from seqadv.eval.seeds import models_table, report_sweep, run_seed, seed_config, summarize_seeds
from seqadv.eval.sweep import settings_from_args
from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import OneLineParser, below_minimum, guarded, writable_dir


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
        seed_config(train_args, seeds[0], out / f"seed-{seeds[0]}")
        if args.evaluate:
            settings_from_args([str(out), *eval_args])
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

    summary, corpus_name = summarize_seeds(out, seeds, train_args, args.evaluate)
    write_text_atomic(out / "seeds.json", json.dumps(summary, indent=2))
    print(models_table(summary["models"], seeds))
    if args.evaluate:
        report_sweep(summary["sweep"], seeds, corpus_name, out / "seeds.png")
    wall = summary["wall_time_s"]
    print(f"wall time per seed {wall['mean']:.0f} ± {wall['std']:.0f} s; wrote {out / 'seeds.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
