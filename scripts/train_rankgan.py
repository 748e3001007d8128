#!/usr/bin/env python
"""RankGAN (Lin et al., NeurIPS 2017) against an MLE baseline of equal budget.

    python scripts/train_rankgan.py --corpus poems              # the `cpu` preset
    python scripts/train_rankgan.py --corpus oracle --oracle paper
    python scripts/train_rankgan.py --corpus coco --rank-aggregate mean   # Texygen's mean over the references
    python scripts/train_rankgan.py --resume runs/rankgan        # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_rankgan.py --corpus poems --device cpu

The training itself is `seqadv.RankGANTrainer` (seqadv/trainers/rankgan.py); this script
turns the command line into a `RankGANConfig` and the outcome into an exit code: 0, 2 for
bad input (one line), 3 for a NaN or infinite loss, reward or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import RankGANConfig, RankGANTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_rankgan.py", RankGANTrainer, RankGANConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
