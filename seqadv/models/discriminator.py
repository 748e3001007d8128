"""The discriminators of text: one logit per sequence, or one per prefix.

`Discriminator`: the SeqGAN paper's CNN text classifier (after Kim, 2014).
embedding -> parallel 1-D convolutions of many widths -> ReLU -> max over time
-> highway layer -> dropout -> one logit of "real". The reward for a sequence is
sigmoid(logit) = D's probability that it is real (the official code's softmax over
two classes is the same function).

`PrefixDiscriminator`: ScratchGAN's recurrent discriminator, a logit per prefix
(dense per-token rewards without rollouts).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqadv.core.masks import tokens_mask
from seqadv.models.lstm import run_lstm, sonnet_lstm_init_, truncated_normal_

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


class TextCNN(nn.Module):
    """SeqGAN's CNN over whole sequences up to its max-pooled features, and a `head` on them
    that each subclass defines: D's logit (`Discriminator`), RankGAN's relevance (`Ranker`).
    embedding -> parallel 1-D convolutions of many widths -> ReLU -> max over time -> head."""

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

    def head(self, pooled: Tensor, **kwargs) -> Tensor:
        """(B, sum F) max-pooled features -> (B,) scores."""
        raise NotImplementedError

    def features(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) -> (B, sum F): every filter's max over time, after ReLU."""
        x = self._embed(tokens)  # (B, E, L)
        return torch.cat([F.relu(conv(x)).amax(dim=2) for conv in self.convs], dim=1)

    def rollout_logits(self, sequences: Tensor, completions: Tensor, num_rollouts: int, max_rows: int = 1024,
                       counts: Optional[Sequence[int]] = None, **head_kwargs) -> Tensor:
        """`self.head(self.features(completions))`, for completions that each keep a prefix of `sequences`.

        The N completions of the prefix y_0..y_{t-1} share every convolution window
        that lies inside it: those windows are computed once, from y itself, as a
        running max over window positions; only the windows that reach the
        completed part are computed per completion. With the paper's filters and
        T = 20 that is two thirds of the dense convolution work.

        Shape:
            sequences: (b, T); completions: (N * sum(counts), T), grouped by prefix length
                t = 1..T-1, group t the N completions of each of the first counts[t - 1]
                sequences (default: all b), each keeping sequences[j, :t]
            returns: (N * sum(counts),) scores; at most `max_rows` completions at a time
        """
        b, T = sequences.shape
        N = num_rollouts
        counts = [b] * (T - 1) if counts is None else list(counts)
        # prefix_max[i][:, :, s]: the max of filter bank i over the windows of y starting at 0..s
        prefix_max = [conv(self._embed(sequences)).cummax(dim=2).values for conv in self.convs]  # (b, F_i, L-w_i+1)
        logits = torch.empty(len(completions), device=completions.device, dtype=prefix_max[0].dtype)
        per_piece = max(1, max_rows // N)
        row = 0
        for t, count in enumerate(counts, start=1):
            for begin in range(0, count, per_piece):
                end = min(count, begin + per_piece)
                x = self._embed(completions[row : row + (end - begin) * N])  # ((end-begin)*N, E, L)
                pooled = []
                for conv, best_inside in zip(self.convs, prefix_max):
                    w = conv.kernel_size[0]
                    # the windows starting at s >= t - w + 1 reach position t, the first completed one
                    bank = conv(x[:, :, max(0, t - w + 1):]).amax(dim=2)  # (rows, F)
                    if t - w >= 0:  # some windows lie wholly inside the prefix
                        bank = torch.maximum(bank, best_inside[begin:end, :, t - w].repeat_interleave(N, dim=0))
                    pooled.append(F.relu(bank))
                logits[row : row + (end - begin) * N] = self.head(torch.cat(pooled, dim=1), **head_kwargs)
                row += (end - begin) * N
        return logits

    def prefix_features(self, tokens: Tensor) -> Tensor:
        """`self.features` of every prefix of `tokens`, each filled with `pad_token` to the full
        length, all in one pass: row j the features of tokens[:, :j] then padding (j = 0..T).

        A window's convolution is a sum over its offsets, so the value of window s for prefix
        length j is the bias, the sums of its first min(j - s, w) offsets over the text (a
        cumulative sum, computed once) and of its remaining offsets over the padding (a
        constant). The windows wholly inside the prefix (s <= j - w) enter through a running
        max over s of the full windows; only the w - 1 windows that reach past the prefix's end
        are evaluated per prefix; those wholly on the padding all have the padding's value.
        About one convolution's work, where convolving each prefix costs T + 1 of them
        (LeakGAN's teacher forcing reads every prefix).

        Shape: tokens (B, T) -> (B, T + 1, sum F), before ReLU-max's successors (highway, dropout)
        """
        B, T = tokens.shape
        x = self._embed(tokens).transpose(1, 2)  # (B, L, E), padding after the text
        L, device = x.shape[1], tokens.device
        j = torch.arange(T + 1, device=device)
        banks = []
        for conv in self.convs:
            w = conv.kernel_size[0]
            S = L - w + 1
            weight, bias = conv.weight, conv.bias  # (n, E, w), (n,)
            terms = torch.einsum("ble,nei->bnil", x, weight)  # (B, n, w, L): offset i's term at each position
            windows = terms.unfold(3, w, 1)  # (B, n, w, S, w'): offset i at s + i'
            inside = torch.diagonal(windows, dim1=2, dim2=4)  # (B, n, S, w): offset i of window s
            cumulative = torch.cat([torch.zeros_like(inside[..., :1]), inside.cumsum(dim=3)], dim=3)  # (B, n, S, w+1)
            suffix = self._padding_suffix(conv)  # (n, w + 1)
            # the windows inside the prefix, s <= j - w: the running max of the full windows
            whole = (cumulative[..., w] + bias[:, None]).cummax(dim=2).values  # (B, n, S)
            best = whole[:, :, (j - w).clamp(min=0)].masked_fill(j < w, float("-inf"))  # (B, n, J)
            if w > 1:  # the windows holding k = 1..w-1 of the prefix's tokens, at s = j - k
                k = torch.arange(1, w, device=device)
                start = j[:, None] - k  # (J, w - 1)
                part = cumulative[:, :, start.clamp(0, S - 1), k]  # (B, n, J, w - 1)
                part = (part + (suffix[:, k] + bias[:, None])[:, None, :])
                part = part.masked_fill(~((start >= 0) & (start < S)), float("-inf"))
                best = torch.maximum(best, part.amax(dim=3))
            on_padding = (j <= S - 1)  # a window starting at j or later fits in L
            best = torch.where(on_padding, torch.maximum(best, (suffix[:, 0] + bias)[:, None]), best)
            banks.append(F.relu(best))  # (B, n, J)
        return torch.cat(banks, dim=1).transpose(1, 2)  # (B, J, sum F)

    def _padding_suffix(self, conv: nn.Conv1d) -> Tensor:
        """A filter bank's terms on `pad_token` summed from offset k on, k = 0..w (w: zero).
        Shape: -> (n, w + 1)"""
        terms = torch.einsum("e,nei->ni", self.embedding.weight[self.pad_token], conv.weight)  # (n, w)
        return torch.cat([terms.flip(1).cumsum(1).flip(1), terms.new_zeros(len(terms), 1)], dim=1)

    # --- a prefix growing one token at a time (LeakGAN's sampling and rollouts) ----------------------
    def prefix_window_state(self, batch: int) -> tuple[Tensor, Tensor]:
        """The state `extend_prefix` carries, for empty prefixes: for each filter of width w,
        the sums over the text of its w windows that cover the last token (slot r: the window
        starting r before it), all filters' slots side by side (K = sum over filters of w); and
        each filter's max over its windows already complete.

        Shape: -> (batch, K) zeros, (batch, sum F) -inf
        """
        slots = sum(conv.out_channels * conv.kernel_size[0] for conv in self.convs)
        filters = sum(conv.out_channels for conv in self.convs)
        weight = self.embedding.weight
        return weight.new_zeros(batch, slots), weight.new_full((batch, filters), float("-inf"))

    def _window_tables(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per filter bank: its weights as (E, n w), each slot's fill terms from offset r + 1 on
        (n, w), and all w of them (n,). Kept while D's weights are unchanged (their storage and
        version)."""
        params = [self.embedding.weight] + [p for conv in self.convs for p in (conv.weight, conv.bias)]
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        cached = getattr(self, "_tables", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            tables = []
            for conv in self.convs:
                suffix = self._padding_suffix(conv)
                tables.append((conv.weight.permute(1, 0, 2).reshape(conv.weight.shape[1], -1), suffix[:, 1:], suffix[:, 0]))
        self._tables = (key, tables)
        return tables

    @torch.no_grad()
    def extend_prefix(self, state: tuple[Tensor, Tensor], tokens: Tensor, position: Tensor, length: int
                      ) -> tuple[tuple[Tensor, Tensor], Tensor]:
        """Append each row's token at its position (-1: none, the empty prefix) and give the
        features of the prefixes, position + 1 tokens, filled with `pad_token` to
        L = max(length, widest filter): what `features` gives for the filled sequences, in
        O(sum n w) a row where `features` convolves all of L. Only a filter's w windows that
        cover the new token change, each by the token's term at its offset; the one that
        stops covering it is complete and joins the running max. A window's value is its
        text sum, its remaining offsets' terms on the fill (a suffix sum, fixed while D is) and
        the bias; the windows wholly on the fill all have the fill's value.

        Shape: state ((B, K), (B, sum F)), tokens (B,), position (B,) -> state, features (B, sum F)
        """
        sums, done = state
        B, L = len(tokens), max(length, self.max_width)
        grows = (position >= 0)[:, None, None]
        embedded = self.embedding(tokens)  # (B, E)
        new_sums, new_done, pooled, slot, filt = [], [], [], 0, 0
        for conv, (weight, after, on_fill_sum) in zip(self.convs, self._window_tables()):
            n, w = conv.out_channels, conv.kernel_size[0]
            old = sums[:, slot: slot + n * w].view(B, n, w)
            # slot w - 1's window started w - 1 before the last token: the new one is past it, it is complete
            best = done[:, filt: filt + n]
            best = torch.where((position >= w)[:, None], torch.maximum(best, old[:, :, w - 1] + conv.bias), best)
            terms = (embedded @ weight).view(B, n, w)  # the token at each offset
            now = torch.where(grows, F.pad(old[:, :, :-1], (1, 0)) + terms, old)
            # slot r's window starts at position - r: it exists from 0 on, and where it fits in L
            start = position[:, None] - torch.arange(w, device=sums.device)  # (B, w)
            exists = ((start >= 0) & (start <= L - w))[:, None, :]
            value = (now + after + conv.bias[:, None]).masked_fill(~exists, float("-inf")).amax(dim=2)
            top = torch.maximum(best, value)
            # the windows wholly on the fill start after the token: any that fits in L
            on_fill = (position + 1 <= L - w)[:, None]
            top = torch.where(on_fill, torch.maximum(top, conv.bias + on_fill_sum), top)
            new_sums.append(now.reshape(B, n * w))
            new_done.append(best)
            pooled.append(F.relu(top))
            slot, filt = slot + n * w, filt + n
        return (torch.cat(new_sums, dim=1), torch.cat(new_done, dim=1)), torch.cat(pooled, dim=1)

    def _embed(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) -> (B, E, L), L = max(T, widest filter)."""
        if tokens.shape[1] < self.max_width:
            # a filter wider than the text sees padding, as it would in a longer padded batch
            tokens = F.pad(tokens, (0, self.max_width - tokens.shape[1]), value=self.pad_token)
        return self.embedding(tokens).transpose(1, 2)



class Discriminator(TextCNN):
    """SeqGAN's D: the CNN's features -> highway layer -> dropout -> one logit of "real"."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        filter_sizes: Sequence[int] = PAPER_FILTER_SIZES,
        num_filters: Sequence[int] = PAPER_NUM_FILTERS,
        dropout: float = 0.25,
        pad_token: int = 0,
    ):
        super().__init__(vocab_size, embedding_dim, filter_sizes, num_filters, dropout, pad_token)
        self.out = nn.Linear(sum(num_filters), 1)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) -> logits (B,): log-odds that each sequence is real."""
        return self.head(self.features(tokens))

    def head(self, pooled: Tensor) -> Tensor:
        """(B, sum F) -> logits (B,)."""
        return self.out(self.leak(pooled)).squeeze(1)

    classify = head

    def leak(self, pooled: Tensor) -> Tensor:
        """(B, sum F) max-pooled -> (B, sum F): the features the output layer reads."""
        return self.dropout(self.highway(pooled))

    def leaked_features(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) -> (B, sum F): what D leaks to LeakGAN's manager, the features its
        output layer reads (after the highway layer and dropout, as the official code's
        `FeatureExtractor_unit`)."""
        return self.leak(self.features(tokens))

    def prefix_leaked_features(self, tokens: Tensor) -> Tensor:
        """`leaked_features` of every prefix of `tokens` filled with `pad_token` (`prefix_features`).
        Shape: (B, T) -> (B, T + 1, sum F)"""
        return self.leak(self.prefix_features(tokens))

    def l2_penalty(self) -> Tensor:
        """0.5 * ||W_out||^2 + 0.5 * ||b_out||^2: the official code's L2 term (weighted by 0.2 there)."""
        return 0.5 * (self.out.weight.square().sum() + self.out.bias.square().sum())


# how RankGAN's ranker sums a sequence's cosines to the references: RankGAN's code, or Texygen's mean
RANK_AGGREGATES = ("sum", "mean")


class Ranker(TextCNN):
    """RankGAN's ranker (Lin et al., NeurIPS 2017; its code's `Ranker`): SeqGAN's CNN with no
    output layer, a sequence's feature the highway layer's output after dropout, and its
    relevance to a reference set U of real sentences

        gamma * sum_{u in U} cos(f(s), f(u))    (`aggregate="mean"`: the mean, Texygen's)

    which a softmax over the sequences compared turns into ranking scores
    (`seqadv.rl.advantages.rank_probabilities`). The references pass through the same
    layers, dropout included, as the code's shared graph does.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        filter_sizes: Sequence[int] = PAPER_FILTER_SIZES,
        num_filters: Sequence[int] = PAPER_NUM_FILTERS,
        dropout: float = 0.25,
        pad_token: int = 0,
        gamma: float = 1.0,
        aggregate: str = "sum",
    ):
        super().__init__(vocab_size, embedding_dim, filter_sizes, num_filters, dropout, pad_token)
        if aggregate not in RANK_AGGREGATES:
            raise ValueError(f"aggregate {aggregate!r}: choose one of {', '.join(RANK_AGGREGATES)}")
        self.gamma, self.aggregate = gamma, aggregate

    def embed(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) -> (B, sum F) unit-length features."""
        return F.normalize(self.dropout(self.highway(self.features(tokens))), dim=1)

    def head(self, pooled: Tensor, references: Tensor) -> Tensor:
        """pooled (B, sum F), references (R, sum F) unit-length (`embed`) -> relevance (B,)"""
        cosines = F.normalize(self.dropout(self.highway(pooled)), dim=1) @ references.T  # (B, R)
        return self.gamma * (cosines.sum(dim=1) if self.aggregate == "sum" else cosines.mean(dim=1))

    def forward(self, tokens: Tensor, references: Tensor) -> Tensor:
        """tokens (B, T), references (R, T) token ids -> relevance (B,)"""
        return self.head(self.features(tokens), self.embed(references))


POSITION_SIGNALS = ("scratchgan", "transformer")
# how PrefixDiscriminator starts: as ScratchGAN's code (TensorFlow / Sonnet defaults) or torch's defaults
INITS = ("scratchgan", "torch")


def position_signal(length: int, dim: int, device: Optional[torch.device] = None, kind: str = "scratchgan") -> Tensor:
    """Features of the position appended to a recurrent discriminator's embeddings, so that
    it knows how far into a text it is (ScratchGAN: 8 of them).

    "scratchgan", ScratchGAN's (`utils.get_position_signal`): feature p is
    cos(pi * (t / period_p + shift_p)), the periods log-spaced from 2 to `length`
    (period_p = exp(log 2 + p / (dim - 1) * (log length - log 2))) and the shifts evenly
    spaced from 0 to 2 (shift_p = 2 p / (dim - 1)): the fastest has a cycle of 4 positions,
    the slowest is monotone over the whole text, and no two start alike.
    "transformer", Vaswani et al.'s: sin and cos of t / 10000^(2i / dim), the previous
    default. With 8 features half of them have periods of 628 and 6,283 positions: over a
    text of a few dozen they hardly move.

    Shape: -> (length, dim)
    """
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    if kind == "scratchgan":
        periods = torch.exp(torch.linspace(math.log(2.0), math.log(length), dim, device=device))
        shifts = torch.linspace(0.0, 2.0, dim, device=device)
        return torch.cos(math.pi * (position / periods + shifts))
    if kind != "transformer":
        raise ValueError(f"position signal {kind!r}: choose one of {', '.join(POSITION_SIGNALS)}")
    frequencies = 10000.0 ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    signal = torch.zeros(length, dim, device=device)
    signal[:, 0::2] = torch.sin(position * frequencies)
    signal[:, 1::2] = torch.cos(position * frequencies[: dim // 2])
    return signal


class PrefixDiscriminator(nn.Module):
    """ScratchGAN's discriminator (de Masson d'Autume et al., 2019): a logit of "real" for
    every prefix, read left to right, so the logit at t judges y_0..y_t and can reward
    token t directly (dense rewards, no rollouts).

    embedding (dropout on the embedding matrix, as ScratchGAN's) + 8 position features
    (`position_signal`, ScratchGAN's by default) ->
    linear -> LSTM -> layer norm -> linear to one logit per position. ScratchGAN's LSTM has
    layer norm inside its cell; here it normalises the LSTM's outputs, which keeps torch's
    fused LSTM. Positions after the first end token get logit 0 (ScratchGAN masks them
    too): they are not text, and reward nothing. `init`: "scratchgan", the code's
    initialisation (`reset_parameters`), or "torch", torch's defaults (the previous one).
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 64, hidden_dim: int = 128, num_layers: int = 1,
                 dropout: float = 0.1, layer_norm: bool = True, eos_token: Optional[int] = None,
                 pad_token: Optional[int] = None, position_dim: int = 8, position_signal: str = "scratchgan",
                 init: str = "scratchgan"):
        super().__init__()
        if position_signal not in POSITION_SIGNALS:
            raise ValueError(f"position signal {position_signal!r}: choose one of {', '.join(POSITION_SIGNALS)}")
        if init not in INITS:
            raise ValueError(f"init {init!r}: choose one of {', '.join(INITS)}")
        self.eos_token, self.pad_token, self.dropout, self.position_dim = eos_token, pad_token, dropout, position_dim
        self.position_signal = position_signal
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.inputs = nn.Linear(embedding_dim + position_dim, hidden_dim)
        self.lstm = nn.LSTM(hidden_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.norm = nn.LayerNorm(hidden_dim) if layer_norm else nn.Identity()
        self.out = nn.Linear(hidden_dim, 1)
        if init == "scratchgan":
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """ScratchGAN's code's initialisation: the embedding Glorot-uniform (`tf.get_variable`'s
        default; torch's N(0, 1) is about 50 times larger at V = 5,000, and would drown the 8
        position features at the start), each linear layer Sonnet's (a normal of std
        1 / sqrt(inputs) cut at 2 std, bias 0), the LSTM Sonnet's (`sonnet_lstm_init_`), layer
        norm's gain 1 and offset 0."""
        nn.init.xavier_uniform_(self.embedding.weight)
        for linear in (self.inputs, self.out):
            truncated_normal_(linear.weight, 1.0 / math.sqrt(linear.in_features))
            linear.bias.zero_()
        sonnet_lstm_init_(self.lstm)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, T) -> logits (B, T): position t scores the prefix tokens[:, :t + 1]."""
        B, T = tokens.shape
        table = F.dropout(self.embedding.weight, self.dropout, self.training)
        x = F.embedding(tokens, table)  # (B, T, E)
        positions = position_signal(T, self.position_dim, tokens.device, self.position_signal)
        x = torch.cat([x, positions.expand(B, T, -1)], dim=2)
        hidden, _ = run_lstm(self.lstm, self.inputs(x))  # (B, T, H)
        logits = self.out(self.norm(hidden)).squeeze(2)
        return logits * tokens_mask(tokens, self.eos_token, self.pad_token)

    def l2_penalty(self) -> Tensor:
        """ScratchGAN's L2 regulariser: half the squared norm of every parameter (tf.nn.l2_loss)."""
        return sum(p.square().sum() for p in self.parameters()) / 2
