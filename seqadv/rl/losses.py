"""Losses of the generator (MLE, policy gradient) and the discriminator."""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

IMPORTANCE_WEIGHTS = ("token", "prefix")


def token_log_probs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log p(tokens) under softmax(logits).

    Shape: logits (B, T, V), tokens (B, T) -> (B, T)
    """
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def mle_loss(logits: Tensor, targets: Tensor, mask: Tensor | None = None,
             normalizer: Tensor | float | None = None) -> Tensor:
    """Mean negative log-likelihood per token (teacher forcing).

    Shape: logits (B, T, V), targets (B, T), mask (B, T) of 0/1 or None -> scalar

    `normalizer` replaces the count of masked tokens as the divisor: a batch split
    across processes divides by `distributed.Group.token_normalizer(mask)`.
    """
    nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none").view_as(targets)
    return _masked_mean(nll, mask, normalizer)


def policy_gradient_loss(logits: Tensor, actions: Tensor, rewards: Tensor, mask: Tensor | None = None,
                         normalizer: Tensor | float | None = None) -> Tensor:
    """REINFORCE with per-token rewards: -mean_t [ log pi(a_t | a_<t) * Q_t ].

    Shape: logits (B, T, V), actions (B, T), rewards (B, T), mask (B, T) or None -> scalar

    The official SeqGAN code sums over the batch instead of averaging; with Adam the
    two differ only through gradient clipping, and the mean keeps the loss scale
    independent of batch size and length. `normalizer`: as in `mle_loss`.
    """
    return -_masked_mean(token_log_probs(logits, actions) * rewards.detach(), mask, normalizer)


def importance_weights(log_p: Tensor, log_q: Tensor, mask: Optional[Tensor] = None, kind: str = "token",
                       clip: float = 0.0, normalize: bool = False,
                       batch_sum: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
    """Importance weights for a policy gradient under p from tokens y drawn from q.

    Shape: log_p, log_q (B, T) (log p(y_t | y_<t) and log q(y_t | y_<t) of the drawn
    tokens), mask (B, T) of 0/1 or None -> (B, T), 0 where mask is 0

    token:  w_t = p(y_t | y_<t) / q(y_t | y_<t), the ratio of the last token alone. It
            corrects the draw of y_t, not that of the prefix y_<t, which came from q too:
            E_q[w_t f(y_<=t)] = E_{y_<t ~ q} E_{y_t ~ p}[f(y_<=t)], so even unclipped the
            weighted policy gradient sum_t w_t grad log p(y_t | y_<t) Q_t is biased
            (exact at t = 1 only). ColdGANs' weight (Scialom et al., NeurIPS 2020).
    prefix: W_t = prod_{s <= t} p(y_s | y_<s) / q(y_s | y_<s), the ratio of the whole
            prefix y_<=t: E_q[W_t f(y_<=t)] = E_p[f(y_<=t)] for every f, so unclipped and
            not normalised, sum_t W_t grad log p(y_t | y_<t) Q_t has under q the
            expectation the unweighted sum has under p (unbiased). Its variance grows
            with t: a product of t ratios.

    Computed in log space: the log ratios, set to 0 where mask is 0 (the product stops
    at the end token), summed along t for `prefix`, exponentiated; then, in this order:

    clip > 0:  min(weight, clip) (0: no clipping): the clipped product, not a product of
               clipped ratios. Bounds the weights, and so the variance; adds bias.
    normalize: self-normalised: each position's weights divided by their mean over the
               rows where mask is 1 there (left as they are at a position whose weights
               are all 0), so that they average 1. Biased for a finite batch (a ratio
               of two estimates), consistent: the bias vanishes as the batch grows.

    `batch_sum`: how the per-position sums over rows are totalled over the whole batch
    when these are only some of its rows (a data-parallel run passes
    `distributed.Group.sum`); default: these rows are the batch. The weights are
    detached, constants of the update: `policy_gradient_loss(logits, y, Q * weights)`.
    """
    if kind not in IMPORTANCE_WEIGHTS:
        raise ValueError(f"unknown importance weight {kind!r}: {' or '.join(IMPORTANCE_WEIGHTS)}")
    if not clip >= 0:
        raise ValueError(f"the importance weights' clip must not be negative (0: no clipping), got {clip}")
    log_ratio = (log_p.detach() - log_q.detach()).float()
    text = torch.ones_like(log_ratio) if mask is None else mask.to(log_ratio.dtype)
    log_ratio = torch.where(text > 0, log_ratio, torch.zeros_like(log_ratio))
    if kind == "prefix":
        log_ratio = log_ratio.cumsum(dim=1)
    weights = log_ratio.exp()
    if clip > 0:
        weights = weights.clamp(max=clip)
    weights = weights * text
    if normalize:
        totals = torch.stack([weights.sum(dim=0), text.sum(dim=0)])  # (2, T)
        if batch_sum is not None:
            totals = batch_sum(totals)
        mean = totals[0] / totals[1].clamp(min=1)
        weights = weights / torch.where(mean > 0, mean, torch.ones_like(mean))
    return weights


def kl_to_reference(logits: Tensor, reference_logits: Tensor, mask: Tensor | None = None,
                    normalizer: Tensor | float | None = None) -> Tensor:
    """sum_t KL(pi(. | y_<t) || pi_ref(. | y_<t)) / normalizer: the policy's divergence from a
    reference policy at each prefix, exact over the vocabulary (no sampled estimate), the
    gradient flowing into `logits` only. RL fine-tuning's penalty that keeps a pretrained
    model near where it started, placed in the loss (as GRPO places it) rather than in the reward.

    Shape: logits, reference_logits (B, T, V); mask (B, T) or None -> scalar
    """
    log_p = F.log_softmax(logits.float(), dim=-1)
    log_ref = F.log_softmax(reference_logits.detach().float(), dim=-1)
    return _masked_mean((log_p.exp() * (log_p - log_ref)).sum(-1), mask, normalizer)


def _masked_mean(values: Tensor, mask: Tensor | None, normalizer: Tensor | float | None) -> Tensor:
    """Shape: values (B, T), mask (B, T) or None -> scalar"""
    total = values.sum() if mask is None else (values * mask).sum()
    if normalizer is None:
        normalizer = values.numel() if mask is None else mask.sum().clamp(min=1)
    return total / normalizer


def discriminator_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy of real (1) vs generated (0). Shape: logits (B,), labels (B,) -> scalar"""
    return F.binary_cross_entropy_with_logits(logits, labels.float())


