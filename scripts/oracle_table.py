#!/usr/bin/env python
"""The family on the SeqGAN paper's oracle: NLL-oracle of each recipe, the MLE of equal budget
beside it, and each paper's own figure, from committed per-seed JSON.

    python scripts/oracle_table.py                          # the table, from results/oracle/
    python scripts/oracle_table.py --collect runs/oracle    # first copy the finished seeds there
    python scripts/oracle_table.py --todo                   # the commands of the seeds not yet committed

What the table is, and how each seed was run: `seqadv.eval.oracle_family` (the commands are
in each JSON's "command"; SeqGAN's pretrained G of a seed starts the recipes without their own):

    python scripts/train_seqgan.py --corpus oracle --oracle paper --seed S --out runs/oracle/seqgan/seed-S
    python scripts/train_maligan.py --corpus oracle --oracle paper --seed S --out runs/oracle/maligan/seed-S \\
        --init-from runs/oracle/seqgan/seed-S

`--collect DIR` copies DIR/<recipe>/seed-<s>/results.json (finished runs only) to
results/oracle/<recipe>/seed-<s>.json with the command that made it; DIR/seqgan-paper/
(`--preset paper`, one seed) is the paper preset's row.

A pretrained G made again on another machine is not the same G: the same command, seed and
thread count give other float sums on another CPU. The table says under it which (recipe, seed)
started from a pretrained G other than SeqGAN's of that seed (its pretrained NLLs differ): their
"vs MLE" is still paired, a comparison with SeqGAN's row in that seed is not.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from seqadv.eval.oracle_family import HEADER, collect, table, todo, unpaired
from seqadv.runtime.cli import OneLineParser, guarded

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "oracle"


def main(argv: Optional[list[str]] = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collect", default=None, help="a folder of runs (<recipe>/seed-<s>/) to copy the finished ones from")
    parser.add_argument("--todo", action="store_true", help="print the commands of the seeds without committed JSON "
                        "(a stopped one goes on with --resume OUT), then stop")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    def run():
        if args.todo:
            print("\n".join(todo(RESULTS)) or "every seed is committed")
            return
        if args.collect is not None:
            runs = Path(args.collect)
            if not runs.is_dir():
                parser.error(f"--collect {runs}: no such folder")
            for path in collect(runs, RESULTS):
                print(f"wrote {path.relative_to(REPO)}")
        lines = table(RESULTS)
        if len(lines) == 1:
            parser.error(f"no per-seed JSON under {RESULTS.relative_to(REPO)}: run the recipes and --collect them")
        print(HEADER)
        print("\n".join(lines))
        for line in unpaired(RESULTS):
            print(line)
    return guarded("oracle_table.py", run, argv)


if __name__ == "__main__":
    sys.exit(main())
