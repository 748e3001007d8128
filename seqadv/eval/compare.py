"""Does an adversarial recipe beat temperature-tuned MLE at matched diversity? The
experiment of docs/results.md's "Beating MLE?" section, one corpus and seed at a time
(scripts/compare_recipes.py is the command line).

    from seqadv.eval.compare import report, run_seed
    run_seed("poems", 88, Path("runs/compare"), Path("results/compare/poems"))
    summary = report("poems", Path("results/compare/poems"))

For one seed, each of `VARIANTS` is trained at the `cpu` preset in <runs>/<corpus>/seed-<s>/
<variant> (a stopped run goes on from its checkpoint); every variant's recipe is found by
name in the registry (`seqadv.core.registry.recipe`), so this module imports no trainer.
The sweep (`seqadv.eval.sweep`) then measures `SWEPT` on both planes, and
<results>/seed-<s>.json keeps it with each run's results and the commands. `report`
aggregates the seeds written so far: each GAN at T = 1 against each MLE curve at matched
diversity, seed by seed, with the LM plane's measurement noise where `seqadv.eval.noise`
measured it.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Callable, Optional

from seqadv.core.registry import recipe
from seqadv.eval.report import (LM_AXES, advantage_noise, advantages_at, at_temperature_one, curve_advantages,
                                dominating_temperatures, lower_is_better, sweep_axes)
from seqadv.eval.seeds import aggregate_sweeps, report_sweep, script_of, train_or_resume
from seqadv.eval.sweep import SweepSettings, run_sweep, settings_from_args
from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import parse_config

Say = Callable[[str], object]

# variant -> (recipe, its options beyond --corpus / --seed / --out); the `cpu` preset
VARIANTS = {
    "mle_best": ("mle", []),
    "seqgan": ("seqgan", []),
    "seqgan_loo_cold": ("seqgan", ["--pg-baseline", "loo", "--sample-temperature", "0.8"]),
    "scratchgan": ("scratchgan", []),
}
# the models swept, as <variant>/<file>: MLE at its best validation NLL, each GAN and its own
# equal-budget MLE baseline
SWEPT = ["mle_best/mle_best.pt", "seqgan/mle.pt", "seqgan/seqgan.pt", "seqgan_loo_cold/seqgan.pt", "scratchgan/mle.pt",
         "scratchgan/scratchgan.pt"]
# the reverse-LM score (one language model each) on the branch where cooling trades coverage for
# quality (T <= 1) and one point past it
SWEEP_ARGS = ["--temperatures", "0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4", "--samples", "2000",
              "--reverse-lm-temperatures", "0.7,0.8,0.9,1.0,1.2"]


def train_variant(variant: str, corpus: str, seed: int, out: Path) -> dict:
    """One variant's run in `out` (resumed if it was stopped, skipped if finished); its results.json."""
    name, options = VARIANTS[variant]
    arguments = ["--corpus", corpus, "--seed", str(seed), "--out", str(out), *options]
    train_or_resume(name, out, lambda: parse_config(recipe(name).config, arguments, script_of(name)),
                    f"{variant}, seed {seed}")
    return json.loads((out / "results.json").read_text())


def run_seed(corpus: str, seed: int, runs: Path, results: Path) -> None:
    """Train every variant of one seed that is missing, sweep them (unless swept already) and
    write <results>/seed-<seed>.json."""
    root = runs / corpus / f"seed-{seed}"
    trained = {v: train_variant(v, corpus, seed, root / v) for v in VARIANTS}
    eval_dir = root / "eval"
    if not (eval_dir / "eval.json").is_file():
        run_sweep(settings_from_args([*(str(root / m) for m in SWEPT), "--out", str(eval_dir), "--seed", str(seed),
                                      *SWEEP_ARGS]))
    swept = json.loads((eval_dir / "eval.json").read_text())
    commands = {v: f"python scripts/{script_of(r)} --corpus {corpus} --seed {seed} --out {root / v} {' '.join(o)}".strip()
                for v, (r, o) in VARIANTS.items()}
    record = {"corpus": corpus, "seed": seed, "commands": commands,
              "evaluate": f"python scripts/evaluate.py {' '.join(str(root / m) for m in SWEPT)} --out {eval_dir} "
                          f"--seed {seed} {' '.join(SWEEP_ARGS)}",
              "train": {v: {k: r[k] for k in ("models", "generator_updates", "timings") if k in r}
                        for v, r in trained.items()},
              "sweep": swept["models"]}
    results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(results / f"seed-{seed}.json", json.dumps(record, indent=2))
    print(f"wrote {results / f'seed-{seed}.json'}")


