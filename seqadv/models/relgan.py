"""RelGAN's generator and discriminator (Nie, Narodytska and Patel, "RelGAN: Relational
Generative Adversarial Networks for Text Generation", ICLR 2019), after the official code
(weilinie/RelGAN: `utils/models/relational_memory.py`, `models/rmc_vanilla.py`, `utils/ops.py`).

The generator is a relational memory core (Santoro et al. 2018) over N memory slots of width
M = H heads x d. At each step the token's embedding, projected to M, joins the memory as one
more row; every row attends over all rows, then a skip connection, a layer norm, a 2-layer
MLP, a skip connection and a layer norm; the input row is dropped, and LSTM-like input and
forget gates mix the result into the old memory. The logits read the flattened memory.

    Z = [M_t; W_x e_t]                                    (B, N + 1, M)
    Z = LN(Z + MHA(LN(W_qkv Z)));  Z = LN(Z + MLP(Z))     the layer norms joint over (rows, M)
    i, f = sigmoid(W_i x + U_i tanh(M_t)), sigmoid(W_f x + U_f tanh(M_t) + 1)
    M_{t+1} = i * tanh(Z[:, :N]) + f * M_t;  logits_t = W_o flatten(M_{t+1}) + b_o

As the code computes it, where it differs from the paper's equations: queries are scaled by
(2 d_k + d)^-1/2, not d_k^-1/2; every row, the input's too, is a query; the layer norms take
their statistics over the rows and the features together (TensorFlow's `layer_norm` on a
(B, N + 1, F) tensor), with per-feature gains, eps 1e-12; the MLP's last layer has no
activation; the gates' biases are the constants 0 and 1; the initial memory is the identity
padded with zeros, not learned. Weights are drawn as the code's `linear`: a normal of std
1 / sqrt(fan-in) cut at 2 std, biases 0.

In the adversarial phase G writes its text with the Gumbel-max trick and hands D a soft
version of each token (`gumbel_sample`): y_t = argmax(o_t + g_t), the next input the
embedding of y_t, and D reads softmax(beta (o_t + g_t)), the same noise, so G's gradient
flows through the soft vectors only (no straight-through estimator).

The discriminator (`RelGANDiscriminator`) reads (soft) one-hots through an embedding matrix
whose E columns are E representations of one dimension each; a CNN (widths 2-5, 300 filters
each, shared by the representations) max-pools each over time, then a bias-free highway
layer, dropout 0.25 (on in every pass: the code has no switch), and two linear layers give
one logit per (sequence, representation): (B, S).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqadv.core.registry import register_model
from seqadv.core.sampling import gumbel_generate
from seqadv.models.generator import LanguageModel
from seqadv.models.lstm import truncated_normal_

PAPER_D_FILTER_SIZES = (2, 3, 4, 5)
PAPER_D_NUM_FILTERS = (300, 300, 300, 300)


def code_linear(fan_in: int, fan_out: int, bias: bool = True) -> nn.Linear:
    """The official code's `linear`: weights N(0, 1 / fan_in) cut at 2 std, bias 0."""
    layer = nn.Linear(fan_in, fan_out, bias=bias)
    with torch.no_grad():
        truncated_normal_(layer.weight, 1.0 / math.sqrt(fan_in))
        if bias:
            layer.bias.zero_()
    return layer


class JointLayerNorm(nn.Module):
    """TensorFlow's `layer_norm` of a (B, R, F) tensor: statistics over R and F together, a
    gain and a shift per feature. Shape: (B, R, F) -> (B, R, F)"""

    def __init__(self, features: int, eps: float = 1e-12):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(features)), nn.Parameter(torch.zeros(features)), eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = x.var(dim=(1, 2), keepdim=True, unbiased=False)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class RelationalMemory(nn.Module):
    """One block of the relational memory core, the code's defaults (gates per unit, 2 MLP
    layers, key size = head size). Shape: x (B, In), memory (B, N, M) -> new memory (B, N, M)"""

    def __init__(self, input_size: int, mem_slots: int = 1, head_size: int = 256, num_heads: int = 2):
        super().__init__()
        self.mem_slots, self.head_size, self.num_heads = mem_slots, head_size, num_heads
        M = self.mem_size = head_size * num_heads
        self.input_projection = code_linear(input_size, M)
        self.qkv = code_linear(M, num_heads * 3 * head_size, bias=False)  # q, k, v per head (key size = head size)
        self.qkv_norm = JointLayerNorm(num_heads * 3 * head_size)
        self.attention_norm, self.mlp_norm = JointLayerNorm(M), JointLayerNorm(M)
        self.mlp = nn.Sequential(code_linear(M, M), nn.ReLU(), code_linear(M, M))
        self.gate_input, self.gate_memory = code_linear(M, 2 * M, bias=False), code_linear(M, 2 * M, bias=False)

    def initial_memory(self, batch_size: int, device=None, dtype=None) -> Tensor:
        """The identity padded with zeros (cut to M if N > M), one per row: (B, N, M)."""
        eye = torch.eye(self.mem_slots, max(self.mem_slots, self.mem_size), device=device, dtype=dtype)
        return eye[:, : self.mem_size].expand(batch_size, -1, -1).contiguous()

    def attend(self, z: Tensor) -> Tensor:
        """Multi-head attention of every row over every row. Shape: (B, R, M) -> (B, R, M)"""
        B, R, _ = z.shape
        H, d = self.num_heads, self.head_size
        qkv = self.qkv_norm(self.qkv(z)).view(B, R, H, 3 * d).transpose(1, 2)  # (B, H, R, 3d)
        q, k, v = qkv.split(d, dim=-1)
        weights = torch.softmax((q * (3 * d) ** -0.5) @ k.transpose(-1, -2), dim=-1)  # (B, H, R, R)
        return (weights @ v).transpose(1, 2).reshape(B, R, H * d)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        x = self.input_projection(x).unsqueeze(1)  # (B, 1, M)
        z = torch.cat([memory, x], dim=1)  # (B, N + 1, M)
        z = self.attention_norm(z + self.attend(z))
        z = self.mlp_norm(z + self.mlp(z))[:, : self.mem_slots]  # the input's row dropped
        gates = self.gate_input(x) + self.gate_memory(torch.tanh(memory))  # (B, N, 2M)
        input_gate, forget_gate = gates.chunk(2, dim=-1)
        return torch.sigmoid(input_gate) * torch.tanh(z) + torch.sigmoid(forget_gate + 1.0) * memory


