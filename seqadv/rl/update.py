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
from seqadv.rl.losses import kl_to_reference, mle_loss, policy_gradient_loss
from seqadv.runtime.distributed import Group


def check_finite(value: torch.Tensor, what: str, where: str) -> None:
    if not bool(torch.isfinite(value).all()):
        bad = value[~torch.isfinite(value)].flatten()[0].item()
        raise NumericalError(f"{where}: {what} is {bad}; the update was not made and the last checkpoint is kept")


def clip_and_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float,
                  where: str, what: str,
                  reduce: Optional[Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]] = None,
                  clip_groups: Optional[list[list[torch.nn.Parameter]]] = None) -> float:
    """backward, clip the gradient norm at `clip` (0: no clipping), step. Returns the loss.

    `reduce(model, loss)`, if given, runs between backward and clipping: data-parallel
    training passes `distributed.Group.average_gradients`, which averages the gradients
    over processes and returns the mean loss (so every process checks, clips and steps
    alike, and the returned loss is the whole batch's).

    `clip_groups`: clip each list of parameters' gradient norm at `clip` on its own (LeakGAN's
    manager and worker, each with its own clip in the official code), not the whole model's.

    Refused (NumericalError) if the loss or the gradient is not finite, or if the
    step overflows (e.g. a learning rate so large that Adam's update leaves float32).
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    value = loss.detach() if reduce is None else reduce(model, loss.detach())
    check_finite(value, what, where)
    for params in clip_groups or [list(model.parameters())]:
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
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


def policy_gradient_update(model: nn.Module, opt: torch.optim.Optimizer, logits: Tensor, actions: Tensor,
                           advantages: Tensor, mask: Optional[Tensor], normalizer: Tensor | float | None, clip: float,
                           where: str, group: Group = Group(), extra_loss: Optional[Tensor] = None,
                           what: str = "the policy-gradient loss", reference_logits: Optional[Tensor] = None,
                           kl_coef: float = 0.0) -> float:
    """One REINFORCE update of a policy from this process's rows: the loss
    -sum_t log pi(a_t) A_t / normalizer (`losses.policy_gradient_loss`), plus `extra_loss`
    if given (ScratchGAN's MLE term), plus `kl_coef` times the KL to a reference policy
    whose logits on the same inputs are `reference_logits` (`losses.kl_to_reference`, over the
    same positions and divisor), then the checked, clipped step. Returns the whole
    batch's loss. Every recipe's generator update is this call; what differs between the
    recipes is what they pass: the advantages, the positions that count, the divisor.

    Shape: logits (b, T, V), actions (b, T), advantages (b, T) (detached inside), reference_logits (b, T, V),
    mask (b, T) of 0/1 or None (every position counts)
    """
    loss = policy_gradient_loss(logits, actions, advantages, mask, normalizer=normalizer)
    if extra_loss is not None:
        loss = loss + extra_loss
    if reference_logits is not None and kl_coef:
        loss = loss + kl_coef * kl_to_reference(logits, reference_logits, mask, normalizer)
    return clip_and_step(model, opt, loss, clip, where, what, group.average_gradients)


@torch.no_grad()
def reference_logits(reference: Optional[nn.Module], samples: Tensor) -> Optional[Tensor]:
    """A reference policy's teacher-forced logits (B, T, V) on samples (B, T), or None without one."""
    return None if reference is None else reference.target_logits(samples)


def discriminator_update(d: nn.Module, opt: torch.optim.Optimizer, loss: Tensor, l2: float, where: str,
                         group: Group = Group()) -> float:
    """One unclipped update of a discriminator from its loss on this process's rows, its
    L2 penalty added first where it has one (`d.l2_penalty()`, weight `l2`: SeqGAN's CNN
    penalises its output layer). Returns the whole batch's loss. Every recipe's D update is
    this call."""
    if hasattr(d, "l2_penalty"):
        loss = loss + l2 * d.l2_penalty()
    return clip_and_step(d, opt, loss, 0.0, where, "the discriminator loss", group.average_gradients)


def correct_guesses(logits: Tensor, labels: Tensor) -> Tensor:
    """How many of D's guesses (logit > 0: real) match the labels. Shape: (n,), (n,) -> scalar"""
    return ((logits > 0).float() == labels).sum()
