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
its sweeps used.
"""
from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import evaluate as sweep  # scripts/evaluate.py, beside this script
import torch

from seqadv.eval.metrics import lm_score, reverse_lm_score, train_language_model
from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import (
    OneLineParser,
    below_minimum,
    float_tuple,
    guarded,
    int_tuple,
    writable_file,
)

MEAN_OF = (2, 3)  # the derived budgets: the mean of this many language models at one step count


def score_point(g, data, temperature: float, steps: int, repeats: int, seed: int, samples: int,
                reverse_samples: int, real_lms: list) -> tuple[dict, float]:
    """One model at one temperature and budget: {score: {"lm_seeds": [...], "sample_sets": [...]}}
    and the median seconds of one reverse LM's training and scoring."""
    def draw(sample_seed: int, n: int) -> torch.Tensor:
        rng = torch.Generator(device=g.device).manual_seed(sample_seed)
        return g.sample(n, data.length, temperature=temperature, generator=rng)

    def reverse(samples_: torch.Tensor, lm_seed: int) -> float:
        return reverse_lm_score(samples_, data.test, data.vocab_size, start_token=data.start_token,
                                eos_token=data.eos_token, pad_token=data.pad_token, steps=steps, seed=lm_seed,
                                device=g.device)

    seconds = []

    def timed_reverse(samples_: torch.Tensor, lm_seed: int) -> float:
        start = time.perf_counter()
        value = reverse(samples_, lm_seed)
        seconds.append(time.perf_counter() - start)
        return value

    base_rev = draw(seed, reverse_samples)
    rev_lm = [timed_reverse(base_rev, seed + i) for i in range(repeats)]
    rev_samples = [rev_lm[0]] + [timed_reverse(draw(seed + j, reverse_samples), seed) for j in range(1, repeats)]
    base = draw(seed, samples)
    lm_lm = [lm_score(base, lm, data.eos_token, data.pad_token) for lm in real_lms]
    lm_samples = [lm_score(draw(seed + j, samples), real_lms[0], data.eos_token, data.pad_token)
                  for j in range(repeats)]
    return ({"reverse_lm_score": {"lm_seeds": rev_lm, "sample_sets": rev_samples},
             "lm_score": {"lm_seeds": lm_lm, "sample_sets": lm_samples}}, statistics.median(seconds))


def pooled(points: list[dict], score: str) -> dict:
    """The root mean variance over points, over LM seeds and over sample sets, and a point's total."""
    lm = math.sqrt(statistics.fmean(statistics.variance(p[score]["lm_seeds"]) for p in points))
    samples = math.sqrt(statistics.fmean(statistics.variance(p[score]["sample_sets"]) for p in points))
    return {"lm_seeds": lm, "sample_sets": samples, "total": math.hypot(lm, samples),
            **{f"total_mean_of_{k}": math.sqrt(lm ** 2 / k + samples ** 2) for k in MEAN_OF},
            **{f"total_mean_of_{k}_sample_sets": math.hypot(lm, samples) / math.sqrt(k) for k in MEAN_OF}}


def summarize(record: dict, max_cost: float) -> dict:
    """Each budget's pooled noise from its scores, the candidates (each budget, and the means of k
    language models), printed, and the chosen one; returns the record with them."""
    candidates = []
    for b in record["budgets"].values():
        flat = [p for by_t in b["points"].values() for p in by_t.values()]
        n = b["noise"] = {k: pooled(flat, k) for k in ("reverse_lm_score", "lm_score")}
        seconds = b["seconds_per_reverse_lm"]
        candidates.append((f"{b['steps']} steps", seconds, n["reverse_lm_score"]["total"], n["lm_score"]["total"]))
        for k in MEAN_OF:
            candidates.append((f"mean of {k} LMs of {b['steps']} steps, one sample set", k * seconds,
                               n["reverse_lm_score"][f"total_mean_of_{k}"], n["lm_score"][f"total_mean_of_{k}"]))
            candidates.append((f"mean of {k} LMs of {b['steps']} steps, each its own set", k * seconds,
                               n["reverse_lm_score"][f"total_mean_of_{k}_sample_sets"],
                               n["lm_score"][f"total_mean_of_{k}_sample_sets"]))
    points = sum(len(by_t) for by_t in next(iter(record["budgets"].values()))["points"].values())
    print(f"\n{record['corpus']}: a point's noise (std), pooled over {points} (model, temperature) point(s); "
          f"R = {record['repeats']}; seconds: one reverse-LM score here (training and scoring)")
    for budget in record["budgets"].values():
        for score in ("reverse_lm_score", "lm_score"):
            n = budget["noise"][score]
            print(f"{budget['steps']} steps, {score}: over LM seeds {n['lm_seeds']:.4f}, over sample sets "
                  f"{n['sample_sets']:.4f}")
    print(f"{'budget':<48}{'s per point':>12}{'cost':>6}{'reverse-LM':>12}{'LM':>10}")
    unit = candidates[0][1]
    for label, s_, rev, lm in candidates:
        print(f"{label:<48}{s_:>12.1f}{s_ / unit:>6.1f}{rev:>12.4f}{lm:>10.4f}")
    chosen = min((c for c in candidates if c[1] <= max_cost * unit * 1.000001), key=lambda c: c[2])
    record["chosen"] = {"budget": chosen[0], "seconds_per_point": chosen[1], "cost": chosen[1] / unit,
                        "reverse_lm_score": chosen[2], "lm_score": chosen[3], "max_cost": max_cost}
    print(f"chosen at most {max_cost:g} times the first budget's cost: {chosen[0]} (reverse-LM noise "
          f"{chosen[2]:.4f}, LM {chosen[3]:.4f})")
    return record


