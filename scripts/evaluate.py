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
`--out` (default: <run>/eval). The sweep itself is `seqadv.eval.sweep` (`sweep`,
`write_sweep`), callable from Python; this script is its command line.
"""
from __future__ import annotations

import sys
from typing import Optional

from seqadv.eval.sweep import SweepSettings, run_sweep, settings_from_args
from seqadv.runtime.cli import guarded


def parse_args(argv: Optional[list[str]] = None) -> SweepSettings:
    return settings_from_args(argv, __doc__.split("\n")[0])


def main(argv: Optional[list[str]] = None) -> int:
    return guarded("evaluate.py", lambda: run_sweep(parse_args(argv)), argv)


if __name__ == "__main__":
    sys.exit(main())
