"""Which positions of a fixed-length sequence are text: everything up to the first end token."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def mask_after_eos(tokens: Tensor, eos_token: Optional[int], pad_token: Optional[int]) -> Tensor:
    """Replace every token after the first `eos_token` of a row by `pad_token`.

    Shape:
        tokens: (rows, length) int64; returns the same shape (a new tensor)

    Sampled sequences have a fixed length; what follows the end token is not part
    of the text, so it is neither scored nor trained on.
    """
    if eos_token is None or pad_token is None:
        return tokens
    return tokens.masked_fill(_after_eos(tokens, eos_token), pad_token)


def tokens_mask(tokens: Tensor, eos_token: Optional[int], pad_token: Optional[int]) -> Tensor:
    """1.0 where a position is part of the text (up to and including the first eos), else 0.0.

    Shape: tokens (rows, length) -> (rows, length) float
    """
    if eos_token is None or pad_token is None:
        return torch.ones_like(tokens, dtype=torch.float)
    return (~_after_eos(tokens, eos_token)).float()


def _after_eos(tokens: Tensor, eos_token: int) -> Tensor:
    """True at positions strictly after the first eos: where the count of eos before them is > 0."""
    is_eos = tokens == eos_token
    return (is_eos.cumsum(dim=1) - is_eos.long()) > 0
