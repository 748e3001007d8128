"""One optimiser update, checked: the training scripts' shared step.

A NaN or infinite loss or gradient stops the run before the parameters change,
so the last checkpoint stays a good one (the scripts exit with code 3).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from seqadv.core.errors import NumericalError
from seqadv.core.masks import tokens_mask
from seqadv.rl.losses import mle_loss
from seqadv.runtime.distributed import Group


def check_finite(value: torch.Tensor, what: str, where: str) -> None:
    if not bool(torch.isfinite(value).all()):
        bad = value[~torch.isfinite(value)].flatten()[0].item()
        raise NumericalError(f"{where}: {what} is {bad}; the update was not made and the last checkpoint is kept")


def clip_and_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float,
                  where: str, what: str,
                  reduce: Optional[Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]] = None) -> float:
    """backward, clip the gradient norm at `clip` (0: no clipping), step. Returns the loss.

    `reduce(model, loss)`, if given, runs between backward and clipping: data-parallel
    training passes `distributed.Group.average_gradients`, which averages the gradients
    over processes and returns the mean loss (so every process checks, clips and steps
    alike, and the returned loss is the whole batch's).

    Refused (NumericalError) if the loss or the gradient is not finite, or if the
    step overflows (e.g. a learning rate so large that Adam's update leaves float32).
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    value = loss.detach() if reduce is None else reduce(model, loss.detach())
    check_finite(value, what, where)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else float("inf"))
    check_finite(norm, f"the gradient norm of {what}", where)
    try:
        optimizer.step()
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        raise NumericalError(f"{where}: the update for {what} overflowed ({exc}); "
                             f"the last checkpoint is kept") from None
    return value.item()


def mle_step(g: nn.Module, opt: torch.optim.Optimizer, batch: Tensor, clip: float, where: str,
             group: Group = Group()) -> float:
    """One teacher-forcing update from this process's rows of a batch. Returns the loss
    of the whole batch (the mean over its tokens, those after the first end token not
    counted).

    Shape: batch (b, T)
    """
    mask = tokens_mask(batch, g.eos_token, g.pad_token)
    loss = mle_loss(g.target_logits(batch), batch, mask, normalizer=group.token_normalizer(mask))
    return clip_and_step(g, opt, loss, clip, where, "the MLE loss", group.average_gradients)
