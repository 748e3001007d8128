#!/usr/bin/env python
"""SeqGAN (Yu et al., AAAI 2017) against an MLE baseline of equal budget.

    python scripts/train_seqgan.py --corpus poems              # the `cpu` preset
    python scripts/train_seqgan.py --corpus oracle --oracle paper
    python scripts/train_seqgan.py --corpus my.txt --tokenizer sentencepiece --vocab-size 4000
    python scripts/train_seqgan.py --resume runs/seqgan        # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_seqgan.py --corpus poems --device cpu

The training itself is `seqadv.SeqGANTrainer` (seqadv/trainers/seqgan.py); this script
turns the command line into a `SeqGANConfig` and the outcome into an exit code: 0, 2 for
bad input (one line), 3 for a NaN or infinite loss, reward or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import SeqGANConfig, SeqGANTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_seqgan.py", SeqGANTrainer, SeqGANConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