def run(argv: Optional[list[str]]) -> None:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", help="generator checkpoints (.pt) or run directories")
    parser.add_argument("--summarize", metavar="JSON", help="print the table and the choice again from a JSON this "
                        "script wrote (and rewrite its derived parts); no models, nothing measured")
    parser.add_argument("--temperatures", type=float_tuple, default=(0.8, 1.0), metavar="T,T,...")
    parser.add_argument("--steps", type=int_tuple, default=(300, 900), metavar="N,N,...",
                        help="the budgets: Adam steps of every language model")
    parser.add_argument("--repeats", type=int, default=4, help="LM seeds, and sample sets, per point (R)")
    parser.add_argument("--seed", type=int, default=sweep.Args.seed)
    parser.add_argument("--samples", type=int, default=sweep.Args.samples, help="samples scored by the LM score")
    parser.add_argument("--reverse-lm-samples", type=int, default=sweep.Args.reverse_lm_samples)
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
    paths = sweep.model_paths(tuple(args.models))
    meta, generators = sweep.load_generators(paths, torch.device("cpu"))
    data = sweep.corpus_of(meta, args.data_dir)
    if data.oracle is not None:
        raise ValueError(f"{paths[0]}: the oracle corpus has exact NLL-oracle and NLL-test, no LM plane")
    names = sweep.model_names(paths)
    reverse_samples = min(args.reverse_lm_samples, len(data.train))
    record = {"command": "python scripts/lm_noise.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "corpus": data.name, "models": [str(p) for p in paths], "temperatures": list(args.temperatures),
              "repeats": args.repeats, "seed": args.seed, "samples": args.samples,
              "reverse_lm_samples": reverse_samples, "budgets": {}}
    for steps in args.steps:
        start = time.perf_counter()
        real_lms = [train_language_model(data.train, data.vocab_size, start_token=data.start_token,
                                         eos_token=data.eos_token, pad_token=data.pad_token, steps=steps,
                                         seed=args.seed + i) for i in range(args.repeats)]
        real_seconds = (time.perf_counter() - start) / args.repeats
        points, seconds = {}, []
        for name, g in zip(names, generators):
            points[name] = {}
            for t in args.temperatures:
                points[name][f"{t:g}"], s = score_point(g, data, t, steps, args.repeats, args.seed, args.samples,
                                                        reverse_samples, real_lms)
                seconds.append(s)
                rev = points[name][f"{t:g}"]["reverse_lm_score"]
                print(f"{steps} steps, {name} T={t:g}: reverse-LM over LM seeds "
                      f"{' '.join(f'{v:.4f}' for v in rev['lm_seeds'])}, over sample sets "
                      f"{' '.join(f'{v:.4f}' for v in rev['sample_sets'])} ({s:.1f} s each)", flush=True)
        record["budgets"][str(steps)] = {
            "steps": steps, "seconds_per_reverse_lm": statistics.median(seconds), "seconds_per_real_lm": real_seconds,
            "points": points}
    summarize(record, args.max_cost)
    write_text_atomic(out, json.dumps(record, indent=2))
    print(f"wrote {out}")


def main(argv: Optional[list[str]] = None) -> int:
    return guarded("lm_noise.py", lambda: run(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
