#!/usr/bin/env python
"""MaliGAN (Che et al. 2017) against an MLE baseline of equal budget.

    python scripts/train_maligan.py --corpus poems              # the `cpu` preset
    python scripts/train_maligan.py --corpus oracle --oracle paper
    python scripts/train_maligan.py --corpus coco --credit sequence      # the basic algorithm (no rollouts)
    python scripts/train_maligan.py --resume runs/maligan        # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_maligan.py --corpus poems --device cpu

The training itself is `seqadv.MaliGANTrainer` (seqadv/trainers/maligan.py); this script
turns the command line into a `MaliGANConfig` and the outcome into an exit code: 0, 2 for
bad input (one line), 3 for a NaN or infinite loss, reward or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import MaliGANConfig, MaliGANTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_maligan.py", MaliGANTrainer, MaliGANConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