def rank_loss(scores: Tensor, labels: Tensor) -> Tensor:
    """RankGAN's ranker loss: the ranking scores log P(s) = log_softmax(scores) over the whole
    batch, real and generated together, and -(mean over real rows - mean over generated rows)
    (its code's `rank_loss`). A batch without rows of one kind leaves that term out.

    Shape: scores (B,) relevance of each row to the references, labels (B,) 1 real / 0 generated -> scalar
    """
    log_p = torch.log_softmax(scores, dim=0)
    real = labels.bool()
    loss = scores.new_zeros(())
    if real.any():
        loss = loss - log_p[real].mean()
    if (~real).any():
        loss = loss + log_p[~real].mean()
    return loss


def dpgan_discriminator_loss(sentence_nll: Tensor, labels: Tensor, real_weight: float = 1e-4) -> Tensor:
    """DPGAN's discriminator, a language model, from its sentence-level cross-entropies R(y)
    (the mean per-token NLL of each row's text): mean R(generated) - real_weight * mean R(real).
    D learns G's text and, by `real_weight`, unlearns the real text:
      1e-4: the official code's weights (lancopku/DPGAN: +1 on generated tokens, -1e-4 on real);
      0: what the official code computes in effect (its -1e-4 is stored in an int32 array);
      1: TextGAN-PyTorch's loss, which has no minimum: D can raise the real rows' NLL without end.
    A batch without rows of one kind leaves that term out.

    Shape: sentence_nll (B,), labels (B,) 1 real / 0 generated -> scalar
    """
    real = labels.bool()
    loss = sentence_nll.new_zeros(())
    if (~real).any():
        loss = loss + sentence_nll[~real].mean()
    if real_weight and real.any():
        loss = loss - real_weight * sentence_nll[real].mean()
    return loss


