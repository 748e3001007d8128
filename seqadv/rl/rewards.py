"""Reward functions for the rollout engine: (rows, T) sequences -> (rows,) rewards."""
from __future__ import annotations

import torch
from torch import Tensor

from seqadv.core.modules import eval_mode
from seqadv.models.discriminator import Discriminator, Ranker


class DiscriminatorReward:
    """D's probability that each sequence is real, as SeqGAN rewards it.

    Evaluated in eval mode (no dropout) and in chunks of `max_rows` sequences, so
    that scoring the B * N * (T - 1) rollouts of a batch stays memory-bounded.
    It is a `rollout.PrefixAwareReward`: given the completions of every prefix,
    it computes the convolution windows inside each prefix once instead of N
    times (`Discriminator.rollout_logits`); `share_prefix=False` turns that off.
    `logits=True` gives D's log-odds instead of the probability (MaliGAN's weights are
    a softmax of them).
    """

    def __init__(self, discriminator: Discriminator, max_rows: int = 1024, share_prefix: bool = True,
                 logits: bool = False):
        self.discriminator = discriminator
        self.max_rows = max_rows
        self.share_prefix = share_prefix
        self.logits = logits

    def _output(self, logits: Tensor) -> Tensor:
        return logits if self.logits else torch.sigmoid(logits)

    @torch.no_grad()
    def __call__(self, sequences: Tensor) -> Tensor:
        """(rows, T) -> (rows,)"""
        with eval_mode(self.discriminator) as d:
            return torch.cat([self._output(d(part)) for part in sequences.split(self.max_rows)])

    @torch.no_grad()
    def score_rollouts(self, sequences: Tensor, completions: Tensor, num_rollouts: int, counts: list[int]) -> Tensor:
        """The same as `self(completions)`, for completions (N * sum(counts), T) grouped by
        prefix length t, group t keeping the prefixes of the first counts[t - 1] sequences
        (b, T) (`rollout.PrefixAwareReward`)."""
        if not self.share_prefix:
            return self(completions)
        with eval_mode(self.discriminator) as d:
            return self._output(d.rollout_logits(sequences, completions, num_rollouts, self.max_rows, counts))


def discriminator_reward(discriminator: Discriminator, max_rows: int = 1024, share_prefix: bool = True,
                         logits: bool = False) -> DiscriminatorReward:
    """D's probability of "real" (or its log-odds) as the reward (see `DiscriminatorReward`)."""
    return DiscriminatorReward(discriminator, max_rows, share_prefix, logits)


class RankerReward:
    """RankGAN's relevance of each sequence to a reference set of real sentences (before the
    softmax over the sequences compared), in eval mode (its code scores rollouts with dropout
    off). With `Ranker`'s layers the references' features are computed once per reward and,
    as `DiscriminatorReward` does, the CNN windows inside each kept prefix once
    (`rollout.PrefixAwareReward`); a ranker of one's own is called as `ranker(rows, references)`.

    Shape: references (R, T) token ids of real sentences
    """

    def __init__(self, ranker: Ranker, references: Tensor, max_rows: int = 1024):
        self.ranker, self.references, self.max_rows = ranker, references, max_rows
        self.layered = isinstance(ranker, Ranker)
        if self.layered:
            with torch.no_grad(), eval_mode(ranker) as r:
                self.features = r.embed(references)  # (R, sum F)

    @torch.no_grad()
    def __call__(self, sequences: Tensor) -> Tensor:
        """(rows, T) -> (rows,)"""
        with eval_mode(self.ranker) as r:
            score = ((lambda x: r.head(r.features(x), self.features)) if self.layered
                     else (lambda x: r(x, self.references)))
            return torch.cat([score(part) for part in sequences.split(self.max_rows)])

    @torch.no_grad()
    def score_rollouts(self, sequences: Tensor, completions: Tensor, num_rollouts: int, counts: list[int]) -> Tensor:
        """`self(completions)`, sharing each prefix's windows (`rollout.PrefixAwareReward`)."""
        if not self.layered:
            return self(completions)
        with eval_mode(self.ranker) as r:
            return r.rollout_logits(sequences, completions, num_rollouts, self.max_rows, counts,
                                    references=self.features)


def token_log_rewards(logits: Tensor, hidden: Tensor) -> Tensor:
    """MaskGAN's per-token reward log D(y_t) at the filled positions, 0 elsewhere.

    Shape: logits (B, T) of a per-token discriminator, hidden (B, T) bool -> (B, T)
    """
    return torch.nn.functional.logsigmoid(logits) * hidden.float()


def prefix_rewards(logits: Tensor, mask: Tensor) -> Tensor:
    """ScratchGAN's dense reward r_t = 2 sigmoid(D(y_0..y_t)) - 1 in [-1, 1] (its code: "MaskGAN
    uses log(D), but this is more stable empirically"), 0 where a position is not text.

    Shape: logits (B, T) of a per-prefix discriminator, mask (B, T) of 0/1 -> (B, T)
    """
    return (2.0 * torch.sigmoid(logits) - 1.0) * mask
