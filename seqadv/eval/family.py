"""The whole family on the published COCO protocol (`coco-texygen`), each recipe beside
temperature-tuned MLE over seeds, with the published figures beside
(scripts/compare_recipes.py --corpus coco-texygen is the command line).

    from seqadv.eval.family import report, run_seed
    run_seed(88, Path("runs/compare"), Path("results/compare/coco-texygen"))   # what is missing
    summary = report(Path("results/compare/coco-texygen"))

One (variant, seed) at a time, so that a run of days can stop anywhere and go on from the
committed files on a fresh machine: each variant of `FAMILY` is trained at the `cpu` preset in
<runs>/coco-texygen/seed-<s>/<variant> (resumed from its checkpoint if stopped), its models
(the pretrained G where the run wrote one, its equal-budget MLE, the GAN) are swept over
temperature on both planes, and <results>/<variant>/seed-<s>.json keeps the sweep, the run's
results and wall time, and the commands, with each model's samples at T = 1 (the ones the
sweep scored) as <results>/<variant>/samples/seed-<s>-<model>.txt.gz. A variant whose JSON
is there is done. `report` reads those files only.

MLE is measured three ways, since each answers another question: `mle_best` (MLE to its best
validation NLL: the strongest plain baseline), each GAN's own MLE of equal budget (continued
from the same pretrained G), and the pretrained G the GAN started from.
"""
from __future__ import annotations

import functools
import gzip
import json
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from seqadv.core.device import resolve_device
from seqadv.core.registry import recipe
from seqadv.data.dataset import load_corpus
from seqadv.eval.compare import SWEEP_ARGS, lm_noise_of, seed_advantages
from seqadv.eval import oracle_family
from seqadv.eval.metrics import BLEU, LM_STEPS, self_bleu
from seqadv.eval.published import NOT_FOUND, OURS, PUBLISHED
from seqadv.eval.report import (LM_AXES, advantages_at, at_temperature_one, comparison_branch, plot_sweep, save_figure,
                                sweep_axes)
from seqadv.eval.seeds import aggregate_sweeps, mean_std, script_of, sweep_statistic, train_or_resume
from seqadv.eval.sweep import (SweepSettings, corpus_of, load_generators, model_names, run_sweep, scored_samples,
                               settings_from_args)
from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import parse_config

Say = Callable[[str], object]
CORPUS = "coco-texygen"


@dataclass(frozen=True)
class Variant:
    recipe: str
    options: tuple[str, ...] = ()
    # another variant whose pretrained G (same recipe family, preset and seed: the same G) this
    # one starts from instead of pretraining again; used only where that run is on this machine
    init_from: Optional[str] = None


# in the order they run: SeqGAN first, since four others start from its pretrained G
FAMILY: dict[str, Variant] = {
    "mle_best": Variant("mle"),
    "seqgan": Variant("seqgan"),
    # the options the poems and COCO comparison found best for SeqGAN, named (docs/results.md)
    "seqgan_loo_cold": Variant("seqgan", ("--pg-baseline", "loo", "--sample-temperature", "0.8"), "seqgan"),
    "scratchgan": Variant("scratchgan"),
    "maligan": Variant("maligan", (), "seqgan"),
    "rankgan": Variant("rankgan", (), "seqgan"),
    "leakgan": Variant("leakgan"),
    "dpgan": Variant("dpgan", (), "seqgan"),
    "relgan": Variant("relgan"),
    "cot": Variant("cot"),
}
REFERENCE = "mle_best"
X_BLEU, Y_BLEU = sweep_axes(False)[:2]  # self_bleu4, bleu4
X_LM, Y_LM = LM_AXES[:2]


def run_dir(runs: Path, seed: int, name: str) -> Path:
    return runs / CORPUS / f"seed-{seed}" / name


def train_arguments(runs: Path, seed: int, name: str, train_options: tuple[str, ...] = ()) -> list[str]:
    """The variant's command-line options (`train_options` after them: tests give a tiny preset);
    --init-from only where the source run's pretrained G is on this machine (otherwise the variant
    pretrains the same G itself)."""
    v = FAMILY[name]
    arguments = ["--corpus", CORPUS, "--seed", str(seed), "--out", str(run_dir(runs, seed, name)), *v.options,
                 *train_options]
    if v.init_from and (run_dir(runs, seed, v.init_from) / "checkpoint.pt").is_file():
        arguments += ["--init-from", str(run_dir(runs, seed, v.init_from))]
    return arguments


def run_variant(name: str, seed: int, runs: Path, results: Path, say: Say = print, train_options: tuple[str, ...] = (),
                sweep_args: tuple[str, ...] = tuple(SWEEP_ARGS), texygen_samples: int = 10000) -> Path:
    """Train (or resume) one variant of one seed, sweep its models (evaluate.py's `sweep_args`),
    write its JSON and samples. Returns the JSON's path; nothing is done if it exists."""
    target = results / name / f"seed-{seed}.json"
    if target.is_file():
        record = json.loads(target.read_text())
        missing = "texygen_protocol" not in record or (name == REFERENCE and "texygen_curve" not in record)
        if missing and (run_dir(runs, seed, name) / "results.json").is_file():
            # a JSON written before Texygen's counts were kept: add them from the run's models
            loaded = load_models(model_files(run_dir(runs, seed, name), name, "--init-from" in record["command"]))
            if "texygen_protocol" not in record:
                record["texygen_protocol"] = texygen_protocol(loaded, name, seed, texygen_samples)
            if name == REFERENCE and "texygen_curve" not in record:
                record["texygen_curve"] = texygen_curve(loaded, seed, texygen_samples)
            write_text_atomic(target, json.dumps(record, indent=2))
        return target
    v = FAMILY[name]
    out = run_dir(runs, seed, name)
    if v.init_from and not (out / "checkpoint.pt").is_file():
        source = run_dir(runs, seed, v.init_from)
        if not (source / "checkpoint.pt").is_file() and not (results / v.init_from / f"seed-{seed}.json").is_file():
            run_variant(v.init_from, seed, runs, results, say, train_options, sweep_args, texygen_samples)
    arguments = train_arguments(runs, seed, name, train_options)
    command = f"python scripts/{script_of(v.recipe)} {' '.join(arguments)}"
    if not (out / "results.json").is_file() and not (out / "checkpoint.pt").is_file():
        say(f"{name}, seed {seed}: {command}")
    train_or_resume(v.recipe, out, lambda: parse_config(recipe(v.recipe).config, arguments, script_of(v.recipe)),
                    f"{name}, seed {seed}")
    trained = json.loads((out / "results.json").read_text())
    if trained["config"].get("init_from") is None and "--init-from" in arguments:
        # the run began without the source's G (it was not here then) and was resumed since: say so
        arguments = arguments[:arguments.index("--init-from")]
        command = f"python scripts/{script_of(v.recipe)} {' '.join(arguments)}"
    models = model_files(out, name, trained["config"].get("init_from") is not None)
    eval_dir = out / "eval"
    sweep_argv = [*map(str, models), "--out", str(eval_dir), "--seed", str(seed), *sweep_args]
    if not (eval_dir / "eval.json").is_file():
        run_sweep(settings_from_args(sweep_argv), say)
    swept = json.loads((eval_dir / "eval.json").read_text())
    loaded = load_models(models)
    samples = write_samples(loaded, settings_from_args(sweep_argv), results / name / "samples", seed)
    record = {"corpus": CORPUS, "seed": seed, "variant": name, "recipe": v.recipe, "command": command,
              "evaluate": f"python scripts/evaluate.py {' '.join(sweep_argv)}",
              "train": {k: trained[k] for k in ("models", "generator_updates", "timings", "machine") if k in trained},
              "sweep": {f"{name}/{model}": curve for model, curve in swept["models"].items()},
              "samples": {f"{name}/{model}": str(path) for model, path in samples.items()},
              "texygen_protocol": texygen_protocol(loaded, name, seed, texygen_samples)}
    if name == REFERENCE:
        record["texygen_curve"] = texygen_curve(loaded, seed, texygen_samples)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, json.dumps(record, indent=2))
    say(f"wrote {target}")
    return target


