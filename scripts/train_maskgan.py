#!/usr/bin/env python
"""MaskGAN-style infilling (Fedus et al., ICLR 2018) against MaskMLE of equal budget.

    python scripts/train_maskgan.py --corpus ptb                    # the `cpu` preset
    python scripts/train_maskgan.py --corpus poems --mask random --mask-rate 0.3
    python scripts/train_maskgan.py --corpus ptb --reward rollout   # rewards from the rollout engine
    python scripts/train_maskgan.py --resume runs/maskgan           # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_maskgan.py --corpus ptb --device cpu

The training itself is `seqadv.MaskGANTrainer` (seqadv/trainers/maskgan.py); this script
turns the command line into a `MaskGANConfig` and the outcome into an exit code: 0, 2 for
bad input (one line), 3 for a NaN or infinite loss, reward or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import MaskGANConfig, MaskGANTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_maskgan.py", MaskGANTrainer, MaskGANConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
