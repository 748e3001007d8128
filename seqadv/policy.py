"""The policy protocol that the rollout engine (and every trainer) depends on.

A policy is anything that generates tokens left to right:

    start_token: int                       the input fed before position 0
    initial_state(batch_size) -> state     the state before the first step
    step(tokens, state) -> (logits, state) consume one token per row, return the
                                           next-token logits (rows, vocab)

`step` may also take a keyword `out`, a (rows, vocab) tensor to write the
logits into; the rollout engine then reuses one buffer instead of receiving a
fresh matrix each step (on CPU, much of a fresh matrix's cost is page faults).

A state is a tensor or a (nested) tuple of tensors whose first dimension is the
batch; the engine indexes and repeats states along that dimension and never looks
inside. A tensor of a state may grow along one other axis (a KV cache's positions)
by the same amount at every step, by appending: `step` returns the positions it
was given unchanged, and must not write into the state it was given. `Generator` implements the protocol; so can a
Transformer with a KV cache or a policy of one's own.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Protocol, Union, runtime_checkable

import torch
from torch import Tensor, nn

from .sampling import sample_from_logits, top_k_logits
from .training import NumericalError

State = Union[Tensor, tuple]


@runtime_checkable
class Policy(Protocol):
    start_token: int

    def initial_state(self, batch_size: int) -> State: ...

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]: ...


def map_state(fn: Callable[[Tensor], Tensor], state: State) -> State:
    """Apply `fn` to every tensor of a (nested tuple) state."""
    if isinstance(state, Tensor):
        return fn(state)
    return tuple(map_state(fn, s) for s in state)


def state_tensors(state: State) -> Iterator[Tensor]:
    """Every tensor of a (nested tuple) state, in order."""
    if isinstance(state, Tensor):
        yield state
    else:
        for s in state:
            yield from state_tensors(s)


def rebuild_state(template: State, tensors: Iterator[Tensor]) -> State:
    """A state of `template`'s nesting holding `tensors` (in `state_tensors` order)."""
    if isinstance(template, Tensor):
        return next(tensors)
    return tuple(rebuild_state(t, tensors) for t in template)


def check_state(state, what: str) -> None:
    """TypeError naming the piece of a state that is not a tensor or a tuple of them."""
    if isinstance(state, Tensor):
        return
    if not isinstance(state, (tuple, list)) or not state:
        kind = "an empty tuple" if isinstance(state, (tuple, list)) else type(state).__name__
        raise TypeError(f"{what} is {kind}; a policy's state must be a tensor or a (nested) tuple of tensors, "
                        f"batch first")
    for i, piece in enumerate(state):
        check_state(piece, f"{what}[{i}]")


def state_change(before: State, after: State, what: str = "state", first: bool = False
                 ) -> tuple[Optional[str], list[Optional[int]]]:
    """How a state changed across one step: (a message if it broke the contract, for each
    tensor in `state_tensors` order the axis it grew along or None). Between steps a state
    keeps its structure (the same nesting, the same number of tensors), each tensor its dtype
    and device and every dimension but one, which may grow (a KV cache's sequence axis).
    `first`: the step from the initial state, whose floating dtype may change (under
    autocast a zero state in float32 comes back in bfloat16)."""
    if isinstance(before, Tensor) != isinstance(after, Tensor) or (
            not isinstance(before, Tensor) and len(before) != len(after)):
        count = lambda s: 1 if isinstance(s, Tensor) else len(s)  # noqa: E731
        return (f"the policy's {what} changed its structure between steps ({count(before)} piece(s), then "
                f"{count(after)}): a state must keep its nesting and number of tensors"), []
    if not isinstance(before, Tensor):
        axes: list[Optional[int]] = []
        for i, (b, a) in enumerate(zip(before, after)):
            problem, grown = state_change(b, a, f"{what}[{i}]", first)
            if problem:
                return problem, []
            axes += grown
        return None, axes
    recast = first and before.dtype.is_floating_point and after.dtype.is_floating_point
    if (before.dtype != after.dtype and not recast) or before.device != after.device:
        return (f"the policy's {what} changed from {before.dtype} on {before.device} to {after.dtype} on "
                f"{after.device} between steps"), []
    changed = [d for d in range(before.dim()) if d >= after.dim() or before.shape[d] != after.shape[d]]
    if before.dim() != after.dim() or changed == [0] or len(changed) > 1 or any(
            after.shape[d] < before.shape[d] for d in changed):
        return (f"the policy's {what} changed shape from {tuple(before.shape)} to {tuple(after.shape)} between "
                f"steps: only one axis (not the batch) may change, and only grow"), []
    return None, [changed[0] if changed else None]


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, rate: float) -> None:
    """target <- rate * target + (1 - rate) * source, parameter by parameter.

    SeqGAN's delayed rollout policy is this moving average of the generator with
    rate 0.8 (official code, `rollout.update_params`): the rollouts that score the
    generator's tokens come from a slightly older, smoother policy.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"ema rate must be in [0, 1], got {rate}")
    for t, s in zip(target.parameters(), source.parameters()):
        t.mul_(rate).add_(s.detach(), alpha=1.0 - rate)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)


@torch.no_grad()
def generate(
    policy: Policy,
    batch_size: int,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    initial_state: Optional[State] = None,
    given: Optional[Tensor] = None,
    fixed: Optional[Tensor] = None,
    device: Optional[torch.device] = None,
) -> Tensor:
    """Sample sequences from a policy, left to right, keeping `fixed` positions.

    Shape:
        initial_state: `batch_size` rows, or None for `policy.initial_state(batch_size)`
        given, fixed: optional (batch_size, length) int64 / bool: where `fixed` is
            True the token of `given` is written (and fed to the next step) instead
            of a sampled one; infilling keeps the visible tokens this way
        returns: (batch_size, length) int64

    One draw per row and step from `generator`, whether or not the position is
    fixed, so the random stream does not depend on where the blanks are. `top_k`:
    draw from each step's k most likely tokens only.
    """
    if (given is None) != (fixed is None):
        raise ValueError("given and fixed go together")
    state = policy.initial_state(batch_size) if initial_state is None else initial_state
    if device is None:
        device = given.device if given is not None else next(state_tensors(state)).device
    tokens = torch.full((batch_size,), policy.start_token, dtype=torch.long, device=device)
    out = torch.empty(batch_size, length, dtype=torch.long, device=device)
    diverged = torch.zeros((), dtype=torch.bool, device=device)
    for t in range(length):
        logits, state = policy.step(tokens, state)
        tokens = sample_from_logits(top_k_logits(logits, top_k), temperature=temperature, generator=generator)[:, 0]
        # NaN or infinite logits leave the inverse CDF without a token (an id past the vocabulary):
        # noted on the device and checked once at the end (no synchronisation per step)
        diverged |= (tokens >= logits.shape[1]).any()
        tokens = tokens.clamp_(max=logits.shape[1] - 1)
        if fixed is not None:
            tokens = torch.where(fixed[:, t], given[:, t], tokens)
        out[:, t] = tokens
    if bool(diverged):
        raise NumericalError("sampling: the policy's logits are NaN or infinite (its weights diverged); "
                             "nothing was sampled")
    return out