def prefix_discriminator_loss(real_logits: Tensor, fake_logits: Tensor, real_mask: Tensor, fake_mask: Tensor,
                              real_normalizer: Tensor | float | None = None,
                              fake_normalizer: Tensor | float | None = None) -> Tensor:
    """A per-prefix discriminator's loss (ScratchGAN): the mean per-token binary cross-entropy
    of every prefix of real text as real and of generated text as generated, the two halves
    weighted equally; positions that are not text (mask 0) do not count.

    Shape: real_logits, real_mask (B, T); fake_logits, fake_mask (B', T) -> scalar.
    Normalizers: as in `mle_loss`, one per half.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits), reduction="none")
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction="none")
    return 0.5 * _masked_mean(real, real_mask, real_normalizer) + 0.5 * _masked_mean(fake, fake_mask, fake_normalizer)


def critic_loss(values: Tensor, returns: Tensor, mask: Tensor, normalizer: Tensor | float | None = None) -> Tensor:
    """Mean squared error of the critic's values against the returns, where mask is 1.

    Shape: values (B, T), returns (B, T), mask (B, T) of 0/1 -> scalar. `normalizer`:
    what the sum is divided by (default: mask.sum()), as for `mle_loss`.
    """
    return _masked_mean((values - returns.detach()).square(), mask, normalizer)


GAN_LOSSES = ("rsgan", "standard", "js", "kl", "hinge", "tv", "ls")


def gan_losses(d_real: Tensor, d_fake: Tensor, kind: str = "rsgan") -> tuple[Tensor, Tensor]:
    """D's and G's losses from D's logits on a real and a generated batch, as RelGAN's code
    defines each `--gan-type` (means over every entry; the relativistic ones pair real row i
    with generated row i):
      rsgan     D: softplus(-(r - f)),  G: softplus(-(f - r))   (relativistic standard GAN)
      standard  D: BCE(r, 1) + BCE(f, 0),  G: BCE(f, 1)          (non-saturating)
      js        D: as standard,  G: -BCE(f, 0)
      kl        D: as standard,  G: -f
      hinge     D: relu(1 - r) + relu(1 + f),  G: -f
      tv        D: tanh(f) - tanh(r),  G: -tanh(f)
      ls        D: (r - 1)^2 + f^2,  G: (f - 1)^2
    Shape: d_real, d_fake (B, ...) of the same shape -> (D's loss, G's loss), scalars
    """
    bce = F.binary_cross_entropy_with_logits
    if kind == "rsgan":
        return F.softplus(-(d_real - d_fake)).mean(), F.softplus(-(d_fake - d_real)).mean()
    if kind in ("standard", "js", "kl"):
        d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        g_loss = {"standard": lambda: bce(d_fake, torch.ones_like(d_fake)),
                  "js": lambda: -bce(d_fake, torch.zeros_like(d_fake)), "kl": lambda: -d_fake.mean()}[kind]()
        return d_loss, g_loss
    if kind == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean(), -d_fake.mean()
    if kind == "tv":
        return (torch.tanh(d_fake) - torch.tanh(d_real)).mean(), -torch.tanh(d_fake).mean()
    if kind == "ls":
        return ((d_real - 1) ** 2).mean() + (d_fake ** 2).mean(), ((d_fake - 1) ** 2).mean()
    raise ValueError(f"GAN loss {kind!r}: choose one of {', '.join(GAN_LOSSES)}")
