"""Advantages: what a policy-gradient update multiplies each token's log-probability by.

Returns, baselines and the batch means they need, written once for every recipe: SeqGAN's
rollout rewards less a batch baseline (`batch_baseline`), ScratchGAN's discounted returns
less a moving average of the mean return (`discounted_returns`, `masked_batch_mean`,
`moving_average_baseline`), MaskGAN's returns less a critic's values. Under torchrun a
batch is split over processes; the means here are the whole batch's (`group`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqadv.runtime.distributed import Group

# which positions a per-position mean over a batch counts: all B x T, or the text ones only
POSITIONS = ("all", "text")


def discounted_returns(rewards: Tensor, gamma: float, mask: Tensor | None = None) -> Tensor:
    """R_t = sum_{s >= t} gamma^(s - t) * r_s, the rewards at masked-out positions counted as 0.

    Shape: rewards (B, T), mask (B, T) of 0/1 or None -> (B, T)

    MaskGAN's returns (its code's discount is 0.89): a filled token is credited
    with the rewards of the filled tokens after it, discounted by distance.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {gamma}")
    r = rewards if mask is None else rewards * mask
    out = torch.empty_like(r)
    running = torch.zeros_like(r[:, 0])
    for t in range(r.shape[1] - 1, -1, -1):
        running = r[:, t] + gamma * running
        out[:, t] = running
    return out


def batch_baseline(rewards: Tensor, kind: str) -> Tensor:
    """What is subtracted from each token's rollout reward before the policy gradient.

    Shape: rewards (B, T) of the whole batch -> (B, T)

    none: 0 (the paper).
    loo: each position's mean over the other B - 1 sequences of the batch (leave-one-out):
         independent of the sequence's own draw, so subtracting it leaves the expected
         gradient as it is.
    mean: each position's mean over the whole batch, the sequence's own reward included.
         Not independent of its draw: reward - mean = (B - 1) / B * (reward - loo), row by
         row, so the update is loo's scaled by (B - 1) / B (biased in scale only; with
         Adam the same step up to its epsilon and the gradient clipping).
    """
    if kind == "none":
        return torch.zeros_like(rewards)
    if kind == "mean":
        return rewards.mean(dim=0, keepdim=True).expand_as(rewards)
    if kind == "loo":
        B = rewards.shape[0]
        if B < 2:
            raise ValueError("a leave-one-out baseline needs batches of at least 2 sequences")
        return (rewards.sum(dim=0, keepdim=True) - rewards) / (B - 1)
    raise ValueError(f"unknown baseline {kind!r}: none, mean or loo")


def masked_batch_mean(values: Tensor, mask: Tensor, group: Group = Group()) -> Tensor:
    """The whole batch's mean of `values` where `mask` is 1 (over every process's rows).

    Shape: values (b, T), mask (b, T) of 0/1 -> scalar (float32; 0 where nothing counts)
    """
    total = group.sum(torch.stack([(values * mask).sum(), mask.sum()]).float())
    return total[0] / total[1].clamp(min=1)


def moving_average_baseline(previous: float, mean_return: float, decay: float) -> float:
    """b <- decay * b + (1 - decay) * mean return: ScratchGAN's baseline, updated with this
    batch's mean return before it is subtracted."""
    return decay * previous + (1.0 - decay) * mean_return


def mean_normalizer(mask: Tensor, positions: str, group: Group = Group()) -> Tensor:
    """What a per-position mean over a batch divides its (masked) sum by on this process:
    "all", the batch's B x T positions (ScratchGAN's code: tf.reduce_mean, the positions
    after the end included), or "text", its text positions only. Under data parallelism the
    whole batch's count over the number of processes (`Group.token_normalizer`).

    Shape: mask (b, T) of 0/1 -> scalar
    """
    if positions not in POSITIONS:
        raise ValueError(f"positions {positions!r}: choose one of {', '.join(POSITIONS)}")
    return group.token_normalizer(torch.ones_like(mask) if positions == "all" else mask)


# MaliGAN's weights: the paper's (and TextGAN-PyTorch's) D/(1-D), or Texygen's D
MALIGAN_WEIGHTS = ("paper", "texygen")


