"""Exact, fast categorical sampling.

`torch.multinomial` on a (rows, vocab) matrix is slow on CPU (12x slower than
this for 19,456 x 5,000 on a 2-core machine); Gumbel-max is slower still.
Inverse-CDF sampling draws exactly from the softmax: with w = softmax(logits)
and c its running sum, token k is chosen for u ~ U[0, c_V) when c_{k-1} <= u < c_k,
which has probability w_k / c_V.

For a large vocabulary the running sum over all V columns is itself the slow
part (a sequential scan per row), so the CDF is taken in two levels: sums of
blocks of G columns (a vectorised reduction), a running sum over the V/G block
sums to find the block, then a running sum inside that one block. It is the same
inverse CDF, in the same token order; only the order of float additions differs.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from seqadv.core.errors import NumericalError
from seqadv.core.masks import mask_after_eos, tokens_mask
from seqadv.core.policy import Policy, State, state_tensors

# Below this vocabulary size one running sum over the row is as fast as two levels.
TWO_LEVEL_MIN_VOCAB = 1024


def sample_from_logits(
    logits: Tensor,
    uniforms: Optional[Tensor] = None,
    num_samples: int = 1,
    temperature: float = 1.0,
    generator: Optional[torch.Generator] = None,
    block_size: Optional[int] = None,
    overwrite: bool = False,
) -> Tensor:
    """Draw tokens from softmax(logits / temperature) by inverse CDF.

    Shape:
        logits: (rows, vocab), any float dtype
        uniforms: (rows, k) in [0, 1), or None to draw (rows, num_samples) from `generator`
        returns: (rows, k) int64 token ids, each row's k draws independent given its uniforms

    Passing `uniforms` makes the draw a pure function of them, which is how the
    rollout engine makes its results independent of its chunk size. `block_size`
    sets the two-level CDF's block (default: about sqrt(vocab) for vocabularies of
    at least 1,024; 0 forces one running sum over the whole row). `overwrite=True`
    lets it use float32 `logits` as its scratch space (saves a copy; the rollout
    engine does this with logits it owns).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    rows, vocab = logits.shape
    if uniforms is None:
        uniforms = torch.rand(rows, num_samples, device=logits.device, generator=generator)
    if temperature != 1.0:
        scaled = logits.div_(temperature) if overwrite and logits.dtype == torch.float32 else logits.float() / temperature
    else:
        scaled = logits.float()
    # torch's fused softmax kernel is twice as fast on CPU as max, subtract and exp
    # taken apart. In place only where the logits are ours to overwrite.
    if scaled is not logits or overwrite:
        weights = torch.softmax(scaled, dim=1, out=scaled)
    else:
        weights = torch.softmax(scaled, dim=1)
    if block_size is None:
        block_size = _block_size(vocab)
    if block_size and vocab >= 2 * block_size:
        return _two_level_inverse_cdf(weights, uniforms, block_size)
    cdf = weights.cumsum_(dim=1)
    return torch.searchsorted(cdf, _targets(uniforms, cdf[:, -1:]), right=True)


