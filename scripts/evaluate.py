#!/usr/bin/env python
"""Quality against diversity over a temperature sweep, for trained generators.

    python scripts/evaluate.py runs/seqgan                     # its MLE baseline and SeqGAN
    python scripts/evaluate.py runs/seqgan/pretrained.pt runs/seqgan/mle.pt runs/seqgan/seqgan.pt
    python scripts/evaluate.py runs/seqgan --temperatures 0.8,1.0,1.2 --samples 500

A single number at temperature 1 flatters a model that trades diversity for
quality (Caccia et al., "Language GANs Falling Short"): lowering an MLE model's
temperature buys quality too. So every model is sampled at each temperature of a
sweep, and the curves are compared where their diversity matches. For each model
and temperature, on `--samples` sequences drawn with one seed:
  * BLEU-2..5 against the whole test split, Self-BLEU-2..5 (each sample against
    the others; on a seeded subsample of `--self-bleu-samples` if there are more);
  * NLL-test of the temperature-scaled model; NLL-oracle on the oracle corpus;
  * distinct n-grams (1..4) and samples copied whole from the training split;
  * text corpora, unless --no-lm-score: Caccia et al.'s LM score (the samples' NLL
    under an LSTM language model trained once, on the training split) and, at the
    `--reverse-lm-temperatures` that are swept, the reverse-LM score (the test
    split's NLL under a language model trained on `--reverse-lm-samples` samples).
    Both language models: `seqadv.eval.metrics.train_language_model`, `--lm-steps` updates.
Writes eval.json, eval.csv and eval.png (quality against diversity, one curve per
model, temperature 1 marked; beside it LM score against reverse-LM score) into
`--out` (default: <run>/eval).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from seqadv.core.device import resolve_device
from seqadv.core.errors import DataError
from seqadv.core.registry import RECIPES
from seqadv.data.dataset import SequenceData, load_corpus
from seqadv.eval.metrics import (
    BLEU,
    LM_STEPS,
    copied,
    distinct_ngrams,
    lm_score,
    nll,
    reverse_lm_score,
    self_bleu,
    train_language_model,
)
from seqadv.eval.report import matched_diversity, plot_sweep, sweep_axes, sweep_planes
from seqadv.models.generator import Generator, LanguageModel
from seqadv.runtime.checkpoint import CheckpointError, load, write_text_atomic
from seqadv.runtime.cli import (
    OneLineParser,
    below_minimum,
    float_tuple,
    guarded,
    writable_dir,
)


@dataclass
class Args:
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
    debug: bool = False


# --- pieces ----------------------------------------------------------------------------------

def sweep_files() -> tuple[str, ...]:
    """The files of a run directory that the sweep takes, over every registered text recipe."""
    return tuple(dict.fromkeys(f for entry in RECIPES.values() if entry.kind == "text" for f in entry.sweep_files))


def model_paths(given: tuple[str, ...]) -> list[Path]:
    """A run directory stands for its MLE baseline and its adversarial generator (its
    recipe's `sweep_files`)."""
    paths = []
    for name in given:
        path = Path(name)
        if path.is_dir():
            files = sweep_files()
            found = next(([path / f for f in entry.sweep_files] for entry in RECIPES.values() if entry.kind == "text"
                          and entry.sweep_files and all((path / f).is_file() for f in entry.sweep_files)), [])
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
        if item.state.get("vocab") != first.get("vocab") or item.config.get("corpus") != loaded[0].config.get("corpus"):
            raise DataError(f"{item.path}: trained on another corpus or vocabulary than {paths[0]}; compare like with like")
    return loaded[0].state, [item.model for item in loaded]


def corpus_of(meta: dict, data_dir: Optional[str]) -> SequenceData:
    """The run's corpus, split and tokenised as it was for training (checked by the vocabulary)."""
    a = meta["config"]
    data = load_corpus(a["corpus"], data_dir=data_dir or a.get("data_dir"), tokenizer=a.get("tokenizer"),
                       vocab_size=a.get("vocab_size"), max_length=a.get("max_length"), oracle=a.get("oracle", "random"),
                       max_train=a.get("max_train"), max_test=a.get("max_test"))
    if (data.vocab.itos if data.vocab else None) != meta.get("vocab"):
        raise DataError(f"{a['corpus']}: its vocabulary no longer matches the one the models were trained with")
    return data


def evaluate_at(g: Generator, data: SequenceData, temperature: float, args: Args, bleu: Optional[BLEU],
                train_tokens: set, real_lm: Optional[Generator] = None) -> dict:
    """Every metric of one model at one temperature, on `args.samples` samples from `args.seed`;
    with `real_lm`, the LM score, and the reverse-LM score at `args.reverse_lm_temperatures`."""
    rng = torch.Generator(device=g.device).manual_seed(args.seed)
    samples = g.sample(args.samples, data.length, temperature=temperature, generator=rng)
    m: dict = {"temperature": temperature}
    m["nll_test"] = nll(g, data.test.to(g.device), eos_token=data.eos_token, pad_token=data.pad_token,
                        temperature=temperature)
    if data.oracle is not None:
        m["nll_oracle"] = nll(data.oracle, samples)
    tokens = [data.tokens(s) for s in samples.cpu()]
    if bleu is not None:
        for n in range(2, args.max_n + 1):
            m[f"bleu{n}"] = bleu.score(tokens, n)
        subset = tokens
        if len(tokens) > args.self_bleu_samples:
            subset = random.Random(args.seed).sample(tokens, args.self_bleu_samples)
        for n in range(2, args.max_n + 1):
            m[f"self_bleu{n}"] = self_bleu(subset, n)
    for n in range(1, 5):
        m[f"distinct{n}"] = distinct_ngrams(tokens, n)
    m["copied"] = copied(tokens, train_tokens)
    if real_lm is not None:
        # the i-th language model scores the i-th sample set (the first: the samples above)
        sets = [samples] + [g.sample(args.samples, data.length, temperature=temperature,
                                     generator=torch.Generator(device=g.device).manual_seed(args.seed + i))
                            for i in range(1, len(real_lm))]
        m["lm_score"] = statistics.fmean(lm_score(s, lm, data.eos_token, data.pad_token) for s, lm in zip(sets, real_lm))
        if temperature in args.reverse_lm_temperatures:
            m["reverse_lm_score"] = reverse_lm_of(g, data, temperature, args)
    return m


def real_language_model(data: SequenceData, args: Args, device: torch.device) -> list[Generator]:
    """The LM score's language models: trained once, on the training split, from seeds `args.seed`,
    `args.seed + 1`, ... (`args.lm_seeds` of them; the score is the mean of the i-th scoring the
    i-th sample set)."""
    return [train_language_model(data.train, data.vocab_size, start_token=data.start_token, eos_token=data.eos_token,
                                 pad_token=data.pad_token, steps=args.lm_steps, seed=args.seed + i, device=device)
            for i in range(args.lm_seeds)]


def reverse_lm_samples(data: SequenceData, args: Args) -> int:
    # no more than the real language model trains on, so that neither sees more text
    return min(args.reverse_lm_samples, len(data.train))


def reverse_lm_of(g: Generator, data: SequenceData, temperature: float, args: Args) -> float:
    """The reverse-LM score of one model at one temperature. Its samples come from their own
    generator seeded with `args.seed` (more of them than the other metrics', which stay as
    they were), and every language model starts from the same seed: the scores of two
    models differ by what they were trained on only. With `args.lm_seeds` K > 1: the mean of
    K scores, the i-th from samples and a language model both seeded `args.seed + i` (the
    sample set and the language model's seed each bring noise: `scripts/lm_noise.py`)."""
    scores = []
    for i in range(args.lm_seeds):
        rng = torch.Generator(device=g.device).manual_seed(args.seed + i)
        samples = g.sample(reverse_lm_samples(data, args), data.length, temperature=temperature, generator=rng)
        scores.append(reverse_lm_score(samples, data.test, data.vocab_size, start_token=data.start_token,
                                       eos_token=data.eos_token, pad_token=data.pad_token, steps=args.lm_steps,
                                       seed=args.seed + i, device=g.device))
    return statistics.fmean(scores)


def axes_of(data: SequenceData) -> tuple[str, str, str, str]:
    return sweep_axes(data.oracle is not None)


def plot(results: dict, data: SequenceData, path: Path) -> None:
    plot_sweep(results, *axes_of(data), f"{data.name}: quality against diversity over temperature (star: T = 1)", path)


def metric_keys(results: dict) -> list[str]:
    """Every metric of the sweep, in order of first appearance: the reverse-LM score is
    measured at some temperatures only."""
    return list(dict.fromkeys(k for curve in results.values() for m in curve for k in m))


def write_outputs(results: dict, settings: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "eval.json", json.dumps({"settings": settings, "models": results}, indent=2))
    keys = metric_keys(results)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["model", *keys])
    for name, curve in results.items():
        for m in curve:
            writer.writerow([name, *[m.get(k, "") for k in keys]])  # an empty cell where it was not measured
    write_text_atomic(out / "eval.csv", table.getvalue(), newline="")


