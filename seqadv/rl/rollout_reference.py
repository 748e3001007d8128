"""The straightforward per-prefix rollout of the public SeqGAN implementations.

For each prefix length t and each of N rollouts: re-run the policy over the
prefix from the start, then sample the rest one step at a time with
`torch.multinomial`. N * T^2 policy steps per batch. Kept as the independent
correctness reference the tests check `RolloutEngine` against and as the `naive` row of the benchmark.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from seqadv.core.masks import mask_after_eos
from seqadv.core.policy import Policy
from seqadv.rl.rollout import RewardFn


@torch.no_grad()
def naive_rollout_rewards(
    policy: Policy,
    sequences: Tensor,
    reward_fn: RewardFn,
    num_rollouts: int,
    fixed: Optional[Tensor] = None,
    eos_token: Optional[int] = None,
    pad_token: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Same contract as `RolloutEngine.rewards`: (B, T) sequences -> (B, T) rewards."""
    B, T = sequences.shape
    rewards = torch.zeros(B, T, device=sequences.device)
    for n in range(num_rollouts):
        for t in range(1, T):
            state = policy.initial_state(B)
            tokens = torch.full((B,), policy.start_token, dtype=torch.long, device=sequences.device)
            out = sequences.clone()
            for p in range(T):
                logits, state = policy.step(tokens, state)
                if p < t:
                    tokens = sequences[:, p]
                    continue
                probs = torch.softmax(logits.float(), dim=1)
                tokens = torch.multinomial(probs, 1, generator=generator)[:, 0]
                if fixed is not None:
                    tokens = torch.where(fixed[:, p], sequences[:, p], tokens)
                out[:, p] = tokens
            rewards[:, t - 1] += reward_fn(mask_after_eos(out, eos_token, pad_token)).float()
    rewards[:, : T - 1] /= num_rollouts
    rewards[:, T - 1] = reward_fn(mask_after_eos(sequences, eos_token, pad_token)).float()
    return rewards
