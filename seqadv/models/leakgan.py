"""LeakGAN's generator (Guo et al., "Long Text Generation via Adversarial Training with Leaked
Information", AAAI 2018), after the official code (CR-Gjx/LeakGAN, `LeakGANModel.py`).

A manager and a worker, two LSTMs. At every step the discriminator leaks its feature of the
text so far, f_t = D's CNN features of the prefix y_0..y_{t-1} (not yet generated
positions filled with a token of their own, `fill_token`). The manager reads f_t and emits
a unit sub-goal g_t in feature space. The worker reads the last token and emits a matrix
O_t of V x k (k = `goal_size`). The next token's logits are O_t w, with
w = normalize(G W_g) and G the block's goal: the sum of the c (`step_size`) sub-goals of the
previous block, held fixed within a block (the first block's a learned vector, `goal_init`).

    logits_t = O_t @ normalize(G_{block(t)} @ W_g)                        (V,)

The recurrence is the official code's teacher-forcing one (`preTrain`), written as the
policy protocol's step j: the manager part of loop j (feature of the j tokens so far), the
goal bookkeeping, then the worker part of loop j + 1 (consume token j - 1, give token j's
logits). Sampling, teacher forcing and the rollout engine all use this one step, so
rollouts complete exactly the distribution G is trained as. The official sampling and
rollout recurrences (`_g_recurrence`, `_g_recurrence_2`) feed the manager the feature of one
token fewer than its training recurrence does. That shift, and their `goal_init` of one row
per batch row (here one vector shared by all rows, so any batch size samples), are not
reproduced.

The generator holds its own copy of D's layers (`leak`, a `Discriminator` over V + 1 ids, the
last D's "not yet" row), frozen: G's updates never change it, and a saved G, the pretrained
snapshot and the MLE baseline each carry the features they were trained with. The trainer
copies D into it after D's rounds (`load_leak`, the official `update_feature_function`).
The manager reads it without gradients, in eval mode. Sampling and rollouts keep D's window
sums over the prefix in the policy state and add each new token's terms to the windows that
cover it, where the official code (and `Discriminator.leaked_features`) convolves the whole filled prefix
at every step: about a quarter of the time per step at COCO's length and the `cpu` preset's D
(`OMP_NUM_THREADS=1 python tools/bench_leak.py`).
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqadv.core.masks import mask_after_eos
from seqadv.core.registry import register_model
from seqadv.core.sampling import generate
from seqadv.models.discriminator import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, Discriminator
from seqadv.models.generator import LanguageModel, init_normal_


@register_model
class LeakGANGenerator(LanguageModel, nn.Module):
    """Shapes: B rows, T `max_length` positions, V `vocab_size`, F `feature_dim` (D's features),
    H `hidden_dim`, k `goal_size`, c `step_size`.

    State (the policy protocol's, batch first): worker (h, c) (B, H) each, manager (h, c) (B, H)
    each, the sub-goals summed so far in this block (B, F), the block's goal (B, F), D's
    convolution windows over the prefix so far ((B, K) sums of each filter's windows that cover
    the last token, K the filters' widths summed, and (B, F) each filter's max over the windows
    complete), from which each step's leaked feature follows without convolving the prefix
    again (`TextCNN.extend_prefix`), and the step (B, 1).
    """

    def __init__(self, vocab_size: int, max_length: int, embedding_dim: int = 32, hidden_dim: int = 32,
                 goal_size: int = 16, step_size: int = 4, start_token: int = 0, eos_token: Optional[int] = None,
                 pad_token: Optional[int] = None, d_embedding_dim: int = 64,
                 d_filter_sizes: Sequence[int] = PAPER_FILTER_SIZES, d_num_filters: Sequence[int] = PAPER_NUM_FILTERS):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, max_length=max_length, embedding_dim=embedding_dim,
                           hidden_dim=hidden_dim, goal_size=goal_size, step_size=step_size, start_token=start_token,
                           eos_token=eos_token, pad_token=pad_token, d_embedding_dim=d_embedding_dim,
                           d_filter_sizes=list(d_filter_sizes), d_num_filters=list(d_num_filters))
        self.vocab_size, self.max_length, self.goal_size, self.step_size = vocab_size, max_length, goal_size, step_size
        self.start_token, self.eos_token, self.pad_token = start_token, eos_token, pad_token
        self.fill_token = vocab_size  # D's own row for "not generated yet" (the official code's -1)
        feature_dim = sum(d_num_filters)
        # worker
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.worker = nn.LSTMCell(embedding_dim, hidden_dim)
        self.worker_out = nn.Linear(hidden_dim, vocab_size * goal_size)
        self.goal_projection = nn.Parameter(torch.empty(feature_dim, goal_size))  # the code's g_change
        # manager
        self.manager = nn.LSTMCell(feature_dim, hidden_dim)
        self.manager_out = nn.Linear(hidden_dim, feature_dim)
        self.goal_init = nn.Parameter(torch.empty(feature_dim))
        init_normal_(self, 0.1)  # the official code's N(0, 0.1) for every weight
        # what D leaks: a frozen copy of its layers
        self.leak = new_leakgan_discriminator(vocab_size, d_embedding_dim, d_filter_sizes, d_num_filters)
        self.leak.requires_grad_(False).eval()
        self.leak_seconds = 0.0  # time spent computing leaked features (the run's timings report it)

    def load_leak(self, discriminator: nn.Module) -> "LeakGANGenerator":
        """Copy D's current weights into the layers the manager reads."""
        self.leak.load_state_dict(discriminator.state_dict())
        return self

    def train(self, mode: bool = True) -> "LeakGANGenerator":
        super().train(mode)
        self.leak.eval()  # D's features without dropout, whatever G's mode
        return self

    def worker_parameters(self) -> list[nn.Parameter]:
        return [*self.embedding.parameters(), *self.worker.parameters(), *self.worker_out.parameters(),
                self.goal_projection]

    def manager_parameters(self) -> list[nn.Parameter]:
        return [*self.manager.parameters(), *self.manager_out.parameters(), self.goal_init]

    @property
    def device(self) -> torch.device:
        return self.goal_init.device

    # --- the policy protocol ----------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> tuple:
        B, H, Fd, dev = batch_size, self.worker.hidden_size, self.goal_init.shape[0], self.device
        zeros = torch.zeros(B, H, device=dev)
        return ((zeros, zeros.clone()), (zeros.clone(), zeros.clone()), torch.zeros(B, Fd, device=dev),
                torch.zeros(B, Fd, device=dev), self.leak.prefix_window_state(B),
                torch.zeros(B, 1, dtype=torch.long, device=dev))

    def step(self, tokens: Tensor, state: tuple, features: Optional[Tensor] = None) -> tuple[Tensor, tuple]:
        """Consume token j - 1 (the start token at j = 0), give token j's logits.

        Shape: tokens (B,) -> logits (B, V), the next state. `features` (B, F): the leaked
        features of the prefix after this token, if already computed (teacher forcing, which
        then leaves the state's window sums of D's convolutions behind: it steps no further)."""
        (h_w, c_w), (h_m, c_m), summed, goal, windows, j = state
        first = j == 0  # (B, 1)
        if features is None:  # the prefix so far, with this token at position j - 1
            windows, features = self.extend_leak(windows, tokens, j[:, 0] - 1)
        h_m, c_m = self.manager(features, (h_m, c_m))
        sub_goal = F.normalize(self.manager_out(h_m), dim=1)
        # a block ends at j = c, 2c, ...: its goal becomes the sum of its sub-goals; the first
        # block's goal is goal_init (the sub-goal of the empty prefix counts for nothing)
        ends = ~first & (j % self.step_size == 0)
        goal = torch.where(first, self.goal_init.expand_as(goal), torch.where(ends, summed + sub_goal, goal))
        summed = torch.where(first | ends, torch.zeros_like(summed), summed + sub_goal)
        # the worker
        h_w, c_w = self.worker(self.embedding(tokens), (h_w, c_w))
        # the goal reaches the worker as an input: the worker's losses train the worker only, the
        # manager learns from its goal loss alone (the paper's two objectives; the official code
        # takes each loss's gradients w.r.t. its own parameters). Without the detach the worker's
        # REINFORCE noise also turns every block's goal, and G drifts off the data
        w = F.normalize(goal.detach() @ self.goal_projection, dim=1)  # (B, k)
        # logits = O w with O = (W h + b).view(V, k), taken as (w (x) h) against W's rows regrouped:
        # the same sums without the (B, V, k) matrix (half the time at V = 5,000, k = 16)
        V, k = self.vocab_size, self.goal_size
        u = (w.unsqueeze(2) * h_w.unsqueeze(1)).flatten(1)  # (B, k H)
        logits = u @ self.worker_out.weight.view(V, -1).T + w @ self.worker_out.bias.view(V, k).T
        return logits, ((h_w, c_w), (h_m, c_m), summed, goal, windows, j + 1)

    @torch.no_grad()
    def extend_leak(self, windows: tuple, tokens: Tensor, position: Tensor) -> tuple[tuple, Tensor]:
        """D's convolution window sums and leaked features after one more token of each prefix
        (`TextCNN.extend_prefix`, then the highway layer): per step, the windows that cover the
        new token, not a convolution of the whole prefix.

        Shape: windows ((B, K), (B, F)), tokens (B,), position (B,) -> windows, features (B, F)
        """
        start = time.perf_counter()
        windows, pooled = self.leak.extend_prefix(windows, tokens, position, self.max_length)
        features = self.leak.leak(pooled).float()
        self.leak_seconds += time.perf_counter() - start
        return windows, features

    @torch.no_grad()
    def prefix_leaked_features(self, tokens: Tensor) -> Tensor:
        """D's leaked features of every prefix of tokens (B, T), each filled with `fill_token`
        -> (B, T + 1, F), in one pass."""
        start = time.perf_counter()
        features = self.leak.prefix_leaked_features(tokens).float()
        self.leak_seconds += time.perf_counter() - start
        return features

    # --- teacher forcing and sampling -------------------------------------------------------------
    def target_logits(self, targets: Tensor) -> Tensor:
        """targets (B, T) -> logits (B, T, V) of each token given the ones before it."""
        logits, _ = self.teacher_forcing(targets)
        return logits

    def teacher_forcing(self, targets: Tensor) -> tuple[Tensor, dict]:
        """The step run over `targets` (B, T), with what the manager's and the worker's losses
        need. Returns logits (B, T, V) and
          features (B, T + 1, F): f_j, D's feature of targets[:, :j] (j = 0..T);
          goals (B, T, F): the goal G each token was generated under;
          sub_goals (B, T + 1, F): the manager's sub-goal at each j (j = 0: unused)."""
        B, T = targets.shape
        if T < self.max_length:  # the prefixes D reads are max_length long, filled after the text
            targets_full = torch.cat([targets, targets.new_full((B, self.max_length - T), self.fill_token)], dim=1)
        else:
            targets_full = targets
        features = self.prefix_leaked_features(targets_full)[:, : T + 1]  # (B, T + 1, F), all prefixes in one pass
        state = self.initial_state(B)
        inputs = torch.cat([torch.full_like(targets[:, :1], self.start_token), targets], dim=1)
        logits, goals = [], []
        for j in range(T):
            out, state = self.step(inputs[:, j], state, features=features[:, j])
            logits.append(out)
            goals.append(state[3])
        return torch.stack(logits, 1), {"features": features, "goals": torch.stack(goals, 1)}

    @torch.no_grad()
    def sample(self, num: int, length: int, temperature: float = 1.0, generator: Optional[torch.Generator] = None,
               batch_size: int = 4096, top_k: Optional[int] = None, first_steps_scale: float = 1.0) -> Tensor:
        """Draw `num` sequences of `length` (at most `max_length`) tokens -> (num, length) int64.
        `first_steps_scale`: the first two tokens' logits multiplied by it (the official code's
        1.5 for G's training samples; 1: G's own distribution)."""
        if length > self.max_length:
            raise ValueError(f"length {length} is longer than the generator's max_length {self.max_length}")
        policy = self if first_steps_scale == 1.0 else _FirstStepsScaled(self, first_steps_scale)
        chunks = [generate(policy, min(batch_size, num - begin), length, temperature=temperature, top_k=top_k,
                           generator=generator, device=self.device) for begin in range(0, num, batch_size)]
        return mask_after_eos(torch.cat(chunks) if chunks else torch.empty(0, length, dtype=torch.long),
                              self.eos_token, self.pad_token)


class _FirstStepsScaled:
    """The generator with its first two steps' logits multiplied by `scale` (the official
    sampling's `1.5 * x_logits` where i <= 1)."""

    def __init__(self, g: LeakGANGenerator, scale: float):
        self.g, self.scale, self.start_token = g, scale, g.start_token

    def initial_state(self, batch_size: int) -> tuple:
        return self.g.initial_state(batch_size)

    def step(self, tokens: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        logits, new = self.g.step(tokens, state)
        return torch.where(state[5] < 2, logits * self.scale, logits), new


def new_leakgan_discriminator(vocab_size: int, embedding_dim: int = 64,
                              filter_sizes: Sequence[int] = PAPER_FILTER_SIZES,
                              num_filters: Sequence[int] = PAPER_NUM_FILTERS, dropout: float = 0.0) -> Discriminator:
    """LeakGAN's D: SeqGAN's CNN over V + 1 ids, the last one the "not generated yet" fill of the
    prefixes it leaks features of (the official code embeds `input + 1`, -1 its row 0)."""
    return Discriminator(vocab_size + 1, embedding_dim, filter_sizes, num_filters, dropout, pad_token=vocab_size)
