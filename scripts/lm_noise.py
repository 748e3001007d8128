#!/usr/bin/env python
"""How noisy is the LM plane? The spread of the LM and reverse-LM scores of one model and
temperature over the language models' seeds and over sample sets, at each budget given.

    python scripts/lm_noise.py runs/compare/coco/seed-88/seqgan/mle.pt --steps 300,900 \\
        --out results/compare/lm_noise/coco.json

A sweep point (evaluate.py) draws one sample set (seed `--seed`) and trains one language
model per score (seed `--seed`): the real LM on the training split for the LM score, one
on 5,000 samples for the reverse-LM score. Here, for each model, temperature and budget
(Adam steps of every language model), R = `--repeats`:
  * over LM seeds: the same sample set, language models from seeds seed .. seed + R - 1;
  * over sample sets: the language model from `--seed`, samples from seeds seed .. seed + R - 1;
(the pair at `--seed` is shared: 2R - 1 reverse LMs per point). A point's noise is
sqrt(var over LM seeds + var over sample sets), pooled over the models and temperatures
(the root of the mean variance). From the two measured parts (not measured themselves), for
k = 2 and 3 at k times the cost: the mean of k language models from k seeds on one sample set
has sqrt(var_lm / k + var_samples); the mean of k language models each on its own sample set
(what evaluate.py --lm-seeds k computes) has sqrt((var_lm + var_samples) / k). The budget
chosen is the one with the lowest reverse-LM noise among those costing at most `--max-cost`
times one language model of the first budget (the sweep's). The JSON keeps every score, so
the choice can be checked; `--summarize JSON` prints the table and the choice again from it
(and rewrites its derived parts). compare_recipes.py --report reads the noise of the budget
its sweeps used. The measurement and the summary are `seqadv.eval.noise`; this script is
their command line.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from seqadv.eval.noise import measure, summarize
from seqadv.eval.sweep import SweepSettings
from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import OneLineParser, below_minimum, float_tuple, guarded, int_tuple, writable_file


def run(argv: Optional[list[str]]) -> None:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", help="generator checkpoints (.pt) or run directories")
    parser.add_argument("--summarize", metavar="JSON", help="print the table and the choice again from a JSON this "
                        "script wrote (and rewrite its derived parts); no models, nothing measured")
    parser.add_argument("--temperatures", type=float_tuple, default=(0.8, 1.0), metavar="T,T,...")
    parser.add_argument("--steps", type=int_tuple, default=(300, 900), metavar="N,N,...",
                        help="the budgets: Adam steps of every language model")
    parser.add_argument("--repeats", type=int, default=4, help="LM seeds, and sample sets, per point (R)")
    parser.add_argument("--seed", type=int, default=SweepSettings.seed)
    parser.add_argument("--samples", type=int, default=SweepSettings.samples, help="samples scored by the LM score")
    parser.add_argument("--reverse-lm-samples", type=int, default=SweepSettings.reverse_lm_samples)
    parser.add_argument("--max-cost", type=float, default=3.0,
                        help="the chosen budget costs at most this many times one language model of the first budget")
    parser.add_argument("--out", help="the JSON written")
    parser.add_argument("--data-dir")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    if args.summarize is not None:
        path = Path(args.summarize)
        if not path.is_file():
            raise ValueError(f"--summarize {path}: no such file")
        try:
            record = summarize(json.loads(path.read_text()), args.max_cost)
        except (KeyError, TypeError, ValueError, StopIteration):
            raise ValueError(f"--summarize {path}: not a JSON that lm_noise.py wrote") from None
        write_text_atomic(path, json.dumps(record, indent=2))
        print(f"wrote {path}")
        return
    if not args.models or args.out is None:
        parser.error("give the models and --out (or --summarize JSON)")
    if args.repeats < 2:
        parser.error(f"--repeats must be at least 2 (a spread needs two values), got {args.repeats}")
    problem = below_minimum(args, 1, ["samples", "reverse_lm_samples"])
    if problem:
        parser.error(problem)
    if any(s < 1 for s in args.steps):
        parser.error(f"--steps must be at least 1, got {','.join(map(str, args.steps))}")
    if any(t <= 0 for t in args.temperatures):
        parser.error(f"--temperatures must be positive, got {','.join(f'{t:g}' for t in args.temperatures)}")
    out = writable_file(args.out, "--out")
    record = measure(args.models, args.temperatures, args.steps, args.repeats, args.seed, args.samples,
                     args.reverse_lm_samples, args.data_dir,
                     "python scripts/lm_noise.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    summarize(record, args.max_cost)
    write_text_atomic(out, json.dumps(record, indent=2))
    print(f"wrote {out}")


def main(argv: Optional[list[str]] = None) -> int:
    return guarded("lm_noise.py", lambda: run(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
