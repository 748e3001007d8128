#!/usr/bin/env python
"""MLE trained to its best validation NLL (the baseline beside the equal-budget ones).

    python scripts/train_mle.py --corpus coco                 # the `cpu` preset: up to 60 epochs, patience 5
    python scripts/train_mle.py --corpus poems --validation-fraction 0.1 --patience 3

The training itself is `seqadv.trainers.MLETrainer` (seqadv/trainers/mle.py); writes
mle_best.pt, results.json and samples into --out. Exit codes as train_seqgan.py's.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import guarded, parse_config
from seqadv.runtime.faults import CrashPoint
from seqadv.trainers import MLEConfig, MLETrainer


def main(argv: Optional[list[str]] = None) -> int:
    def body():
        config = parse_config(MLEConfig, argv, __doc__)
        return MLETrainer(config, crash_at=CrashPoint.from_environment()).train()
    return guarded("train_mle.py", body, argv)


if __name__ == "__main__":
    sys.exit(main())
