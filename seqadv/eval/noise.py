"""How noisy is the LM plane? The spread of the LM and reverse-LM scores of one model and
temperature over the language models' seeds and over sample sets, at each budget given
(scripts/lm_noise.py is the command line, and its docstring says what is measured).

    from seqadv.eval.noise import measure, summarize
    record = measure(["runs/compare/coco/seed-88/seqgan/mle.pt"], temperatures=(0.8, 1.0), steps=(300, 900))
    summarize(record, max_cost=3.0)

`seqadv.eval.compare.report` reads the noise of the budget its sweeps used from the JSON
of such a record.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Sequence

import torch

from seqadv.eval.metrics import lm_score, reverse_lm_score, train_language_model
from seqadv.eval.sweep import SweepSettings, corpus_of, load_generators, model_names, model_paths

MEAN_OF = (2, 3)  # the derived budgets: the mean of this many language models at one step count

Say = Callable[[str], object]


def say_now(line: str) -> None:
    """A progress line of a long measurement, shown as it comes (not when the buffer fills)."""
    print(line, flush=True)


def score_point(g, data, temperature: float, steps: int, repeats: int, seed: int, samples: int,
                reverse_samples: int, real_lms: list) -> tuple[dict, float]:
    """One model at one temperature and budget: {score: {"lm_seeds": [...], "sample_sets": [...]}}
    and the median seconds of one reverse LM's training and scoring.

    Shape: g samples (samples or reverse_samples, data.length) token ids per set.
    Returns: each list has `repeats` scores; the first of "lm_seeds" and of "sample_sets" is the
    same pair (samples and language model both from `seed`).
    """
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


def summarize(record: dict, max_cost: float, say: Say = print) -> dict:
    """Each budget's pooled noise from its scores, the candidates (each budget, and the means of k
    language models), said through `say`, and the chosen one; returns the record with them."""
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
    say(f"\n{record['corpus']}: a point's noise (std), pooled over {points} (model, temperature) point(s); "
        f"R = {record['repeats']}; seconds: one reverse-LM score here (training and scoring)")
    for budget in record["budgets"].values():
        for score in ("reverse_lm_score", "lm_score"):
            n = budget["noise"][score]
            say(f"{budget['steps']} steps, {score}: over LM seeds {n['lm_seeds']:.4f}, over sample sets "
                f"{n['sample_sets']:.4f}")
    say(f"{'budget':<48}{'s per point':>12}{'cost':>6}{'reverse-LM':>12}{'LM':>10}")
    unit = candidates[0][1]
    for label, s_, rev, lm in candidates:
        say(f"{label:<48}{s_:>12.1f}{s_ / unit:>6.1f}{rev:>12.4f}{lm:>10.4f}")
    chosen = min((c for c in candidates if c[1] <= max_cost * unit * 1.000001), key=lambda c: c[2])
    record["chosen"] = {"budget": chosen[0], "seconds_per_point": chosen[1], "cost": chosen[1] / unit,
                        "reverse_lm_score": chosen[2], "lm_score": chosen[3], "max_cost": max_cost}
    say(f"chosen at most {max_cost:g} times the first budget's cost: {chosen[0]} (reverse-LM noise "
        f"{chosen[2]:.4f}, LM {chosen[3]:.4f})")
    return record


def measure(models: Sequence[str], temperatures: Sequence[float] = (0.8, 1.0), steps: Sequence[int] = (300, 900),
            repeats: int = 4, seed: int = SweepSettings.seed, samples: int = SweepSettings.samples,
            reverse_lm_samples: int = SweepSettings.reverse_lm_samples, data_dir=None, command: str = "",
            say: Say = say_now) -> dict:
    """Every model's LM and reverse-LM scores at each temperature and budget (Adam steps of every
    language model), `repeats` over LM seeds and over sample sets, on the CPU; one line per point
    through `say`. Returns the record lm_noise.py writes, without its derived parts (`summarize`
    adds them): {"command", "corpus", "models", "temperatures", "repeats", "seed", "samples",
    "reverse_lm_samples", "budgets": {str(steps): {"steps", "seconds_per_reverse_lm",
    "seconds_per_real_lm", "points": {model: {f"{t:g}": score_point's scores}}}}}."""
    paths = model_paths(tuple(models))
    meta, generators = load_generators(paths, torch.device("cpu"))
    data = corpus_of(meta, data_dir)
    if data.oracle is not None:
        raise ValueError(f"{paths[0]}: the oracle corpus has exact NLL-oracle and NLL-test, no LM plane")
    names = model_names(paths)
    reverse_samples = min(reverse_lm_samples, len(data.train))
    record = {"command": command, "corpus": data.name, "models": [str(p) for p in paths],
              "temperatures": list(temperatures), "repeats": repeats, "seed": seed, "samples": samples,
              "reverse_lm_samples": reverse_samples, "budgets": {}}
    for budget in steps:
        start = time.perf_counter()
        real_lms = [train_language_model(data.train, data.vocab_size, start_token=data.start_token,
                                         eos_token=data.eos_token, pad_token=data.pad_token, steps=budget,
                                         seed=seed + i) for i in range(repeats)]
        real_seconds = (time.perf_counter() - start) / repeats
        points, seconds = {}, []
        for name, g in zip(names, generators):
            points[name] = {}
            for t in temperatures:
                points[name][f"{t:g}"], s = score_point(g, data, t, budget, repeats, seed, samples, reverse_samples,
                                                        real_lms)
                seconds.append(s)
                rev = points[name][f"{t:g}"]["reverse_lm_score"]
                say(f"{budget} steps, {name} T={t:g}: reverse-LM over LM seeds "
                    f"{' '.join(f'{v:.4f}' for v in rev['lm_seeds'])}, over sample sets "
                    f"{' '.join(f'{v:.4f}' for v in rev['sample_sets'])} ({s:.1f} s each)")
        record["budgets"][str(budget)] = {
            "steps": budget, "seconds_per_reverse_lm": statistics.median(seconds), "seconds_per_real_lm": real_seconds,
            "points": points}
    return record