def maligan_weights(logits: Tensor, kind: str = "paper") -> Tensor:
    """MaliGAN's normalised importance weights less their mean, over the batch (dim 0).

    Shape: logits (B, ...) of D ("real") -> (B, ...); each column along dim 0 sums to 0

    paper: r = D / (1 - D), D's estimate of p_data / p_G at the optimal D (Che et al. 2017,
        TextGAN-PyTorch), normalised, w_i = r_i / sum_j r_j, less the mean weight 1/B. With
        D = sigmoid(logit), r = exp(logit), so w is softmax over the batch: exact for any
        logit, no clamping of D near 1.
    texygen: D / sum_j D_j less its mean (Texygen's `MaliganReward`): not the ratio the
        paper derives; kept to reproduce Texygen's runs.
    """
    if kind == "paper":
        w = torch.softmax(logits.double(), dim=0)
    elif kind == "texygen":
        d = torch.sigmoid(logits.double())
        w = d / d.sum(dim=0, keepdim=True)
    else:
        raise ValueError(f"MaliGAN weights {kind!r}: choose one of {', '.join(MALIGAN_WEIGHTS)}")
    return (w - w.mean(dim=0, keepdim=True)).to(logits.dtype)


def rank_probabilities(scores: Tensor) -> Tensor:
    """RankGAN's ranking score of each sequence among the batch it is compared with: the
    softmax over the batch (dim 0) of its relevance to the reference set (gamma inside it).

    Shape: scores (B, ...) -> (B, ...); each column along dim 0 sums to 1
    """
    return torch.softmax(scores.double(), dim=0).to(scores.dtype)


# DPGAN's credit: the paper's sentence-times-word reward; the official code's word-level one
# alone; or the official code's whole update (its word-level reward at its scale, then a
# teacher-forcing step on real text weighted by D's rewards)
DPGAN_REWARDS = ("paper", "word", "official")
# the official code's scale of G's word-level rewards (lancopku/DPGAN main.py: r / 10000)
DPGAN_OFFICIAL_SCALE = 1e-4