def seed_advantages(sweeps: dict[int, dict], gans: list[str], mles: list[str], x_key: str, y_key: str,
                    noise: Optional[dict] = None) -> dict:
    """Each GAN's advantage over each MLE curve in one plane, from per-seed sweeps ({seed: {model:
    curve}}), at every crossing of the GAN's diversity along the MLE curve (`report.crossings`).

    At T = 1, per seed: the advantage at each crossing (more than one: ambiguous) and, with
    `noise` ({"quality": std, "diversity": std} of one measured point), the std measurement
    noise alone gives it (the largest over the crossings); over the seeds inside the MLE curve:
    the mean of each seed's lowest and of its highest advantage (equal where no seed is
    ambiguous), their std, and the noise of that mean. Along the GAN's curve: the same lowest and
    highest means at each temperature every seed has inside the MLE curve. For each seed whose
    GAN at T = 1 lies outside the MLE curve, the MLE temperatures (every measured point) that beat
    it on both axes.
    {gan: {mle: {"at_t1": {"seeds": {seed: {"advantages", "noise"}}, "low", "high", "std",
    "noise", "ambiguous_seeds"} | None, "along_curve": {temperature: {"low", "high"}},
    "outside": {seed: [temperature]}, "outside_beyond_noise": {seed: [temperature]} (with `noise`:
    the dominating points better on both axes by more than twice the noise of a difference of
    two points)}}}"""
    table = {}
    for gan in gans:
        table[gan] = {}
        for mle in mles:
            per_seed, outside, beyond = {}, {}, {}
            for seed, curves in sweeps.items():
                point = at_temperature_one(curves[gan], x_key, y_key)
                if point is None:
                    continue
                found = advantages_at(point, curves[mle], x_key, y_key)
                if not found:
                    outside[seed] = dominating_temperatures(point, curves[mle], x_key, y_key)
                    if noise is not None:
                        beyond[seed] = [t for t in outside[seed]
                                        if beats_beyond_noise(next(m for m in curves[mle] if m["temperature"] == t),
                                                              point, x_key, y_key, noise)]
                    continue
                per_seed[seed] = {"advantages": [a for a, _ in found], "temperatures": [c.temperature for _, c in found]}
                if noise is not None:
                    per_seed[seed]["noise"] = max(advantage_noise(c, noise["quality"], noise["diversity"])
                                                  for _, c in found)
            at_t1 = None
            if per_seed:
                lows = [min(v["advantages"]) for v in per_seed.values()]
                highs = [max(v["advantages"]) for v in per_seed.values()]
                mids = [(lo + hi) / 2 for lo, hi in zip(lows, highs)]
                at_t1 = {"seeds": per_seed, "low": statistics.fmean(lows), "high": statistics.fmean(highs),
                         "std": statistics.stdev(mids) if len(mids) > 1 else 0.0,
                         "ambiguous_seeds": [s for s, v in per_seed.items() if len(v["advantages"]) > 1]}
                if noise is not None:  # measurement noise of a mean over independent seeds
                    at_t1["noise"] = math.sqrt(sum(v["noise"] ** 2 for v in per_seed.values())) / len(per_seed)
            along = [curve_advantages(curves[gan], curves[mle], x_key, y_key) for curves in sweeps.values()]
            shared = sorted(set.intersection(*(set(a) for a in along)))
            table[gan][mle] = {"at_t1": at_t1,
                               "along_curve": {t: {"low": statistics.fmean(min(a[t]) for a in along),
                                                   "high": statistics.fmean(max(a[t]) for a in along)}
                                               for t in shared},
                               "outside": outside, **({"outside_beyond_noise": beyond} if noise is not None else {})}
    return table


