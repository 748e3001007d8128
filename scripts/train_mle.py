#!/usr/bin/env python
"""MLE trained to its best validation NLL (the baseline beside the equal-budget ones).

    python scripts/train_mle.py --corpus coco                 # the `cpu` preset: up to 60 epochs, patience 5
    python scripts/train_mle.py --corpus poems --validation-fraction 0.1 --patience 3

The training itself is `seqadv.trainers.MLETrainer` (seqadv/trainers/mle.py); writes
mle_best.pt, results.json and samples into --out. Exit codes as train_seqgan.py's.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import MLEConfig, MLETrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_mle.py", MLETrainer, MLEConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
