#!/usr/bin/env python
"""RelGAN (Nie et al., ICLR 2019) against an MLE baseline of equal budget.

    python scripts/train_relgan.py --corpus coco                 # the `cpu` preset
    python scripts/train_relgan.py --corpus coco --preset paper  # the official code's COCO settings
    python scripts/train_relgan.py --corpus oracle --oracle paper --beta-max 1 --adv-steps 3000
    python scripts/train_relgan.py --resume runs/relgan          # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_relgan.py --corpus poems --device cpu

The training itself is `seqadv.RelGANTrainer` (seqadv/trainers/relgan.py); this script turns
the command line into a `RelGANConfig` and the outcome into an exit code: 0, 2 for bad input
(one line), 3 for a NaN or infinite loss or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import RelGANConfig, RelGANTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_relgan.py", RelGANTrainer, RelGANConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
