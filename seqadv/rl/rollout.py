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
    so a whole reward computation is T - 1 steps. At position k only the rows
    whose prefix is shorter than k are stepped, and only while they are text:
  * no work whose answer is known: with an end token, a prefix that already
    holds it has one completion (the finished sequence, scored once for the last
    column), so it is not rolled out at all, and a completion that draws the end
    token leaves the rolling rows at once (the rows still rolling are kept in the
    first rows of the buffers; the later ones move up);
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
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor

from seqadv.core.masks import mask_after_eos
from seqadv.core.policy import Policy, State, check_state, map_state, rebuild_state, state_change, state_tensors
from seqadv.core.sampling import sample_from_logits

RewardFn = Callable[[Tensor], Tensor]
"""sequences (rows, T) int64 -> rewards (rows,) float; called without gradients."""


@runtime_checkable
class PrefixAwareReward(Protocol):
    """A reward that can score the completions of many prefixes faster than one by one.

    `score_rollouts(sequences, completions, num_rollouts, counts)` receives sequences
    (b, T) and the completions of their prefixes (N * sum(counts), T), grouped by prefix
    length t = 1 .. T-1: group t holds the N completions of each of the first
    counts[t - 1] sequences, sequence by sequence, each keeping sequences[j, :t]. It
    returns the same rewards as calling the reward on `completions`. The engine calls it
    instead of `__call__` whenever a reward has it (`rewards.DiscriminatorReward` does);
    `counts` is below b where prefixes that already end are not rolled out. Where some
    prefixes are not rolled out because their next position is kept (`fixed`), it is called
    once per prefix length t with the sequences rolled out at t and counts that are 0 but at t.
    """

    def __call__(self, sequences: Tensor) -> Tensor: ...

    def score_rollouts(self, sequences: Tensor, completions: Tensor, num_rollouts: int,
                       counts: list[int]) -> Tensor: ...