@register_model
class RelGANGenerator(LanguageModel, nn.Module):
    """RelGAN's generator: an embedding, the relational memory core, a linear head.

    Shapes: B rows, V `vocab_size`, E `embedding_dim`, N `mem_slots`, M = `num_heads` x
    `head_size`. State (the policy protocol's, batch first): the memory (B, N, M)."""

    def __init__(self, vocab_size: int, embedding_dim: int = 32, mem_slots: int = 1, head_size: int = 256,
                 num_heads: int = 2, start_token: int = 0, eos_token: Optional[int] = None,
                 pad_token: Optional[int] = None):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, embedding_dim=embedding_dim, mem_slots=mem_slots,
                           head_size=head_size, num_heads=num_heads, start_token=start_token, eos_token=eos_token,
                           pad_token=pad_token)
        self.vocab_size, self.start_token, self.eos_token, self.pad_token = vocab_size, start_token, eos_token, pad_token
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.memory = RelationalMemory(embedding_dim, mem_slots, head_size, num_heads)
        self.head = code_linear(mem_slots * self.memory.mem_size, vocab_size)
        with torch.no_grad():
            truncated_normal_(self.embedding.weight, 1.0 / math.sqrt(vocab_size))

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # --- the policy protocol ----------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> Tensor:
        return self.memory.initial_memory(batch_size, self.device, self.head.weight.dtype)

    def step(self, tokens: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (B,) -> logits (B, V), the new memory (B, N, M)."""
        memory = self.memory(self.embedding(tokens), state)
        return self.head(memory.flatten(1)), memory

    # --- teacher forcing (target_logits and sample come from LanguageModel) -----------------------
    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (B, T) -> logits (B, T, V); position t predicts the token after inputs[:, t]."""
        state, logits = self.initial_state(inputs.shape[0]), []
        for t in range(inputs.shape[1]):
            out, state = self.step(inputs[:, t], state)
            logits.append(out)
        return torch.stack(logits, 1)

    def gumbel_sample(self, num: int, length: int, beta: float, generator: Optional[torch.Generator] = None
                      ) -> tuple[Tensor, Tensor]:
        """G's text for the adversarial phase, with gradients (`core.sampling.gumbel_generate`):
        tokens (num, length), an exact sample of G, and soft one-hots (num, length, V)."""
        return gumbel_generate(self, num, length, beta, generator=generator, device=self.device,
                               eos_token=self.eos_token, pad_token=self.pad_token)


class RelGANDiscriminator(nn.Module):
    """RelGAN's multi-representation CNN. `embedding_dim` / `num_rep` dimensions per
    representation (the code's 64 / 64 = 1). Input: token ids (B, T) or (soft) one-hots
    (B, T, V). Shape: -> logits (B, S), S = `num_rep`, one per representation."""

    def __init__(self, vocab_size: int, embedding_dim: int = 64, num_rep: int = 64,
                 filter_sizes: Sequence[int] = PAPER_D_FILTER_SIZES,
                 num_filters: Sequence[int] = PAPER_D_NUM_FILTERS, dropout: float = 0.25):
        super().__init__()
        if embedding_dim % num_rep:
            raise ValueError(f"the embedding's {embedding_dim} dimensions do not split into {num_rep} representations")
        self.vocab_size, self.num_rep, self.rep_dim = vocab_size, num_rep, embedding_dim // num_rep
        self.embedding = nn.Parameter(torch.empty(vocab_size, embedding_dim))
        self.convs = nn.ModuleList(nn.Conv2d(1, n, (w, self.rep_dim), stride=(1, self.rep_dim))
                                   for w, n in zip(filter_sizes, num_filters))
        F_ = sum(num_filters)
        self.highway_transform, self.highway_gate = code_linear(F_, F_, bias=False), code_linear(F_, F_, bias=False)
        self.dropout = dropout
        self.hidden, self.out = code_linear(F_, 100), code_linear(100, 1)
        with torch.no_grad():
            truncated_normal_(self.embedding, 1.0 / math.sqrt(vocab_size))
            for conv, w in zip(self.convs, filter_sizes):
                truncated_normal_(conv.weight, math.sqrt(2.0 / (w * self.rep_dim)))
                conv.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        if not x.is_floating_point():
            x = F.one_hot(x, self.vocab_size).to(self.embedding.dtype)
        B, T, _ = x.shape
        emb = (x @ self.embedding).unsqueeze(1)  # (B, 1, T, E): E = S representations of rep_dim
        pooled = [torch.relu(conv(emb)).amax(dim=2) for conv in self.convs]  # each (B, n, S)
        h = torch.cat(pooled, dim=1).transpose(1, 2).reshape(B * self.num_rep, -1)  # (B S, F), batch-major
        gate = torch.sigmoid(self.highway_gate(h))
        h = gate * torch.relu(self.highway_transform(h)) + (1 - gate) * h
        h = F.dropout(h, self.dropout, training=True)  # the code's dropout has no off switch
        return self.out(self.hidden(h)).view(B, self.num_rep)