def sentence_rewards(token_rewards: Tensor, mask: Tensor) -> Tensor:
    """DPGAN's sentence-level reward R(y): the mean of the word-level rewards over a row's
    text (the paper's figure: "average"), 0 for a row without text.

    Shape: token_rewards (B, T), mask (B, T) of 0/1 -> (B,)
    """
    return (token_rewards * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def dpgan_rewards(token_rewards: Tensor, mask: Tensor, kind: str = "paper", discount: float = 1.0,
                  clip: float = 12.0) -> Tensor:
    """DPGAN's credit of each token from its word-level reward r_t, the language-model
    discriminator's cross-entropy -log D(y_t | y_<t) (high where D, trained on G's text,
    finds the text novel).

    Shape: token_rewards (B, T) of r_t >= 0, mask (B, T) of 0/1 -> (B, T), 0 where mask is 0

    paper: Q_t = R(y) * sum_{s >= t} discount^(s - t) r_s, the sentence-level reward times
        the word-level return (TextGAN-PyTorch's DPGAN, discount 1; the paper's figure
        multiplies the two levels);
    word: Q_t = min(r_t, clip), the word-level reward alone, as the official code rewards G's
        samples (lancopku/DPGAN `main.py`: clipped at 12), without the scale 1e-4 that a lone
        Adam step does not see;
    official: the same at the official code's scale, min(r_t, clip) * 1e-4, which matters there:
        the same optimiser then takes a teacher-forcing step on real text weighted by
        `dpgan_teacher_weights`, of order 1.
    """
    if kind == "paper":
        return sentence_rewards(token_rewards, mask)[:, None] * discounted_returns(token_rewards, discount, mask)
    if kind == "word":
        return token_rewards.clamp(max=clip) * mask
    if kind == "official":
        return token_rewards.clamp(max=clip) * DPGAN_OFFICIAL_SCALE * mask
    raise ValueError(f"DPGAN reward {kind!r}: choose one of {', '.join(DPGAN_REWARDS)}")


def dpgan_teacher_weights(token_rewards: Tensor, mask: Tensor, clip: float = 12.0, scale: float = 0.1) -> Tensor:
    """The weight of each real token in the official DPGAN's teacher-forcing step (lancopku/DPGAN
    `main.py`, the second update of each G step): D's cross-entropy of the token times 1/10, and
    1 where it is above 12. D learns G's text, so the real text G seldom writes weighs most.

    Shape: token_rewards (B, T) of D's cross-entropies of real text, mask (B, T) of 0/1 -> (B, T)
    """
    return torch.where(token_rewards > clip, torch.ones_like(token_rewards), token_rewards * scale) * mask


# LeakGAN's rank rescaling: by value (the paper's), or in the official code's order
RESCALE_MODES = ("sorted", "official")


def leakgan_rescale(rewards: Tensor, delta: float = 16.0, mode: str = "sorted") -> Tensor:
    """LeakGAN's bootstrapped rescaled activation: each block's rewards replaced, over the batch
    (dim 0), by sigmoid(delta * (rank / B - 1/2)) of their rank, which fixes the rewards' mean
    and spread whatever D's scale.

    Shape: rewards (B, K) -> (B, K)

    sorted: rank 1 for the lowest value, equal values one rank (a dense rank), as the paper
        describes it. official: the official code's `rescale`, which numbers the distinct
        values in the order a Python dict holds them (their first appearance in the batch,
        under Python 3), not by value: the rank of a sample is then its place in the batch.
    """
    B, K = rewards.shape
    out = torch.empty_like(rewards, dtype=torch.float64)
    for k in range(K):
        values, first, inverse = _distinct(rewards[:, k])
        if mode == "sorted":
            rank = inverse + 1  # torch.unique sorts: the dense rank by value
        elif mode == "official":
            order = torch.argsort(first)  # distinct values by first appearance
            place = torch.empty_like(order)
            place[order] = torch.arange(len(order), device=order.device)
            rank = place[inverse] + 1
        else:
            raise ValueError(f"rescale {mode!r}: choose one of {', '.join(RESCALE_MODES)}")
        out[:, k] = torch.sigmoid(delta * rank.double() / B - delta / 2)
    return out.to(rewards.dtype)


def _distinct(values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Sorted distinct values, each one's first index, and each entry's index among them."""
    distinct, inverse = torch.unique(values, sorted=True, return_inverse=True)
    first = torch.full((len(distinct),), len(values), dtype=torch.long, device=values.device)
    first.scatter_reduce_(0, inverse, torch.arange(len(values), device=values.device), reduce="amin")
    return distinct, first, inverse


def block_ends(length: int, step_size: int) -> list[int]:
    """The prefix lengths that end LeakGAN's blocks of `step_size` tokens: c, 2c, ..., and the
    text's length for the last (possibly shorter) block."""
    return [min(end, length) for end in range(step_size, length + step_size, step_size)]


def leakgan_worker_rewards(features: Tensor, goals: Tensor, step_size: int) -> Tensor:
    """The worker's intrinsic reward of token t: the cosine between the change of D's feature
    since its block began (token t included) and the block's goal (the official code's
    `all_sub_features` against `all_sub_goals`).

    Shape: features (B, T + 1, F) (f_j of the first j tokens), goals (B, T, F) -> (B, T)
    """
    T = goals.shape[1]
    t = torch.arange(T, device=goals.device)
    since = (t + 1) % step_size
    since = torch.where(since == 0, torch.full_like(since, step_size), since)
    change = features[:, t + 1] - features[:, t + 1 - since]
    return F.cosine_similarity(change, goals, dim=2)


def leakgan_block_cosines(features: Tensor, goals: Tensor, step_size: int) -> Tensor:
    """The manager's cosine per block: D's feature change over block k against its goal.

    Shape: features (B, T + 1, F), goals (B, T, F) -> (B, K), K = ceil(T / c)
    """
    T = goals.shape[1]
    starts = torch.arange(0, T, step_size, device=goals.device)
    ends = torch.tensor(block_ends(T, step_size), device=goals.device)
    return F.cosine_similarity(features[:, ends] - features[:, starts], goals[:, starts], dim=2)