def model_files(out: Path, name: str, started_from_another: bool = False) -> list[Path]:
    """A variant's swept models: its pretrained G where the run wrote one (not where it came
    --init-from another run, whose sweep has it already), its equal-budget MLE, the GAN."""
    pretrained = out / "pretrained.pt"
    return ([pretrained] if pretrained.is_file() and not started_from_another else []) + \
        [out / f for f in recipe(FAMILY[name].recipe).sweep_files]


def load_models(models: list[Path]) -> tuple[list[tuple[str, object]], object]:
    """The models' generators, by their sweep names, and their corpus: loaded once for the
    samples and Texygen's counts (evaluate.py's default device and data directory)."""
    meta, generators = load_generators(models, resolve_device(SweepSettings.device))
    return list(zip(model_names(models), generators)), corpus_of(meta, None)


def texygen_protocol(loaded: tuple, variant: str, seed: int, samples: int = 10000, temperature: float = 1.0) -> dict:
    """Each model (`load_models`) at `temperature` counted as Texygen's COCO table was
    (`texygen_counts`), on `samples` samples drawn from `seed` + 1 (not the sweep's 2,000):
    {"<variant>/<model>": counts}."""
    generators, data = loaded
    settings = SweepSettings(samples=samples, seed=seed + 1)
    references = data.references()
    return {f"{variant}/{model}": texygen_counts([data.tokens(r) for r in
                                                  scored_samples(g, data, temperature, settings).cpu()], references)
            for model, g in generators}


# MLE-best's temperature curve counted Texygen's way: a published point can then be read against it
TEXYGEN_CURVE_TEMPERATURES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.2)


def texygen_curve(loaded: tuple, seed: int, samples: int = 10000) -> list[dict]:
    """MLE-best's curve (`load_models` of its one model) over `TEXYGEN_CURVE_TEMPERATURES`, each
    point counted as Texygen counted (10,000 samples): [{"temperature", "bleu2".."bleu5",
    "self_bleu2".."self_bleu5"}]."""
    curve = []
    for t in TEXYGEN_CURVE_TEMPERATURES:
        counts = next(iter(texygen_protocol(loaded, REFERENCE, seed, samples, t).values()))
        curve.append({"temperature": t, **{f"bleu{n}": counts["bleu"][n - 2] for n in range(2, 6)},
                      **{f"self_bleu{n}": counts["self_bleu"][n - 2] for n in range(2, 6)}})
    return curve


def write_samples(loaded: tuple, settings, out: Path, seed: int) -> dict[str, Path]:
    """Each model's (`load_models`) samples at T = 1, the very ones the sweep scored
    (`scored_samples`), one text a line, gzip-compressed (a fixed mtime: the same samples give
    the same bytes)."""
    generators, data = loaded
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for model, g in generators:
        rows = scored_samples(g, data, 1.0, settings).cpu()
        text = "".join(data.text(row) + "\n" for row in rows)
        path = out / f"seed-{seed}-{model}.txt.gz"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(text.encode("utf-8"))
        tmp.replace(path)
        written[model] = path
    return written


def run_seed(seed: int, runs: Path, results: Path, variants: Optional[list[str]] = None, say: Say = print,
             train_options: tuple[str, ...] = (), sweep_args: tuple[str, ...] = tuple(SWEEP_ARGS),
             texygen_samples: int = 10000) -> None:
    """Every variant of one seed that has no JSON yet, in `FAMILY`'s order."""
    for name in variants or list(FAMILY):
        if name not in FAMILY:
            raise ValueError(f"unknown variant {name!r}: choose from {', '.join(FAMILY)}")
        run_variant(name, seed, runs, results, say, train_options, sweep_args, texygen_samples)


# --- the report ------------------------------------------------------------------------------------

def load_records(results: Path) -> dict[str, dict[int, dict]]:
    """{variant: {seed: its JSON}} of every variant's committed seeds."""
    records: dict[str, dict[int, dict]] = {}
    for name in FAMILY:
        for path in sorted((results / name).glob("seed-*.json")):
            record = json.loads(path.read_text())
            records.setdefault(name, {})[record["seed"]] = record
    return records


def gan_model(name: str) -> str:
    """The adversarial generator's model name in the variant's sweep: `seqgan/seqgan`,
    `seqgan_loo_cold/seqgan`, ..."""
    return f"{name}/{recipe(FAMILY[name].recipe).sweep_files[-1].removesuffix('.pt')}"


def start_model(name: str, record: dict, records: dict) -> Optional[tuple[str, dict]]:
    """The pretrained G a variant started from: its own pretrained.pt, or the source variant's
    (--init-from) of the same seed. (model name, that variant's sweep) or None."""
    own = f"{name}/pretrained"
    if own in record["sweep"]:
        return own, record["sweep"]
    source = FAMILY[name].init_from
    if source and "--init-from" in record["command"] and record["seed"] in records.get(source, {}):
        other = records[source][record["seed"]]
        if f"{source}/pretrained" in other["sweep"]:
            return f"{source}/pretrained", other["sweep"]
    return None


def references_of(name: str, seed: int, records: dict) -> dict[str, tuple[str, list]]:
    """The MLE curves a GAN of one seed is measured against: {role: (model, curve)} for `best`
    (mle_best), `equal` (its own equal-budget MLE) and `start` (the pretrained G it began from),
    those that exist."""
    record = records[name][seed]
    found = {}
    if seed in records.get(REFERENCE, {}):
        found["best"] = (f"{REFERENCE}/mle_best", records[REFERENCE][seed]["sweep"][f"{REFERENCE}/mle_best"])
    if f"{name}/mle" in record["sweep"]:
        found["equal"] = (f"{name}/mle", record["sweep"][f"{name}/mle"])
    start = start_model(name, record, records)
    if start is not None:
        found["start"] = (start[0], start[1][start[0]])
    return found


