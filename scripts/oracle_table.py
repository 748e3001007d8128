#!/usr/bin/env python
"""The family on the SeqGAN paper's oracle: NLL-oracle of each recipe, the MLE of equal budget
beside it, and each paper's own figure, from committed per-seed JSON.

    python scripts/oracle_table.py                          # the table, from results/oracle/
    python scripts/oracle_table.py --collect runs/oracle    # first copy the finished seeds there
    python scripts/oracle_table.py --todo                   # the commands of the seeds not yet committed

Each seed is one run of a recipe's script at the `cpu` preset (the commands are in each
JSON's "command"), SeqGAN's, LeakGAN's, RelGAN's and CoT's (each with a generator of its own)
from scratch, RelGAN's with the beta_max 1 of its paper's oracle experiment, the others from
SeqGAN's pretrained G of the same seed (`--init-from`), so those recipes of a
seed start from one generator and their MLE baselines are alike:

    python scripts/train_seqgan.py --corpus oracle --oracle paper --seed S --out runs/oracle/seqgan/seed-S
    python scripts/train_maligan.py --corpus oracle --oracle paper --seed S --out runs/oracle/maligan/seed-S \\
        --init-from runs/oracle/seqgan/seed-S

`--collect DIR` copies DIR/<recipe>/seed-<s>/results.json (finished runs only) to
results/oracle/<recipe>/seed-<s>.json with the command that made it; DIR/seqgan-paper/
(`--preset paper`, one seed) is the paper preset's row. The table is mean ± std over the
seeds of the final models (sample std); "vs MLE" is the mean ± std of each seed's recipe
minus its own MLE (the pairs share the pretrained G). NLL-oracle rewards a G that keeps to the
oracle's likely sequences and drops the rest, so "NLL-test vs MLE" gives the other direction,
the same paired difference of the NLL of the held-out oracle samples under G.

A pretrained G made again on another machine is not the same G: the same command, seed and
thread count give other float sums on another CPU. The table says under it which (recipe, seed)
started from a pretrained G other than SeqGAN's of that seed (its pretrained NLLs differ): their
"vs MLE" is still paired, a comparison with SeqGAN's row in that seed is not.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Optional

from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import OneLineParser, guarded

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "oracle"
ORDER = ["seqgan", "scratchgan", "maligan", "rankgan", "leakgan", "dpgan", "relgan", "cot"]
OWN_G = ("seqgan", "leakgan", "relgan", "cot")  # run from scratch: they pretrain (or start) their own generator
SEEDS = (88, 89, 90)
LABELS = {"seqgan": "SeqGAN", "scratchgan": "ScratchGAN-style", "maligan": "MaliGAN", "rankgan": "RankGAN",
          "leakgan": "LeakGAN", "dpgan": "DPGAN", "relgan": "RelGAN", "cot": "CoT"}
# each paper's own NLL-oracle on this oracle (length 20), where it reports one, and where from
PAPER = {
    "seqgan": "8.736 (SeqGAN, Table 1; MLE 9.038; the official log: 8.683)",
    "scratchgan": "none (no oracle experiment)",
    "maligan": "none (no oracle experiment; Texygen: a curve, no figure)",
    "rankgan": "8.247 (RankGAN, Table 1; its code's README: 8.00-8.50)",
    "leakgan": "7.038 (LeakGAN, Table 1)",
    "dpgan": "none (no oracle experiment: review and dialogue generation)",
    "relgan": "6.680 ± 0.343 (RelGAN, Table 1, beta_max 1 as here)",
    "cot": "not checked (the paper's table could not be read here)",
}
# options a recipe's oracle seeds take beyond the preset (RelGAN's Table 1 used beta_max 1 at length 20)
ORACLE_OPTIONS = {"relgan": " --beta-max 1"}


def command(result: dict) -> str:
    c = result["config"]
    line = (f"python scripts/train_{result['recipe']}.py --corpus oracle --oracle {c['oracle']} --seed {c['seed']}"
            f"{'' if c['preset'] == 'cpu' else ' --preset ' + c['preset']} --out {c['out']}")
    if c.get("init_from"):
        line += f" --init-from {c['init_from']}"
    if result["recipe"] == "relgan":
        line += f" --beta-max {c['beta_max']:g}"
    return line


def collect(runs: Path) -> list[Path]:
    """Copy each finished seed's results.json under `runs` into results/oracle/ with its command."""
    written = []
    for results in sorted(runs.glob("*/seed-*/results.json")):
        result = json.loads(results.read_text())
        if result.get("corpus") != "oracle-paper":
            continue
        result["command"] = command(result)
        target = RESULTS / results.parent.parent.name / f"{results.parent.name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps(result, indent=1) + "\n")
        written.append(target)
    return written


