"""Which tokens to hide for infilling (MaskGAN, Fedus et al., 2018).

A mask hides, in each sequence's text (not its end token or padding), either one
contiguous span or independent random positions, at a rate; the hidden tokens
become the mask token in the generator's input. The MaskGAN paper trains and
reports with contiguous masking at rate 0.5.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

MODES = ("contiguous", "random")


def maskable_positions(tokens: Tensor, eos_token: Optional[int], pad_token: Optional[int]) -> Tensor:
    """True at the text's positions: before the first end token, never padding.

    Shape: tokens (B, T) -> (B, T) bool
    """
    text = torch.ones_like(tokens, dtype=torch.bool)
    if eos_token is not None:
        text &= (tokens == eos_token).long().cumsum(dim=1) == 0
    if pad_token is not None and eos_token is not None:
        text &= tokens != pad_token
    return text


def mask_positions(maskable: Tensor, rate: float, mode: str = "contiguous",
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """The positions to hide.

    Shape:
        maskable: (B, T) bool, True on each row's text, which starts at position 0
        returns: (B, T) bool, a subset of `maskable`

    contiguous: one span of round(rate * L) tokens (at least 1) at a uniform start,
    L the row's text length. random: each text position with probability `rate`,
    and one uniform position in a row where none was drawn, so that every row with
    text has a blank to fill.
    """
    if mode not in MODES:
        raise ValueError(f"mask mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"mask rate must be in (0, 1], got {rate}")
    B, T = maskable.shape
    device = maskable.device
    lengths = maskable.sum(dim=1)  # (B,)
    positions = torch.arange(T, device=device).unsqueeze(0)  # (1, T)
    if mode == "contiguous":
        span = (rate * lengths.float()).round().long().clamp(min=1).minimum(lengths)
        u = torch.rand(B, device=device, generator=generator)
        start = (u * (lengths - span + 1).float()).long().minimum((lengths - span).clamp(min=0))
        hidden = (positions >= start.unsqueeze(1)) & (positions < (start + span).unsqueeze(1))
        return hidden & maskable
    u = torch.rand(B, T, device=device, generator=generator)
    hidden = (u < rate) & maskable
    one = (torch.rand(B, device=device, generator=generator) * lengths.float()).long()
    fallback = (positions == one.unsqueeze(1)) & maskable & ~hidden.any(dim=1, keepdim=True)
    return hidden | fallback


def apply_mask(tokens: Tensor, hidden: Tensor, mask_token: int) -> Tensor:
    """The generator's input: hidden tokens replaced by `mask_token`. Shape: (B, T) -> (B, T)"""
    return tokens.masked_fill(hidden, mask_token)
