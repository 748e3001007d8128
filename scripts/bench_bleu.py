#!/usr/bin/env python
"""BLEU against a large reference set: seqadv.eval.metrics.BLEU vs nltk, same scores, one run.

    python scripts/bench_bleu.py                      # 2,000 poems against the 4,098 test poems
    python scripts/bench_bleu.py --nltk-samples 200   # time nltk on a part and scale it (faster)

nltk's `sentence_bleu` rescans every reference for every hypothesis; `BLEU`
computes the references' clipped n-gram maxima and lengths once. The hypotheses
are training poems (real text, so the n-gram overlap is realistic); the
references are the whole test split, as evaluate.py and train_seqgan.py use it.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from seqadv.data.dataset import load_corpus
from seqadv.eval.metrics import BLEU
from seqadv.runtime.cli import OneLineParser, below_minimum, guarded


def main(argv: Optional[list[str]] = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="poems")
    parser.add_argument("--data-dir")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--n", type=int, default=4, help="the BLEU order")
    parser.add_argument("--nltk-samples", type=int, default=None,
                        help="time nltk on only this many of the samples and scale its time (default: all)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    problem = below_minimum(args, 1, ["samples", "n", "nltk_samples"])
    if problem:
        parser.error(problem)
    return guarded("bench_bleu.py", lambda: bench(args), argv)


def bench(args: argparse.Namespace) -> None:
    data = load_corpus(args.corpus, data_dir=args.data_dir)
    references = [data.tokens(s) for s in data.test]
    hypotheses = [data.tokens(s) for s in data.train[: args.samples]]
    weights = (1.0 / args.n,) * args.n
    smoothing = SmoothingFunction().method1

    start = time.perf_counter()
    bleu = BLEU(references, max_n=args.n)
    ours_setup = time.perf_counter() - start
    ours_scores = [bleu.sentence(h, args.n) for h in hypotheses]
    ours = time.perf_counter() - start

    timed = hypotheses[: args.nltk_samples] if args.nltk_samples else hypotheses
    start = time.perf_counter()
    nltk_scores = [sentence_bleu(references, h, weights=weights, smoothing_function=smoothing) for h in timed]
    nltk_time = (time.perf_counter() - start) * len(hypotheses) / len(timed)
    worst = max(abs(a - b) for a, b in zip(ours_scores, nltk_scores))

    print(f"BLEU-{args.n} of {len(hypotheses)} {data.name} samples against {len(references)} references")
    print(f"seqadv BLEU   {ours:8.2f} s  (of which {ours_setup:.2f} s computing the references' n-gram maxima once)")
    scaled = f", timed on {len(timed)} and scaled" if len(timed) < len(hypotheses) else ""
    print(f"nltk          {nltk_time:8.2f} s  (sentence_bleu per sample{scaled})")
    print(f"speed-up      {nltk_time / ours:8.1f}x; largest difference in a score over {len(timed)} samples: {worst:.1e}")


if __name__ == "__main__":
    sys.exit(main())
