"""Reward functions for the rollout engine: (rows, T) sequences -> (rows,) rewards."""
from __future__ import annotations

import torch
from torch import Tensor

from .discriminator import Discriminator
from .rollout import RewardFn


def discriminator_reward(discriminator: Discriminator, max_rows: int = 4096) -> RewardFn:
    """D's probability that each sequence is real, as SeqGAN rewards it.

    Evaluated in eval mode (no dropout) and in chunks of `max_rows` sequences, so
    that scoring the B * N * (T - 1) rollouts of a batch stays memory-bounded.
    """

    @torch.no_grad()
    def reward(sequences: Tensor) -> Tensor:
        was_training = discriminator.training
        discriminator.eval()
        try:
            return torch.cat([torch.sigmoid(discriminator(part)) for part in sequences.split(max_rows)])
        finally:
            discriminator.train(was_training)

    return reward