def todo(root: Path = RESULTS) -> list[str]:
    """The command of every (recipe, seed) of the table without its JSON under `root`, SeqGAN's
    first (the others start from its pretrained G), then SeqGAN's `--preset paper` seed."""
    lines = []
    for recipe in ORDER:
        for seed in SEEDS:
            if (root / recipe / f"seed-{seed}.json").exists():
                continue
            out = f"runs/oracle/{recipe}/seed-{seed}"
            init = "" if recipe in OWN_G else f" --init-from runs/oracle/seqgan/seed-{seed}"
            lines.append(f"python scripts/train_{recipe}.py --corpus oracle --oracle paper --seed {seed} --out {out}{init}"
                         f"{ORACLE_OPTIONS.get(recipe, '')}")
    if not (root / "seqgan-paper" / f"seed-{SEEDS[0]}.json").exists():
        lines.append(f"python scripts/train_seqgan.py --corpus oracle --oracle paper --preset paper --seed {SEEDS[0]} "
                     f"--out runs/oracle/seqgan-paper/seed-{SEEDS[0]}")
    return lines


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(root: Path = RESULTS) -> list[str]:
    lines = [f"{'recipe':<18}{'seeds':>6}{'pretrained':>16}{'MLE':>16}{'recipe':>16}{'vs MLE':>17}"
             f"{'NLL-test vs MLE':>18}   paper's figure"]
    for recipe in ORDER + ["seqgan-paper"]:
        runs = [json.loads(p.read_text()) for p in sorted((root / recipe).glob("seed-*.json"))]
        if not runs:
            continue
        name = recipe if recipe in LABELS else "seqgan"
        values = {m: [r["models"][m]["nll_oracle"] for r in runs] for m in ("pretrained", "mle", name)}
        diffs = [a - b for a, b in zip(values[name], values["mle"])]
        # the other direction: NLL of held-out oracle samples under G (a G that drops modes pays here)
        test_diffs = [r["models"][name]["nll_test"] - r["models"]["mle"]["nll_test"] for r in runs]
        label = LABELS[name] + (" (paper preset)" if recipe == "seqgan-paper" else "")
        lines.append(f"{label:<18}{len(runs):>6}{mean_std(values['pretrained']):>16}{mean_std(values['mle']):>16}"
                     f"{mean_std(values[name]):>16}{mean_std(diffs):>17}{mean_std(test_diffs):>18}   {PAPER[name]}")
    return lines


def unpaired(root: Path = RESULTS) -> list[str]:
    """A line per recipe naming the seeds whose pretrained G is not SeqGAN's of the seed (as
    its pretrained NLL-oracle and NLL-test tell), or none when every seed shares it."""
    def pretrained(recipe: str) -> dict[int, dict]:
        return {seed: json.loads(path.read_text())["models"]["pretrained"]
                for seed in SEEDS if (path := root / recipe / f"seed-{seed}.json").exists()}

    reference = pretrained("seqgan")
    lines = []
    for recipe in ORDER:
        if recipe in OWN_G:  # SeqGAN's is the reference; the others of OWN_G pretrain their own generator
            continue
        seeds = [seed for seed, models in pretrained(recipe).items() if seed in reference and models != reference[seed]]
        if seeds:
            lines.append(f"{LABELS[recipe]}: seed {', '.join(map(str, seeds))} started from a pretrained G other "
                         f"than SeqGAN's of the seed (their pretrained NLLs differ)")
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collect", default=None, help="a folder of runs (<recipe>/seed-<s>/) to copy the finished ones from")
    parser.add_argument("--todo", action="store_true", help="print the commands of the seeds without committed JSON "
                        "(a stopped one goes on with --resume OUT), then stop")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    def run():
        if args.todo:
            print("\n".join(todo()) or "every seed is committed")
            return
        if args.collect is not None:
            runs = Path(args.collect)
            if not runs.is_dir():
                parser.error(f"--collect {runs}: no such folder")
            for path in collect(runs):
                print(f"wrote {path.relative_to(REPO)}")
        lines = table()
        if len(lines) == 1:
            parser.error(f"no per-seed JSON under {RESULTS.relative_to(REPO)}: run the recipes and --collect them")
        print("NLL-oracle of G's samples; last, NLL-test of held-out oracle samples under G (lower is better "
              "for both), cpu preset, mean ± std over seeds")
        print("\n".join(lines))
        for line in unpaired():
            print(line)
    return guarded("oracle_table.py", run, argv)


if __name__ == "__main__":
    sys.exit(main())
