#!/usr/bin/env python
"""IRGAN item recommendation (Wang et al., SIGIR 2017) against its BPR baseline, on MovieLens-100k.

    python scripts/train_irgan.py                      # ml-100k, the `cpu` preset, 3 seeds (about 4 min each)
    python scripts/train_irgan.py --data my_ratings.tsv --seeds 1
    python scripts/train_irgan.py --resume runs/irgan  # after a crash, a kill or Ctrl-C: finished seeds are kept

Each seed is one `seqadv.IRGANTrainer` run in <out>/seed-<s> (seqadv/trainers/irgan.py);
`seqadv.trainers.irgan.train_seeds` runs them and prints mean ± std. Exit codes: 0, 2 for
bad input (one line), 3 for a NaN or infinite loss or update, 130 after Ctrl-C.
"""
import sys
from typing import Optional

from seqadv.runtime.cli import guarded, parse_config
from seqadv.runtime.faults import CrashPoint
from seqadv.trainers import IRGANConfig
from seqadv.trainers.irgan import train_seeds


def main(argv: Optional[list[str]] = None) -> int:
    return guarded("train_irgan.py", lambda: train_seeds(parse_config(IRGANConfig, argv, __doc__), CrashPoint.from_environment()), argv)


if __name__ == "__main__":
    sys.exit(main())
