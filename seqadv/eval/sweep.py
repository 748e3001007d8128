"""Quality against diversity over a temperature sweep, for trained generators.

A single number at temperature 1 flatters a model that trades diversity for quality
(Caccia et al., "Language GANs Falling Short"): lowering an MLE model's temperature buys
quality too. So every model is sampled at each temperature of a sweep, and the curves are
compared where their diversity matches (`seqadv.eval.report`). For each model and
temperature, on `samples` sequences drawn with one seed:
  * BLEU-2..max_n against the whole test split, Self-BLEU-2..max_n (each sample against
    the others; on a seeded subsample of `self_bleu_samples` if there are more);
  * NLL-test of the temperature-scaled model; NLL-oracle on the oracle corpus;
  * distinct n-grams (1..4) and samples copied whole from the training split;
  * text corpora, with `lm_score`: the LM score (the samples' NLL under a language model
    trained once, on the training split) and, at the `reverse_lm_temperatures` that are
    swept, the reverse-LM score (the test split's NLL under a language model trained on
    `reverse_lm_samples` samples); both `seqadv.eval.metrics.train_language_model`.

    from seqadv.eval.sweep import sweep, write_sweep
    result = sweep(["runs/seqgan"], temperatures=(0.8, 1.0, 1.2), samples=500)
    write_sweep(result, "runs/seqgan/eval")        # eval.json, eval.csv, eval.png

Models are found through the recipe registry (`seqadv.core.registry.RECIPES`): a run
directory stands for its recipe's `sweep_files`, and any registered text recipe's
generator can be swept. scripts/evaluate.py is this module's command line (`run_sweep`).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from seqadv.core.device import resolve_device
from seqadv.core.errors import DataError
from seqadv.core.registry import RECIPES
from seqadv.data.dataset import SequenceData, load_corpus
from seqadv.data.tokenizer import tokenizer_from_state
from seqadv.eval.metrics import (BLEU, LM_STEPS, copied, distinct_ngrams, lm_score, nll, reverse_lm_score, self_bleu,
                                 train_language_model)
from seqadv.eval.report import matched_diversity, plot_sweep, sweep_axes, sweep_planes
from seqadv.models.generator import Generator, LanguageModel
from seqadv.runtime.checkpoint import CheckpointError, load, write_text_atomic
from seqadv.runtime.cli import OneLineParser, below_minimum, float_tuple, writable_dir

# evaluate.py's --help line; train_seeds.py and compare_recipes.py parse the sweep's options with it too
DESCRIPTION = "Quality against diversity over a temperature sweep, for trained generators."

Say = Callable[[str], object]


@dataclass
class SweepSettings:
    """What a sweep measures, as evaluate.py's options set it. eval.json records every field
    (with the command line's `debug`), so a sweep can be repeated from its file. A value out of
    range is a ValueError naming the option, as the command line says it."""

    models: tuple[str, ...] = ()  # run directories (their mle.pt and seqgan.pt) or generator checkpoints
    out: Optional[str] = None  # default: <the first run's directory>/eval
    temperatures: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)
    samples: int = 2000
    self_bleu_samples: int = 2000  # Self-BLEU on a seeded subsample of at most this many
    max_n: int = 5  # BLEU and Self-BLEU orders 2..max_n
    seed: int = 2017  # every model and temperature samples from this seed
    lm_score: bool = True  # the LM and reverse-LM scores (text corpora)
    reverse_lm_temperatures: tuple[float, ...] = (0.7, 1.0, 1.3)  # those also in `temperatures` get one
    reverse_lm_samples: int = 5000  # samples a reverse LM trains on (at most the training split's size)
    lm_steps: int = LM_STEPS  # Adam updates of each language model
    lm_seeds: int = 1  # each LM and reverse-LM score: the mean of this many (language model, sample set) pairs
    data_dir: Optional[str] = None
    device: str = "auto"
    debug: bool = False  # evaluate.py's --debug (full tracebacks); kept so that eval.json shows the command line

    def __post_init__(self):
        # paths given from Python become the strings the command line gives, so eval.json can hold them
        self.models = tuple(str(m) for m in ([self.models] if isinstance(self.models, (str, Path)) else self.models))
        self.out = None if self.out is None else str(self.out)
        self.data_dir = None if self.data_dir is None else str(self.data_dir)
        problem = below_minimum(self, 2, ["samples", "self_bleu_samples"])
        if problem:
            raise ValueError(problem)
        if not 2 <= self.max_n <= 5:
            raise ValueError(f"--max-n must be in 2..5, got {self.max_n}")
        if any(t <= 0 for t in self.temperatures):
            raise ValueError(f"--temperatures must be positive, got {','.join(f'{t:g}' for t in self.temperatures)}")
        if any(t <= 0 for t in self.reverse_lm_temperatures):
            raise ValueError("--reverse-lm-temperatures must be positive, got "
                             f"{','.join(f'{t:g}' for t in self.reverse_lm_temperatures)}")
        problem = below_minimum(self, 1, ["reverse_lm_samples", "lm_steps", "lm_seeds"])
        if problem:
            raise ValueError(problem)
        if self.seed < 0:
            raise ValueError(f"--seed must not be negative, got {self.seed}")


def settings_from_args(argv: Optional[list[str]] = None, description: str = DESCRIPTION) -> SweepSettings:
    """evaluate.py's command line -> its settings (argparse's exit 2 for an unknown option,
    ValueError for a value out of range)."""
    parser = OneLineParser(description=description)
    parser.add_argument("models", nargs="+", help="run directories or generator checkpoints (.pt)")
    parser.add_argument("--out")
    parser.add_argument("--temperatures", type=float_tuple, default=SweepSettings.temperatures, metavar="T,T,...")
    for name in ("samples", "self_bleu_samples", "max_n", "seed", "reverse_lm_samples", "lm_steps", "lm_seeds"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(SweepSettings, name))
    parser.add_argument("--lm-score", action=argparse.BooleanOptionalAction, default=SweepSettings.lm_score,
                        help="Caccia et al.'s LM and reverse-LM scores (text corpora; default: on)")
    parser.add_argument("--reverse-lm-temperatures", type=float_tuple,
                        default=SweepSettings.reverse_lm_temperatures, metavar="T,T,...",
                        help="the temperatures of --temperatures that get a reverse-LM score (--lm-seeds LMs each)")
    parser.add_argument("--data-dir")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--debug", action="store_true")
    given = vars(parser.parse_args(argv))
    return SweepSettings(**{**given, "models": tuple(given["models"])})


# --- the models and their corpus -----------------------------------------------------------------

def sweep_files() -> tuple[str, ...]:
    """The files of a run directory that the sweep takes, over every registered text recipe."""
    return tuple(dict.fromkeys(f for entry in RECIPES.values() if entry.kind == "text" for f in entry.sweep_files))


def model_paths(given: tuple[str, ...]) -> list[Path]:
    """A run directory stands for its MLE baseline and its adversarial generator: the
    files of the text recipes' `sweep_files` that it holds. A Hugging Face directory a
    trainer handed back (`seqgan-hf/`) stands for itself."""
    paths = []
    for name in given:
        path = Path(name)
        if path.is_dir() and (path / "config.json").is_file():
            paths.append(path)  # a Hugging Face directory a trainer handed back
        elif path.is_dir():
            files = sweep_files()
            found = [path / f for f in files if (path / f).is_file()]
            if not found:
                raise DataError(f"{path}: a directory without {', '.join(files[:-1])} or {files[-1]} "
                                f"(give a run's --out, or .pt files)")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise DataError(f"{path}: no such run directory or checkpoint")
    return paths


def model_names(paths: list[Path]) -> list[str]:
    """`mle`, `seqgan`, ... and, when two runs are compared, `run/mle` and so on."""
    names = [p.stem for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{p.stem}" for p in paths]
    return names


def load_generators(paths: list[Path], device: torch.device) -> tuple[dict, list[Generator]]:
    """The models' shared description (run config, vocabulary) and the generators."""
    loaded = [load(p, device) for p in paths]
    for item in loaded:
        entry = RECIPES.get(item.recipe)
        if entry is None or entry.kind != "text" or not isinstance(item.model, LanguageModel):
            text = [name for name, e in RECIPES.items() if e.kind == "text"]
            raise CheckpointError(f"{item.path}: a {item.recipe} model; evaluate.py sweeps the text generators "
                                  f"of {', '.join(text)} (pretrained.pt, {', '.join(sweep_files())})")
        first = loaded[0].state
        if (item.state.get("vocab") != first.get("vocab") or item.state.get("tokenizer") != first.get("tokenizer")
                or item.config.get("corpus") != loaded[0].config.get("corpus")):
            raise DataError(f"{item.path}: trained on another corpus or vocabulary than {paths[0]}; compare like with like")
    return loaded[0].state, [item.model for item in loaded]


