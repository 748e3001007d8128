"""A small causal Transformer (GPT style) used as a token-level policy, with a KV cache.

embedding (+ learned positions, or rotary ones in attention) -> pre-norm blocks
(attention, MLP) -> final norm -> linear head (optionally tied to the embedding).
Teacher forcing runs the whole sequence with a causal mask; the policy protocol
(`initial_state`, `step`) runs one position at a time on a KV cache that grows by
one position per step, written the natural way (`torch.cat`): the rollout engine
supports states that grow along one axis. Stepping and teacher forcing give the
same logits (tested), so a model trained by MLE is the policy that is rolled out.

    g = TransformerGenerator(vocab_size=5000, d_model=64, num_layers=2, num_heads=4, max_length=32)
    rewards = RolloutEngine(g, num_rollouts=16).rewards(sequences, reward_fn)
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqadv.core.registry import register_model
from seqadv.models.generator import LanguageModel

# a state: for every layer its keys and values, each (B, heads, t, head_dim), flattened
# into one tuple (k_0, v_0, k_1, v_1, ...); t grows by one per step
KVState = tuple[Tensor, ...]


def rotate(x: Tensor, positions: Tensor) -> Tensor:
    """Rotary position embedding (Su et al., 2021) of x at `positions`.

    Shape: x (B, H, t, D) with D even, positions (t,) -> (B, H, t, D)
    """
    half = x.shape[-1] // 2
    frequencies = 10000.0 ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = positions.float().unsqueeze(1) * frequencies  # (t, D/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    """Pre-norm: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, d_model: int, num_heads: int, dropout: float, rotary: bool):
        super().__init__()
        self.num_heads, self.rotary = num_heads, rotary
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def heads(self, x: Tensor) -> Tensor:
        """(B, t, d) -> (B, H, t, d / H)"""
        B, t, d = x.shape
        return x.view(B, t, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, x: Tensor, cache: Optional[tuple[Tensor, Tensor]] = None, start: int = 0,
                into: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, t, d) at positions start .. start + t - 1; cache: keys and values of the
        positions before (B, H, start, D), or None for none. Returns x and the new cache.
        into: buffers (B, H, start + t, D) whose first `start` positions hold the cache: the
        new keys and values are written there and the buffers returned (no copy of the cache)."""
        B, t, d = x.shape
        q, k, v = (self.heads(z) for z in self.qkv(self.norm1(x)).split(d, dim=2))
        if self.rotary:
            positions = torch.arange(start, start + t, device=x.device)
            q, k = rotate(q, positions), rotate(k, positions)
        if into is not None:
            into[0][:, :, start:].copy_(k)
            into[1][:, :, start:].copy_(v)
            k, v = into
        elif cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        # a single new position attends to every cached one; a whole sequence attends causally
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and t > 1)
        x = x + self.dropout(self.proj(attended.transpose(1, 2).reshape(B, t, d)))
        x = x + self.dropout(self.mlp(self.norm2(x)))
        return x, (k, v)


@register_model
class TransformerGenerator(LanguageModel, nn.Module):
    """A causal Transformer language model and policy (the LSTM `Generator`'s interface)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        max_length: int = 64,
        start_token: int = 0,
        eos_token: Optional[int] = None,
        pad_token: Optional[int] = None,
        positions: str = "learned",
        tie_embeddings: bool = True,
        dropout: float = 0.0,
        init_std: float = 0.02,
    ):
        super().__init__()
        if d_model % num_heads or (positions == "rotary" and (d_model // num_heads) % 2):
            raise ValueError(f"d_model {d_model} must split into {num_heads} heads (of even size for rotary positions)")
        if positions not in ("learned", "rotary"):
            raise ValueError(f"positions must be learned or rotary, got {positions!r}")
        self.vocab_size, self.max_length = vocab_size, max_length
        self.start_token, self.eos_token, self.pad_token = start_token, eos_token, pad_token
        self.d_model, self.num_heads, self.positions = d_model, num_heads, positions
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_length, d_model) if positions == "learned" else None
        self.blocks = nn.ModuleList(Block(d_model, num_heads, dropout, positions == "rotary") for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        for name, p in self.named_parameters():  # GPT-2's init: N(0, 0.02), zero biases, unit norms
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, init_std)
            elif "norm" not in name:
                nn.init.zeros_(p)
        if tie_embeddings:
            self.head.weight = self.embedding.weight

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def embed(self, tokens: Tensor, start: int) -> Tensor:
        """tokens (B, t) at positions start .. -> (B, t, d)"""
        if start + tokens.shape[1] > self.max_length:
            raise ValueError(f"position {start + tokens.shape[1] - 1} is past this model's max_length {self.max_length}")
        x = self.embedding(tokens)
        if self.position is not None:
            x = x + self.position(torch.arange(start, start + tokens.shape[1], device=tokens.device))
        return self.dropout(x)

    # --- policy protocol -------------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> KVState:
        """An empty cache: keys and values of every layer, each (batch, heads, 0, head_dim)."""
        empty = torch.zeros(batch_size, self.num_heads, 0, self.d_model // self.num_heads, device=self.device,
                            dtype=self.head.weight.dtype)
        return tuple(empty.clone() for _ in range(2 * len(self.blocks)))

    def step(self, tokens: Tensor, state: KVState, out: Optional[Tensor] = None, into: Optional[KVState] = None
             ) -> tuple[Tensor, KVState]:
        """tokens (B,) -> logits (B, V), the cache one position longer. `out` (B, V): write
        the logits there (without gradients only). `into`: the rollout engine's buffers, one
        position longer than `state`, whose leading positions are `state`: the step writes
        its new keys and values there instead of concatenating (copying) the whole cache."""
        start = state[0].shape[2]
        x = self.embed(tokens.unsqueeze(1), start)  # (B, 1, d)
        new = []
        for i, block in enumerate(self.blocks):
            x, (k, v) = block(x, (state[2 * i], state[2 * i + 1]), start,
                              None if into is None else (into[2 * i], into[2 * i + 1]))
            new += [k, v]
        hidden = self.norm(x[:, 0])  # (B, d)
        logits = self.head(hidden) if out is None else torch.mm(hidden, self.head.weight.T, out=out)
        return logits, tuple(new)

    # --- teacher forcing (target_logits and sample come from LanguageModel) ------------------------
    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (B, T) -> logits (B, T, V); position t predicts the token after inputs[:, t]."""
        x = self.embed(inputs, 0)
        for block in self.blocks:
            x, _ = block(x)
        return self.head(self.norm(x))
