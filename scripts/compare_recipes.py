#!/usr/bin/env python
"""Does an adversarial recipe beat temperature-tuned MLE at matched diversity? The
experiment of the README's "Beating MLE?" section, one corpus and seed at a time.

    python scripts/compare_recipes.py --corpus poems --seed 88   # train what is missing, sweep, write the JSON
    python scripts/compare_recipes.py --corpus poems --report    # mean ± std over the seeds written so far

For one seed, each variant below is trained at the `cpu` preset in runs/compare/<corpus>/
seed-<s>/<variant> (a stopped run goes on from its checkpoint when the command is rerun).
All GAN variants start from the same pretrained G (same seed, same pretraining; tested),
and each brings its own MLE baseline of equal budget (as many MLE updates from the
pretrained G as it makes adversarial G updates); beside them, the same generator trained
by MLE to its best validation NLL (train_mle.py). Then evaluate.py sweeps the temperature of every
model on both planes (BLEU-4 against Self-BLEU-4; LM score against reverse-LM score), and
results/compare/<corpus>/seed-<s>.json gets the sweep, each run's results and the
commands: small files, committed seed by seed. `--report` aggregates them, prints the
table of each model at T = 1 against the others at matched diversity (mean sweep over
seeds) and draws results/compare/<corpus>.png.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Optional

import evaluate as sweep  # scripts/evaluate.py, beside this script
from seqadv.checkpoint import write_text_atomic
from seqadv.cli import OneLineParser, guarded, parse_config, writable_dir
from seqadv.trainers import MLEConfig, MLETrainer, ScratchGANConfig, ScratchGANTrainer, SeqGANConfig, SeqGANTrainer
from seqadv.report import (LM_AXES, advantage_at, at_temperature_one, curve_advantages, dominating_temperatures,
                           sweep_axes)
from train_seeds import aggregate_sweeps, mean_std, report_sweep

RECIPES = {"mle": (MLEConfig, MLETrainer, "train_mle.py"),
           "seqgan": (SeqGANConfig, SeqGANTrainer, "train_seqgan.py"),
           "scratchgan": (ScratchGANConfig, ScratchGANTrainer, "train_scratchgan.py")}

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
    recipe, options = VARIANTS[variant]
    config_class, trainer_class, _ = RECIPES[recipe]
    if not (out / "results.json").is_file():
        if (out / "checkpoint.pt").is_file():
            config = config_class(resume=str(out))
        else:
            config = parse_config(config_class, ["--corpus", corpus, "--seed", str(seed), "--out", str(out), *options],
                                  RECIPES[recipe][2])
        print(f"{variant}, seed {seed}: {'resuming' if config.resume else 'training'} in {out}", flush=True)
        trainer_class(config).train()
    return json.loads((out / "results.json").read_text())


def run_seed(corpus: str, seed: int, runs: Path, results: Path) -> None:
    root = runs / corpus / f"seed-{seed}"
    trained = {v: train_variant(v, corpus, seed, root / v) for v in VARIANTS}
    eval_dir = root / "eval"
    if not (eval_dir / "eval.json").is_file():
        sweep.run(sweep.parse_args([*(str(root / m) for m in SWEPT), "--out", str(eval_dir), "--seed", str(seed),
                                    *SWEEP_ARGS]))
    swept = json.loads((eval_dir / "eval.json").read_text())
    commands = {v: f"python scripts/{RECIPES[r][2]} --corpus {corpus} --seed {seed} --out {root / v} {' '.join(o)}".strip()
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


def seed_advantages(sweeps: dict[int, dict], gans: list[str], mles: list[str], x_key: str, y_key: str) -> dict:
    """Each GAN's advantage over each MLE curve in one plane, from per-seed sweeps ({seed: {model:
    curve}}): at T = 1, mean ± std over the seeds where the GAN lies inside the MLE curve (None if
    none); along the GAN's curve, the mean over seeds at each temperature every seed has inside it;
    and for each seed whose GAN at T = 1 lies outside the MLE curve, the MLE temperatures that beat
    it on both axes (none: the curves cannot be compared there).
    {gan: {mle: {"at_t1": {mean, std, values} | None, "along_curve": {temperature: mean},
                 "outside": {seed: [temperature]}}}}"""
    table = {}
    for gan in gans:
        table[gan] = {}
        for mle in mles:
            at_one, outside = [], {}
            for seed, curves in sweeps.items():
                point = at_temperature_one(curves[gan], x_key, y_key)
                if point is None:
                    continue
                value = advantage_at(point, curves[mle], x_key, y_key)
                if value is None:
                    outside[seed] = dominating_temperatures(point, curves[mle], x_key, y_key)
                else:
                    at_one.append(value)
            along = [curve_advantages(curves[gan], curves[mle], x_key, y_key) for curves in sweeps.values()]
            shared = sorted(set.intersection(*(set(a) for a in along)))
            table[gan][mle] = {"at_t1": mean_std(at_one) if at_one else None,
                               "along_curve": {t: statistics.fmean(a[t] for a in along) for t in shared},
                               "outside": outside}
    return table


def at_t1_cell(advantage: Optional[dict], seeds: int) -> str:
    if advantage is None:
        return "-"
    if len(advantage["values"]) < seeds:  # a std over the seeds inside the MLE curve would pass for one over all
        return f"{advantage['mean']:+.4f} ({len(advantage['values'])} of {seeds} seeds)"
    return f"{advantage['mean']:+.4f} ± {advantage['std']:.4f}"


def along_cell(along: dict) -> str:
    return f"{min(along.values()):+.4f} {max(along.values()):+.4f} ({len(along)})" if along else "-"


def report(corpus: str, results: Path) -> None:
    files = sorted(results.glob("seed-*.json"))
    if not files:
        raise ValueError(f"{results}: no seed-*.json yet (run --seed first)")
    records = [json.loads(f.read_text()) for f in files]
    seeds = [r["seed"] for r in records]
    summary = aggregate_sweeps([r["sweep"] for r in records])
    print(f"{corpus}: {len(seeds)} seed(s) {', '.join(map(str, seeds))}")
    shown = ("bleu4", "self_bleu4", "lm_score", "reverse_lm_score")
    print(f"{'model at T=1':<28}" + "".join(f"{k:>22}" for k in shown))
    for model, curve in summary.items():
        at_one = next(p for p in curve if p["temperature"] == 1.0)
        print(f"{model:<28}" + "".join(f"{at_one[k]['mean']:>13.4f} ± {at_one[k]['std']:.4f}" if k in at_one else f"{'':>22}"
                                       for k in shown))
    # each GAN against each MLE model at matched diversity, in both planes, seed by seed: a seed's GAN
    # against the same seed's MLE curve, so the std over seeds is the std of the advantage itself
    mles = [m for m in summary if m.split("/")[-1] in ("mle", "mle_best")]
    gans = [m for m in summary if m not in mles]
    advantages = {}
    for x_key, y_key, _, _ in (sweep_axes(False), LM_AXES):
        advantages[y_key] = table = seed_advantages({r["seed"]: r["sweep"] for r in records}, gans, mles, x_key, y_key)
        print(f"\n{y_key} of each GAN at T=1 minus the MLE curve's at the same {x_key}, mean ± std over seeds "
              f"(positive: the GAN is better; -: outside that sweep)")
        print(f"{'':<28}" + "".join(f"{m:>24}" for m in mles))
        for gan, row in table.items():
            print(f"{gan:<28}" + "".join(f"{at_t1_cell(v['at_t1'], len(records)):>24}" for v in row.values()))
        print("the same along each GAN's curve: its lowest and highest mean advantage over its temperatures "
              "inside the MLE curve's range (how many)")
        for gan, row in table.items():
            print(f"{gan:<28}" + "".join(f"{along_cell(v['along_curve']):>24}" for v in row.values()))
        for gan, row in table.items():
            for mle, v in row.items():
                if v["outside"]:
                    beaten = sum(1 for temperatures in v["outside"].values() if temperatures)
                    print(f"{gan} at T=1 lies outside {mle}'s curve in seed(s) {', '.join(map(str, v['outside']))}: "
                          f"a point of that curve is better on both axes in {beaten} of them")
    write_text_atomic(results / "summary.json", json.dumps({"seeds": seeds, "sweep": summary,
                                                            "advantage_at_matched_diversity": advantages}, indent=2))
    report_sweep(summary, seeds, corpus, results.parent / f"{corpus}.png")


def main(argv: Optional[list[str]] = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, choices=["poems", "coco"])
    parser.add_argument("--seed", type=int, action="append", help="train and sweep this seed (repeatable)")
    parser.add_argument("--report", action="store_true", help="aggregate the seeds written so far")
    parser.add_argument("--runs", default="runs/compare", help="where the runs go (not committed)")
    parser.add_argument("--results", default="results/compare", help="where the per-seed JSON goes (committed)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    if not args.seed and not args.report:
        parser.error("nothing to do: give --seed S (train and sweep a seed) and/or --report")
    for seed in args.seed or []:
        if not 0 <= seed < 2**32:
            parser.error(f"--seed must be in 0..{2**32 - 1}, got {seed}")

    def body():
        results = Path(args.results) / args.corpus
        # the directories are checked before anything is trained: a run of hours must not end
        # on a path it cannot write
        writable_dir(results, "--results")
        if args.seed:
            writable_dir(args.runs, "--runs")
        for seed in args.seed or []:
            run_seed(args.corpus, seed, Path(args.runs), results)
        if args.report:
            report(args.corpus, results)
    return guarded("compare_recipes.py", body, argv)


if __name__ == "__main__":
    sys.exit(main())