ROLES = {"best": "MLE at its best validation NLL", "equal": "its own MLE of equal budget",
         "start": "the pretrained G it started from"}


def role_sweeps(name: str, role: str, records: dict) -> dict[int, dict]:
    """The pairs a verdict against one MLE curve (`ROLES`) is made of: {seed: {"gan": the GAN's
    sweep, "mle": that seed's curve for the role}} over the GAN's seeds that have the role. A GAN
    of seed 89 is judged against MLE of seed 89, never a mean over seeds."""
    sweeps = {}
    for seed in sorted(records[name]):
        refs = references_of(name, seed, records)
        if role in refs:
            sweeps[seed] = {"gan": records[name][seed]["sweep"][gan_model(name)], "mle": refs[role][1]}
    return sweeps


def advantage(name: str, role: str, records: dict, x_key: str, y_key: str,
              noise: Optional[dict] = None) -> Optional[dict]:
    """The GAN's advantage at T = 1 over one MLE curve at matched diversity, over the seeds that
    have both (`compare.seed_advantages`, whose "at_t1" this returns with "seeds_total"; with
    `noise`, one point's measurement noise, also the std that noise alone gives the mean)."""
    sweeps = role_sweeps(name, role, records)
    if not sweeps:
        return None
    table = seed_advantages(sweeps, ["gan"], ["mle"], x_key, y_key, noise)["gan"]["mle"]
    return {**(table["at_t1"] or {}), "outside": table["outside"], "seeds_total": len(sweeps)}


# two-sided 95% quantiles of Student's t by degrees of freedom (seeds - 1): with 3 seeds a mean
# must lie 4.30 standard errors from 0, not 2, to be told from it
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def t_95(dof: int) -> float:
    """Student's t two-sided 95% quantile: the table up to 9 degrees of freedom, beyond it the
    Cornish-Fisher expansion about the normal's 1.95996 (within 0.001 from 10 on)."""
    if dof in T_95:
        return T_95[dof]
    z, v = 1.959964, float(dof)
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3))


def verdict(adv: Optional[dict]) -> str:
    """Above, on or below the MLE curve (`judge`), in words with the numbers behind it."""
    judged = judge(adv)
    word = judged["word"]
    if word in ("-", "outside"):
        return judged["text"]
    outside = outside_note(adv)
    if word == "ambiguous":
        return "ambiguous" + outside
    if word == "1 seed":
        if math.isfinite(adv.get("noise", math.inf)):  # the LM plane: one point's noise, through the curve's slope
            return f"1 seed, noise ±{adv['noise']:.3f}" + outside
        return "1 seed: no noise stated" + outside
    t, needed = judged["t"], judged["needed"]
    if word == "on":
        return f"on, within {abs(t):.1f} s.e. (95%: {needed:.2f})" + outside
    return f"{word}, by {abs(t):.1f} s.e. (95%: {needed:.2f})" + outside


def outside_counts(adv: dict) -> tuple[int, int]:
    """How many seeds' GAN lies outside the curve, and of those how many a point of the curve
    beats on both axes."""
    outside = adv.get("outside") or {}
    return len(outside), sum(1 for temperatures in outside.values() if temperatures)


def outside_note(adv: dict) -> str:
    """Seeds whose GAN lies outside the curve have no advantage to average: said, not dropped
    silently, with how many of them are dominated."""
    outside, beaten = outside_counts(adv)
    return f"; outside in {outside}, dominated in {beaten}" if outside else ""


def judge(adv: Optional[dict]) -> dict:
    """The verdict as data. Over the seeds whose GAN lies inside the MLE curve, the mean
    advantage in standard errors (the std over those seeds / sqrt(seeds)) against Student's t
    at 95% for that many seeds: "above" or "below" past it, "on" within it (not told apart from
    the curve with these seeds). A seed whose curve passes the GAN's diversity more than once
    has an advantage at each crossing: the test is made with every seed's lowest and again with
    every seed's highest, and where the two disagree the verdict is "ambiguous"; "above" from the
    seeds inside, with a seed outside that a point of the curve beats on both axes, is "ambiguous"
    too (those seeds say the opposite). One seed gives
    no verdict ("1 seed"; "ambiguous" if its crossings disagree in sign); no seed inside gives
    "outside" (with how many a point of the curve beats on both axes) or "-" (no curve).
    {"word", "t" and "needed" (where tested; the end nearer 0 where two agree), "text" (outside, -)}"""
    if adv is None or "seeds" not in adv:
        if adv is not None and adv["outside"]:
            outside, beaten = outside_counts(adv)
            return {"word": "outside", "text": f"outside in {outside}/{adv['seeds_total']}, dominated in {beaten}"}
        return {"word": "-", "text": "-"}
    seeds = list(adv["seeds"].values())
    k = len(seeds)
    if k < 2:
        found = seeds[0]["advantages"]
        return {"word": "ambiguous" if min(found) < 0 < max(found) else "1 seed"}
    needed = t_95(k - 1)
    ends = []
    for pick in (min, max):
        values = [pick(v["advantages"]) for v in seeds]
        mean, se = statistics.fmean(values), statistics.stdev(values) / math.sqrt(k)
        # no spread: identical advantages in every seed; exactly 0 (the GAN is its own start) is on the curve
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean) if se == 0 else mean / se
        ends.append({"word": ("above" if t > 0 else "below") if abs(t) > needed else "on", "t": t, "needed": needed})
    # the two ends disagree, or an "above" has a seed that a point of the curve beats on both axes
    if ends[0]["word"] != ends[1]["word"] or (ends[0]["word"] == "above" and outside_counts(adv)[1]):
        return {"word": "ambiguous", "needed": needed}
    return min(ends, key=lambda e: abs(e["t"]))


PLANES = {"bleu": "BLEU-4", "lm": "LM score"}
PLANE_AXES = {"bleu": sweep_axes(False), "lm": LM_AXES}  # plane -> (diversity key, quality key, their labels)
CURVES = {"best": "MLE-best", "equal": "equal-budget MLE", "start": "pretrained G"}