def corpus_of(meta: dict, data_dir: Optional[str]) -> SequenceData:
    """The run's corpus, split and tokenised as it was for training (checked by the vocabulary)."""
    a = meta["config"]
    hf = meta.get("tokenizer") if (meta.get("tokenizer") or {}).get("kind") == "hf" else None
    data = load_corpus(a["corpus"], data_dir=data_dir or a.get("data_dir"), tokenizer=a.get("tokenizer"),
                       vocab_size=a.get("vocab_size"), max_length=a.get("max_length"), oracle=a.get("oracle", "random"),
                       max_train=a.get("max_train"), max_test=a.get("max_test"),
                       hf_tokenizer=tokenizer_from_state(hf) if hf else None)
    if hf:  # a Hugging Face model's logits may outnumber its tokenizer's ids
        data.vocab_size = max(data.vocab_size, meta["model"]["config"]["hf_config"]["vocab_size"])
    if (data.vocab.itos if data.vocab else None) != meta.get("vocab"):
        raise DataError(f"{a['corpus']}: its vocabulary no longer matches the one the models were trained with")
    return data


# --- one point of a curve ------------------------------------------------------------------------

def scored_samples(g: Generator, data: SequenceData, temperature: float, settings: SweepSettings) -> torch.Tensor:
    """The samples a point's metrics score, (settings.samples, data.length) token ids: drawn
    from `settings.seed`, so the same model gives the same samples again (those a
    comparison commits as text are these)."""
    rng = torch.Generator(device=g.device).manual_seed(settings.seed)
    return g.sample(settings.samples, data.length, temperature=temperature, generator=rng)