class RolloutEngine:
    """Per-token rewards by Monte Carlo rollouts of a policy.

    Args:
        policy: implements `seqadv.core.policy.Policy` (start_token, initial_state, step).
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
            end token of a completion is set to padding before it is scored; a
            prefix that holds the end token is then not rolled out (its reward is its
            finished sequence's) and a completion stops stepping once it draws it.

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
        self.stats = RolloutStats()  # of the last `rewards` call

    @torch.no_grad()
    def rewards(
        self,
        sequences: Tensor,
        reward_fn: RewardFn,
        fixed: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
        initial_state: Optional[State] = None,
        context: Optional[State] = None,
        per_completion: bool = False,
        prefixes: Optional[list[int]] = None,
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
                completions of y_0..y_t, column T-1 is reward_fn(sequences);
                with `per_completion`, (B, T, N): each completion's reward, not their mean

        `generator` seeds the rollouts (a torch.Generator on the sequences' device).

        `reward_fn(rows)` gets (rows, T) completed sequences (after `eos_token`, padding)
        and returns (rows,) finite rewards. It is called first on the given sequences
        themselves, in batch order, then on the completions, chunk by chunk. Only prefixes
        that are still text are rolled out: with `eos_token` and `pad_token` set, a prefix
        that holds the end token has one completion, the finished sequence, so its reward
        is column T-1's, with no rollout and no second scoring; so has a prefix whose later
        positions are all `fixed`. A prefix whose next position is `fixed` is not rolled out
        either: its completions are the next prefix's in distribution, and it takes that
        prefix's value (`_rolled_prefixes`). Within a chunk the
        completions come grouped by prefix length t = 1 .. T-1, each group holding the N
        completions of each unfinished prefix of that length, sequence by sequence, in an
        order the engine chooses; a reward that takes a keyword `index` gets, for each row,
        the index in the batch of the sequence it completes ((rows,) int64), and one that
        takes `context` gets `context` indexed by it, whatever the chunking. A
        `PrefixAwareReward` gets the same rows through `score_rollouts`.

        `per_completion=True` keeps the N rewards of each prefix apart, for a recipe whose
        credit compares completions with each other rather than averaging them (RankGAN's
        softmax over the batch's completions of one prefix length, MaliGAN's weights
        normalised over the completions of one prefix): [b, t, n] is the reward of rollout n
        of y_0..y_t. Where a prefix is not rolled out, its N entries are what its completions
        are known to be: a finished prefix's N copies of its sequence's reward (column T-1,
        whose N entries are all reward_fn(sequences)), and a prefix whose next position is kept
        the next prefix's N rewards. Their mean over n is the default's result.

        `prefixes`: roll out only these prefix lengths t (1 .. T-1; LeakGAN's every c-th); the
        other columns but the last are NaN. The requested columns are bitwise the full call's
        for the same seed (the draws are found by sequence, prefix length and rollout). Not with
        `fixed`, whose kept positions pass values between columns. `self.stats`
        counts the completions rolled out and skipped. A finished prefix's reward is one
        score, not the mean of N: the same expectation, the same value for a deterministic
        reward (a discriminator in eval mode, as `rewards.DiscriminatorReward` scores).
        """
        sequences, fixed = self._checked_batch(sequences, fixed, generator, initial_state, context)
        B, T = sequences.shape
        device = sequences.device
        if B == 0 or T == 0:
            return torch.empty(B, T, *((self.num_rollouts,) if per_completion else ()), device=device)
        if prefixes is not None:
            if fixed is not None:
                raise ValueError("prefixes and fixed do not go together: a kept position takes the next "
                                 "prefix's value, which prefixes may leave out")
            wrong = [t for t in prefixes if not (isinstance(t, int) and 1 <= t <= T - 1)]
            if wrong:
                raise ValueError(f"prefixes must be prefix lengths in 1..{T - 1}, got {wrong}")
        score, layout = self._checked_contracts(sequences, reward_fn, initial_state, context)
        rewards = torch.empty(B, T, *((self.num_rollouts,) if per_completion else ()), device=device)
        own = _checked_scores(score(self._finish(sequences), torch.arange(B, device=device)), B)
        rewards[:, T - 1] = own.unsqueeze(1) if per_completion else own
        stats = RolloutStats()
        self.stats = stats
        if T > 1:
            self._roll_out(rewards, sequences, fixed, initial_state, generator, score, layout, stats,
                           None if prefixes is None else set(prefixes))
            if prefixes is not None:
                rewards[:, [t - 1 for t in range(1, T) if t not in set(prefixes)]] = float("nan")
        return rewards

    @staticmethod
    def _checked_batch(sequences, fixed: Optional[Tensor], generator: Optional[torch.Generator],
                       initial_state: Optional[State], context: Optional[State]) -> tuple[Tensor, Optional[Tensor]]:
        """The tensors of a `rewards` call, checked against each other before any work.

        A wrong shape, dtype, device or row count would otherwise fail deep in a rollout step
        (or broadcast silently), so each is refused here with a message naming the argument.
        Nothing here needs the policy or the reward: an empty batch is checked as well.

        Shape:
            sequences: (B, T) integer token ids; fixed: (B, T) or None;
            initial_state, context: B rows or None
            returns: sequences as (B, T) int64, and `fixed` as given
        """
        if not isinstance(sequences, Tensor) or sequences.dim() != 2:
            shape = tuple(sequences.shape) if isinstance(sequences, Tensor) else type(sequences).__name__
            raise ValueError(f"sequences must be a (batch, length) tensor of token ids, got {shape}")
        if sequences.dtype.is_floating_point or sequences.dtype.is_complex or sequences.dtype == torch.bool:
            raise TypeError(f"sequences must hold integer token ids, got {sequences.dtype}")
        sequences = sequences.long()
        if fixed is not None and fixed.shape != sequences.shape:
            raise ValueError(f"fixed must have the shape of sequences {tuple(sequences.shape)}, got {tuple(fixed.shape)}")
        B = sequences.shape[0]
        device = sequences.device
        if generator is not None and generator.device.type != device.type:
            raise ValueError(f"the generator is on {generator.device} but the sequences on {device}: "
                             f"seed the rollouts with torch.Generator(device={str(device)!r})")
        if initial_state is not None:
            check_state(initial_state, "initial_state")
            rows = {s.shape[0] for s in state_tensors(initial_state)}
            if rows != {B}:
                raise ValueError(f"initial_state must have {B} rows (one per sequence), got {sorted(rows)}")
        if context is not None:
            check_state(context, "context")
            if {c.shape[0] for c in state_tensors(context)} != {B}:
                raise ValueError(f"context must have {B} rows (one per sequence)")
        return sequences, fixed

    def _checked_contracts(self, sequences: Tensor, reward_fn: RewardFn, initial_state: Optional[State],
                           context: Optional[State]) -> tuple[_Scorer, Optional[_Layout]]:
        """The reward's and the policy's side of the contract, checked before the first score.

        The reward's signature decides which keywords it gets (`_Scorer`); the policy is probed
        (`_probe`) for its vocabulary, dtype and state layout, which the chunk plan and the
        rolling buffers are built from, and the token ids are checked against that vocabulary.
        Called only for a non-empty batch: an empty one needs neither.

        Shape:
            sequences: (B, T) int64, B, T >= 1; initial_state, context: B rows or None
            returns: the scorer, and the policy's layout (None where T = 1)
        """
        score = _Scorer(reward_fn, context)
        T = sequences.shape[1]
        if T == 1:  # needs the reward alone: the policy is never stepped, so never probed
            return score, None
        layout = self._probe(sequences, initial_state)
        low, high = int(sequences.min()), int(sequences.max())
        if low < 0 or high >= layout.vocab:
            raise ValueError(f"token ids must lie in [0, {layout.vocab}) (the policy's vocabulary), got {low} .. {high}")
        return score, layout

    def _roll_out(self, rewards: Tensor, sequences: Tensor, fixed: Optional[Tensor], initial_state: Optional[State],
                  generator: Optional[torch.Generator], score: _Scorer, layout: _Layout, stats: RolloutStats,
                  wanted: Optional[set] = None) -> None:
        """Columns 0 .. T-2 of `rewards`: each prefix's mean reward over its N completions, or
        (`rewards` of shape (B, T, N)) each completion's reward.

        The batch is cut into chunks of whole sequences that fit the memory budget
        (`_plan_chunks`); each chunk is drawn for, completed (`_complete`), scored
        (`_score_chunk`) and written (`_write_means`) before the next starts, so only one
        chunk's completions are held at once.

        Shape:
            rewards: (B, T) or (B, T, N) float32, column T-1 already scored; columns 0 .. T-2 written here
            sequences: (B, T) int64, T >= 2; fixed: (B, T) or None; initial_state: B rows or None
        """
        B, T = sequences.shape
        N, device = self.num_rollouts, sequences.device
        uniforms, chunk, block, buffer = self._plan_chunks(B, T, layout, device, generator)
        fixed = fixed.bool() if fixed is not None else None
        open_lengths, last_free = self._open_lengths(sequences, fixed)
        prefix_aware = isinstance(score.reward_fn, PrefixAwareReward)
        for begin in range(0, B, chunk):
            end = min(B, begin + chunk)
            draws = uniforms[begin:end] if uniforms is not None else torch.rand(end - begin, T - 1, N, T, device=device,
                                                                                generator=generator)
            order, counts = self._by_open_prefixes(open_lengths[begin:end], T)
            sort = (lambda x: x) if counts[-1] == end - begin else (lambda x: x[order])  # no copies where none ends
            part = sort(sequences[begin:end])
            kept = None if fixed is None else sort(fixed[begin:end])
            groups, same_as_next = self._rolled_prefixes(kept, counts)
            if wanted is not None:  # only the requested prefix lengths
                groups = [g if t in wanted else g[:0] for t, g in enumerate(groups, start=1)]
            state = None if initial_state is None else map_state(lambda s: sort(s[begin:end]), initial_state)
            completed = self._complete(part, kept, sort(draws), counts, block, buffer, state, layout.growth,
                                       layout.vocab, stats, None if last_free is None else sort(last_free[begin:end]),
                                       groups)
            stats.skipped += ((T - 1) * (end - begin) - sum(len(g) for g in groups)) * N
            batch_index = begin + order
            scores = None
            if len(completed):
                scores = self._score_chunk(part, completed, counts, batch_index, score, prefix_aware, layout.vocab,
                                           groups if same_as_next is not None or wanted is not None else None)
                scores = scores if rewards.dim() == 3 else scores.mean(dim=1)
            self._write_means(rewards, batch_index, groups, scores, same_as_next)

    def _plan_chunks(self, B: int, T: int, layout: _Layout, device: torch.device, generator: Optional[torch.Generator]
                     ) -> tuple[Optional[Tensor], int, int, Optional[Tensor]]:
        """How the rollouts of B sequences are cut to fit `memory_budget_mb` (or `max_batch_rows`).

        Returns the uniforms drawn up front (None on the CPU, where each chunk draws its own),
        the sequences per chunk, the rows per block of a step, and the logits buffer every block
        of every step writes into (None where the policy takes no `out`).

        Shape:
            returns uniforms: (B, T-1, N, T) or None; buffer: (block, vocab) in the logits' dtype, or None
        """
        # uniforms[b, t - 1, n, k]: the draw at position k of rollout n of prefix length t of sequence b.
        # On the CPU they are drawn chunk by chunk (inside the memory budget): torch's CPU generator
        # fills consecutive draws alike in one call or several, so the rewards for a seed do not
        # depend on the chunking. Elsewhere (CUDA's counter-based generator offsets each call) they
        # are drawn for the whole batch up front, and the budget leaves room for them. Draws for
        # prefixes that are not rolled out are drawn all the same, so the stream does not depend
        # on where sequences end either.
        upfront = device.type != "cpu"
        uniforms = torch.rand(B, T - 1, self.num_rollouts, T, device=device, generator=generator) if upfront else None
        block = self._block(layout.vocab)
        chunk = self._sequences_per_chunk(T, layout.vocab, layout.state_bytes, uniforms.numel() * 4 if upfront else 0)
        # one logits buffer for every block of every step, if the policy can write into it
        buffer = (torch.empty(block, layout.vocab, dtype=layout.dtype, device=device) if self._hands_out(device)
                  else None)
        return uniforms, chunk, block, buffer

    def _sequences_per_chunk(self, length: int, vocab: int, state_bytes: int, reserved: int = 0) -> int:
        """The whole sequences one chunk holds: `max_batch_rows`' worth of completions, or as many
        as `memory_budget_mb` holds after the logits blocks and `reserved` bytes (the uniforms
        drawn up front). At least one, whatever the budget."""
        rows_per_sequence = (length - 1) * self.num_rollouts
        if self.max_batch_rows is not None:
            return max(1, self.max_batch_rows // rows_per_sequence)
        # per completion: tokens (int64), a copy for the reward, uniforms (and their copy in the order
        # of how far the sequences are text), keep mask, two indices, two states
        row_bytes = length * (8 + 8 + 4 + 4 + 1) + 16 + 2 * state_bytes
        # per sequence: its prefix states, and its N * (T - 1) completions
        sequence_bytes = length * state_bytes + rows_per_sequence * row_bytes
        block_bytes = 3 * 4 * vocab * self._block(vocab)
        budget = self.memory_budget_mb * 2**20 - block_bytes - reserved
        return max(1, int(budget // sequence_bytes))

    def _block(self, vocab: int) -> int:
        """Rows projected and sampled at once within a step: `block_rows`, or about 16 MB of
        float32 logits."""
        # Measured on a 2-core EPYC (V = 5,000): blocks of 128 rows take 1.5x as long as 512 to
        # 1,024 (per-block overheads), 4,096 rows 1.1x
        return self.block_rows or max(16, (16 << 20) // (4 * vocab))

    def _hands_out(self, device: torch.device) -> bool:
        """Whether steps get a logits buffer `out`: where the policy takes one, and not under
        autocast (the policy's logits then come in the autocast dtype, from its own kernels)."""
        autocast = torch.is_autocast_enabled(device.type) if device.type in ("cpu", "cuda") else False
        return self._step_takes_out and not autocast

    def _open_lengths(self, sequences: Tensor, fixed: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        """How many prefixes of each sequence are rolled out, and the last position its rollouts draw.

        A prefix of length t (y_0 .. y_{t-1}) is rolled out while it holds no end token and some
        position after it is free (not `fixed`): t = 1 .. open_lengths[b]. Otherwise it has one
        completion, the (finished) sequence itself, whose reward column T-1 already holds.

        Shape:
            sequences: (B, T) int64; fixed: (B, T) bool or None
            returns: open_lengths (B,) int64 in [0, T-1], and last_free (B,) int64 or None
        """
        T = sequences.shape[1]
        last_free = None if fixed is None else self._last_free(fixed)
        open_lengths = self._first_end(sequences)
        if last_free is not None:
            open_lengths = torch.minimum(open_lengths, last_free)
        return open_lengths.clamp(min=0, max=T - 1), last_free

    @staticmethod
    def _last_free(fixed: Tensor) -> Tensor:
        """(B, T) bool -> (B,): the last position each row's rollouts draw (not fixed), -1 if none."""
        T = fixed.shape[1]
        free = ~fixed
        return torch.where(free.any(dim=1), T - 1 - free.flip(1).long().argmax(dim=1),
                           torch.full_like(free[:, 0], -1, dtype=torch.long))

    def _first_end(self, sequences: Tensor) -> Tensor:
        """(B, T) -> (B,): the position of each row's first end token, T if none (or no eos/pad set)."""
        B, T = sequences.shape
        if self.eos_token is None or self.pad_token is None:
            return torch.full((B,), T, dtype=torch.long, device=sequences.device)
        is_end = sequences == self.eos_token
        return torch.where(is_end.any(dim=1), is_end.long().argmax(dim=1), torch.full_like(is_end[:, 0], T, dtype=torch.long))

    @staticmethod
    def _by_open_prefixes(open_lengths: Tensor, T: int) -> tuple[Tensor, list[int]]:
        """A chunk's sequences by how many of their prefixes are rolled out, most first.

        In that order the sequences rolled out at prefix length t are the first counts[t - 1],
        so the prefix pass (`_prefix_pass`) steps a leading slice that shrinks as t grows, and
        the completions group by prefix length without gaps. The sort is stable, so where every
        sequence is rolled out in full the order is the identity.

        Shape:
            open_lengths: (b,) int64, `_open_lengths`' for the chunk
            returns: order (b,) int64, and counts: T-1 ints, non-increasing, counts[t - 1] the
            sequences rolled out at prefix length t
        """
        order = torch.argsort(open_lengths, descending=True, stable=True)
        counts = [int(c) for c in (open_lengths.unsqueeze(0)
                                   >= torch.arange(1, T, device=open_lengths.device).unsqueeze(1)).sum(dim=1).tolist()]
        return order, counts

    def _score_chunk(self, part: Tensor, completed: Tensor, counts: list[int], batch_index: Tensor, score: _Scorer,
                     prefix_aware: bool, vocab: int, groups: Optional[list[Tensor]] = None) -> Tensor:
        """The rewards of each rolled-out prefix's N completions, a row per prefix.

        The completions are checked first: an id past the vocabulary is what `_complete` drew
        from NaN or infinite logits, and the reward must not see it. A `PrefixAwareReward`
        gets the chunk's sequences as well, masked after their end token as the completions
        are, so the prefixes the completions share stay the same.

        Shape:
            part: (b, T), the chunk's sequences in `_by_open_prefixes` order;
            completed: (N * sum(counts), T), `_complete`'s rows; batch_index: (b,) int64, each
            sorted sequence's index in the batch; groups: the sequences rolled out at each
            prefix length where they are not the first counts[t - 1] (`_rolled_prefixes`), or None
            returns: (sum(counts), N) float32, ordered (prefix length t = 1..T-1, sequence)
        """
        N = self.num_rollouts
        if int(completed.max()) >= vocab:
            raise ValueError("the policy's logits were NaN or infinite at some rollout step")
        # the sequence each completion completes (its index in the batch): rows ordered (t, sequence, rollout)
        if groups is None:
            index = torch.cat([batch_index[:c].repeat_interleave(N) for c in counts if c])
        else:
            index = torch.cat([batch_index[g].repeat_interleave(N) for g in groups if len(g)])
        if prefix_aware and groups is not None:
            # a prefix-aware reward takes groups that are the first sequences: one prefix length at a time
            scores, row, finished = [], 0, self._finish(part)
            for t, g in enumerate(groups, start=1):
                if len(g):
                    rows = slice(row, row + len(g) * N)
                    scores.append(score.rollouts(finished[g], self._finish(completed[rows]), N,
                                                 [0] * (t - 1) + [len(g)] + [0] * (len(groups) - t), index[rows]))
                    row += len(g) * N
            scores = torch.cat(scores)
        elif prefix_aware:
            scores = score.rollouts(self._finish(part), self._finish(completed), N, counts, index)
        else:
            scores = score(self._finish(completed), index)
        return _checked_scores(scores, len(completed)).view(-1, N)

    @staticmethod
    def _write_means(rewards: Tensor, batch_index: Tensor, groups: list[Tensor], scores: Optional[Tensor],
                     same_as_next: Optional[Tensor] = None) -> None:
        """Columns 0 .. T-2 of a chunk's rows of `rewards`.

        A rolled-out prefix gets its mean; a prefix not rolled out (finished, or with nothing
        left to draw) gets its sequence's own reward, column T-1: one score of the same
        expectation; a prefix whose next position is kept (`same_as_next`) gets the next
        prefix's value, which its completions equal in distribution.

        Shape:
            rewards: (B, T), or (B, T, N) for each completion's reward, written in place;
            batch_index: (b,) int64, the chunk's sequences in `_by_open_prefixes` order; groups:
            `_rolled_prefixes`'; scores: (sum of the groups' sizes,) or (sum of the groups' sizes, N),
            from `_score_chunk`, or None where no prefix of the chunk was rolled out;
            same_as_next: (b, T-1) bool or None
        """
        T = rewards.shape[1]
        last = rewards[batch_index, T - 1]  # (b,) or (b, N)
        means = last.unsqueeze(1).expand(-1, T, *last.shape[1:]).clone()
        if scores is not None:
            offset = 0
            for t, group in enumerate(groups, start=1):
                means[group, t - 1] = scores[offset : offset + len(group)]
                offset += len(group)
        if same_as_next is not None:  # right to left: a run of kept positions takes the value after it
            for t in range(T - 2, -1, -1):
                kept = same_as_next[:, t].view(-1, *([1] * (means.dim() - 2)))
                means[:, t] = torch.where(kept, means[:, t + 1], means[:, t])
        rewards[batch_index, : T - 1] = means[:, : T - 1]

    @staticmethod
    def _rolled_prefixes(kept: Optional[Tensor], counts: list[int]) -> tuple[list[Tensor], Optional[Tensor]]:
        """Which of a chunk's open prefixes are rolled out: those whose next position is drawn.

        A prefix y_0 .. y_{t-1} whose position t is kept (`fixed`) has completions that keep
        y_t too: they are the completions of y_0 .. y_t, in distribution. Its value is the next
        prefix's, so it is not rolled out (a prompt's prefixes, the text around infilled blanks).

        Shape:
            kept: (b, T) bool in `_by_open_prefixes` order, or None; counts: T-1 ints
            returns: groups, for t = 1 .. T-1 the (n_t,) int64 sequences rolled out at prefix
            length t (the first counts[t - 1], less those whose position t is kept), and
            same_as_next: (b, T-1) bool, True at (j, t - 1) where prefix length t of sequence j
            is open and takes the next prefix's value, or None where there is none
        """
        device = kept.device if kept is not None else None
        firsts = [torch.arange(c, device=device) for c in counts]
        if kept is None:
            return firsts, None
        b, T = kept.shape
        open_ = torch.arange(b, device=kept.device)[:, None] < torch.tensor(counts, device=kept.device)[None, :]
        same_as_next = open_ & kept[:, 1:]  # (b, T-1): prefix length t is open, position t is kept
        if not same_as_next.any():
            return firsts, None
        return [group[~same_as_next[: len(group), t - 1]] for t, group in enumerate(firsts, start=1)], same_as_next

    def _probe(self, sequences: Tensor, initial_state: Optional[State]) -> _Layout:
        """Up to three steps of the policy on two rows, checking the contract on the way.

        The first step feeds both rows the start token, the second tokens other than it (and
        other than each other), so a state that puts each new position first (newest-first)
        fails the append rule: fed the start token again it would look appended. The third,
        where the sequences have three positions or more, is taken twice: plainly, and as the
        engine takes it (the state handed over as views of the engine's buffers, not
        contiguous where a state grows, with `out` and `into` where the policy takes them);
        the two must agree.

        Returns the policy's `_Layout`: the vocabulary size, the logits' dtype, the bytes of one
        row's state at the sequences' full length, and for each tensor of the state
        (`state_tensors` order) None if its shape is fixed or (axis, positions added per step)
        if it grows (a KV cache). ValueError / TypeError, one message, for what breaks the contract.

        Shape:
            sequences: (B, T) int64, T >= 2; initial_state: B rows or None
        """
        T = sequences.shape[1]
        state = self._probe_state(sequences, initial_state)
        tokens = torch.full((2,), self.policy.start_token, dtype=torch.long, device=sequences.device)
        logits, after_one, axes = self._probe_step(tokens, state, first=True)
        # two different tokens next, neither of them the start token where V > 2
        vocab = logits.shape[1]
        tokens = torch.tensor([(tokens[0].item() + 1) % vocab, (tokens[0].item() + 2) % vocab], device=sequences.device)
        logits, after_two, grown = self._probe_step(tokens, after_one, first=False)
        if grown != axes:
            raise ValueError("the policy's state grew along other axes at its second step than at its first: "
                             "a growing piece must grow along one axis by the same amount every step")
        self._check_appends(after_one, after_two, axes)
        growth = self._growth(axes, [state, after_one, after_two])
        if T >= 3:
            self._check_engine_step(tokens.flip(0), after_two, growth, logits.dtype, logits.shape[1])
        return _Layout(logits.shape[1], logits.dtype, self._state_bytes(after_two, growth, T), growth)

    def _probe_state(self, sequences: Tensor, initial_state: Optional[State]) -> State:
        """The two-row state the probe starts from, on the sequences' device.

        The policy's own initial state, or a copy of the caller's first two rows (the same row
        twice where B = 1): a policy that wrote into its input state must not change theirs.

        Shape:
            sequences: (B, T); initial_state: B rows or None
            returns: a state of 2 rows
        """
        device, B = sequences.device, sequences.shape[0]
        if initial_state is None:
            state = self.policy.initial_state(2)
            check_state(state, "policy.initial_state(2)")
        else:
            state = map_state(lambda s: s[[0, min(1, B - 1)]], initial_state)
        for piece in state_tensors(state):
            if piece.device != device:
                raise ValueError(f"the sequences are on {device} but the policy's state is on {piece.device}: "
                                 f"put the sequences, the policy and its state on one device")
        return state

    def _probe_step(self, tokens: Tensor, state: State, first: bool) -> tuple[Tensor, State, list[Optional[int]]]:
        """One plain step of the policy, checked: its input left as it was, float logits of
        shape (rows, vocab) on the tokens' device, and a new state of the same structure
        (`state_change`; `first`: the step from the initial state, which may change its
        floating dtype).

        Shape:
            tokens: (2,) int64; state: 2 rows
            returns: logits (2, V), the new state, and for each of its tensors the axis it grew
            along (None where its shape stayed)
        """
        device = tokens.device
        before = map_state(torch.clone, state)
        logits, new = self.policy.step(tokens, state)
        if not all(torch.equal(a, b) for a, b in zip(state_tensors(before), state_tensors(state))):
            raise ValueError("policy.step changed the state it was given in place; it must return a new state "
                             "and leave its input as it was (the engine keeps every prefix's state)")
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != 2 or \
                not logits.dtype.is_floating_point:
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"policy.step must return float logits of shape (rows, vocab) first, got {shape} "
                             f"for 2 rows")
        if logits.device != device:
            raise ValueError(f"the sequences are on {device} but the policy's logits on {logits.device}: "
                             f"put the sequences, the policy and its state on one device")
        check_state(new, "the state policy.step returned")
        problem, grown = state_change(state, new, first=first)
        if problem:
            raise ValueError(problem)
        return logits, new, grown

    @staticmethod
    def _check_appends(before: State, after: State, axes: list[Optional[int]]) -> None:
        """A growing state tensor must keep its input as its first positions and append after it.

        The engine stores only what a step appends (`_RollingStates.store`), so a state that
        rewrites old positions, or keeps its newest position first, would be stored wrong.

        Shape: before, after: the states around one step; axes: `_probe_step`'s for that step
        """
        for i, (old, piece, axis) in enumerate(zip(state_tensors(before), state_tensors(after), axes)):
            if axis is not None and not torch.equal(piece.narrow(axis, 0, old.shape[axis]), old.to(piece.dtype)):
                raise ValueError(f"state piece {i} grew along axis {axis} but its first {old.shape[axis]} "
                                 f"positions changed: a growing piece (a KV cache) may only append, its "
                                 f"newest position last (a state kept newest-first is not supported)")

    @staticmethod
    def _growth(axes: list[Optional[int]], states: list[State]) -> list[Optional[tuple[int, int]]]:
        """For each state tensor, None if its shape is fixed or (axis, positions added per step).

        Two steps must add the same number of positions: the rolling buffers are allocated
        once, at the length the last step reaches.

        Shape: axes: the grown axes of each tensor; states: the state before, after one and
        after two steps
        """
        sizes = [[s.shape for s in state_tensors(state)] for state in states]
        growth = []
        for axis, *shapes in zip(axes, *sizes):
            added = [after[axis] - before[axis] for before, after in zip(shapes, shapes[1:])] if axis is not None else []
            if added and added[0] != added[1]:
                raise ValueError(f"the policy's state grew by {added[0]} position(s) at its first step, then by "
                                 f"{added[1]}: a growing piece must grow by the same amount every step")
            growth.append((axis, added[0]) if axis is not None else None)
        return growth

    @staticmethod
    def _state_bytes(state: State, growth: list[Optional[tuple[int, int]]], T: int) -> int:
        """The bytes of one row's state at the sequences' full length (T inputs consumed:
        start, y_0 .. y_{T-2}), which the chunk plan budgets for.

        Shape: state: 2 rows after two inputs; growth: `_growth`'s
        """
        state_bytes = 0
        for piece, grows in zip(state_tensors(state), growth):
            size = piece.numel() * piece.element_size() // 2
            if grows:
                axis, added = grows
                size = size // piece.shape[axis] * (piece.shape[axis] + (T - 2) * added)
            state_bytes += size
        return state_bytes

    def _check_engine_step(self, tokens: Tensor, state: State, growth: list[Optional[tuple[int, int]]],
                           dtype: torch.dtype, vocab: int) -> None:
        """One step taken as the engine takes it must give what the plain step gives.

        The engine hands a rolling row its state as views of its own buffers (a growing piece:
        the filled part of a buffer allocated at the full length, so not contiguous), a logits
        buffer to write into (`out`) and, for growing states, the buffers to append into
        (`into`). A policy that cannot take such views (`.view()` on its state) or that computes
        otherwise on them is refused here, before any rollout.

        Shape: tokens (2,); state: two rows after two inputs
        """
        # buffers as the engine's: longer than the step fills (so `into` is not contiguous either),
        # the rows not the first of the buffer
        running = _RollingStates(state, 3, 4, growth)
        running.rows = 1
        running.join(state, torch.arange(2, device=tokens.device), 2)
        given = running.view(1, 3, 2)
        kept = map_state(torch.clone, given)
        extra: dict = {}
        if self._hands_out(tokens.device):
            extra["out"] = torch.empty(2, vocab, dtype=dtype, device=tokens.device)
        if self._step_takes_into and all(growth):
            extra["into"] = running.view(1, 3, 3)
        how = "its state as views of the engine's buffers, not contiguous where it grows" + \
              "".join(f", {name}=" for name in extra)
        plain_logits, plain_new = self.policy.step(tokens, state)
        try:
            logits, new = self.policy.step(tokens, given, **extra)
        except Exception as exc:  # noqa: BLE001 -- e.g. .view() on a state that is not contiguous: say what it was given
            raise ValueError(f"policy.step failed on the state as the rollout engine hands it over ({how}): "
                             f"{type(exc).__name__}: {exc}. Take any strided state (.reshape, not .view)") from exc
        if not all(torch.equal(a, b) for a, b in zip(state_tensors(kept), state_tensors(given))):
            raise ValueError("policy.step changed the state it was given in place; it must return a new state "
                             "and leave its input as it was (the engine keeps every prefix's state)")
        running.store(1, new, 2)
        low = dtype not in (torch.float32, torch.float64)
        close = lambda a, b: a.shape == b.shape and torch.allclose(  # noqa: E731
            a.float(), b.float(), rtol=1e-2 if low else 1e-4, atol=1e-2 if low else 1e-5, equal_nan=True)
        held = state_tensors(running.view(1, 3, 3))
        if not (close(logits, plain_logits) and all(close(a, b) for a, b in zip(held, state_tensors(plain_new)))):
            raise ValueError(f"policy.step gave other logits or another state on the rollout engine's buffers ({how}) "
                             f"than the plain step: a step must compute the same on any strided state, write only "
                             f"the new position(s) into `into` and return the logits it wrote into `out`, if any")

    def _complete(
        self, sequences: Tensor, fixed: Optional[Tensor], uniforms: Tensor, counts: list[int], block: int,
        buffer: Optional[Tensor], initial_state: Optional[State], growth: list[Optional[tuple[int, int]]], vocab: int,
        stats: "RolloutStats", last_free: Optional[Tensor] = None, groups: Optional[list[Tensor]] = None,
    ) -> Tensor:
        """Complete N times each prefix that is still text.

        The sequences come sorted so that the ones rolled out at prefix length t are the first
        counts[t - 1]. Rows are stepped only while they are text with something left to draw:
        a completion that draws the end token (or reaches one kept in `fixed`), or whose later
        positions are all kept (`last_free`: each sequence's last free position), leaves the
        rolling rows at once. Position k of a row of prefix length k is the token the prefix pass
        drew (`_prefix_pass`); its later positions are drawn while it rolls (`_roll_position`).

        Shape:
            sequences: (b, T); fixed: (b, T) or None; uniforms: (b, T-1, N, T);
            counts: T-1 ints, non-increasing; initial_state: b rows or None; growth: `_probe`'s;
            groups: for each prefix length t the sequences rolled out, some of the first
            counts[t - 1] (`_rolled_prefixes`; default all of them)
            returns: (N * sum of the groups' sizes, T), rows ordered (prefix length t = 1..T-1,
            sequence j in groups[t - 1], rollout)
        """
        T = sequences.shape[1]
        if groups is None:
            groups = [torch.arange(c, device=sequences.device) for c in counts]
        sizes = [len(g) for g in groups]
        if not sum(sizes):
            return sequences.new_empty(0, T)
        rows = self._completion_rows(sequences, fixed, uniforms, groups, last_free)
        fresh, states = self._prefix_pass(sequences, uniforms, initial_state, counts)
        rolling = self.num_rollouts * sum(sizes[: T - 2])  # the most rows that can roll at once
        running = _RollingStates(states[1], rolling, T, growth) if T > 2 and rolling else None
        slots = torch.empty(0, dtype=torch.long, device=sequences.device)  # the rolling rows, in buffer order
        # a policy that appends in place (`into`, checked in the probe) writes only the new positions
        into = self._step_takes_into and all(growth)
        for k in range(1, T):
            if k >= 2 and running is not None:
                slots = self._roll_position(rows, slots, running, states, k, block, buffer, vocab, into, stats)
            # rows with prefix length k start here, from the draws of the prefix pass
            if rows.starts[k] > rows.starts[k - 1]:
                drawn = fresh[k] if sizes[k - 1] == counts[k - 1] else fresh[k][groups[k - 1]]
                rows.write(slice(rows.starts[k - 1], rows.starts[k]), k, drawn.reshape(-1))
        stats.rolled += rows.starts[-1]
        stats.row_steps += rows.starts[-1]  # the prefix pass's draw of each row's first token
        return rows.out

    def _completion_rows(self, sequences: Tensor, fixed: Optional[Tensor], uniforms: Tensor, groups: list[Tensor],
                         last_free: Optional[Tensor]) -> _Completions:
        """A chunk's completion rows, each a copy of its sequence, and what ties each row to its
        sequence, its prefix states and its draws.

        Each row's draws are found through its (sequence, prefix length, rollout) in the uniforms,
        never through its place among the rows, so they do not depend on which prefixes are
        rolled out or how the rows are grouped.

        Shape:
            sequences: (b, T); fixed: (b, T) bool or None; uniforms: (b, T-1, N, T);
            groups: T-1 (n_t,) int64, the sequences rolled out at each prefix length, some rows
            in all; last_free: (b,) int64 or None
            returns: `_Completions` of N * (n_1 + ... + n_{T-1}) rows, ordered as `_complete`'s
        """
        T, N, device = sequences.shape[1], self.num_rollouts, sequences.device
        starts = [0]
        for g in groups:
            starts.append(starts[-1] + len(g) * N)
        seq = torch.cat([g.repeat_interleave(N) for g in groups])
        draw = torch.cat([((g * (T - 1) + t - 1) * N).repeat_interleave(N) + torch.arange(N, device=device).repeat(len(g))
                          for t, g in enumerate(groups, start=1)])
        ends = self.eos_token is not None and self.pad_token is not None
        return _Completions(out=sequences[seq], keep=None if fixed is None else fixed[seq], seq=seq, draw=draw,
                            draws=uniforms.reshape(-1, T), last=None if last_free is None else last_free[seq],
                            starts=starts, eos=self.eos_token if ends else None)

    def _roll_position(self, rows: _Completions, slots: Tensor, running: _RollingStates, states: list[State], k: int,
                       block: int, buffer: Optional[Tensor], vocab: int, into: bool, stats: RolloutStats) -> Tensor:
        """Step k >= 2 of the rolling rows: the rows of prefix length k-1 join, every rolling row
        draws position k, one block of `block` rows at a time (`_step_block`), and the rows that
        ended leave (`_drop_ended`).

        Shape:
            slots: (r,) int64, the rolling rows (rows of `rows.out`) in buffer order before step k;
            states: `_prefix_pass`'s prefix states (the rows joining take theirs after k-1 inputs;
            the list ends where no prefix is rolled out any more)
            returns: (r',) int64, the rolling rows in buffer order after step k
        """
        T = rows.out.shape[1]
        # rows with prefix length k-1 join the rolling rows from their prefix states, unless
        # the token they drew at k-1 already ended them or nothing is left to draw
        joining = torch.arange(rows.starts[k - 2], rows.starts[k - 1], device=slots.device)
        if rows.closes and len(joining):
            joining = joining[rows.still_open(joining, k - 1)]
        if len(joining):
            running.join(states[k - 1], rows.seq[joining], k)
            slots = torch.cat([slots, joining])
        n = len(slots)
        stats.row_steps += n
        u = rows.uniforms(slots, k)
        for a in range(0, n, block):
            e = min(n, a + block)
            self._step_block(rows, slots[a:e], u[a:e], running, a, k, buffer, vocab, into)
        if rows.closes and n and k < T - 1:
            slots = self._drop_ended(rows, slots, running, k)
        return slots

    def _step_block(self, rows: _Completions, at: Tensor, u: Tensor, running: _RollingStates, a: int, k: int,
                    buffer: Optional[Tensor], vocab: int, into: bool) -> None:
        """One policy step of the rolling rows a .. a + len(at) - 1 (buffer order), which draws
        their position k.

        Shape:
            at: (n,) int64, the rows of `rows.out` they are; u: (n,) float, their uniforms at k
        """
        e = a + len(at)
        tokens, state = rows.out[at, k - 1].clamp(max=vocab - 1), running.view(a, e, k)
        extra = {} if buffer is None else {"out": buffer[: e - a]}
        if into:  # the buffers at their length after this step: the step fills the last position(s)
            extra["into"] = running.view(a, e, k + 1)
        logits, new = self.policy.step(tokens, state, **extra)
        running.store(a, new, k)
        # the logits are scratch space only where they are the engine's own buffer: logits
        # a policy returns may be its own tensors (a view of a parameter, a cache)
        drawn = sample_from_logits(logits, u[:, None], temperature=self.temperature,
                                   overwrite=buffer is not None and _same_tensor(logits, extra["out"]))[:, 0]
        # NaN or infinite logits leave the inverse CDF without a token: an id past the
        # vocabulary, fed to no step (the policy would fail on it) but kept for the check
        rows.write(at, k, drawn)

    @staticmethod
    def _drop_ended(rows: _Completions, slots: Tensor, running: _RollingStates, k: int) -> Tensor:
        """The rolling rows that go on after step k. A row that the token at k ended (drawn or kept),
        or with nothing left to draw, leaves the buffers at once, so no later step computes it.

        Shape:
            slots: (r,) int64, the rolling rows (rows of `rows.out`) in buffer order
            returns: (r',) int64, the rows kept, in the same order
        """
        going = rows.still_open(slots, k)
        kept = going.nonzero().squeeze(1)
        if len(kept) < len(slots):
            first = int((~going).long().argmax())  # the first row that ended: only the rows after it move up
            running.keep(kept, first, k + 1)
            slots = slots[kept]
        return slots

    def _prefix_pass(
        self, sequences: Tensor, uniforms: Tensor, initial_state: Optional[State], counts: list[int]
    ) -> tuple[list[Optional[Tensor]], list[State]]:
        """One pass over the given sequences; the N first tokens after each prefix rolled out.

        Shape:
            sequences: (b, T), sorted as in `_complete`; uniforms: (b, T-1, N, T);
            initial_state: b rows or None; counts: T-1 ints, non-increasing
            returns fresh[k]: (counts[k-1], N), the tokens at position k of the rollouts of
            prefix length k (k = 1 .. T-1; fresh[0] is None), and states[p]: the state of the
            first counts[p-1] sequences (all of them at p = 0) after consuming start,
            y_0 .. y_{p-1} (p = 0 .. T-2); a step takes only the sequences still needed
        """
        b, T = sequences.shape
        state = self.policy.initial_state(b) if initial_state is None else initial_state
        tokens = torch.full((b,), self.policy.start_token, dtype=torch.long, device=sequences.device)
        fresh: list[Optional[Tensor]] = [None]
        states = []
        for p in range(T):
            n = counts[max(p, 1) - 1]  # the sequences whose prefix of length max(p, 1) is rolled out
            if n == 0:
                break
            if n < len(tokens):
                tokens, state = tokens[:n], map_state(lambda s: s[:n], state)
            logits, state = self.policy.step(tokens, state)
            if p >= 1:
                fresh.append(sample_from_logits(logits, uniforms[:n, p - 1, :, p], temperature=self.temperature))
            if p <= T - 2:
                states.append(state)
                tokens = sequences[:n, p]
        return fresh, states

    def _finish(self, sequences: Tensor) -> Tensor:
        return mask_after_eos(sequences, self.eos_token, self.pad_token)


class _Layout(NamedTuple):
    """What `RolloutEngine._probe` found of the policy: what the chunk plan and the rolling
    buffers are sized and shaped by."""

    vocab: int  # the logits' width
    dtype: torch.dtype  # the logits', so the engine's logits buffer matches the policy's own
    state_bytes: int  # one row's state at the sequences' full length
    growth: list[Optional[tuple[int, int]]]  # per state tensor: None (fixed) or (axis, positions added per step)


@dataclass
class RolloutStats:
    """What one `RolloutEngine.rewards` call did. rolled: completions rolled out and scored;
    skipped: completions not rolled out because their prefix already held the end token or
    every later position is kept (`fixed`): each such prefix has one completion, and its
    reward is the sequence's; or because its next position is kept: it takes the next
    prefix's value; row_steps: policy steps taken, summed over rows (a completion
    that draws the end token, or has nothing left to draw, takes no more)."""

    rolled: int = 0
    skipped: int = 0
    row_steps: int = 0


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    """a is b, or a view of exactly b's elements (the logits a step wrote into `out` and returned)."""
    return a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride() and a.dtype == b.dtype


@dataclass
class _Completions:
    """The completion rows of one chunk (`RolloutEngine._complete`) and what ties each to its
    sequence and its draws.

    Row r completes a prefix of the chunk's sequence seq[r]: the rows of prefix length t are
    starts[t - 1] .. starts[t] - 1, N per sequence. Each starts as a copy of its sequence, so
    its prefix and the positions kept (`fixed`) are already in place, and its later positions
    are overwritten as they are drawn.

    Shape: n rows of length T; the chunk: b sequences
    """

    out: Tensor  # (n, T) int64: the completions
    keep: Optional[Tensor]  # (n, T) bool: the positions that keep the sequence's token (`fixed`), or None
    seq: Tensor  # (n,) int64: each row's sequence in the chunk, so its row of the prefix states too
    draw: Tensor  # (n,) int64: each row's row of `draws`
    draws: Tensor  # (b * (T-1) * N, T): the chunk's uniforms, one row per (sequence, prefix length, rollout)
    last: Optional[Tensor]  # (n,) int64: each row's last free position, or None where nothing is fixed
    starts: list[int]  # T entries: rows of prefix length t are starts[t - 1] .. starts[t] - 1
    eos: Optional[int]  # the end token where a completion ends at it (eos and pad set), else None

    @property
    def closes(self) -> bool:
        """Whether a row can stop before the last position: at an end token, or where every later
        position is kept."""
        return self.eos is not None or self.last is not None

    def uniforms(self, which: Tensor, k: int) -> Tensor:
        """(n,) rows -> (n,): their uniforms at position k."""
        return self.draws[self.draw[which], k]

    def still_open(self, which: Tensor, position: int) -> Tensor:
        """(n,) rows -> (n,) bool: whether anything is left to draw after `position`."""
        going = torch.ones(len(which), dtype=torch.bool, device=which.device)
        if self.eos is not None:
            going &= self.out[which, position] != self.eos
        if self.last is not None:
            going &= self.last[which] > position
        return going

    def write(self, which: Tensor | slice, k: int, drawn: Tensor) -> None:
        """Position k of rows `which` (an index tensor or a slice) gets the tokens drawn, except
        where the sequence's token is kept."""
        self.out[which, k] = drawn if self.keep is None else torch.where(self.keep[which, k], self.out[which, k], drawn)


class _RollingStates:
    """The states of all the rows rolling at once: one buffer per tensor of the state.

    The rows stepped at step k have all consumed the same k inputs (start, y_0 .. y_{k-2}),
    so their states share one shape even when the state grows (a KV cache). The rows in use
    are the first `self.rows` of each buffer: rows join at the end and rows that ended are
    dropped by moving the later ones up (`keep`). A fixed-shape tensor is overwritten by
    each step; a growing one is allocated at its full length once, a step reads the positions
    filled so far (a view, no copy) and only what it appended is stored, so no step copies a
    whole cache.

    Shape: template: a state after two inputs (any rows); rows: the most rows that roll at once
    """

    def __init__(self, template: State, rows: int, length: int, growth: list[Optional[tuple[int, int]]]):
        self.template, self.growth = template, growth
        self.rows = 0
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

    def join(self, prefix_state: State, which: Tensor, k: int) -> None:
        """Rows start rolling before step k, at the end of the rows in use: row j from
        `prefix_state`'s row which[j] (a prefix state serves each of its rollouts)."""
        for i, piece in enumerate(state_tensors(prefix_state)):
            self._rows(i, self.rows, self.rows + len(which), k).copy_(piece.index_select(0, which))
        self.rows += len(which)

    def keep(self, kept: Tensor, first: int, k: int) -> None:
        """Keep the rows in use listed in `kept` (ascending), `first` the first row not kept;
        k: the inputs consumed. Only the rows after `first` move up."""
        moved = kept[first:]
        for i in range(len(self.buffers)):
            rows = self._rows(i, 0, self.rows, k)
            rows[first : first + len(moved)].copy_(rows.index_select(0, moved))
        self.rows = len(kept)

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
            if not _accepts(reward_fn.score_rollouts, "counts"):
                raise TypeError("the reward's score_rollouts takes no keyword `counts` (how many of the sequences "
                                "are rolled out at each prefix length): see seqadv.rl.rollout.PrefixAwareReward")
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

    def rollouts(self, sequences: Tensor, completions: Tensor, num_rollouts: int, counts: list[int],
                 index: Tensor) -> Tensor:
        keywords = self._keywords(index, self.rollout_wants)
        return self.reward_fn.score_rollouts(sequences, completions, num_rollouts, counts=counts, **keywords)


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
