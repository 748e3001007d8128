"""IRGAN for item recommendation (Wang et al., SIGIR 2017): the length-1 case.

A user's "sequence" is one item. The generator is a policy over all items (the
softmax of its scores over a temperature); the discriminator, the same scorer with
its own parameters, tells the user's positives from the generator's items and
rewards an item by 2 * (sigmoid(score) - 0.5). What a sequence GAN needs carries
over unchanged: sampling is `sampling.sample_from_logits`, the reward goes through
`rollout.RolloutEngine.rewards` with T = 1 (no rollout: the last column is the
reward itself), and the update is `losses.policy_gradient_loss` with T = 1.

IRGAN samples the generator's items not from the policy p but from a proposal
q = (1 - lambda) p + lambda * uniform(the user's positives), so that the rare
positives are seen, and corrects with the importance weight p(i) / q(i).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqadv.core.registry import register_model
from seqadv.core.sampling import sample_from_logits


@register_model
class ItemScorer(nn.Module):
    """score(u, i) = <user_u, item_i> + bias_i (IRGAN: dimension 5, init U(-0.05, 0.05))."""

    def __init__(self, num_users: int, num_items: int, dim: int = 5, init_delta: float = 0.05):
        super().__init__()
        self.user = nn.Embedding(num_users, dim)
        self.item = nn.Embedding(num_items, dim)
        self.bias = nn.Parameter(torch.zeros(num_items))
        nn.init.uniform_(self.user.weight, -init_delta, init_delta)
        nn.init.uniform_(self.item.weight, -init_delta, init_delta)

    def all_scores(self, users: Tensor) -> Tensor:
        """users (B,) -> scores of every item (B, I)."""
        return self.user(users) @ self.item.weight.T + self.bias

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """users (B,), items (B,) -> scores (B,)."""
        return (self.user(users) * self.item(items)).sum(dim=1) + self.bias[items]

    def l2(self, users: Tensor, items: Tensor) -> Tensor:
        """0.5 * the squared norm of the parameters a batch touches (IRGAN's regulariser)."""
        return 0.5 * (self.user(users).square().sum() + self.item(items).square().sum() + self.bias[items].square().sum())


class ItemPolicy:
    """`seqadv.core.policy.Policy` of a generator over items: the state of a row is its user.

    One step from any token gives the logits scores / temperature over all items,
    so `policy.generate(policy, B, 1, initial_state=users)` samples items and
    `RolloutEngine(policy, 1).rewards(items[:, None], reward, initial_state=users)`
    scores them.
    """

    def __init__(self, scorer: ItemScorer, temperature: float = 0.2):
        self.scorer, self.temperature, self.start_token = scorer, temperature, 0

    def initial_state(self, batch_size: int) -> Tensor:
        raise ValueError("an item policy's state is its users: pass initial_state=users (B,)")

    def step(self, tokens: Tensor, users: Tensor) -> tuple[Tensor, Tensor]:
        return self.scorer.all_scores(users) / self.temperature, users


def sample_proposal(logits: Tensor, positives: Tensor, mix: float, generator: Optional[torch.Generator] = None
                    ) -> tuple[Tensor, Tensor]:
    """Draw one item per row from q = (1 - mix) * softmax(logits) + mix * uniform(positives).

    Shape:
        logits: (R, I) the policy's logits; positives: (R, I) bool, each row with at least
        one True when mix > 0
        returns items (R,) int64 and importance weights p(item) / q(item) (R,)

    Which part a draw comes from is a Bernoulli(mix) coin; the policy part is the
    package's exact sampler, so q is sampled exactly and the weighted estimator is
    unbiased for expectations under p (tested by enumeration).
    """
    R, I = logits.shape
    p = torch.softmax(logits.float(), dim=1)
    from_policy = sample_from_logits(logits, generator=generator)[:, 0]
    count = positives.sum(dim=1)
    # the k-th positive of a row, k uniform: its column is where the running count reaches k + 1
    k = (torch.rand(R, device=logits.device, generator=generator) * count).long().minimum((count - 1).clamp(min=0))
    from_positives = (positives.long().cumsum(dim=1) > k.unsqueeze(1)).long().argmax(dim=1)
    coin = torch.rand(R, device=logits.device, generator=generator) < mix
    items = torch.where(coin & (count > 0), from_positives, from_policy)
    q = proposal_probabilities(p, positives, mix)
    weights = p.gather(1, items.unsqueeze(1)).squeeze(1) / q.gather(1, items.unsqueeze(1)).squeeze(1)
    return items, weights


def proposal_probabilities(p: Tensor, positives: Tensor, mix: float) -> Tensor:
    """q = (1 - mix) * p + mix * uniform(positives); rows without positives keep p. (R, I) -> (R, I)"""
    count = positives.sum(dim=1, keepdim=True)
    uniform = positives.float() / count.clamp(min=1)
    return torch.where(count > 0, (1.0 - mix) * p + mix * uniform, p)


class ItemReward:
    """IRGAN's reward for a batch of users' items: 2 * (sigmoid(D(u, i)) - 0.5), in (-1, 1).

    A `rollout.RewardFn` for T = 1: called with items (B, 1) of the users given here.
    """

    def __init__(self, discriminator: ItemScorer, users: Tensor):
        self.discriminator, self.users = discriminator, users

    @torch.no_grad()
    def __call__(self, items: Tensor) -> Tensor:
        return 2.0 * (torch.sigmoid(self.discriminator(self.users, items[:, 0])) - 0.5)


def bpr_loss(scorer: ItemScorer, users: Tensor, positives: Tensor, negatives: Tensor, l2: float) -> Tensor:
    """Bayesian personalised ranking: -log sigmoid(s(u, i+) - s(u, i-)) + L2, averaged.

    Shape: users, positives, negatives (B,) -> scalar
    """
    margin = scorer(users, positives) - scorer(users, negatives)
    reg = scorer.l2(users, positives) + scorer.l2(users, negatives)
    return -F.logsigmoid(margin).mean() + l2 * reg / len(users)