def evaluate_at(g: Generator, data: SequenceData, temperature: float, settings: SweepSettings, bleu: Optional[BLEU],
                train_tokens: set, real_lm: Optional[list[Generator]] = None) -> dict:
    """Every metric of one model at one temperature, on `settings.samples` samples from
    `settings.seed`; with `real_lm`, the LM score, and the reverse-LM score at
    `settings.reverse_lm_temperatures`.

    Shape: g samples (settings.samples, data.length) token ids; data.test is (N, data.length).
    Returns: {"temperature": float, metric: float or int, ...}, the metrics in the order
    eval.json and eval.csv keep them.
    """
    samples = scored_samples(g, data, temperature, settings)
    m: dict = {"temperature": temperature}
    m["nll_test"] = nll(g, data.test.to(g.device), eos_token=data.eos_token, pad_token=data.pad_token,
                        temperature=temperature)
    if data.oracle is not None:
        m["nll_oracle"] = nll(data.oracle, samples)
    tokens = [data.tokens(s) for s in samples.cpu()]
    if bleu is not None:
        for n in range(2, settings.max_n + 1):
            m[f"bleu{n}"] = bleu.score(tokens, n)
        subset = tokens
        if len(tokens) > settings.self_bleu_samples:
            subset = random.Random(settings.seed).sample(tokens, settings.self_bleu_samples)
        for n in range(2, settings.max_n + 1):
            m[f"self_bleu{n}"] = self_bleu(subset, n)
    for n in range(1, 5):
        m[f"distinct{n}"] = distinct_ngrams(tokens, n)
    m["copied"] = copied(tokens, train_tokens)
    if real_lm is not None:
        # the i-th language model scores the i-th sample set (the first: the samples above)
        sets = [samples] + [g.sample(settings.samples, data.length, temperature=temperature,
                                     generator=torch.Generator(device=g.device).manual_seed(settings.seed + i))
                            for i in range(1, len(real_lm))]
        m["lm_score"] = statistics.fmean(lm_score(s, lm, data.eos_token, data.pad_token) for s, lm in zip(sets, real_lm))
        if temperature in settings.reverse_lm_temperatures:
            m["reverse_lm_score"] = reverse_lm_of(g, data, temperature, settings)
    return m


