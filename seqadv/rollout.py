"""Monte Carlo rollout rewards: Q(prefix) = E[reward(completion of the prefix)].

For sequences y of length T, the reward of token y_t (0-based) is the mean reward
of `num_rollouts` completions of the prefix y_0..y_t sampled from a policy; the
last token's reward is the reward of y itself (SeqGAN, eq. 4).

How it is fast, compared to the per-prefix loop of the public implementations
(`rollout_reference.naive_rollout_rewards`), which re-runs the policy over each
prefix for each rollout and so costs N * T^2 steps:
  * one pass over the given sequences yields every prefix's state, and the N
    first tokens after each prefix are drawn right there from one CDF;
  * all prefixes x rollouts of a chunk advance together, one position per step,
    so a whole reward computation is T - 1 steps. Rows are ordered by prefix
    length, so at position k only the rows whose prefix is shorter than k are
    stepped: a contiguous slice, no masking, no wasted work;
  * the rolling rows' states live in one buffer per state tensor: a KV cache that
    grows is allocated once at its full length, a step reads the positions filled
    so far as a view and only what it appended is stored, never the whole cache;
  * each step is taken in blocks of `block_rows` rows into one reused logits
    buffer (if the policy's `step` takes `out`): on CPU a fresh logits matrix
    per step costs about as much in page faults as the projection itself;
  * sampling is exact inverse-CDF from torch's fused softmax with a two-level
    CDF (`sampling`), not `torch.multinomial` (12x slower at V = 5,000);
  * every uniform is drawn up front in one tensor indexed by (sequence, prefix,
    rollout, position), so the result for a seed does not depend on the chunk
    or block size, and chunks bound the memory;
  * a reward may score the completions of a prefix knowing what they share
    (`PrefixAwareReward`): the discriminator computes the convolution windows
    that lie inside a kept prefix once, not once per rollout.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor

from .policy import Policy, State, check_state, map_state, rebuild_state, state_change, state_tensors
from .sampling import mask_after_eos, sample_from_logits

RewardFn = Callable[[Tensor], Tensor]
"""sequences (rows, T) int64 -> rewards (rows,) float; called without gradients."""


@runtime_checkable
class PrefixAwareReward(Protocol):
    """A reward that can score the completions of many prefixes faster than one by one.

    `score_rollouts(sequences, completions, num_rollouts)` receives the given
    sequences (b, T) and their completions ((T-1) * b * N, T), rows ordered
    (prefix length t = 1..T-1, sequence, rollout), where the completions of
    prefix length t keep sequences[:, :t]; it returns the same rewards as
    calling the reward on `completions`. The engine calls it instead of
    `__call__` whenever a reward has it (`rewards.DiscriminatorReward` does).
    """

    def __call__(self, sequences: Tensor) -> Tensor: ...

    def score_rollouts(self, sequences: Tensor, completions: Tensor, num_rollouts: int) -> Tensor: ...


class RolloutEngine:
    """Per-token rewards by Monte Carlo rollouts of a policy.

    Args:
        policy: implements `seqadv.policy.Policy` (start_token, initial_state, step).
            Its mode (train/eval) is left as it is: pass a policy without dropout
            active, e.g. SeqGAN's delayed copy of the generator.
        num_rollouts: completions per prefix (N; SeqGAN uses 16).
        temperature: the policy's softmax temperature during rollouts.
        max_batch_rows: completions (prefixes x rollouts) held at once; the batch
            is split into chunks of whole sequences. Default: as many as fit
            `memory_budget_mb`.
        memory_budget_mb: the bound used when `max_batch_rows` is None.
        block_rows: rows projected and sampled at once within a step. Default:
            as many as keep about 16 MB of float32 logits.
        eos_token, pad_token: if both are given, everything after the first
            end token of a completion is set to padding before it is scored.

    Example:
        engine = RolloutEngine(generator, num_rollouts=16)
        rewards = engine.rewards(samples, lambda s: torch.sigmoid(disc(s)))  # (B, T)
    """

    def __init__(
        self,
        policy: Policy,
        num_rollouts: int = 16,
        *,
        temperature: float = 1.0,
        max_batch_rows: Optional[int] = None,
        memory_budget_mb: float = 512.0,
        block_rows: Optional[int] = None,
        eos_token: Optional[int] = None,
        pad_token: Optional[int] = None,
    ):
        if num_rollouts < 1:
            raise ValueError(f"num_rollouts must be at least 1, got {num_rollouts}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        for name, value in [("max_batch_rows", max_batch_rows), ("block_rows", block_rows)]:
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if memory_budget_mb <= 0:
            raise ValueError(f"memory_budget_mb must be positive, got {memory_budget_mb}")
        self.policy = policy
        self.num_rollouts = num_rollouts
        self.temperature = temperature
        self.max_batch_rows = max_batch_rows
        self.memory_budget_mb = memory_budget_mb
        self.block_rows = block_rows
        self.eos_token = eos_token
        self.pad_token = pad_token
        parameters = inspect.signature(policy.step).parameters
        self._step_takes_out = "out" in parameters
        self._step_takes_into = "into" in parameters

    @torch.no_grad()
    def rewards(
        self,
        sequences: Tensor,
        reward_fn: RewardFn,
        fixed: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
        initial_state: Optional[State] = None,
        context: Optional[State] = None,
    ) -> Tensor:
        """Per-token rewards of `sequences`.

        Shape:
            sequences: (B, T) int64 token ids, on the policy's device
            fixed: optional (B, T) bool; True marks positions that every rollout
                keeps as given (a prefix is always kept; infilling keeps more)
            initial_state: optional state of B rows, batch first; default
                `policy.initial_state(B)`. A conditional policy passes the state
                that carries each sequence's condition (the infilling generator's
                encoding of the masked text).
            context: optional tensor (or tuple of tensors) of B rows: what a
                conditional reward needs of each sequence (its source text, its user)
            returns: (B, T) float32; column t is the mean reward of the N
                completions of y_0..y_t, column T-1 is reward_fn(sequences)

        `generator` seeds the rollouts (a torch.Generator on the sequences' device).

        `reward_fn(rows)` gets (rows, T) completed sequences and returns (rows,) finite
        rewards. The rows come in chunks of whole sequences, each chunk ordered (prefix
        length t = 1 .. T-1, sequence, rollout), then the given sequences themselves; a
        reward that takes a keyword `index` also gets, for each row, the index in the
        batch of the sequence it completes ((rows,) int64), and one that takes `context`
        gets `context` indexed by it, whatever the chunking.
        """
        if not isinstance(sequences, Tensor) or sequences.dim() != 2:
            shape = tuple(sequences.shape) if isinstance(sequences, Tensor) else type(sequences).__name__
            raise ValueError(f"sequences must be a (batch, length) tensor of token ids, got {shape}")
        if sequences.dtype.is_floating_point or sequences.dtype.is_complex or sequences.dtype == torch.bool:
            raise TypeError(f"sequences must hold integer token ids, got {sequences.dtype}")
        sequences = sequences.long()
        if fixed is not None and fixed.shape != sequences.shape:
            raise ValueError(f"fixed must have the shape of sequences {tuple(sequences.shape)}, got {tuple(fixed.shape)}")
        B, T = sequences.shape
        device = sequences.device
        if generator is not None and generator.device.type != device.type:
            raise ValueError(f"the generator is on {generator.device} but the sequences on {device}: "
                             f"seed the rollouts with torch.Generator(device={str(device)!r})")
        if initial_state is not None:
            check_state(initial_state, "initial_state")
            rows = {s.shape[0] for s in state_tensors(initial_state)}
            if rows != {B}:
                raise ValueError(f"initial_state must have {B} rows (one per sequence), got {sorted(rows)}")
        N = self.num_rollouts
        if B == 0:
            return torch.empty(B, T, device=device)
        vocab, dtype, state_bytes, growth = self._probe(sequences, initial_state)
        low, high = int(sequences.min()), int(sequences.max())
        if low < 0 or high >= vocab:
            raise ValueError(f"token ids must lie in [0, {vocab}) (the policy's vocabulary), got {low} .. {high}")
        if context is not None:
            check_state(context, "context")
            if {c.shape[0] for c in state_tensors(context)} != {B}:
                raise ValueError(f"context must have {B} rows (one per sequence)")
        score = _Scorer(reward_fn, context)
        rewards = torch.empty(B, T, device=device)
        rewards[:, T - 1] = _checked_scores(score(self._finish(sequences), torch.arange(B, device=device)), B)
        if T == 1 or B == 0:
            return rewards

        # uniforms[b, t - 1, n, k]: the draw at position k of rollout n of prefix length t of sequence b.
        # On the CPU they are drawn chunk by chunk (inside the memory budget): torch's CPU generator
        # fills consecutive draws alike in one call or several, so the rewards for a seed do not
        # depend on the chunking. Elsewhere (CUDA's counter-based generator offsets each call) they
        # are drawn for the whole batch up front, and the budget leaves room for them.
        upfront = device.type != "cpu"
        uniforms = torch.rand(B, T - 1, N, T, device=device, generator=generator) if upfront else None
        fixed = fixed.bool() if fixed is not None else None
        prefix_aware = isinstance(reward_fn, PrefixAwareReward)
        block = self._block(vocab)
        chunk = self._sequences_per_chunk(T, vocab, state_bytes, uniforms.numel() * 4 if upfront else 0)
        # one logits buffer for every block of every step, if the policy can write into it (not under
        # autocast: the policy's logits then come in the autocast dtype, from its own kernels)
        autocast = torch.is_autocast_enabled(device.type) if device.type in ("cpu", "cuda") else False
        buffer = None
        if self._step_takes_out and not autocast:
            buffer = torch.empty(block, vocab, dtype=dtype, device=device)
        for begin in range(0, B, chunk):
            end = min(B, begin + chunk)
            part = sequences[begin:end]
            state = None if initial_state is None else map_state(lambda s: s[begin:end], initial_state)
            draws = uniforms[begin:end] if upfront else torch.rand(end - begin, T - 1, N, T, device=device,
                                                                   generator=generator)
            completed = self._complete(part, None if fixed is None else fixed[begin:end], draws, block, buffer,
                                       state, growth, vocab)
            if int(completed.max()) >= vocab:  # see _complete: the draws of NaN or infinite logits
                raise ValueError("the policy's logits were NaN or infinite at some rollout step")
            # the sequence each completion completes: rows ordered (t, sequence, rollout)
            index = torch.arange(begin, end, device=device).repeat_interleave(N).repeat(T - 1)
            if prefix_aware:
                # end-token masking keeps prefixes shared: a prefix is masked as its sequence is
                scores = score.rollouts(self._finish(part), self._finish(completed), N, index)
            else:
                scores = score(self._finish(completed), index)
            scores = _checked_scores(scores, len(completed))
            # scores: ((T-1) * b * N,) in (t, b, n) order -> mean over n -> (b, T-1)
            rewards[begin:end, : T - 1] = scores.float().view(T - 1, end - begin, N).mean(dim=2).T
        return rewards

    def _probe(self, sequences: Tensor, initial_state: Optional[State]
               ) -> tuple[int, torch.dtype, int, list[Optional[tuple[int, int]]]]:
        """Two steps of the policy on a copy of one row, checking the contract on the way.

        Returns the vocabulary size, the logits' dtype, the bytes of one row's state at the
        sequences' full length, and for each tensor of the state (`state_tensors` order) None
        if its shape is fixed or (axis, positions added per step) if it grows (a KV cache).
        ValueError / TypeError, one message, for what breaks the contract.
        """
        device, T = sequences.device, sequences.shape[1]
        if initial_state is None:
            state = self.policy.initial_state(1)
            check_state(state, "policy.initial_state(1)")
        else:
            check_state(initial_state, "initial_state")
            # a copy of the caller's row: a policy that wrote into its input state must not change theirs
            state = map_state(lambda s: s[:1].clone(), initial_state)
        for piece in state_tensors(state):
            if piece.device != device:
                raise ValueError(f"the sequences are on {device} but the policy's state is on {piece.device}: "
                                 f"put the sequences, the policy and its state on one device")
        start = torch.full((1,), self.policy.start_token, dtype=torch.long, device=device)
        sizes, axes = [[p.shape for p in state_tensors(state)]], []
        for probe_step in range(2):
            before = map_state(torch.clone, state)
            logits, new = self.policy.step(start, state)
            if not all(torch.equal(a, b) for a, b in zip(state_tensors(before), state_tensors(state))):
                raise ValueError("policy.step changed the state it was given in place; it must return a new state "
                                 "and leave its input as it was (the engine keeps every prefix's state)")
            if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != 1 or \
                    not logits.dtype.is_floating_point:
                shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                raise ValueError(f"policy.step must return float logits of shape (rows, vocab) first, got {shape}")
            if logits.device != device:
                raise ValueError(f"the sequences are on {device} but the policy's logits on {logits.device}: "
                                 f"put the sequences, the policy and its state on one device")
            check_state(new, "the state policy.step returned")
            problem, grown = state_change(state, new, first=probe_step == 0)
            if problem:
                raise ValueError(problem)
            if probe_step == 0:
                axes = grown
            elif grown != axes:
                raise ValueError("the policy's state grew along other axes at its second step than at its first: "
                                 "a growing piece must grow along one axis by the same amount every step")
            else:
                for i, (old, piece, axis) in enumerate(zip(state_tensors(state), state_tensors(new), axes)):
                    # the engine stores only what a step appends: the rest must be the input, unchanged
                    if axis is not None and not torch.equal(piece.narrow(axis, 0, old.shape[axis]), old.to(piece.dtype)):
                        raise ValueError(f"state piece {i} grew along axis {axis} but its first {old.shape[axis]} "
                                         f"positions changed: a growing piece (a KV cache) may only append")
            if probe_step == 1 and self._step_takes_into and all(a is not None for a in axes):
                self._check_into(start, state, logits, new)
            sizes.append([s.shape for s in state_tensors(new)])
            state = new
        growth = []
        for axis, *shapes in zip(axes, *sizes):
            added = [after[axis] - before[axis] for before, after in zip(shapes, shapes[1:])] if axis is not None else []
            if added and added[0] != added[1]:
                raise ValueError(f"the policy's state grew by {added[0]} position(s) at its first step, then by "
                                 f"{added[1]}: a growing piece must grow by the same amount every step")
            growth.append((axis, added[0]) if axis is not None else None)
        # at the full length: T inputs consumed (start, y_0 .. y_{T-2})
        state_bytes = 0
        for piece, grows in zip(state_tensors(state), growth):
            size = piece.numel() * piece.element_size()
            if grows:
                axis, added = grows
                size = size // piece.shape[axis] * (piece.shape[axis] + (T - 2) * added)
            state_bytes += size
        return logits.shape[1], logits.dtype, state_bytes, growth

    def _check_into(self, tokens: Tensor, state: State, logits: Tensor, new: State) -> None:
        """A step written `into` longer buffers, whose leading positions hold `state` (and
        are the state it is given, as in the engine), must give what the plain step gave."""
        into, views = [], []
        for piece, grown in zip(state_tensors(state), state_tensors(new)):
            axis = next(d for d in range(piece.dim()) if piece.shape[d] != grown.shape[d])
            buffer = torch.zeros_like(grown)
            buffer.narrow(axis, 0, piece.shape[axis]).copy_(piece)
            into.append(buffer)
            views.append(buffer.narrow(axis, 0, piece.shape[axis]))
        logits_into, new_into = self.policy.step(tokens, rebuild_state(state, iter(views)),
                                                 into=rebuild_state(state, iter(into)))
        close = lambda a, b: a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)  # noqa: E731
        if not (close(logits_into, logits) and all(close(a, b) for a, b in zip(state_tensors(new_into), state_tensors(new)))
                and all(torch.equal(v, p) for v, p in zip(views, state_tensors(state)))):
            raise ValueError("policy.step(..., into=...) gave other logits or another state than policy.step without "
                             "it, or changed the positions it was given: a step written into the engine's buffers must "
                             "equal the plain step")

    def _sequences_per_chunk(self, length: int, vocab: int, state_bytes: int, reserved: int = 0) -> int:
        rows_per_sequence = (length - 1) * self.num_rollouts
        if self.max_batch_rows is not None:
            return max(1, self.max_batch_rows // rows_per_sequence)
        # per completion: tokens (int64), a copy for the reward, uniforms, keep mask, two states
        row_bytes = length * (8 + 8 + 4 + 1) + 2 * state_bytes
        # per sequence: its prefix states, and its N * (T - 1) completions
        sequence_bytes = length * state_bytes + rows_per_sequence * row_bytes
        block_bytes = 3 * 4 * vocab * self._block(vocab)
        budget = self.memory_budget_mb * 2**20 - block_bytes - reserved
        return max(1, int(budget // sequence_bytes))

    def _block(self, vocab: int) -> int:
        # about 16 MB of float32 logits. Measured on a 2-core EPYC (V = 5,000): blocks of
        # 128 rows take 1.5x as long as 512 to 1,024 (per-block overheads), 4,096 rows 1.1x
        return self.block_rows or max(16, (16 << 20) // (4 * vocab))

    def _complete(
        self, sequences: Tensor, fixed: Optional[Tensor], uniforms: Tensor, block: int, buffer: Optional[Tensor],
        initial_state: Optional[State], growth: list[Optional[tuple[int, int]]], vocab: int,
    ) -> Tensor:
        """Complete every prefix of a chunk N times.

        Shape:
            sequences: (b, T); fixed: (b, T) or None; uniforms: (b, T-1, N, T);
            initial_state: b rows or None; growth: `_probe`'s, one entry per state tensor
            returns: ((T-1) * b * N, T), rows ordered (prefix length t = 1..T-1, sequence, rollout)
        """
        b, T = sequences.shape
        N = self.num_rollouts
        M = b * N  # rows per prefix length
        fresh, states = self._prefix_pass(sequences, uniforms, initial_state)
        out = sequences.repeat_interleave(N, dim=0).repeat(T - 1, 1)
        keep = None if fixed is None else fixed.repeat_interleave(N, dim=0).repeat(T - 1, 1)
        running = _RollingStates(states[1], (T - 2) * M, T, growth) if T > 2 else None
        # a policy that appends in place (`into`, checked in the probe) writes only the new positions
        into = self._step_takes_into and all(growth)
        for k in range(1, T):
            stepped = (k - 1) * M
            if k >= 2:
                # rows with prefix length k-1 join the rolling rows, from their prefix states
                running.join((k - 2) * M, states[k - 1], N, k)
                u = uniforms[:, : k - 1, :, k].transpose(0, 1).reshape(stepped, 1)
                for a in range(0, stepped, block):
                    e = min(stepped, a + block)
                    tokens, state = out[a:e, k - 1].clamp(max=vocab - 1), running.view(a, e, k)
                    extra = {} if buffer is None else {"out": buffer[: e - a]}
                    if into:  # the buffers at their length after this step: the step fills the last position(s)
                        extra["into"] = running.view(a, e, k + 1)
                    logits, new = self.policy.step(tokens, state, **extra)
                    running.store(a, new, k)
                    # the logits are scratch space only where they are the engine's own buffer: logits
                    # a policy returns may be its own tensors (a view of a parameter, a cache)
                    drawn = sample_from_logits(logits, u[a:e], temperature=self.temperature,
                                               overwrite=buffer is not None)[:, 0]
                    # NaN or infinite logits leave the inverse CDF without a token: an id past the
                    # vocabulary, fed to no step (the policy would fail on it) but kept for the check
                    out[a:e, k] = drawn if keep is None else torch.where(keep[a:e, k], out[a:e, k], drawn)
            # rows with prefix length k start here, from the draws of the prefix pass
            drawn = fresh[k].reshape(M)
            rows = slice(stepped, stepped + M)
            out[rows, k] = drawn if keep is None else torch.where(keep[rows, k], out[rows, k], drawn)
        return out

    def _prefix_pass(
        self, sequences: Tensor, uniforms: Tensor, initial_state: Optional[State]
    ) -> tuple[list[Optional[Tensor]], list[State]]:
        """One pass over the given sequences; the N first tokens after each prefix.

        Shape:
            sequences: (b, T); uniforms: (b, T-1, N, T); initial_state: b rows or None
            returns fresh[k]: (b, N), the tokens at position k of the rollouts of prefix
            length k (k = 1 .. T-1; fresh[0] is None), and states[p]: the state after
            consuming start, y_0 .. y_{p-1} (p = 0 .. T-2; T steps in all)
        """
        b, T = sequences.shape
        state = self.policy.initial_state(b) if initial_state is None else initial_state
        tokens = torch.full((b,), self.policy.start_token, dtype=torch.long, device=sequences.device)
        fresh: list[Optional[Tensor]] = [None]
        states = []
        for p in range(T - 1):
            logits, state = self.policy.step(tokens, state)
            if p >= 1:
                fresh.append(sample_from_logits(logits, uniforms[:, p - 1, :, p], temperature=self.temperature))
            states.append(state)
            tokens = sequences[:, p]
        logits, _ = self.policy.step(tokens, state)
        fresh.append(sample_from_logits(logits, uniforms[:, T - 2, :, T - 1], temperature=self.temperature))
        return fresh, states

    def _finish(self, sequences: Tensor) -> Tensor:
        return mask_after_eos(sequences, self.eos_token, self.pad_token)


class _RollingStates:
    """The states of all the rows rolling at once: one buffer per tensor of the state.

    The rows stepped at step k have all consumed the same k inputs (start, y_0 .. y_{k-2}),
    so their states share one shape even when the state grows (a KV cache). A fixed-shape
    tensor is kept whole and overwritten by each step; a growing one is allocated at its
    full length once, a step reads the positions filled so far (a view, no copy) and only
    what it appended is stored, so no step copies a whole cache.

    Shape: template: the prefix states after two inputs (b rows, `states[1]`); rows: the
    most rows that roll at once, (T - 2) * b * N
    """

    def __init__(self, template: State, rows: int, length: int, growth: list[Optional[tuple[int, int]]]):
        self.template, self.growth = template, growth
        self.base = []  # each growing tensor's positions after two inputs
        self.buffers = []
        for piece, grows in zip(state_tensors(template), growth):
            shape = [rows, *piece.shape[1:]]
            if grows:
                axis, added = grows
                self.base.append(piece.shape[axis])
                shape[axis] = piece.shape[axis] + (length - 2) * added  # after the last step
            else:
                self.base.append(0)
            self.buffers.append(piece.new_empty(shape))

    def _filled(self, i: int, k: int) -> int:
        """Positions of growing tensor i before step k (k inputs consumed)."""
        return self.base[i] + (k - 2) * self.growth[i][1]

    def _rows(self, i: int, a: int, e: int, k: int) -> Tensor:
        rows = self.buffers[i][a:e]
        return rows.narrow(self.growth[i][0], 0, self._filled(i, k)) if self.growth[i] else rows

    def view(self, a: int, e: int, k: int) -> State:
        """The state of rows a .. e-1 before step k."""
        return rebuild_state(self.template, (self._rows(i, a, e, k) for i in range(len(self.buffers))))

    def join(self, begin: int, prefix_state: State, copies: int, k: int) -> None:
        """Rows begin .. begin + b * copies start rolling before step k from b prefix states,
        each repeated `copies` times (written repeated, never materialised repeated)."""
        for i, piece in enumerate(state_tensors(prefix_state)):
            rows = self._rows(i, begin, begin + piece.shape[0] * copies, k)
            rows.unflatten(0, (piece.shape[0], copies)).copy_(piece.unsqueeze(1).expand(-1, copies, *piece.shape[1:]))

    def store(self, a: int, new: State, k: int) -> None:
        """Keep the state rows a .. returned by step k (nothing to copy where the step wrote
        into `view(a, e, k + 1)`'s buffers and returned them)."""
        for i, piece in enumerate(state_tensors(new)):
            rows = self.buffers[i][a : a + piece.shape[0]]
            if not self.growth[i]:
                rows.copy_(piece)
                continue
            axis, added = self.growth[i]
            filled = self._filled(i, k)
            if piece.shape[axis] != filled + added:
                raise ValueError(f"state piece {i} had {filled} positions before a step and {piece.shape[axis]} after "
                                 f"it; it grew by {added} per step at first: a growing piece must grow by the same "
                                 f"amount every step")
            target = rows.narrow(axis, 0, filled + added)
            if piece.data_ptr() != target.data_ptr() or piece.stride() != target.stride():
                rows.narrow(axis, filled, added).copy_(piece.narrow(axis, filled, added))


class _Scorer:
    """Calls a reward with what it asks for: the rows, and if its signature has them the
    keywords `index` (the batch index of each row's sequence) and `context` (indexed by it)."""

    def __init__(self, reward_fn, context: Optional[State]):
        self.reward_fn, self.context = reward_fn, context
        self.wants = {name for name in ("index", "context") if _accepts(reward_fn, name)}
        if context is not None and "context" not in self.wants:
            raise TypeError("a context was given but the reward takes no keyword `context`")
        self.rollout_wants = set()
        if isinstance(reward_fn, PrefixAwareReward):
            self.rollout_wants = {name for name in ("index", "context") if _accepts(reward_fn.score_rollouts, name)}

    def _keywords(self, index: Tensor, wants: set) -> dict:
        keywords = {}
        if "index" in wants:
            keywords["index"] = index
        if "context" in wants:
            keywords["context"] = None if self.context is None else map_state(lambda c: c[index.to(c.device)],
                                                                             self.context)
        return keywords

    def __call__(self, rows: Tensor, index: Tensor) -> Tensor:
        return self.reward_fn(rows, **self._keywords(index, self.wants))

    def rollouts(self, sequences: Tensor, completions: Tensor, num_rollouts: int, index: Tensor) -> Tensor:
        keywords = self._keywords(index, self.rollout_wants)
        return self.reward_fn.score_rollouts(sequences, completions, num_rollouts, **keywords)


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def _checked_scores(scores, rows: int) -> Tensor:
    """A reward's output, checked: a float tensor of shape (rows,) with no NaN or inf (a
    wrong shape would otherwise fail deep in the engine, or broadcast silently)."""
    if not isinstance(scores, Tensor):
        raise TypeError(f"the reward returned a {type(scores).__name__}; it must return a tensor of shape ({rows},)")
    if tuple(scores.shape) != (rows,):
        raise ValueError(f"the reward returned shape {tuple(scores.shape)} for {rows} sequences; it must return "
                         f"one reward per sequence, shape ({rows},)")
    scores = scores.float()
    if not bool(torch.isfinite(scores).all()):
        bad = int((~torch.isfinite(scores)).sum())
        raise ValueError(f"the reward returned {bad} non-finite value(s) (NaN or inf) among {rows}")
    return scores
