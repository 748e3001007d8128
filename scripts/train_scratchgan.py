#!/usr/bin/env python
"""A ScratchGAN-style GAN (de Masson d'Autume et al., NeurIPS 2019) against an MLE baseline of equal budget.

    python scripts/train_scratchgan.py --corpus coco             # the `cpu` preset
    python scripts/train_scratchgan.py --corpus poems --mle-weight 0.5
    python scripts/train_scratchgan.py --corpus coco --preset paper   # from scratch, the paper's settings
    python scripts/train_scratchgan.py --resume runs/scratchgan  # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_scratchgan.py --corpus poems --device cpu

The training itself is `seqadv.ScratchGANTrainer` (seqadv/trainers/scratchgan.py); this
script turns the command line into a `ScratchGANConfig` and the outcome into an exit code:
0, 2 for bad input (one line), 3 for a NaN or infinite loss or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import ScratchGANConfig, ScratchGANTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_scratchgan.py", ScratchGANTrainer, ScratchGANConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
