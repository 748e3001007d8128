"""The generator: an LSTM language model used as a token-level policy.

embedding -> LSTM -> linear to vocabulary logits. The one `nn.LSTM` serves both
teacher forcing (a whole sequence in one call) and the step-by-step policy
protocol (a length-1 call), so the cell is written once.

`ScratchGANGenerator`: ScratchGAN's, LSTM layers with skip connections and the output
scored against the input embedding (tied).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from seqadv.core.masks import mask_after_eos
from seqadv.core.registry import register_model
from seqadv.core.sampling import generate
from seqadv.models.lstm import run_lstm, sonnet_lstm_init_


@torch.no_grad()
def init_normal_(module: nn.Module, std: float) -> None:
    """Every parameter from N(0, std), as the official SeqGAN code draws its generator's.

    It matters: on the paper's oracle, 15 MLE epochs reach NLL-oracle 9.06 with
    std 0.1 and 9.33 with torch's default init (whose N(0, 1) embeddings saturate
    the small LSTM's gates).
    """
    for p in module.parameters():
        p.normal_(0.0, std)


def lstm_step(lstm: nn.LSTM, head: nn.Linear, x: Tensor, state: tuple[Tensor, Tensor],
              out: Optional[Tensor] = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One policy step of a batch-first LSTM and its output head.

    Shape: x (B, 1, In), state ((B, L, H), (B, L, H)) -> logits (B, V), the new state.
    States are batch first (the policy protocol), nn.LSTM's are layer first, hence the
    transposes. `out` (B, V): write the logits there (without gradients only).
    """
    h, c = state
    y, (h, c) = run_lstm(lstm, x, (h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous()))
    logits = head(y.squeeze(1)) if out is None else torch.addmm(head.bias, y.squeeze(1), head.weight.T, out=out)
    return logits, (h.transpose(0, 1), c.transpose(0, 1))


class LanguageModel:
    """What a left-to-right language model used as a policy adds to `forward(inputs) -> (B, T, V)`
    and the policy protocol: teacher forcing on targets, and sampling whole sequences. Needs
    `start_token`, `eos_token`, `pad_token` and a `device`."""

    def shift_right(self, targets: Tensor) -> Tensor:
        """The teacher-forcing inputs for `targets`: start token, then targets[:, :-1]."""
        start = torch.full_like(targets[:, :1], self.start_token)
        return torch.cat([start, targets[:, :-1]], dim=1)

    def target_logits(self, targets: Tensor) -> Tensor:
        """targets (B, T) -> logits (B, T, V) of each target token given the ones before it."""
        return self(self.shift_right(targets))

    @torch.no_grad()
    def sample(
        self,
        num: int,
        length: int,
        temperature: float = 1.0,
        generator: Optional[torch.Generator] = None,
        batch_size: int = 4096,
        top_k: Optional[int] = None,
    ) -> Tensor:
        """Draw `num` sequences of `length` tokens -> (num, length) int64.

        Tokens after the first end token (if the model has one) are set to padding.
        """
        chunks = []
        for begin in range(0, num, batch_size):
            rows = min(batch_size, num - begin)
            chunks.append(generate(self, rows, length, temperature=temperature, top_k=top_k, generator=generator,
                                   device=self.device))
        samples = torch.cat(chunks) if chunks else torch.empty(0, length, dtype=torch.long, device=self.device)
        return mask_after_eos(samples, self.eos_token, self.pad_token)


@register_model
class Generator(LanguageModel, nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 32,
        hidden_dim: int = 32,
        num_layers: int = 1,
        start_token: int = 0,
        eos_token: Optional[int] = None,
        pad_token: Optional[int] = None,
        init_std: float = 0.1,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.dropout = dropout  # on the LSTM's outputs, in training mode (CoT's mediator: 0.5)
        self.vocab_size = vocab_size
        self.start_token = start_token
        self.eos_token = eos_token
        self.pad_token = pad_token
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_dim, vocab_size)
        init_normal_(self, init_std)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # --- policy protocol -------------------------------------------------------------
    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(h, c), each (batch, layers, hidden): batch first, as the protocol asks."""
        shape = (batch_size, self.lstm.num_layers, self.lstm.hidden_size)
        zeros = torch.zeros(shape, device=self.device, dtype=self.head.weight.dtype)
        return zeros, zeros.clone()

    def step(
        self, tokens: Tensor, state: tuple[Tensor, Tensor], out: Optional[Tensor] = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """tokens (B,) -> logits (B, V), new state ((B, L, H), (B, L, H)).

        `out`, optional (B, V): write the logits there (without gradients only). The
        rollout engine passes one reused buffer: on CPU a fresh (B, V) matrix per
        step can cost more in page faults than the projection itself.
        """
        if self.dropout and self.training:
            logits, state = lstm_step(self.lstm, nn.Identity(), self.embedding(tokens).unsqueeze(1), state)
            return self.head(nn.functional.dropout(logits, self.dropout, True)), state
        return lstm_step(self.lstm, self.head, self.embedding(tokens).unsqueeze(1), state, out)

    # --- teacher forcing (target_logits and sample come from LanguageModel) -------------
    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (B, T) -> logits (B, T, V); position t predicts the token after inputs[:, t]."""
        out, _ = run_lstm(self.lstm, self.embedding(inputs))  # (B, T, H)
        return self.head(nn.functional.dropout(out, self.dropout, self.training) if self.dropout else out)


