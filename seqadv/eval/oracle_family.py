"""The family on the SeqGAN paper's oracle: NLL-oracle of each recipe, the MLE of equal budget
beside it, and each paper's own figure, from committed per-seed JSON
(<root>/<recipe>/seed-<s>.json; scripts/oracle_table.py is the command line, and the family
benchmark on COCO prints the same table beside its own).

    from seqadv.eval.oracle_family import table, unpaired
    print("\\n".join(table(Path("results/oracle")) + unpaired(Path("results/oracle"))))

Each seed is one run of a recipe's script at the `cpu` preset (the commands are in each JSON's
"command"): SeqGAN's, LeakGAN's, RelGAN's and CoT's (each with a generator of its own) from
scratch, RelGAN's with the beta_max 1 of its paper's oracle experiment, the others from
SeqGAN's pretrained G of the same seed (`--init-from`), so those recipes of a seed start from
one generator and their MLE baselines are alike. The table is mean ± std over the seeds of the
final models (sample std); "vs MLE" is the mean ± std of each seed's recipe minus its own MLE
(the pairs share the pretrained G). NLL-oracle rewards a G that keeps to the oracle's likely
sequences and drops the rest, so "NLL-test vs MLE" gives the other direction, the same paired
difference of the NLL of the held-out oracle samples under G.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from seqadv.runtime.checkpoint import write_text_atomic

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
HEADER = ("NLL-oracle of G's samples; last, NLL-test of held-out oracle samples under G (lower is better for both), "
          "cpu preset, mean ± std over seeds")


def command(result: dict) -> str:
    """The command line that made a run's results.json."""
    c = result["config"]
    line = (f"python scripts/train_{result['recipe']}.py --corpus oracle --oracle {c['oracle']} --seed {c['seed']}"
            f"{'' if c['preset'] == 'cpu' else ' --preset ' + c['preset']} --out {c['out']}")
    if c.get("init_from"):
        line += f" --init-from {c['init_from']}"
    if result["recipe"] == "relgan":
        line += f" --beta-max {c['beta_max']:g}"
    return line


def collect(runs: Path, root: Path) -> list[Path]:
    """Copy each finished seed's results.json under `runs` into `root` with its command."""
    written = []
    for results in sorted(runs.glob("*/seed-*/results.json")):
        result = json.loads(results.read_text())
        if result.get("corpus") != "oracle-paper":
            continue
        result["command"] = command(result)
        target = root / results.parent.parent.name / f"{results.parent.name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps(result, indent=1) + "\n")
        written.append(target)
    return written


def todo(root: Path) -> list[str]:
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


def table(root: Path) -> list[str]:
    """The header and a row per recipe with committed seeds under `root`."""
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


def unpaired(root: Path) -> list[str]:
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
