#!/usr/bin/env python
"""Samples from a trained model: a run directory (its seqgan.pt, maskgan.pt or irgan.pt)
or any model file a trainer wrote (pretrained.pt, mle.pt, maskmle.pt, bpr.pt, ...).

    python scripts/sample.py runs/seqgan --num 20 --temperature 0.8
    python scripts/sample.py runs/seqgan/mle.pt --num 5 --top-k 50 --seed 1
    python scripts/sample.py runs/maskgan --infill "the company said _ _ _ _ in the third quarter"
    python scripts/sample.py runs/irgan --user 196 --num 10        # items drawn for a user

Text models print one decoded sequence a line; an infilling model fills the `_` of the
given text (`--num` fills); an item model prints items drawn from its softmax for a user.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional

import torch

from seqadv.core.device import resolve_device
from seqadv.core.registry import RECIPES
from seqadv.core.sampling import generate
from seqadv.models.items import ItemPolicy
from seqadv.runtime.checkpoint import load
from seqadv.runtime.cli import OneLineParser, below_minimum, guarded

BLANKS = ("_", "▁_")  # a blank as a word, or as a sentencepiece piece


def parse(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a run directory or a model file (.pt)")
    parser.add_argument("--num", type=int, default=10, help="how many samples (default: 10)")
    parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default: 1.0)")
    parser.add_argument("--top-k", type=int, default=None, help="draw from the k most likely tokens only")
    parser.add_argument("--seed", type=int, default=0, help="the sampling seed (default: 0)")
    parser.add_argument("--infill", help="an infilling model: the text to fill, blanks written as _")
    parser.add_argument("--user", help="an item model: the user (the ratings file's id)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    problem = below_minimum(args, 1, ["num", "top_k"])
    if problem:
        parser.error(problem)
    if not args.temperature > 0:
        parser.error(f"--temperature must be positive, got {args.temperature:g}")
    if args.infill is not None and args.user is not None:
        parser.error("--infill (an infilling model) and --user (an item model) do not go together")
    return args


@torch.no_grad()
def sample(args: argparse.Namespace) -> list[str]:
    device = resolve_device(args.device)
    loaded = load(args.model, device)
    model, codec = loaded
    rng = torch.Generator(device=device).manual_seed(args.seed)
    # what the model draws is its recipe's kind (the registry): items, infilled text, or text
    kind = RECIPES[loaded.recipe].kind if loaded.recipe in RECIPES else "text"
    if kind == "items":
        if args.infill is not None:
            raise ValueError(f"{loaded.path}: an item model draws items for --user; --infill does not apply")
        users, items = codec["users"], codec["items"]
        if args.user is None or args.user not in users:
            raise ValueError(f"{loaded.path}: an item model: give --user, one of the ratings file's user ids "
                             f"(e.g. {users[0]})")
        state = torch.full((args.num,), users.index(args.user), device=device)
        drawn = generate(ItemPolicy(model, args.temperature), args.num, 1, top_k=args.top_k, generator=rng,
                         initial_state=state)
        return [items[i] for i in drawn[:, 0].tolist()]
    if kind == "infilling":
        if args.user is not None:
            raise ValueError(f"{loaded.path}: an infilling model fills --infill text; --user does not apply")
        if args.infill is None:
            raise ValueError(f"{loaded.path}: an infilling model: give the text to fill with --infill, blanks as _")
        tokens = codec.tokenizer.tokenize(args.infill)
        hidden = torch.tensor([[t in BLANKS for t in tokens]] * args.num, device=device)
        if not hidden.any():
            raise ValueError(f"--infill {args.infill!r}: no blank (_) to fill")
        ids = torch.tensor([codec.vocab.encode(tokens)] * args.num, device=device)
        masked = ids.masked_fill(hidden, model.mask_token)
        filled = model.infill(masked, hidden, temperature=args.temperature, generator=rng, top_k=args.top_k)
        return [codec.decode(row) for row in filled.cpu()]
    if args.infill is not None or args.user is not None:
        raise ValueError(f"{loaded.path}: a {loaded.recipe} model generates text; --infill and --user do not apply")
    samples = model.sample(args.num, loaded.length, temperature=args.temperature, generator=rng, top_k=args.top_k)
    return [codec.decode(row) for row in samples.cpu()]


def main(argv: Optional[list[str]] = None) -> int:
    def body():
        for line in sample(parse(argv)):
            print(line)
    return guarded("sample.py", body, argv)


if __name__ == "__main__":
    sys.exit(main())
