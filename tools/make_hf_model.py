#!/usr/bin/env python
"""A small Hugging Face causal LM directory to try `--generator hf:DIR` without a download:
a GPT-2 or Llama-style model of random weights built from a config, and a word-level
tokenizer trained on a corpus's lines (the `tokenizers` library), saved as
`save_pretrained` writes them.

    python tools/make_hf_model.py --corpus poems --arch gpt2 --out models/gpt2-poems
    python scripts/train_seqgan.py --corpus poems --generator hf:models/gpt2-poems --preset tiny
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' own builder of tiny models
from hf_models import write_tiny_model  # noqa: E402

from seqadv.data.dataset import _corpus_lines  # noqa: E402
from seqadv.hf import quiet_transformers  # noqa: E402
from seqadv.runtime.cli import OneLineParser, guarded  # noqa: E402


def main(argv=None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="poems", help="a named corpus or a text file (its lines train the tokenizer)")
    parser.add_argument("--arch", choices=["gpt2", "llama"], default="gpt2")
    parser.add_argument("--positions", type=int, default=64, help="the model's positions (default: 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the directory to write")
    args = parser.parse_args(argv)

    def make() -> None:
        _, _, train, test = _corpus_lines(args.corpus, None)
        with quiet_transformers():
            path = write_tiny_model(Path(args.out), train + test, args.arch, args.positions, seed=args.seed)
        print(f"wrote {path}: a {args.arch} model of width 32, 2 layers, and a word-level tokenizer of "
              f"{args.corpus}'s {len(train) + len(test)} lines")

    return guarded("make_hf_model.py", make, argv)


if __name__ == "__main__":
    sys.exit(main())