def beats_beyond_noise(reference: dict, point: dict, x_key: str, y_key: str, noise: dict) -> bool:
    """Whether `reference` is better than `point` on both axes by more than twice the std of a
    difference of two measured points (sqrt(2) times one point's noise)."""
    def margin(key: str) -> float:  # positive: the reference is better
        return (point[key] - reference[key]) if lower_is_better(key) else (reference[key] - point[key])

    return all(margin(key) > 2 * math.sqrt(2) * noise[axis] for key, axis in ((x_key, "diversity"), (y_key, "quality")))


def verdict(low: float, high: float, noise: float) -> str:
    """The GAN against the MLE curve, given the advantage's range over the crossings and the std
    that measurement noise alone gives it: beyond twice that noise one way or the other, within
    it, or neither (a range that spans both)."""
    if low > 2 * noise:
        return "GAN ahead"
    if high < -2 * noise:
        return "MLE ahead"
    if -2 * noise <= low and high <= 2 * noise:
        return "within noise"
    return "ambiguous"


def at_t1_cell(advantage: Optional[dict], seeds: int) -> str:
    if advantage is None:
        return "-"
    inside = len(advantage["seeds"])
    if advantage["ambiguous_seeds"]:  # the seeds' crossings disagree: the range of the mean, not one value
        cell = f"{advantage['low']:+.3f}..{advantage['high']:+.3f}"
    elif inside < seeds:  # a std over the seeds inside the MLE curve would pass for one over all
        cell = f"{advantage['low']:+.4f}"
    else:
        cell = f"{advantage['low']:+.4f} ± {advantage['std']:.4f}"
    notes = []
    if inside < seeds:
        notes.append(f"{inside}/{seeds} seeds")
    if advantage["ambiguous_seeds"]:
        notes.append(f"{len(advantage['ambiguous_seeds'])} ambiguous")
    return cell + (f" ({', '.join(notes)})" if notes else "")


def noise_cell(advantage: Optional[dict]) -> str:
    if advantage is None or "noise" not in advantage:
        return "-"
    return f"±{advantage['noise']:.3f} {verdict(advantage['low'], advantage['high'], advantage['noise'])}"


def along_cell(along: dict) -> str:
    if not along:
        return "-"
    ambiguous = sum(1 for v in along.values() if v["low"] != v["high"])
    return (f"{min(v['low'] for v in along.values()):+.4f} {max(v['high'] for v in along.values()):+.4f} ({len(along)}"
            + (f", {ambiguous} ambiguous)" if ambiguous else ")"))


def lm_noise_of(results: Path, corpus: str, steps: int) -> Optional[dict]:
    """The LM plane's noise of one point at `steps` (lm_noise.py's JSON beside the per-corpus
    results), as {"quality": LM score std, "diversity": reverse-LM score std, "source"}; None
    where it was not measured at that budget."""
    path = results.parent / "lm_noise" / f"{corpus}.json"
    if not path.is_file():
        return None
    budget = json.loads(path.read_text())["budgets"].get(str(steps))
    if budget is None:
        return None
    n = budget["noise"]
    return {"quality": n["lm_score"]["total"], "diversity": n["reverse_lm_score"]["total"], "source": str(path)}