def _block_size(vocab: int) -> int:
    """About sqrt(vocab); a divisor of vocab near it if there is one (no short last block)."""
    if vocab < TWO_LEVEL_MIN_VOCAB:
        return 0
    root = int(math.sqrt(vocab))
    for size in sorted(range(root // 2, 2 * root + 1), key=lambda s: abs(s - root)):
        if vocab % size == 0:
            return size
    return root


def _targets(uniforms: Tensor, total: Tensor) -> Tensor:
    """u * total, kept strictly below total.

    u * total can round up to total itself; the largest float below it still lands
    on the last token of non-zero probability, where a clamp to the last index could
    pick a zero-probability one.
    """
    return torch.minimum(uniforms * total, torch.nextafter(total, torch.zeros_like(total)))


def _two_level_inverse_cdf(weights: Tensor, uniforms: Tensor, block: int) -> Tensor:
    """Inverse CDF of unnormalised `weights` (rows, V) at `uniforms` (rows, k) -> (rows, k)."""
    rows, vocab = weights.shape
    full = vocab // block
    block_sums = weights[:, : full * block].reshape(rows, full, block).sum(dim=2)  # (rows, full)
    if full * block < vocab:
        block_sums = torch.cat([block_sums, weights[:, full * block :].sum(dim=1, keepdim=True)], dim=1)
    block_cdf = block_sums.cumsum_(dim=1)  # (rows, nb)
    targets = _targets(uniforms, block_cdf[:, -1:])  # (rows, k)
    # the block j with block_cdf[j-1] <= target < block_cdf[j]: its weight is positive
    j = torch.searchsorted(block_cdf, targets, right=True)
    below = torch.where(j > 0, block_cdf.gather(1, (j - 1).clamp_(min=0)), torch.zeros_like(targets))
    # the block's own running sum; columns past the vocabulary (last, short block) weigh nothing
    columns = j.unsqueeze(2) * block + torch.arange(block, device=weights.device)  # (rows, k, G)
    if full * block == vocab:
        inside = weights.gather(1, columns.flatten(1)).view(rows, -1, block)
    else:
        inside = weights.gather(1, columns.clamp(max=vocab - 1).flatten(1)).view(rows, -1, block)
        inside = inside.masked_fill_(columns >= vocab, 0.0)
    inside = inside.cumsum_(dim=2)
    residual = _targets_within(targets - below, inside[:, :, -1])
    offset = torch.searchsorted(inside, residual.unsqueeze(2), right=True).squeeze(2)
    return columns.gather(2, offset.unsqueeze(2)).squeeze(2)


def _targets_within(residual: Tensor, total: Tensor) -> Tensor:
    """The residual target inside a block, in [0, total): rounding may push it just outside."""
    return torch.minimum(residual.clamp_(min=0.0), torch.nextafter(total, torch.zeros_like(total)))


def top_k_logits(logits: Tensor, k: Optional[int]) -> Tensor:
    """Keep each row's k largest logits, the rest -inf (None or k >= vocab: unchanged).

    Shape: logits (rows, vocab) -> (rows, vocab), a new tensor when filtered
    """
    if k is None or k >= logits.shape[1]:
        return logits
    if k < 1:
        raise ValueError(f"top-k must be at least 1, got {k}")
    kth = logits.topk(k, dim=1).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


@torch.no_grad()
def generate(
    policy: Policy,
    batch_size: int,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    initial_state: Optional[State] = None,
    given: Optional[Tensor] = None,
    fixed: Optional[Tensor] = None,
    device: Optional[torch.device] = None,
) -> Tensor:
    """Sample sequences from a policy, left to right, keeping `fixed` positions.

    Shape:
        initial_state: `batch_size` rows, or None for `policy.initial_state(batch_size)`
        given, fixed: optional (batch_size, length) int64 / bool: where `fixed` is
            True the token of `given` is written (and fed to the next step) instead
            of a sampled one; infilling keeps the visible tokens this way
        returns: (batch_size, length) int64

    One draw per row and step from `generator`, whether or not the position is
    fixed, so the random stream does not depend on where the blanks are. `top_k`:
    draw from each step's k most likely tokens only.
    """
    if (given is None) != (fixed is None):
        raise ValueError("given and fixed go together")
    state = policy.initial_state(batch_size) if initial_state is None else initial_state
    if device is None:
        device = given.device if given is not None else next(state_tensors(state)).device
    tokens = torch.full((batch_size,), policy.start_token, dtype=torch.long, device=device)
    out = torch.empty(batch_size, length, dtype=torch.long, device=device)
    diverged = torch.zeros((), dtype=torch.bool, device=device)
    for t in range(length):
        logits, state = policy.step(tokens, state)
        tokens = sample_from_logits(top_k_logits(logits, top_k), temperature=temperature, generator=generator)[:, 0]
        # NaN or infinite logits leave the inverse CDF without a token (an id past the vocabulary):
        # noted on the device and checked once at the end (no synchronisation per step)
        diverged |= (tokens >= logits.shape[1]).any()
        tokens = tokens.clamp_(max=logits.shape[1] - 1)
        if fixed is not None:
            tokens = torch.where(fixed[:, t], given[:, t], tokens)
        out[:, t] = tokens
    if bool(diverged):
        raise NumericalError("sampling: the policy's logits are NaN or infinite (its weights diverged); "
                             "nothing was sampled")
    return out


def gumbel_generate(policy: Policy, batch_size: int, length: int, beta: float, *,
                    generator: Optional[torch.Generator] = None, device: Optional[torch.device] = None,
                    eos_token: Optional[int] = None, pad_token: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Sample sequences by the Gumbel-max trick, with their relaxed one-hots and the policy's
    gradient (RelGAN's adversarial rollout): y_t = argmax(logits_t + g_t), an exact sample
    of softmax(logits_t), fed to the next step, and softmax(beta (logits_t + g_t)), the same
    noise, for a discriminator to read. No gradient passes through the token choice. With
    `eos_token` and `pad_token`, the positions after a text's end are padding, and their
    one-hots exact ones of `pad_token`, as real text's are.

    Shape: -> tokens (batch_size, length) int64, soft (batch_size, length, V) float
    """
    state = policy.initial_state(batch_size)
    if device is None:
        device = next(state_tensors(state)).device
    tokens = torch.full((batch_size,), policy.start_token, dtype=torch.long, device=device)
    hard, soft = [], []
    for _ in range(length):
        logits, state = policy.step(tokens, state)
        u = torch.rand(logits.shape, generator=generator, device=device)
        noisy = logits - torch.log(-torch.log(u + 1e-10) + 1e-10)  # Gumbel(0, 1), as RelGAN's code draws it
        tokens = noisy.detach().argmax(dim=1)
        hard.append(tokens)
        soft.append(torch.softmax(beta * noisy, dim=1))
    hard, soft = torch.stack(hard, 1), torch.stack(soft, 1)
    if eos_token is None or pad_token is None:
        return hard, soft
    after = tokens_mask(hard, eos_token, pad_token) == 0  # (B, T)
    pad = torch.nn.functional.one_hot(torch.tensor(pad_token, device=device), soft.shape[2]).to(soft.dtype)
    return mask_after_eos(hard, eos_token, pad_token), torch.where(after.unsqueeze(2), pad, soft)