def real_language_model(data: SequenceData, settings: SweepSettings, device: torch.device) -> list[Generator]:
    """The LM score's language models: trained once, on the training split, from seeds
    `settings.seed`, `settings.seed + 1`, ... (`settings.lm_seeds` of them; the score is the
    mean of the i-th scoring the i-th sample set)."""
    return [train_language_model(data.train, data.vocab_size, start_token=data.start_token, eos_token=data.eos_token,
                                 pad_token=data.pad_token, steps=settings.lm_steps, seed=settings.seed + i,
                                 device=device)
            for i in range(settings.lm_seeds)]


def reverse_lm_samples(data: SequenceData, settings: SweepSettings) -> int:
    # no more than the real language model trains on, so that neither sees more text
    return min(settings.reverse_lm_samples, len(data.train))


def reverse_lm_of(g: Generator, data: SequenceData, temperature: float, settings: SweepSettings) -> float:
    """The reverse-LM score of one model at one temperature. Its samples come from their own
    generator seeded with `settings.seed` (more of them than the other metrics', which stay as
    they were), and every language model starts from the same seed: the scores of two
    models differ by what they were trained on only. With `settings.lm_seeds` K > 1: the mean
    of K scores, the i-th from samples and a language model both seeded `settings.seed + i`
    (the sample set and the language model's seed each bring noise: `seqadv.eval.noise`)."""
    scores = []
    for i in range(settings.lm_seeds):
        rng = torch.Generator(device=g.device).manual_seed(settings.seed + i)
        samples = g.sample(reverse_lm_samples(data, settings), data.length, temperature=temperature, generator=rng)
        scores.append(reverse_lm_score(samples, data.test, data.vocab_size, start_token=data.start_token,
                                       eos_token=data.eos_token, pad_token=data.pad_token, steps=settings.lm_steps,
                                       seed=settings.seed + i, device=g.device))
    return statistics.fmean(scores)


# --- the sweep -----------------------------------------------------------------------------------

def sweep(models=(), settings: Optional[SweepSettings] = None, *, say: Say = print, **options) -> dict:
    """Sweep the temperature of every model: `models` (run directories or generator
    checkpoints) with `settings`, any field of which `options` replaces (`samples=500`).
    `say` gets the lines that describe the sweep before it runs (`print`; `lambda line: None`
    says nothing). Nothing is written: `write_sweep` does.

    Returns: {"settings": {every SweepSettings field, "checkpoints", "corpus", "num_test",
    "num_train"}, "models": {name: [evaluate_at's point per temperature]}}: what eval.json holds.
    """
    settings = dataclasses.replace(settings or SweepSettings(), **options)
    if models:
        settings = dataclasses.replace(settings, models=models)
    _given(settings)
    device = resolve_device(settings.device)
    return _measure(model_paths(settings.models), settings, device, say)


def _given(settings: SweepSettings) -> None:
    if not settings.models:
        raise ValueError("no models to sweep: give run directories or generator checkpoints")


def _measure(paths: list[Path], settings: SweepSettings, device: torch.device, say: Say) -> dict:
    meta, generators = load_generators(paths, device)
    data = corpus_of(meta, settings.data_dir)
    if data.oracle is not None:
        data.oracle.to(device)
    references = None if data.oracle is not None else data.references()
    bleu = None if references is None else BLEU(references, max_n=settings.max_n)
    train_tokens = {tuple(data.tokens(s)) for s in data.train}
    say(f"corpus {data.name}: {len(data.test) if references is None else len(references)} test sequences as references; {settings.samples} samples per model "
        f"and temperature (seed {settings.seed})"
        + (f"; Self-BLEU on a seeded subsample of {settings.self_bleu_samples}"
           if settings.samples > settings.self_bleu_samples else ""))
    real_lm = None
    if settings.lm_score and data.oracle is None:  # the oracle has NLL-oracle and NLL-test, the exact versions
        real_lm = real_language_model(data, settings, device)
        reverse = [t for t in settings.temperatures if t in settings.reverse_lm_temperatures]
        lms = "a language model" if settings.lm_seeds == 1 else f"the mean of {settings.lm_seeds} language models"
        say(f"LM score under {lms} of the training split ({settings.lm_steps} steps); reverse-LM score "
            + (f"at T = {', '.join(f'{t:g}' for t in reverse)}, from {reverse_lm_samples(data, settings)} samples"
               if reverse else "at no swept temperature (see --reverse-lm-temperatures)"))
    results = {}
    for name, g in zip(model_names(paths), generators):
        results[name] = [evaluate_at(g, data, t, settings, bleu, train_tokens, real_lm) for t in settings.temperatures]
    recorded = {**dataclasses.asdict(settings), "checkpoints": [str(p) for p in paths], "corpus": data.name,
                "num_test": len(data.test), "num_train": len(data.train)}
    return {"settings": recorded, "models": results}