def report(corpus: str, results: Path, say: Say = print) -> dict:
    """Aggregate <results>/seed-*.json: the table of every model at T = 1 (mean ± std over
    seeds), each GAN against each MLE curve at matched diversity in both planes (seed by seed),
    through `say`; writes <results>/summary.json and <results>/../<corpus>.png. Returns the
    summary."""
    files = sorted(results.glob("seed-*.json"))
    if not files:
        raise ValueError(f"{results}: no seed-*.json yet (run --seed first)")
    records = [json.loads(f.read_text()) for f in files]
    seeds = [r["seed"] for r in records]
    summary = aggregate_sweeps([r["sweep"] for r in records])
    say(f"{corpus}: {len(seeds)} seed(s) {', '.join(map(str, seeds))}")
    shown = ("bleu4", "self_bleu4", "lm_score", "reverse_lm_score")
    say(f"{'model at T=1':<28}" + "".join(f"{k:>22}" for k in shown))
    for model, curve in summary.items():
        at_one = next(p for p in curve if p["temperature"] == 1.0)
        say(f"{model:<28}" + "".join(f"{at_one[k]['mean']:>13.4f} ± {at_one[k]['std']:.4f}" if k in at_one else f"{'':>22}"
                                     for k in shown))
    # each GAN against each MLE model at matched diversity, in both planes, seed by seed: a seed's GAN
    # against the same seed's MLE curve, so the std over seeds is the std of the advantage itself
    mles = [m for m in summary if m.split("/")[-1] in ("mle", "mle_best")]
    gans = [m for m in summary if m not in mles]
    lm_noise = lm_noise_of(results, corpus, sweep_lm_steps(records))
    advantages = {}
    for x_key, y_key, _, _ in (sweep_axes(False), LM_AXES):
        noise = lm_noise if y_key == LM_AXES[1] else None
        advantages[y_key] = table = seed_advantages({r["seed"]: r["sweep"] for r in records}, gans, mles, x_key, y_key,
                                                    noise)
        say(f"\n{y_key} of each GAN at T=1 minus the MLE curve's at the same {x_key} (every crossing along the "
            f"sweep), mean ± std over seeds (positive: the GAN is better; a..b: the range over crossings where a "
            f"seed's MLE curve passes that {x_key} more than once; -: outside that sweep)")
        say(f"{'':<28}" + "".join(f"{m:>40}" for m in mles))
        for gan, row in table.items():
            say(f"{gan:<28}" + "".join(f"{at_t1_cell(v['at_t1'], len(records)):>40}" for v in row.values()))
        if y_key == LM_AXES[1]:
            if noise is None:
                say(f"its noise: not measured at this budget (python scripts/lm_noise.py <a model> --steps "
                    f"{sweep_lm_steps(records)} --out {results.parent / 'lm_noise' / (corpus + '.json')})")
            else:
                say(f"the std measurement noise alone gives that mean (one point: LM {noise['quality']:.4f}, "
                    f"reverse-LM {noise['diversity']:.4f}, from {noise['source']}; through the MLE curve's slope "
                    f"at the crossing), and the verdict: ahead or behind by more than twice that, or within it")
                for gan, row in table.items():
                    say(f"{gan:<28}" + "".join(f"{noise_cell(v['at_t1']):>40}" for v in row.values()))
        say("the same along each GAN's curve: its lowest and highest mean advantage over its temperatures "
            "inside the MLE curve's range (how many)")
        for gan, row in table.items():
            say(f"{gan:<28}" + "".join(f"{along_cell(v['along_curve']):>40}" for v in row.values()))
        for gan, row in table.items():
            for mle, v in row.items():
                if v["outside"]:
                    beaten = sum(1 for temperatures in v["outside"].values() if temperatures)
                    clear = ""
                    if "outside_beyond_noise" in v:
                        clear = (f" (by more than twice the noise on both in "
                                 f"{sum(1 for ts in v['outside_beyond_noise'].values() if ts)})")
                    say(f"{gan} at T=1 lies outside {mle}'s curve in seed(s) {', '.join(map(str, v['outside']))}: "
                        f"a point of that curve (any temperature) is better on both axes in {beaten} of them{clear}")
    written = {"seeds": seeds, "sweep": summary, "lm_noise": lm_noise, "advantage_at_matched_diversity": advantages}
    write_text_atomic(results / "summary.json", json.dumps(written, indent=2))
    report_sweep(summary, seeds, corpus, results.parent / f"{corpus}.png", say)
    return written


def sweep_lm_steps(records: list[dict]) -> int:
    """The language models' budget the sweeps used (evaluate.py's --lm-steps; its default if
    the command does not say)."""
    steps = set()
    for r in records:
        words = r.get("evaluate", "").split()
        steps.add(int(words[words.index("--lm-steps") + 1]) if "--lm-steps" in words else SweepSettings.lm_steps)
    if len(steps) > 1:
        raise ValueError(f"the seeds' sweeps used different --lm-steps ({', '.join(map(str, sorted(steps)))}): "
                         "their LM planes cannot be averaged")
    return steps.pop()
