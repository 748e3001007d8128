"""MaskGAN-style infilling (Fedus, Goodfellow & Dai, ICLR 2018): the models.

Every network here is one encoder–decoder:
  * the encoder, a bidirectional LSTM, reads the masked text (hidden tokens are
    the mask token), so each position knows its left and right context;
  * the decoder, an LSTM, reads a token stream left to right; at position t its
    input is the stream's token and the encoder's state at t;
  * a linear head turns the decoder's state into what the role needs.
Input and output are aligned position by position (the filled text has the
length of the masked one), so where MaskGAN's decoder attends over the encoder,
this one reads the encoder's state at its own position.

The three roles differ only in the stream and the head:
  generator      stream: start, y_0 .. y_{T-2}   head: vocabulary logits of y_t
  discriminator  stream: y_0 .. y_{T-1}          head: log-odds that y_t is real
  critic         stream: start, y_0 .. y_{T-2}   head: the value of the state before y_t

The generator becomes a `seqadv.core.policy.Policy` for a batch of masked texts
(`InfillingGenerator.conditioned`), so sampling (`policy.generate`) and the
rollout engine (`rollout.RolloutEngine`, with `fixed` = the visible tokens) are
the package's own, shared with SeqGAN.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from seqadv.core.registry import register_model
from seqadv.core.sampling import generate
from seqadv.models.generator import init_normal_, lstm_step
from seqadv.models.lstm import run_lstm


class InfillingNet(nn.Module):
    """Encoder (bi-LSTM over the masked text) + decoder (LSTM over a token stream) + head.

    The embedding has one row more than the vocabulary: the mask token, id
    `vocab_size`, which appears in inputs and is never an output.
    """

    def __init__(self, vocab_size: int, out_dim: int, embedding_dim: int = 32, hidden_dim: int = 32,
                 start_token: int = 0, init_std: float = 0.1):
        super().__init__()
        self.vocab_size = vocab_size
        self.mask_token = vocab_size
        self.start_token = start_token
        self.embedding = nn.Embedding(vocab_size + 1, embedding_dim)
        self.encoder = nn.LSTM(embedding_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.decoder = nn.LSTM(embedding_dim + 2 * hidden_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, out_dim)
        init_normal_(self, init_std)  # as the SeqGAN generator: N(0, 1) embeddings saturate small LSTMs

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def encode(self, masked: Tensor) -> Tensor:
        """masked (B, T) -> memory (B, T, 2H): each position's left and right context."""
        memory, _ = run_lstm(self.encoder, self.embedding(masked))
        return memory

    def decode(self, memory: Tensor, stream: Tensor) -> Tensor:
        """memory (B, T, 2H), stream (B, T) -> head outputs (B, T, out_dim), teacher forcing."""
        x = torch.cat([self.embedding(stream), memory], dim=2)  # (B, T, E + 2H)
        out, _ = run_lstm(self.decoder, x)
        return self.head(out)

    def shift_right(self, tokens: Tensor) -> Tensor:
        """The stream before each token: start, tokens[:, :-1]. Shape (B, T) -> (B, T)"""
        start = torch.full_like(tokens[:, :1], self.start_token)
        return torch.cat([start, tokens[:, :-1]], dim=1)


@register_model
class InfillingGenerator(InfillingNet):
    """Writes the whole sequence, copying visible tokens and sampling the hidden ones."""

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_dim: int = 32, start_token: int = 0,
                 init_std: float = 0.1):
        super().__init__(vocab_size, vocab_size, embedding_dim, hidden_dim, start_token, init_std)

    def target_logits(self, masked: Tensor, targets: Tensor) -> Tensor:
        """masked, targets (B, T) -> logits (B, T, V) of each target token given the ones
        before it and the masked text (teacher forcing; MaskMLE trains on the hidden ones)."""
        return self.decode(self.encode(masked), self.shift_right(targets))

    def conditioned(self, masked: Tensor) -> "InfillingPolicy":
        """The policy that fills in these masked texts (B, T)."""
        return InfillingPolicy(self, masked)

    @torch.no_grad()
    def infill(self, masked: Tensor, hidden: Tensor, temperature: float = 1.0,
               generator: Optional[torch.Generator] = None, top_k: Optional[int] = None) -> Tensor:
        """Sample the hidden tokens; every other position keeps its token.

        Shape: masked (B, T) int64, hidden (B, T) bool -> filled (B, T) int64
        """
        policy = self.conditioned(masked)
        return generate(policy, masked.shape[0], masked.shape[1], temperature=temperature, top_k=top_k, generator=generator,
                        initial_state=policy.initial_state(masked.shape[0]), given=masked, fixed=~hidden)


class InfillingPolicy:
    """`seqadv.core.policy.Policy` of an infilling generator for one batch of masked texts.

    The state of a row is (h, c, row, position): the decoder's LSTM state, which
    masked text the row fills (an index into the encoded batch) and the position
    it writes next. The encoder's memory is computed once here and not carried
    in the state, so the rollout engine, which copies states, never copies it.
    Row r of `initial_state(b)` fills masked text r.
    """

    def __init__(self, net: InfillingGenerator, masked: Tensor):
        self.net = net
        self.start_token = net.start_token
        with torch.no_grad():
            self.memory = net.encode(masked)  # (B, T, 2H)

    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if batch_size > self.memory.shape[0]:
            raise ValueError(f"this policy fills {self.memory.shape[0]} masked texts, not {batch_size}")
        layers, hidden = self.net.decoder.num_layers, self.net.decoder.hidden_size
        zeros = self.memory.new_zeros(batch_size, layers, hidden)
        rows = torch.arange(batch_size, device=self.memory.device)
        return zeros, zeros.clone(), rows, torch.zeros_like(rows)

    def step(self, tokens: Tensor, state: tuple, out: Optional[Tensor] = None) -> tuple[Tensor, tuple]:
        """tokens (R,) -> logits (R, V), the next state. `out` (R, V): write the logits there."""
        h, c, rows, position = state
        x = torch.cat([self.net.embedding(tokens), self.memory[rows, position]], dim=1).unsqueeze(1)
        logits, (h, c) = lstm_step(self.net.decoder, self.net.head, x, (h, c), out)
        return logits, (h, c, rows, position + 1)


class TokenDiscriminator(InfillingNet):
    """For every position of a filled text, the log-odds that its token is real given
    the masked text and the filled tokens up to it (MaskGAN's discriminator)."""

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_dim: int = 32, start_token: int = 0,
                 init_std: float = 0.1):
        super().__init__(vocab_size, 1, embedding_dim, hidden_dim, start_token, init_std)

    def forward(self, masked: Tensor, filled: Tensor) -> Tensor:
        """masked, filled (B, T) -> logits (B, T)."""
        return self.decode(self.encode(masked), filled).squeeze(2)


class Critic(InfillingNet):
    """The value of the state before each token: the expected discounted return from
    there on (MaskGAN's baseline for the policy gradient)."""

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_dim: int = 32, start_token: int = 0,
                 init_std: float = 0.1):
        super().__init__(vocab_size, 1, embedding_dim, hidden_dim, start_token, init_std)

    def forward(self, masked: Tensor, filled: Tensor) -> Tensor:
        """masked, filled (B, T) -> values (B, T); values[:, t] sees filled[:, :t] only."""
        return self.decode(self.encode(masked), self.shift_right(filled)).squeeze(2)