@register_model
class ScratchGANGenerator(LanguageModel, nn.Module):
    """ScratchGAN's generator (de Masson d'Autume et al., 2019; its code's `LSTMGen`): a stack
    of LSTMs with skip connections, its output tied to its input embedding.

    x_t = E[y_{t-1}] W_in (embedding E, projected to the LSTM width without a bias); the first
    layer reads x_t, every later one [x_t, the layer below's output] (Sonnet's `DeepRNN`, whose
    skip connections the reference keeps on); the layers' outputs, concatenated, are projected
    back to the embedding size and scored against the same E:
    logits_t = [h^1_t, ..., h^L_t] W_out E^T + b. One layer: W_out is W_in transposed, as in
    the reference. The paper's: 2 layers of 512, E of 64 trained dimensions (and 300 of GloVe,
    `--embeddings`). Initialised as the reference's: E, W_in, W_out and b Glorot-uniform
    (`tf.get_variable`'s default), each LSTM as Sonnet's (`lstm.sonnet_lstm_init_`: weights
    and gate biases a normal of std 1 / sqrt(inputs + width) cut at 2 std, forget bias 1).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden_dim: int = 512,
        num_layers: int = 2,
        start_token: int = 0,
        eos_token: Optional[int] = None,
        pad_token: Optional[int] = None,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be positive, got {num_layers}")
        self.vocab_size, self.start_token, self.eos_token, self.pad_token = vocab_size, start_token, eos_token, pad_token
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.in_proj = nn.Linear(embedding_dim, hidden_dim, bias=False)
        self.layers = nn.ModuleList(nn.LSTM(hidden_dim if i == 0 else 2 * hidden_dim, hidden_dim, batch_first=True)
                                    for i in range(num_layers))
        # the reference's out_proj, or its in_proj again when there is one layer
        self.out_proj = nn.Linear(num_layers * hidden_dim, embedding_dim, bias=False) if num_layers > 1 else None
        self.out_bias = nn.Parameter(torch.empty(vocab_size))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for weight in (self.embedding.weight, self.in_proj.weight) + ((self.out_proj.weight,) if self.out_proj else ()):
            nn.init.xavier_uniform_(weight)
        bound = math.sqrt(6.0 / (1 + self.vocab_size))  # Glorot-uniform of a (1, V) variable, as the reference's
        self.out_bias.uniform_(-bound, bound)
        for lstm in self.layers:
            sonnet_lstm_init_(lstm)

    @property
    def device(self) -> torch.device:
        return self.out_bias.device

    def output_projection(self) -> Tensor:
        """W_out as a (L * H, E) matrix: features @ it -> the embedding space."""
        return self.out_proj.weight.T if self.out_proj is not None else self.in_proj.weight

    def logits(self, features: Tensor, out: Optional[Tensor] = None) -> Tensor:
        """features (..., L * H) -> logits (..., V) against the tied embedding; `out`: as in `step`."""
        projected = features @ self.output_projection()
        if out is None:
            return nn.functional.linear(projected, self.embedding.weight, self.out_bias)
        return torch.addmm(self.out_bias, projected, self.embedding.weight.T, out=out)

    # --- policy protocol -------------------------------------------------------------
    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(h, c), each (batch, layers, hidden): batch first, as the protocol asks."""
        shape = (batch_size, len(self.layers), self.layers[0].hidden_size)
        zeros = torch.zeros(shape, device=self.device, dtype=self.out_bias.dtype)
        return zeros, zeros.clone()

    def step(
        self, tokens: Tensor, state: tuple[Tensor, Tensor], out: Optional[Tensor] = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """tokens (B,) -> logits (B, V), new state ((B, L, H), (B, L, H)); `out` as `Generator.step`'s."""
        h, c = state
        features, (h, c) = self._layers(self.in_proj(self.embedding(tokens)).unsqueeze(1),
                                        (h.transpose(0, 1), c.transpose(0, 1)))
        return self.logits(features.squeeze(1), out), (h.transpose(0, 1), c.transpose(0, 1))

    # --- teacher forcing (target_logits and sample come from LanguageModel) -------------
    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (B, T) -> logits (B, T, V); position t predicts the token after inputs[:, t]."""
        features, _ = self._layers(self.in_proj(self.embedding(inputs)))
        return self.logits(features)

    def _layers(self, x: Tensor, state: Optional[tuple[Tensor, Tensor]] = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The stack with skip connections. Shape: x (B, T, H), state ((L, B, H), (L, B, H)) or
        None -> the layers' outputs concatenated (B, T, L * H), the new state (layer first)."""
        outputs, hs, cs = [], [], []
        below = x
        for i, lstm in enumerate(self.layers):
            layer_state = None if state is None else (state[0][i : i + 1].contiguous(), state[1][i : i + 1].contiguous())
            below, (h, c) = run_lstm(lstm, x if i == 0 else torch.cat([x, below], dim=-1), layer_state)
            outputs.append(below)
            hs.append(h)
            cs.append(c)
        return torch.cat(outputs, dim=-1), (torch.cat(hs), torch.cat(cs))
