#!/usr/bin/env python
"""LeakGAN (Guo et al., AAAI 2018) against an MLE baseline of equal budget.

    python scripts/train_leakgan.py --corpus poems              # the `cpu` preset
    python scripts/train_leakgan.py --corpus oracle --oracle paper
    python scripts/train_leakgan.py --corpus coco --reward-real --adv-mle-every 15   # the COCO code's settings
    python scripts/train_leakgan.py --resume runs/leakgan        # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_leakgan.py --corpus poems --device cpu

The training itself is `seqadv.LeakGANTrainer` (seqadv/trainers/leakgan.py); this script
turns the command line into a `LeakGANConfig` and the outcome into an exit code: 0, 2 for
bad input (one line), 3 for a NaN or infinite loss, reward or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import LeakGANConfig, LeakGANTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_leakgan.py", LeakGANTrainer, LeakGANConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
