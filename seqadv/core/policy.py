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

from torch import Tensor

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


