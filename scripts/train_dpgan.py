#!/usr/bin/env python
"""DPGAN (Xu et al. 2018) against an MLE baseline of equal budget.

    python scripts/train_dpgan.py --corpus poems              # the `cpu` preset
    python scripts/train_dpgan.py --corpus oracle --oracle paper
    python scripts/train_dpgan.py --corpus coco --reward word --d-loss fake   # the official code's reward and D
    python scripts/train_dpgan.py --resume runs/dpgan          # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_dpgan.py --corpus poems --device cpu

The training itself is `seqadv.DPGANTrainer` (seqadv/trainers/dpgan.py); this script
turns the command line into a `DPGANConfig` and the outcome into an exit code: 0, 2 for
bad input (one line), 3 for a NaN or infinite loss, reward or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import DPGANConfig, DPGANTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_dpgan.py", DPGANTrainer, DPGANConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
