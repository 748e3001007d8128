#!/usr/bin/env python
"""CoT, cooperative training (Lu et al., ICML 2019), against an MLE baseline of equal budget.

    python scripts/train_cot.py --corpus coco                    # the `cpu` preset
    python scripts/train_cot.py --corpus oracle --oracle paper --preset paper   # the official code: 200,000 iterations
    python scripts/train_cot.py --resume runs/cot          # after a crash, a kill or Ctrl-C
    torchrun --standalone --nproc-per-node 2 scripts/train_cot.py --corpus poems --device cpu

The training itself is `seqadv.CoTTrainer` (seqadv/trainers/cot.py); this script turns
the command line into a `CoTConfig` and the outcome into an exit code: 0, 2 for bad input
(one line), 3 for a NaN or infinite loss or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import train_main
from seqadv.trainers import CoTConfig, CoTTrainer


def main(argv: Optional[list[str]] = None) -> int:
    return train_main("train_cot.py", CoTTrainer, CoTConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