def is_oracle(results: dict) -> bool:
    """Whether a sweep's curves are of the oracle corpus: only there is NLL-oracle measured."""
    return any("nll_oracle" in m for curve in results.values() for m in curve)


def metric_keys(results: dict) -> list[str]:
    """Every metric of the sweep, in order of first appearance: the reverse-LM score is
    measured at some temperatures only."""
    return list(dict.fromkeys(k for curve in results.values() for m in curve for k in m))


def write_sweep(result: dict, out) -> Path:
    """`sweep`'s result as eval.json, eval.csv (one row per model and temperature) and
    eval.png (quality against diversity, one curve per model, temperature 1 marked; beside
    it LM score against reverse-LM score where measured), in the directory `out` (made if
    needed). Returns that directory."""
    out = Path(out)
    results = result["models"]
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "eval.json", json.dumps({"settings": result["settings"], "models": results}, indent=2))
    keys = metric_keys(results)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["model", *keys])
    for name, curve in results.items():
        for m in curve:
            writer.writerow([name, *[m.get(k, "") for k in keys]])  # an empty cell where it was not measured
    write_text_atomic(out / "eval.csv", table.getvalue(), newline="")
    plot_sweep(results, *sweep_axes(is_oracle(results)),
               f"{result['settings']['corpus']}: quality against diversity over temperature (star: T = 1)",
               out / "eval.png")
    return out


def summary_lines(results: dict) -> list[str]:
    """The sweep as a table (the main metrics per model and temperature), then each model at
    temperature 1 against every other model's curve at the same diversity, in each plane."""
    keys = metric_keys(results)
    shown = [k for k in ("nll_test", "nll_oracle", "bleu2", "bleu4", "self_bleu2", "self_bleu4", "distinct2", "copied",
                         "lm_score", "reverse_lm_score") if k in keys]
    widths = [max(12, len(k) + 2) for k in shown]
    lines = [f"{'model':<16}{'temp':>6}" + "".join(f"{k:>{w}}" for k, w in zip(shown, widths))]
    for name, curve in results.items():
        for m in curve:
            lines.append(f"{name:<16}{m['temperature']:>6.2f}" + "".join(
                f"{'':>{w}}" if k not in m else f"{m[k]:>{w}d}" if isinstance(m[k], int) else f"{m[k]:>{w}.4f}"
                for k, w in zip(shown, widths)))
    for x_key, y_key, _, _ in sweep_planes(results, is_oracle(results)):
        lines += matched_diversity(results, x_key, y_key)
    return lines


def run_sweep(settings: SweepSettings, say: Say = print) -> dict:
    """evaluate.py's whole command: the sweep, its files in `settings.out` (default
    <the first run's directory>/eval, checked writable before the sweep, not after) and the
    summary through `say`. Returns the curves, {name: [point per temperature]}."""
    _given(settings)
    device = resolve_device(settings.device)
    paths = model_paths(settings.models)
    out = writable_dir(settings.out if settings.out else paths[0].parent / "eval", "--out")
    result = _measure(paths, settings, device, say)
    write_sweep(result, out)
    for line in summary_lines(result["models"]):
        say(line)
    say(f"wrote {out / 'eval.json'}, {out / 'eval.csv'} and {out / 'eval.png'}")
    return result["models"]
