"""One recipe over several seeds: each seed's run (resumable) and sweep, and mean ± std of
every metric and of every point of the sweep (scripts/train_seeds.py is the command line).

    from seqadv.eval.seeds import run_seed, summarize_seeds
    for s in (88, 89, 90):
        run_seed(s, Path("runs/seeds") / f"seed-{s}", ["--corpus", "poems"], evaluate=True, eval_args=[])
    summary, corpus = summarize_seeds(Path("runs/seeds"), [88, 89, 90], ["--corpus", "poems"], evaluate=True)

The recipe is found by name in the registry (`seqadv.core.registry.recipe`), so this module
imports no trainer.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Callable

from seqadv.core.registry import recipe
from seqadv.eval.report import matched_diversity, plot_sweep, sweep_axes, sweep_planes
from seqadv.eval.sweep import run_sweep, settings_from_args
from seqadv.runtime.cli import parse_config

# the recipe train_seeds.py runs seed by seed
RECIPE = "seqgan"


def mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def aggregate(per_seed: list[dict]) -> dict:
    """{model: {metric: value}} per seed -> {model: {metric: {mean, std, values}}}."""
    return {model: {metric: mean_std([run[model][metric] for run in per_seed]) for metric in per_seed[0][model]}
            for model in per_seed[0]}


def aggregate_sweeps(per_seed: list[dict]) -> dict:
    """The sweep's {model: [metrics per temperature]} per seed -> the same with mean/std per metric.

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
    {mean, std, values}: curves as the sweep writes them (a temperature's std is 0)."""
    return {model: [{k: (v[statistic] if isinstance(v, dict) else (v if statistic == "mean" else 0.0))
                     for k, v in point.items()} for point in curve] for model, curve in sweep.items()}


def script_of(name: str) -> str:
    """The training script of a recipe: scripts/train_<recipe>.py (the description its options
    are parsed under)."""
    return f"train_{name}.py"


def seed_config(train_args: list[str], seed: int, out: Path, name: str = RECIPE):
    """The recipe's config for one seed: its script's options `train_args` (without --seed and
    --out), with that seed, in `out`."""
    return parse_config(recipe(name).config, [*train_args, "--seed", str(seed), "--out", str(out)], script_of(name))


def train_or_resume(name: str, out: Path, make_config: Callable[[], object], label: str) -> None:
    """A run of recipe `name` in `out`: nothing if it finished (its results.json is there),
    resumed from its checkpoint if it was stopped, else started with `make_config()`."""
    if (out / "results.json").is_file():
        return
    entry = recipe(name)
    config = entry.config(resume=str(out)) if (out / "checkpoint.pt").is_file() else make_config()
    print(f"{label}: {'resuming' if config.resume else 'training'} in {out}", flush=True)
    entry.trainer(config).train()


def run_seed(seed: int, out: Path, train_args: list[str], evaluate: bool, eval_args: list[str],
             name: str = RECIPE) -> None:
    """One seed's run of the recipe (resumed if it was stopped), then, if asked, its sweep with
    evaluate.py's options `eval_args` into <out>/eval."""
    train_or_resume(name, out, lambda: seed_config(train_args, seed, out, name), f"seed {seed}")
    if evaluate and not (out / "eval" / "eval.json").is_file():
        run_sweep(settings_from_args([str(out), *eval_args]))


def summarize_seeds(out: Path, seeds: list[int], train_args: list[str], evaluate: bool) -> tuple[dict, str]:
    """The finished seeds in <out>/seed-<s>: mean ± std of every model's metrics, of the wall
    time, and with `evaluate` of every point of the sweep. Returns (the summary seeds.json
    holds, the corpus's name)."""
    results = [json.loads((out / f"seed-{s}" / "results.json").read_text()) for s in seeds]
    summary = {"seeds": seeds, "train_args": train_args, "models": aggregate([r["models"] for r in results]),
               "wall_time_s": mean_std([r["timings"]["total_s"] for r in results])}
    if evaluate:
        sweeps = [json.loads((out / f"seed-{s}" / "eval" / "eval.json").read_text())["models"] for s in seeds]
        summary["sweep"] = aggregate_sweeps(sweeps)
    return summary, results[0]["corpus"]


def models_table(summary: dict, seeds: list[int]) -> str:
    """Every metric of every model, mean ± std over the seeds (after an empty line)."""
    models = list(summary)
    lines = ["", f"mean ± std over seeds {', '.join(map(str, seeds))}",
             f"{'metric':<14}" + "".join(f"{m:>22}" for m in models)]
    for metric in summary[models[0]]:
        lines.append(f"{metric:<14}" + "".join(
            f"{summary[m][metric]['mean']:>13.4f} ± {summary[m][metric]['std']:.4f}" for m in models))
    return "\n".join(lines)


def report_sweep(sweep: dict, seeds: list[int], corpus: str, path: Path,
                 say: Callable[[str], object] = print) -> None:
    """The mean curves over seeds (std as error bars) drawn into `path`, and through `say` each
    model at temperature 1 against the others' mean curves at the same diversity, in each
    plane the sweep has."""
    means, stds = sweep_statistic(sweep, "mean"), sweep_statistic(sweep, "std")
    oracle = "nll_oracle" in next(iter(means.values()))[0]
    plot_sweep(means, *sweep_axes(oracle),
               f"{corpus}: quality against diversity, mean ± std over {len(seeds)} seeds (star: T = 1)", path, stds)
    for x_key, y_key, _, _ in sweep_planes(means, oracle):
        for line in matched_diversity(means, x_key, y_key, prefix="mean over seeds, ", sweep="mean sweep"):
            say(line)
    say(f"wrote {path}")