def plain(advantages: dict[str, Optional[dict]]) -> str:
    """One plane's verdict in short, over the MLE curves (role -> advantage): a GAN is better than
    MLE only where it beats every MLE a researcher could have tuned, so "below" where any curve
    says below (a curve that dominates it in every seed, two or more, counts: a point of it is
    better on both axes), "mixed" where some curves say below and others above, else "on" where
    any says on, else "above" where every curve says above; "no verdict" where the rest have none
    (one seed, ambiguous, outside without being dominated). The curves that decide are named ("all
    three" where they all do)."""
    said: dict[str, list[str]] = {}
    for role, adv in advantages.items():
        word = judge(adv)["word"]
        if word == "-":
            continue
        if word == "outside":
            outside, beaten = outside_counts(adv)
            word = "dominated" if beaten == adv["seeds_total"] >= 2 else "none"
        group = "below" if word == "dominated" else word if word in ("above", "below", "on") else "none"
        said.setdefault(group, []).append(CURVES[role] + (" (dominated)" if word == "dominated" else ""))

    def named(curves: list[str]) -> str:
        return "all three" if len(curves) == len(CURVES) else ", ".join(curves)
    if "below" in said and "above" in said:
        return f"mixed: **below** {named(said['below'])}; **above** {named(said['above'])}"
    if "below" in said:
        return "**below** " + named(said["below"])
    if "on" in said:
        return "on " + named(said["on"])
    if "above" in said and "none" not in said:
        return "**above** " + named(said["above"])
    return "no verdict"


def in_short(table: dict) -> dict[str, dict[str, str]]:
    """`plain` of every GAN and plane of `report`'s "matched_diversity"."""
    return {name: {plane: plain({role: planes[plane][role]["advantage"] for role in ROLES}) for plane in PLANES}
            for name, planes in table.items()}


def verdict_table(table: dict, short: Optional[dict] = None) -> list[str]:
    """A markdown table for the README, two rows per GAN (its BLEU plane, its LM plane): the
    plane's verdict in short (`plain`), then a column per MLE curve, the verdict first, then the
    advantage (`report`'s "matched_diversity")."""
    lines = ["| recipe | plane | in short | " + " | ".join(f"vs {ROLES[r]}" for r in ROLES) + " |",
             "|---" * (3 + len(ROLES)) + "|"]
    short = short or in_short(table)
    for name, planes in table.items():
        for i, plane in enumerate(PLANES):
            cells = [brief(planes[plane][role]["advantage"]) for role in ROLES]
            lines.append(f"| {name if i == 0 else ''} | {PLANES[plane]} | {short[name][plane]} | " + " | ".join(cells)
                         + " |")
    return lines


def brief(adv: Optional[dict]) -> str:
    """One verdict cell of the README: "**below** -0.673 ± 0.047 (20.2 s.e., 3 seeds)"; the bar a
    verdict needs is the table's caption's (Student's t at 95% for that many seeds)."""
    judged = judge(adv)
    word = judged["word"]
    if word in ("-", "outside"):
        return judged["text"]
    outside = outside_note(adv)
    k = len(adv["seeds"])
    # where a curve passes the GAN's diversity more than once, the range over its crossings, not a midpoint
    value = (f"{adv['low']:+.3f}..{adv['high']:+.3f}" if adv["low"] != adv["high"] else f"{adv['low']:+.3f}")
    if word == "ambiguous":
        return f"ambiguous {value} ({k} seed{'s' if k > 1 else ''}{outside})"
    if word == "1 seed":
        noise = f", noise ±{adv['noise']:.3f}" if math.isfinite(adv.get("noise", math.inf)) else ""
        return f"{value} (1 seed{noise}{outside})"
    shown = f"**{word}**" if word != "on" else word
    return f"{shown} {value} ± {adv['std']:.3f} ({abs(judged['t']):.1f} s.e., {k} seeds{outside})"


def cell(adv: Optional[dict]) -> str:
    if adv is None or "seeds" not in adv:
        return "-"
    mean = (adv["low"] + adv["high"]) / 2
    text = f"{adv['low']:+.3f}..{adv['high']:+.3f}" if adv["ambiguous_seeds"] else f"{mean:+.3f}"
    k = len(adv["seeds"])
    return text + (f" ± {adv['std']:.3f}" if k > 1 else "") + f" ({k}/{adv['seeds_total']})"


def seed_by_seed(adv: Optional[dict]) -> str:
    """Each seed's advantage behind a cell, by seed: "88 -0.002, 89 -0.014"; a curve passing a
    seed's diversity more than once gives that seed's lowest..highest; a seed outside the curve
    says so, and "dominated" where a point of the curve beats it on both axes."""
    if adv is None:
        return "-"
    found = {}
    for seed, entry in adv.get("seeds", {}).items():
        values = entry["advantages"]
        found[int(seed)] = (f"{min(values):+.3f}..{max(values):+.3f}" if len(values) > 1 else f"{values[0]:+.3f}")
    for seed, beaten in adv.get("outside", {}).items():
        found[int(seed)] = "dominated" if beaten else "outside"
    return ", ".join(f"{seed} {text}" for seed, text in sorted(found.items())) or "-"


def t1_values(name: str, records: dict, model: Optional[str] = None) -> dict:
    """Mean, std and values over seeds of every metric at T = 1 of a variant's model (its GAN by default)."""
    model = model or gan_model(name)
    points = [next(p for p in r["sweep"][model] if p["temperature"] == 1.0) for r in records[name].values()]
    keys = [k for k in points[0] if k != "temperature" and all(k in p for p in points)]
    return {k: mean_std([p[k] for p in points]) for k in keys}