def print_summary(results: dict, data: SequenceData) -> None:
    keys = metric_keys(results)
    shown = [k for k in ("nll_test", "nll_oracle", "bleu2", "bleu4", "self_bleu2", "self_bleu4", "distinct2", "copied",
                         "lm_score", "reverse_lm_score") if k in keys]
    widths = [max(12, len(k) + 2) for k in shown]
    print(f"{'model':<16}{'temp':>6}" + "".join(f"{k:>{w}}" for k, w in zip(shown, widths)))
    for name, curve in results.items():
        for m in curve:
            print(f"{name:<16}{m['temperature']:>6.2f}" + "".join(
                f"{'':>{w}}" if k not in m else f"{m[k]:>{w}d}" if isinstance(m[k], int) else f"{m[k]:>{w}.4f}"
                for k, w in zip(shown, widths)))
    # each model at temperature 1 against every other model's curve at the same diversity, in each plane
    for x_key, y_key, _, _ in sweep_planes(results, data.oracle is not None):
        for line in matched_diversity(results, x_key, y_key):
            print(line)


# --- command line ------------------------------------------------------------------------------

def parse_args(argv: Optional[list[str]] = None) -> Args:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="run directories or generator checkpoints (.pt)")
    parser.add_argument("--out")
    parser.add_argument("--temperatures", type=float_tuple, default=Args.temperatures, metavar="T,T,...")
    for name in ("samples", "self_bleu_samples", "max_n", "seed", "reverse_lm_samples", "lm_steps", "lm_seeds"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(Args, name))
    parser.add_argument("--lm-score", action=argparse.BooleanOptionalAction, default=Args.lm_score,
                        help="Caccia et al.'s LM and reverse-LM scores (text corpora; default: on)")
    parser.add_argument("--reverse-lm-temperatures", type=float_tuple,
                        default=Args.reverse_lm_temperatures, metavar="T,T,...",
                        help="the temperatures of --temperatures that get a reverse-LM score (--lm-seeds LMs each)")
    parser.add_argument("--data-dir")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--debug", action="store_true")
    given = vars(parser.parse_args(argv))
    args = Args(**{**given, "models": tuple(given["models"])})
    problem = below_minimum(args, 2, ["samples", "self_bleu_samples"])
    if problem:
        raise ValueError(problem)
    if not 2 <= args.max_n <= 5:
        raise ValueError(f"--max-n must be in 2..5, got {args.max_n}")
    if any(t <= 0 for t in args.temperatures):
        raise ValueError(f"--temperatures must be positive, got {','.join(f'{t:g}' for t in args.temperatures)}")
    if any(t <= 0 for t in args.reverse_lm_temperatures):
        raise ValueError("--reverse-lm-temperatures must be positive, got "
                         f"{','.join(f'{t:g}' for t in args.reverse_lm_temperatures)}")
    problem = below_minimum(args, 1, ["reverse_lm_samples", "lm_steps", "lm_seeds"])
    if problem:
        raise ValueError(problem)
    if args.seed < 0:
        raise ValueError(f"--seed must not be negative, got {args.seed}")
    return args


