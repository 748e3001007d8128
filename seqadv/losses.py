"""Losses of the generator (MLE, policy gradient) and the discriminator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


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


def _masked_mean(values: Tensor, mask: Tensor | None, normalizer: Tensor | float | None) -> Tensor:
    """Shape: values (B, T), mask (B, T) or None -> scalar"""
    total = values.sum() if mask is None else (values * mask).sum()
    if normalizer is None:
        normalizer = values.numel() if mask is None else mask.sum().clamp(min=1)
    return total / normalizer


def discriminator_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy of real (1) vs generated (0). Shape: logits (B,), labels (B,) -> scalar"""
    return F.binary_cross_entropy_with_logits(logits, labels.float())


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
