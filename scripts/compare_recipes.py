#!/usr/bin/env python
"""Does an adversarial recipe beat temperature-tuned MLE at matched diversity? The
experiment of docs/results.md's "Beating MLE?" section, one corpus and seed at a time.

    python scripts/compare_recipes.py --corpus poems --seed 88   # train what is missing, sweep, write the JSON
    python scripts/compare_recipes.py --corpus poems --report    # mean ± std over the seeds written so far
    python scripts/compare_recipes.py --corpus coco-texygen --seed 88   # the whole family, one (recipe, seed) at a time
    python scripts/compare_recipes.py --corpus coco-texygen --report    # the family against MLE, published figures beside

For one seed, each variant (`seqadv.eval.compare.VARIANTS`) is trained at the `cpu` preset
in runs/compare/<corpus>/seed-<s>/<variant> (a stopped run goes on from its checkpoint when
the command is rerun).
All GAN variants start from the same pretrained G (same seed, same pretraining; tested),
and each brings its own MLE baseline of equal budget (as many MLE updates from the
pretrained G as it makes adversarial G updates); beside them, the same generator trained
by MLE to its best validation NLL (train_mle.py). Then evaluate.py sweeps the temperature of every
model on both planes (BLEU-4 against Self-BLEU-4; LM score against reverse-LM score), and
results/compare/<corpus>/seed-<s>.json gets the sweep, each run's results and the
commands: small files, committed seed by seed. `--report` aggregates them, prints the
table of each model at T = 1 against the others at matched diversity (mean sweep over
seeds) and draws results/compare/<corpus>.png. The run of a seed and the report are
`seqadv.eval.compare` (callable from Python; it finds the recipes in the registry by
name); this script is their command line. `--corpus coco-texygen` runs the whole family on
the published COCO protocol instead (`seqadv.eval.family`: a JSON per recipe and seed,
results/compare/coco-texygen/<variant>/seed-<s>.json, with the samples at T = 1).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from seqadv.eval import family
from seqadv.eval.compare import report, run_seed
from seqadv.runtime.cli import OneLineParser, guarded, writable_dir


def main(argv: Optional[list[str]] = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, choices=["poems", "coco", "coco-texygen"],
                        help="coco-texygen: the whole family on the published COCO protocol (seqadv.eval.family)")
    parser.add_argument("--variant", action="append", choices=list(family.FAMILY),
                        help="coco-texygen: only this variant (repeatable; default: every one, in order)")
    parser.add_argument("--seed", type=int, action="append", help="train and sweep this seed (repeatable)")
    parser.add_argument("--report", action="store_true", help="aggregate the seeds written so far")
    parser.add_argument("--runs", default="runs/compare", help="where the runs go (not committed)")
    parser.add_argument("--results", default="results/compare", help="where the per-seed JSON goes (committed)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    if not args.seed and not args.report:
        parser.error("nothing to do: give --seed S (train and sweep a seed) and/or --report")
    for seed in args.seed or []:
        if not 0 <= seed < 2**32:
            parser.error(f"--seed must be in 0..{2**32 - 1}, got {seed}")

    if args.variant and args.corpus != family.CORPUS:
        parser.error(f"--variant is for --corpus {family.CORPUS}")

    def body():
        results = Path(args.results) / args.corpus
        # the directories are checked before anything is trained: a run of hours must not end
        # on a path it cannot write
        writable_dir(results, "--results")
        if args.seed:
            writable_dir(args.runs, "--runs")
        if args.corpus == family.CORPUS:
            for seed in args.seed or []:
                family.run_seed(seed, Path(args.runs), results, args.variant)
            if args.report:
                family.report(results)
            return
        for seed in args.seed or []:
            run_seed(args.corpus, seed, Path(args.runs), results)
        if args.report:
            report(args.corpus, results)
    return guarded("compare_recipes.py", body, argv)


if __name__ == "__main__":
    sys.exit(main())