def run(args: Args) -> dict:
    device = resolve_device(args.device)
    paths = model_paths(args.models)
    out = writable_dir(args.out if args.out else paths[0].parent / "eval", "--out")  # before the sweep, not after
    meta, generators = load_generators(paths, device)
    data = corpus_of(meta, args.data_dir)
    if data.oracle is not None:
        data.oracle.to(device)
    bleu = None if data.oracle is not None else BLEU([data.tokens(s) for s in data.test], max_n=args.max_n)
    train_tokens = {tuple(data.tokens(s)) for s in data.train}
    print(f"corpus {data.name}: {len(data.test)} test sequences as references; {args.samples} samples per model "
          f"and temperature (seed {args.seed})"
          + (f"; Self-BLEU on a seeded subsample of {args.self_bleu_samples}" if args.samples > args.self_bleu_samples else ""))
    real_lm = None
    if args.lm_score and data.oracle is None:  # the oracle has NLL-oracle and NLL-test, the exact versions
        real_lm = real_language_model(data, args, device)
        reverse = [t for t in args.temperatures if t in args.reverse_lm_temperatures]
        models = "a language model" if args.lm_seeds == 1 else f"the mean of {args.lm_seeds} language models"
        print(f"LM score under {models} of the training split ({args.lm_steps} steps); reverse-LM score "
              + (f"at T = {', '.join(f'{t:g}' for t in reverse)}, from {reverse_lm_samples(data, args)} samples"
                 if reverse else "at no swept temperature (see --reverse-lm-temperatures)"))
    results = {}
    for name, g in zip(model_names(paths), generators):
        results[name] = [evaluate_at(g, data, t, args, bleu, train_tokens, real_lm) for t in args.temperatures]
    settings = {**dataclasses.asdict(args), "checkpoints": [str(p) for p in paths], "corpus": data.name,
                "num_test": len(data.test), "num_train": len(data.train)}
    write_outputs(results, settings, out)
    plot(results, data, out / "eval.png")
    print_summary(results, data)
    print(f"wrote {out / 'eval.json'}, {out / 'eval.csv'} and {out / 'eval.png'}")
    return results


def main(argv: Optional[list[str]] = None) -> int:
    return guarded("evaluate.py", lambda: run(parse_args(argv)), argv)


if __name__ == "__main__":
    sys.exit(main())