def report(results: Path, say: Say = print, oracle: Optional[Path] = None) -> dict:
    """Every committed (variant, seed): the family at T = 1 beside the published figures, each GAN
    against the three MLE curves at matched diversity on both planes with a verdict, the wall
    times, and the family's table on the SeqGAN oracle (`oracle`, by default
    <results>/../../oracle); writes <results>/summary.json and the figure
    <results>/../coco-texygen.png."""
    records = load_records(results)
    if not records:
        raise ValueError(f"{results}: no <variant>/seed-*.json yet (run --seed first)")
    gans = [n for n in FAMILY if n != REFERENCE and n in records]
    say(f"{CORPUS}: the published COCO protocol (all 10,000 training captions; Texygen's 10,000 test captions as "
        f"BLEU's references); 2,000 samples a model and temperature")
    say("seeds per variant: " + ", ".join(f"{n} {sorted(records[n])}" for n in records)
        + "".join(f"; not run yet: {', '.join(missing)}" for missing in [[n for n in FAMILY if n not in records]]
                  if missing))

    say("\nat T = 1, mean ± std over seeds (NLL-test on the 6,815 test captions in the vocabulary)")
    shown = ("nll_test", "bleu2", "bleu3", "bleu4", "bleu5", "self_bleu2", "self_bleu3", "self_bleu4", "self_bleu5",
             "copied", "lm_score", "reverse_lm_score", "length")
    # copied: of the 2,000 samples, how many are training captions; length: their mean number of tokens
    # (from the committed samples; BLEU's brevity penalty and Self-BLEU both move with it)
    say(f"{'model':<26}" + "".join(f"{k.replace('self_bleu', 'sbleu').replace('reverse_lm_score', 'rev_lm'):>16}"
                                   for k in shown))
    rows = {}

    def row(name: str, model: str) -> None:
        # over the seeds whose sweep has this model (a variant pretrains its own G only on some machines), named
        # where they are not all the variant's
        having = {name: {s: r for s, r in records[name].items() if model in r["sweep"]}}
        if not having[name]:
            return
        note = (f"   (seed {', '.join(map(str, sorted(having[name])))})"
                if len(having[name]) < len(records[name]) else "")
        values = t1_values(name, having, model)
        lengths = [statistics.fmean(map(len, texts)) for seed in having[name]
                   if (texts := samples_of(results, model, seed))]
        if lengths:
            values["length"] = mean_std(lengths)
        rows[model] = values
        say(f"{model:<26}" + "".join(f"{values[k]['mean']:>9.3f} ±{values[k]['std']:.3f}" if k in values
                                     else f"{'-':>16}" for k in shown) + note)

    for name in records:
        row(name, gan_model(name) if name != REFERENCE else f"{REFERENCE}/mle_best")
    real = real_text_scores()
    say(f"{'training captions':<26}" + "".join(f"{real[k]:>16.3f}" if k in real else f"{'-':>16}" for k in shown)
        + "   (2,000 of them, drawn with seed 2017, scored as a model's samples: what real text gets)")
    say("the MLE baselines the GANs are also measured against, at T = 1: each variant's own MLE of equal budget "
        "(<variant>/mle) and the pretrained G it trained itself (<variant>/pretrained; the variants started "
        "--init-from SeqGAN's use seqgan/pretrained)")
    for name in gans:
        for model in (f"{name}/mle", f"{name}/pretrained"):
            row(name, model)

    noise = lm_noise_of(results, CORPUS, LM_STEPS)
    table = {}
    for plane, (x_key, y_key, *_) in PLANE_AXES.items():
        say(f"\n{y_key} of each GAN at T = 1 minus the MLE curve's at the GAN's {x_key}, mean ± std over seeds "
            f"(seeds with both / seeds; positive: the GAN is better); a..b: a curve passes the GAN's diversity more "
            f"than once, the means of each seed's lowest and highest advantage; verdict: the mean in standard errors "
            f"over the seeds inside the curve, against Student's t at 95% (where a curve passes more than once, "
            f"tested with the lowest and with the highest: ambiguous where the two disagree); outside in k/n: "
            f"the GAN's {x_key} lies outside the curve in k of n seeds, dominated in m: a point of the curve is "
            f"better on both axes in m of them" + ("; noise: the std that one point's measurement noise alone gives "
                                                   "the advantage, through the MLE curve's slope" if plane == "lm"
                                                   else ""))
        cells = {}
        for name in gans:
            advs = {role: advantage(name, role, records, x_key, y_key, noise if plane == "lm" else None)
                    for role in ROLES}
            entries = {role: {"advantage": a, "verdict": verdict(a)} for role, a in advs.items()}
            table.setdefault(name, {})[plane] = entries
            cells[name] = [cell(e["advantage"]) + "  " + e["verdict"] for e in entries.values()]
        width = 4 + max([len("vs " + r) for r in ROLES.values()] + [len(c) for row in cells.values() for c in row])
        say(f"{'':<18}" + "".join(f"{'vs ' + ROLES[r]:>{width}}" for r in ROLES))
        for name, row in cells.items():
            say(f"{name:<18}" + "".join(f"{c:>{width}}" for c in row))
        say(f"  each seed's advantage behind those cells ({y_key}; dominated: outside the curve, and a point of "
            f"it better on both axes):")
        for name in gans:
            say(f"  {name:<16}" + "   ".join(f"vs {CURVES[role]}: {seed_by_seed(entry['advantage'])}"
                                           for role, entry in table[name][plane].items()))

    if noise is None:
        say(f"the LM plane's measurement noise of one point: not measured on {CORPUS} (python scripts/lm_noise.py "
            f"<mle_best.pt> --steps {LM_STEPS} --repeats 4 --temperatures 1.0 --out "
            f"{results.parent / 'lm_noise' / (CORPUS + '.json')}); the seeds' spread above includes it")
    else:
        say(f"the LM plane's measurement noise of one point: LM {noise['quality']:.4f}, reverse-LM "
            f"{noise['diversity']:.4f} ({noise['source']}); the seeds' spread above includes it")
        chosen = json.loads(Path(noise["source"]).read_text()).get("chosen")
        if chosen:
            say(f"  each point here is scored by one language model (the sweep's default); the budget chosen "
                f"for one comparison, '{chosen['budget']}', would give LM {chosen['lm_score']:.4f}, reverse-LM "
                f"{chosen['reverse_lm_score']:.4f} at {chosen['cost']:g} times the LM plane's cost (about "
                f"{(chosen['cost'] - 1) * chosen['seconds_per_point'] / chosen['cost'] * 10 / 60:.0f} more "
                f"minutes for the 10 reverse-LM points of a GAN's variant and seed): not spent, since the verdicts rest on the seeds' spread")

    say("\nwall time of a seed's training on this machine (one thread, beside another job), the least over seeds "
        "(the cost: pauses and a third job only add to a run's time, and docs/results.md names each), then each "
        "seed's; runs started --init-from another variant's pretrained G do not count that pretraining")
    walls = {}
    for name in records:
        per_seed = {seed: r["train"]["timings"]["total_s"] for seed, r in sorted(records[name].items())
                    if "timings" in r["train"]}
        if per_seed:
            walls[name] = {**mean_std(list(per_seed.values())), "least": min(per_seed.values()), "seeds": per_seed}
            started = [seed for seed, r in records[name].items() if "--init-from" in r["command"]]
            say(f"  {name:<18}{walls[name]['least']:>8.0f} s   seed "
                + ", ".join(f"{seed}: {t:.0f} s" for seed, t in per_seed.items())
                + (f"   (seed {', '.join(map(str, sorted(started)))} started from {FAMILY[name].init_from}'s "
                   f"pretrained G)" if started else ""))

    published = published_lines(results, records, real, say)
    oracle_rows = oracle_lines(results.parent.parent / "oracle" if oracle is None else oracle, say)
    figure = results.parent / f"{CORPUS}.png"
    draw(records, gans, figure, real)
    say(f"wrote {figure}")
    counted = results.parent / f"{CORPUS}-texygen-counts.png"
    if draw_counted_their_way(records, gans, counted, real):
        say(f"wrote {counted}")
    say("\nthe verdicts (markdown, as the README shows them): each GAN at T = 1 against each MLE curve at its "
        "own diversity, BLEU-4 at its Self-BLEU-4 and LM score at its reverse-LM score; the advantage, positive "
        "where the GAN is better, mean ± std over the seeds inside the curve; above or below where the mean lies "
        "past Student's t at 95% in standard errors (std / sqrt(seeds)): "
        + ", ".join(f"{t_95(k - 1):.2f} with {k} seeds" for k in (3, 2)) + "; else on (not told apart from the "
        "curve with these seeds; each cell is its own test, not corrected for the table's many); one seed gives no verdict "
        "(on the LM plane it states the std that one point's measurement noise gives the advantage); outside in "
        "k/n, dominated in m: the GAN's diversity lies outside the curve in k of n seeds, and a point of the curve "
        "is better on both axes in m of them (an above with a dominated seed is ambiguous); in short, over the three "
        "curves: below where any says below (or dominates it in every seed, two or more), mixed where some say "
        "below and others above, else on where any says on, else above where all say above, else no verdict; the "
        "curves that decide are named (all three where they all do)")
    short = in_short(table)
    for line in verdict_table(table, short):
        say(line)
    for plane in ("bleu", "lm"):
        path = results.parent / f"{CORPUS}-{plane}-against-curves.png"
        draw_against_curves(records, gans, short, plane, path)
        say(f"wrote {path} (each GAN against the three MLE curves of its verdict)")
    summary = {"seeds": {n: sorted(r) for n, r in records.items()}, "at_t1": rows, "training_captions": real, "matched_diversity": table,
               "in_short": short,
               "lm_noise": noise, "wall_time_s": walls, "published": published,
               "not_found": NOT_FOUND, "oracle_table": oracle_rows}
    write_text_atomic(results / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary


def oracle_lines(root: Path, say: Say) -> list[str]:
    """The family on the SeqGAN paper's oracle (the previous benchmark), printed beside this one."""
    lines = oracle_family.table(root) if root.is_dir() else []
    say(f"\nthe family on the SeqGAN paper's oracle beside it (python scripts/oracle_table.py, from {root}):")
    if len(lines) < 2:
        say("  no committed oracle seeds")
        return []
    lines = [oracle_family.HEADER] + lines + oracle_family.unpaired(root)
    for line in lines:
        say(line)
    return lines


def texygen_counts(samples: list, references: list) -> dict:
    """BLEU-2..5 of every sample against every test caption and Self-BLEU-2..5 of every sample
    against all the others: how Texygen's COCO table was counted, over 10,000 texts. (Its Bleu
    class defaults to the first 500 references, is_fast=True; its table was not made that way:
    its "training set" row, .740/.520/.337/.218 and Self-BLEU .892/.747/.573/.415, is what the
    10,000 training captions score counted as here, `real_text_scores`.)"""
    bleu = BLEU(references, max_n=5)
    return {"bleu": [bleu.score(samples, n) for n in range(2, 6)],
            "self_bleu": [self_bleu(samples, n) for n in range(2, 6)], "samples": len(samples)}


@functools.lru_cache(maxsize=1)
def family_corpus():
    """The coco-texygen corpus, loaded once for the report (the training captions' row and the
    references that published protocols count against)."""
    return load_corpus(CORPUS)


@functools.lru_cache(maxsize=2)
def real_text_scores(count: int = 2000, seed: int = 2017) -> dict:
    """`count` training captions (a seeded draw) scored as a model's samples are (BLEU-2..5
    against the test captions, Self-BLEU-2..5 among themselves), and all 10,000 counted as
    Texygen counted (`texygen_counts`): what real text gets on this protocol."""
    data = family_corpus()
    every = [data.tokens(row) for row in data.train]
    samples = [every[i] for i in random.Random(seed).sample(range(len(every)), count)]
    references = data.references()
    bleu = BLEU(references, max_n=5)
    scores = {f"bleu{n}": bleu.score(samples, n) for n in range(2, 6)}
    scores["length"] = statistics.fmean(map(len, samples))
    scores.update({f"self_bleu{n}": self_bleu(samples, n) for n in range(2, 6)})
    scores["texygen"] = texygen_counts(every, references)
    return scores


def samples_of(results: Path, model: str, seed: int) -> Optional[list[list[str]]]:
    """A model's committed samples at T = 1 (`write_samples`), each split on spaces into the tokens
    that were scored; None where the file is missing."""
    variant, stem = model.split("/")
    path = results / variant / "samples" / f"seed-{seed}-{stem}.txt.gz"
    if not path.is_file():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.split() for line in f.read().splitlines()]


