"""The discriminator: the SeqGAN paper's CNN text classifier (after Kim, 2014).

embedding -> parallel 1-D convolutions of many widths -> ReLU -> max over time
-> highway layer -> dropout -> one logit of "real". The reward for a sequence is
sigmoid(logit) = D's probability that it is real (the official code's softmax over
two classes is the same function).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The official SeqGAN discriminator (sequence_gan.py).
PAPER_FILTER_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
PAPER_NUM_FILTERS = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)


class Highway(nn.Module):
    """y = t * relu(W_h x) + (1 - t) * x, with gate t = sigmoid(W_t x)."""

    def __init__(self, size: int):
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)

    def forward(self, x: Tensor) -> Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.transform(x)) + (1.0 - t) * x


class Discriminator(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        filter_sizes: Sequence[int] = PAPER_FILTER_SIZES,
        num_filters: Sequence[int] = PAPER_NUM_FILTERS,
        dropout: float = 0.25,
        pad_token: int = 0,
    ):
        super().__init__()
        if len(filter_sizes) != len(num_filters):
            raise ValueError("filter_sizes and num_filters must have the same length")
        self.pad_token = pad_token
        self.max_width = max(filter_sizes)
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, n, w) for w, n in zip(filter_sizes, num_filters))
        features = sum(num_filters)
        self.highway = Highway(features)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(features, 1)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) -> logits (B,): log-odds that each sequence is real."""
        if tokens.shape[1] < self.max_width:
            # a filter wider than the text sees padding, as it would in a longer padded batch
            tokens = F.pad(tokens, (0, self.max_width - tokens.shape[1]), value=self.pad_token)
        x = self.embedding(tokens).transpose(1, 2)  # (B, E, T)
        pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convs]  # each (B, F_i)
        h = self.highway(torch.cat(pooled, dim=1))  # (B, sum F)
        return self.out(self.dropout(h)).squeeze(1)

    def l2_penalty(self) -> Tensor:
        """0.5 * ||W_out||^2 + 0.5 * ||b_out||^2: the official code's L2 term (weighted by 0.2 there)."""
        return 0.5 * (self.out.weight.square().sum() + self.out.bias.square().sum())