def on_their_protocol(results: Path, records: dict, protocol: str, name: str, model: str,
                      references: list) -> Optional[dict]:
    """Ours at T = 1 counted as a published table counted its own, mean over seeds:
    "texygen": `texygen_counts` of 10,000 samples (each JSON's "texygen_protocol");
    "relgan": the first 200 committed samples against all test captions, as RelGAN's code
    (sample_size 200), no Self-BLEU. {"bleu": [...], "self_bleu": [...], "seeds": k}."""
    if protocol == "texygen":
        return counted_texygen_way(records, name, model)
    bleu = BLEU(references, max_n=5)
    scores = [[bleu.score(samples[:200], n) for n in range(2, 6)] for seed in records[name]
              if (samples := samples_of(results, model, seed)) is not None]
    if not scores:
        return None
    return {"bleu": [statistics.fmean(s[i] for s in scores) for i in range(4)], "self_bleu": [], "seeds": len(scores)}


def counted_texygen_way(records: dict, name: str, model: str) -> Optional[dict]:
    """A model at T = 1 as Texygen's table counted (each JSON's "texygen_protocol", 10,000
    samples), mean over seeds: {"bleu": [...], "self_bleu": [...], "seeds": k}; None without it."""
    counts = [r["texygen_protocol"][model] for r in records.get(name, {}).values()
              if model in r.get("texygen_protocol", {})]
    if not counts:
        return None
    return {key: [statistics.fmean(c[key][i] for c in counts) for i in range(len(counts[0][key]))]
            for key in ("bleu", "self_bleu")} | {"seeds": len(counts)}


def texygen_mle_curve(records: dict) -> tuple[list[dict], int]:
    """MLE-best's temperature curve counted as Texygen counted (`texygen_curve`), mean over the
    seeds that have it, and how many; ([], 0) without any."""
    curves = [r["texygen_curve"] for r in records.get(REFERENCE, {}).values() if "texygen_curve" in r]
    if not curves:
        return [], 0
    return sweep_statistic(aggregate_sweeps([{"mle": c} for c in curves]), "mean")["mle"], len(curves)


def published_lines(results: Path, records: dict, real: dict, say: Say) -> dict:
    """Each published COCO figure beside ours at T = 1 (BLEU-2..5 | Self-BLEU-2..5): as we count
    (mean over seeds), and our committed samples counted as that table counted its own. Returns
    {source: {row: {"published", "ours", "ours_on_their_protocol"}}}."""
    say("\npublished COCO figures beside ours at T = 1 (BLEU-2..5 | Self-BLEU-2..5)")
    say(f"- {OURS}")
    references = None
    out = {}
    for entry in PUBLISHED:
        say(f"- {entry['source']}: {entry['protocol']}")
        rows = out[entry["source"]] = {}
        for row, figures in entry["rows"].items():
            name = row.removesuffix("_1000")  # RelGAN's two published settings, one recipe here
            line = {"published": figures, "ours": None, "ours_on_their_protocol": None}
            text = f"    {figures['label']:<16} published " + joined(figures.get("bleu")) + " | " + \
                joined(figures.get("self_bleu"))
            if name == "training_set":  # the training captions themselves, counted as Texygen counted
                line["ours_on_their_protocol"] = real["texygen"]
                text += f"   ours as they count {joined(real['texygen']['bleu'])} | {joined(real['texygen']['self_bleu'])}"
            elif name in records:
                model = f"{REFERENCE}/mle_best" if name == REFERENCE else gan_model(name)
                v = t1_values(name, records, model)
                line["ours"] = {"bleu": [v[f"bleu{n}"]["mean"] for n in range(2, 6) if f"bleu{n}" in v],
                                "self_bleu": [v[f"self_bleu{n}"]["mean"] for n in range(2, 6) if f"self_bleu{n}" in v]}
                text += f"   ours {joined(line['ours']['bleu'])} | {joined(line['ours']['self_bleu'])}"
                if references is None:
                    references = family_corpus().references()
                theirs = on_their_protocol(results, records, entry["protocol_key"], name, model, references)
                line["ours_on_their_protocol"] = theirs
                if theirs is not None:
                    text += f"   ours as they count {joined(theirs['bleu'])} | {joined(theirs['self_bleu'])}"
            rows[row] = line
            say(text)
    for name, why in NOT_FOUND.items():
        say(f"- {name}: no published COCO figure beside it: {why}")
    out["against our MLE counted their way"] = published_against_mle(records, say)
    return out


def published_against_mle(records: dict, say: Say) -> dict:
    """Each published Texygen point (BLEU-n at Self-BLEU-n) against our MLE-best's temperature
    curve counted the same way (`texygen_curve`, mean over seeds): the published BLEU-n minus our
    curve's at the published Self-BLEU-n, for n = 2..5 (positive: the published model is better
    than our MLE with its temperature tuned to the same diversity)."""
    mean, seeds = texygen_mle_curve(records)
    if not seeds:
        return {}
    temperatures = ", ".join(f"{p['temperature']:g}" for p in mean)
    say(f"\neach published Texygen point against our MLE-best's temperature curve counted their way "
        f"(T = {temperatures}, 10,000 samples each, mean over {seeds} "
        f"seed(s)): published BLEU-n minus our curve's at the published Self-BLEU-n, n = 2..5 "
        f"(positive: the published model is better; -: outside our curve; a..b: our curve passes that "
        f"Self-BLEU-n more than once, the range over its crossings)")
    found = {}
    for entry in PUBLISHED:
        if entry.get("protocol_key") != "texygen":
            continue
        for row, figures in entry["rows"].items():
            if "self_bleu" not in figures:
                continue
            gaps = []
            for n in range(2, 6):
                point = {f"bleu{n}": figures["bleu"][n - 2], f"self_bleu{n}": figures["self_bleu"][n - 2]}
                at = [a for a, _ in advantages_at(point, mean, f"self_bleu{n}", f"bleu{n}")]
                gaps.append(None if not at else at[0] if len(at) == 1 else [min(at), max(at)])
            found[row] = gaps
            say(f"    {figures['label']:<16} " + "  ".join(
                "-" if g is None else f"{g[0]:+.3f}..{g[1]:+.3f}" if isinstance(g, list) else f"{g:+.3f}" for g in gaps))
    return found


def draw_counted_their_way(records: dict, gans: list[str], path: Path, real: dict) -> bool:
    """BLEU-4 against Self-BLEU-4 as Texygen's table counted (10,000 texts each): MLE-best's
    temperature curve (`texygen_curve`, mean over seeds), each GAN at T = 1 (its
    `texygen_protocol`, mean over seeds) as a filled marker, Texygen's published point of the
    same recipe as an open one of the same colour, and the training captions, so the published
    table and our runs share one plane. False (nothing drawn) without MLE-best's counted curve."""
    curve, seeds = texygen_mle_curve(records)
    if not seeds:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    n = 4
    x, y = f"self_bleu{n}", f"bleu{n}"
    published = {row: figures for entry in PUBLISHED if entry.get("protocol_key") == "texygen"
                 for row, figures in entry["rows"].items() if "self_bleu" in figures}
    fig, ax = plt.subplots(figsize=(9.6, 5.6))
    ax.plot([p[x] for p in curve], [p[y] for p in curve], "-o", color="black", markersize=3,
            label=f"MLE-best, T = {curve[0]['temperature']:g}..{curve[-1]['temperature']:g} (ours)")
    for p in curve:
        ax.annotate(f"{p['temperature']:g}", (p[x], p[y]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    colours = plt.get_cmap("tab10").colors
    for i, name in enumerate([REFERENCE] + gans):
        colour = colours[i % len(colours)]
        counted = None if name == REFERENCE else counted_texygen_way(records, name, gan_model(name))
        if counted is not None:  # MLE-best is its curve above
            ax.plot(counted["self_bleu"][n - 2], counted["bleu"][n - 2], "*", markersize=13, color=colour,
                    label=f"{name} at T = 1 (ours)")
        if name in published:
            figures = published[name]
            ax.plot(figures["self_bleu"][n - 2], figures["bleu"][n - 2], "s", markersize=9, markerfacecolor="none",
                    markeredgewidth=2, color=colour, label=f"{figures['label']} (Texygen's table)")
    texygen = real["texygen"]
    ax.plot(texygen["self_bleu"][n - 2], texygen["bleu"][n - 2], "x", color="black", markersize=10,
            markeredgewidth=2, label="training captions (ours; Texygen's row on it)")
    ax.set_xlabel(f"Self-BLEU-{n} (lower: more diverse)")
    ax.set_ylabel(f"BLEU-{n}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{CORPUS}, counted as Texygen's table counted (10,000 texts): ours beside the published "
                 f"points", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def joined(values: Optional[list]) -> str:
    return "/".join(f"{x:.3f}" for x in values) if values else "-"


def draw(records: dict, gans: list[str], path: Path, real: dict) -> None:
    """Both planes: MLE at its best validation NLL as a curve over temperature (mean over its
    seeds, std as bars), each GAN's point at T = 1 (mean over its seeds), and the training
    captions scored as samples (BLEU plane)."""
    curves, errors = {}, {}
    if REFERENCE in records:
        agg = aggregate_sweeps([r["sweep"] for r in records[REFERENCE].values()])
        curves.update(sweep_statistic(agg, "mean"))
        errors.update(sweep_statistic(agg, "std"))
    for name in gans:
        agg = aggregate_sweeps([{gan_model(name): r["sweep"][gan_model(name)]} for r in records[name].values()])
        means, stds = sweep_statistic(agg, "mean"), sweep_statistic(agg, "std")
        one = [i for i, p in enumerate(means[gan_model(name)]) if p["temperature"] == 1.0]
        curves[name] = [means[gan_model(name)][i] for i in one]
        errors[name] = [stds[gan_model(name)][i] for i in one]  # (a std's "temperature" reads 0)
    # last, so that every model keeps its colour in both panels
    curves["training captions"] = [{"temperature": 1.0, X_BLEU: real[X_BLEU], Y_BLEU: real[Y_BLEU]}]
    errors["training captions"] = [{"temperature": 0.0, X_BLEU: 0.0, Y_BLEU: 0.0}]
    x_label, y_label = PLANE_AXES["bleu"][2:]
    plot_sweep(curves, X_BLEU, Y_BLEU, x_label, y_label,
               f"{CORPUS}: the family at T = 1 against MLE's temperature curve (mean ± std over seeds)", path, errors,
               colors={"training captions": "black"})


def role_curve(name: str, role: str, records: dict, x_key: str, y_key: str) -> Optional[dict]:
    """One MLE curve of a GAN's verdict in one plane, for drawing: over the seeds the verdict uses
    (`role_sweeps`, those whose GAN has a point at T = 1 in the plane, as `seed_advantages`
    counts them), the mean and std per temperature of each metric ("mean", "std": curves as
    `sweep_statistic` gives them), the "seeds", and the temperatures on every seed's comparison
    branch ("branch": `report.comparison_branch`, so that a point past one seed's fold is not drawn as part
    of the curve). None where no seed has it."""
    pairs = {seed: pair["mle"] for seed, pair in role_sweeps(name, role, records).items()
             if at_temperature_one(pair["gan"], x_key, y_key) is not None}
    if not pairs:
        return None
    grids = {tuple(p["temperature"] for p in curve) for curve in pairs.values()}
    if len(grids) > 1:  # aggregate_sweeps pairs points by position
        raise ValueError(f"{name}'s {role} curves were swept at different temperatures: {sorted(grids)}")
    agg = aggregate_sweeps([{"curve": curve} for curve in pairs.values()])
    branch = set.intersection(*({curve[i]["temperature"] for i in comparison_branch(curve, x_key, y_key)}
                                for curve in pairs.values()))
    return {"mean": sweep_statistic(agg, "mean")["curve"], "std": sweep_statistic(agg, "std")["curve"],
            "seeds": list(pairs), "branch": branch}


ROLE_STYLES = {"best": ("tab:blue", "-"), "equal": ("tab:orange", "--"), "start": ("tab:green", ":")}


def draw_against_curves(records: dict, gans: list[str], short: dict, plane: str, path: Path) -> None:
    """One plane, one panel per GAN: the three MLE curves its verdict is measured against (mean
    over the verdict's seeds, a dot per temperature, T = 1 ringed; a point past any seed's fold
    hollow and not joined, since no comparison uses it), each seed's GAN point at T = 1 as a
    small cross, their mean ± std as a star, and the verdict in short with its seeds and bar as
    the panel's title, so each verdict's evidence is one panel. The verdict is a paired test of
    each seed against its own seed's curves: the bars (spread over seeds) show the noise, not
    the test. `short`: `in_short`'s {name: {plane: text}}; `plane`: "bleu" or "lm"."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    x_key, y_key, x_label, y_label = PLANE_AXES[plane]
    columns = 3
    rows = max(1, math.ceil(len(gans) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.9 * rows), squeeze=False)
    for ax in axes.flat[len(gans):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, gans):
        for role in ROLES:
            curve = role_curve(name, role, records, x_key, y_key)
            if curve is None:
                continue
            mean, std = curve["mean"], curve["std"]
            kept = [i for i, p in enumerate(mean) if x_key in p and y_key in p and p["temperature"] in curve["branch"]]
            past = [i for i, p in enumerate(mean) if x_key in p and y_key in p and i not in kept]
            colour, style = ROLE_STYLES[role]
            ax.errorbar([mean[i][x_key] for i in kept], [mean[i][y_key] for i in kept],
                        xerr=[std[i][x_key] for i in kept], yerr=[std[i][y_key] for i in kept], color=colour,
                        linestyle=style, marker="o", markersize=2.5, capsize=1.5, linewidth=1.2,
                        label=f"{CURVES[role]} (seeds {', '.join(map(str, curve['seeds']))})")
            for i in past:
                ax.plot(mean[i][x_key], mean[i][y_key], "o", markersize=4, markerfacecolor="none", color=colour)
                ax.annotate(f"T={mean[i]['temperature']:g}, past the fold", (mean[i][x_key], mean[i][y_key]),
                            fontsize=5, color=colour, textcoords="offset points", xytext=(3, -6))
            for i in kept:
                if mean[i]["temperature"] == 1.0:
                    ax.plot(mean[i][x_key], mean[i][y_key], "o", markersize=7, markerfacecolor="none", color=colour)
            for i in (kept[0], kept[-1]) if role == "best" and kept else ():
                ax.annotate(f"T={mean[i]['temperature']:g}", (mean[i][x_key], mean[i][y_key]), fontsize=6,
                            textcoords="offset points", xytext=(3, 3))
        points = [p for r in records[name].values()
                  if (p := at_temperature_one(r["sweep"][gan_model(name)], x_key, y_key)) is not None]
        if points:
            xs, ys = [p[x_key] for p in points], [p[y_key] for p in points]
            ax.plot(xs, ys, "x", color="black", markersize=5, label=f"{name} at T = 1, each seed")
            mx, my = mean_std(xs), mean_std(ys)
            ax.errorbar([mx["mean"]], [my["mean"]], xerr=[mx["std"]], yerr=[my["std"]],
                        marker="*", markersize=13, color="tab:red", capsize=2, linestyle="none",
                        label=f"{name}, mean ± std")
        k = len(points)
        bar = f"{k} seeds, bar {t_95(k - 1):.2f} s.e." if k > 1 else f"{k} seed: no verdict"
        ax.set_title(f"{name}: {short.get(name, {}).get(plane, '-').replace('**', '')}\n({bar})", fontsize=8)
        ax.set_xlabel(x_label, fontsize=7)
        ax.set_ylabel(y_label, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a plane without scores (older sweeps) has nothing drawn
            ax.legend(fontsize=5.5, loc="best")
    fig.suptitle(f"{CORPUS}, the {'BLEU' if plane == 'bleu' else 'LM'} plane: each GAN against the three MLE curves "
                 f"its verdict uses (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
