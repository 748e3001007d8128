"""SeqGAN (Yu et al., AAAI 2017) against an MLE baseline of equal budget.

Phases, as in the official code (sequence_gan.py):
  1. pretrain G by MLE (teacher forcing);
  2. pretrain D on real vs generated sequences;
  3. MLE baseline: from the pretrained G, `adv_epochs * g_steps` more MLE updates;
  4. adversarial: per epoch, `g_steps` policy-gradient updates of G with rollout
     rewards from a delayed copy of G (moving average, rate 0.8), then `d_rounds`
     rounds of D training on fresh samples;
  5. evaluation of the pretrained G, the MLE baseline and SeqGAN on the same metrics.

Options beyond the paper, off by default: a baseline subtracted from the rollout
rewards (`pg_baseline`), and ColdGANs' exploration (Scialom et al., NeurIPS 2020):
G's samples drawn colder (`sample_temperature`), importance-weighted in the update
(`importance_weight`, `importance_clip`, `importance_normalize`: what each estimates
is in `policy_gradient_step`), and colder rollouts (`rollout_temperature`).

The family built on SeqGAN's code (MaliGAN, RankGAN, LeakGAN) shares this loop: its options
are `RolloutGANConfig`'s, and each recipe replaces only the hooks its paper changes
(`new_discriminator`, `discriminator_batch`, `generator_samples`, `generator_rewards`,
`policy_gradient_step`, `adversarial_batch_size`, `adversarial_d_epochs`).

    from seqadv import SeqGANConfig, SeqGANTrainer
    results = SeqGANTrainer(SeqGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()

Writes to `out`: checkpoint.pt after every epoch of every phase, pretrained.pt /
mle.pt / seqgan.pt (self-describing: `seqadv.load`), samples_*.txt, results.json, tb/.
"""
from __future__ import annotations

import copy
import time
from typing import Callable, ClassVar, Optional

import numpy as np
import torch
from torch import Tensor, nn

from seqadv.core.masks import tokens_mask
from seqadv.core.modules import ema_update
from seqadv.models.discriminator import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, Discriminator
from seqadv.rl.advantages import batch_baseline
from seqadv.rl.losses import (IMPORTANCE_WEIGHTS, discriminator_loss, importance_weights, kl_to_reference,
                              token_log_probs)
from seqadv.rl.rewards import discriminator_reward
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.update import (check_finite, correct_guesses, discriminator_update, policy_gradient_update,
                              reference_logits)
from seqadv.runtime.cli import check_ranges
from seqadv.runtime.distributed import Group
from seqadv.trainers.base import GANTrainer, Phase, own_model, preset_config
from seqadv.trainers.text import TextGANConfig, TextGANTrainer


@preset_config
class RolloutGANConfig(TextGANConfig):
    """What SeqGAN and the recipes built on its code (MaliGAN, RankGAN) share: a CNN over whole
    sequences trained in rounds on fresh samples, the adversarial schedule, the rollouts."""

    # discriminator (official: embedding 64, widths 1-10, 15, 20, dropout 0.25, L2 0.2, Adam 1e-4)
    d_embedding_dim: int = 64  # discriminator embedding size
    d_filter_sizes: tuple[int, ...] = PAPER_FILTER_SIZES  # CNN window widths
    d_num_filters: tuple[int, ...] = PAPER_NUM_FILTERS  # CNN filters per width
    d_dropout: float = 0.25  # discriminator dropout
    d_l2: float = 0.2  # L2 penalty on the discriminator's output layer
    d_lr: float = 1e-4  # discriminator Adam learning rate
    d_samples: int = 10000  # generated (and as many real) sequences per D round
    d_pretrain_rounds: int = 50  # D rounds before the adversarial phase
    d_epochs: int = 3  # epochs over each round's data
    # adversarial (official: 200 epochs of 1 G step and 5 D rounds, 16 rollouts, rate 0.8)
    adv_epochs: int = 200  # adversarial epochs
    g_steps: int = 1  # policy-gradient updates of G per adversarial epoch
    d_rounds: int = 5  # D rounds per adversarial epoch
    num_rollouts: int = 16  # Monte Carlo completions per prefix
    rollout_rate: float = 0.8  # the delayed rollout policy's moving-average rate
    rollout_memory_mb: float = 512.0  # the rollout engine's memory budget
    rollout_temperature: float = 1.0  # the rollouts' temperature (below 1: colder completions)

    PRESETS: ClassVar[dict] = {
        # seconds: for tests and a first look
        "tiny": dict(
            g_embedding_dim=16, g_hidden_dim=16, pretrain_epochs=2, max_train=1024, max_test=256,
            d_embedding_dim=16, d_filter_sizes=(1, 2, 3, 5), d_num_filters=(8, 8, 8, 8),
            d_samples=256, d_pretrain_rounds=2, d_epochs=1, adv_epochs=3, d_rounds=1,
            num_rollouts=4, eval_every=2, pretrain_eval_every=1, eval_samples=200, nll_oracle_samples=500,
        ),
        # under 30 minutes on 2 CPU cores (poems 14 min): the paper's G, a smaller D, fewer rounds and epochs
        "cpu": dict(
            pretrain_epochs=40, d_filter_sizes=(1, 2, 3, 4, 5, 8, 10, 15, 20),
            d_num_filters=(50, 100, 100, 100, 100, 50, 50, 80, 80), d_samples=2048,
            d_pretrain_rounds=20, d_epochs=2, adv_epochs=80, d_rounds=1,
        ),
        # the official code's settings (hours on a CPU)
        "paper": dict(),
    }

    def validate(self) -> None:
        super().validate()
        check_ranges(self, positive=["num_rollouts", "d_embedding_dim", "d_samples", "d_lr", "g_steps",
                                     "rollout_memory_mb", "rollout_temperature"],
                     non_negative=["d_pretrain_rounds", "d_epochs", "adv_epochs", "d_rounds", "d_l2", "d_dropout"],
                     unit=["rollout_rate"])
        if len(self.d_filter_sizes) != len(self.d_num_filters):
            raise ValueError("--d-filter-sizes and --d-num-filters must have the same length")
        if self.d_dropout >= 1:
            raise ValueError("--d-dropout must be below 1")


@preset_config
class SeqGANConfig(RolloutGANConfig):
    out: str = "runs/seqgan"
    # options beyond the paper (defaults: the paper's SeqGAN)
    pg_baseline: str = "none"  # none | loo (mean of the other sequences) | mean (batch mean, own reward included: (B-1)/B x loo)
    sample_temperature: float = 1.0  # ColdGANs: G's samples drawn at this temperature (q), importance-weighted (1: G's own)
    importance_weight: str = "token"  # token (p/q of each token: ColdGANs', biased) | prefix (p/q of the whole prefix: unbiased unclipped, unnormalised)
    importance_clip: float = 5.0  # importance weights clipped at this (0: no clipping): less variance, more bias
    importance_normalize: bool = False  # self-normalised importance weights (per position, over the batch): biased, consistent

    PRESETS: ClassVar[dict] = RolloutGANConfig.PRESETS
    CHOICES: ClassVar[dict] = {**TextGANConfig.CHOICES, "pg_baseline": ["none", "mean", "loo"],
                               "importance_weight": list(IMPORTANCE_WEIGHTS)}

    def validate(self) -> None:
        super().validate()
        check_ranges(self, positive=["sample_temperature"], non_negative=["importance_clip"])
        for name in ("pg_baseline", "importance_weight"):
            if getattr(self, name) not in self.CHOICES[name]:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: choose one of "
                                 f"{', '.join(self.CHOICES[name])}")
        if self.pg_baseline != "none" and self.batch_size < 2:
            raise ValueError(f"--pg-baseline {self.pg_baseline} needs a --batch-size of at least 2, "
                             f"got {self.batch_size}")
        if self.importance_clip == float("inf"):
            raise ValueError("--importance-clip must be finite (0: no clipping)")


class SeqGANTrainer(TextGANTrainer):
    """SeqGAN and its MLE baseline, as a resumable, data-parallel run.

    `generator`: a policy of one's own in place of the LSTM `Generator`: an `nn.Module`
    with the policy protocol (`start_token`, `initial_state(B)`, `step(tokens, state)`)
    and `target_logits(targets (B, T)) -> (B, T, V)` (teacher forcing),
    `sample(num, length, generator=) -> (num, length)`, and `eos_token` / `pad_token`
    attributes (None if the corpus has none); it is deep-copied for the MLE baseline and
    the delayed rollout policy. `discriminator`: an `nn.Module` mapping (B, T) token ids
    to (B,) logits of "real"; an `l2_penalty()` method, if it has one, is added with
    weight `d_l2`. Each may also be a function of the loaded data (`SequenceData`) that builds one.
    Give the same again to resume such a run.
    """

    recipe, config_class, sweep_files = "seqgan", SeqGANConfig, ("mle.pt", "seqgan.pt")
    baseline, adversarial_model, adversarial_label = "mle", "seqgan", "SeqGAN"
    state_attributes = GANTrainer.state_attributes + ("split",)
    # False: D scores every prefix itself (DPGAN's language model), so no rollout engine or policy is built
    takes_rollouts: ClassVar[bool] = True
    # True: G's update is `summed_policy_gradient_step` on credit normalised over the batch (MaliGAN,
    # RankGAN, DPGAN), not SeqGAN's per-token mean with its baseline and importance options
    summed_update: ClassVar[bool] = False

    # --- building ------------------------------------------------------------------------------
    def build_adversary(self) -> None:
        c, data = self.config, self.data
        d = own_model(self.user_discriminator, data)
        self.d = (self.new_discriminator() if d is None else d).to(self.device)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=c.d_lr)
        self.build_mle_baseline()
        # SeqGAN's delayed policy of the rollouts (none for a recipe whose D scores every prefix itself)
        self.rollout_policy = copy.deepcopy(self.g).requires_grad_(False) if self.takes_rollouts else None
        self.g_adv_opt = torch.optim.Adam(self.g.parameters(), lr=c.g_lr)  # the official code's separate optimizer
        self.modules = {"generator": self.g, "g_optimizer": self.g_opt, "discriminator": self.d,
                        "d_optimizer": self.d_opt, "mle_generator": self.mle, "mle_optimizer": self.mle_opt,
                        "rollout_policy": self.rollout_policy, "g_adv_optimizer": self.g_adv_opt}
        self.split = {"rollout_s": 0.0, "g_update_s": 0.0, "d_train_s": 0.0}
        if not self.takes_rollouts:
            del self.modules["rollout_policy"]
            return
        self.engine = RolloutEngine(self.rollout_policy, c.num_rollouts, temperature=c.rollout_temperature,
                                    memory_budget_mb=c.rollout_memory_mb, eos_token=data.eos_token,
                                    pad_token=data.pad_token)
        # sigmoid(D) in eval mode; windows inside a kept prefix computed once where D can (the CNN)
        self.reward_fn = discriminator_reward(self.d, share_prefix=hasattr(self.d, "rollout_logits"))

    def new_discriminator(self) -> nn.Module:
        """The recipe's own adversary (SeqGAN's CNN D), where none of one's own is given."""
        c, data = self.config, self.data
        return Discriminator(data.vocab_size, c.d_embedding_dim, c.d_filter_sizes, c.d_num_filters, c.d_dropout,
                             pad_token=data.pad_token or 0)

    def adversarial_updates(self) -> int:
        return self.config.adv_epochs * self.config.g_steps * self.g_updates_per_step()

    def eval_every_updates(self) -> int:
        return self.config.eval_every * self.config.g_steps * self.g_updates_per_step()

    def g_updates_per_step(self) -> int:
        """G's optimiser steps in one `policy_gradient_step` (DPGAN's official update: 2), which
        the MLE baseline's budget counts."""
        return 1

    def phases(self) -> list[Phase]:
        c = self.config
        return [Phase("pretrain_g", c.pretrain_epochs, "pretrain G (MLE)"),
                Phase("pretrain_d", c.d_pretrain_rounds, "pretrain D", "round"),
                Phase("mle_baseline", self.adversarial_updates(), "MLE baseline", "step",
                      checkpoint_every=self.eval_every_updates()),
                Phase("adversarial", c.adv_epochs, "adversarial")]

    # --- one unit of each phase -------------------------------------------------------------------
    def pretrain_d(self, round_: int) -> None:
        d_loss, d_acc = self.train_discriminator_round(f"pretrain D round {round_}")
        self.writer.add_scalar("losses/d_pretrain", d_loss, round_)
        self.writer.add_scalar("charts/d_pretrain_accuracy", d_acc, round_)

    def adversarial(self, epoch: int) -> None:
        c, group, split = self.config, self.group, self.split
        where = f"adversarial epoch {epoch}"
        if epoch == 1 and self.rollout_policy is not None:
            self.rollout_policy.load_state_dict(self.g.state_dict())
        for _ in range(c.g_steps):
            t = time.time()
            # this process's rows of the batch, and their rewards: the rollouts are split, not repeated
            samples = self.generator_samples(group.local_size(self.adversarial_batch_size(), "--batch-size"))
            rewards, all_rewards = self.generator_rewards(samples, where)  # (b, T), (B, T)
            split["rollout_s"] += time.time() - t
            t = time.time()
            pg_loss = self.policy_gradient_step(samples, rewards, all_rewards, where)
            split["g_update_s"] += time.time() - t
        t = time.time()
        for _ in range(c.d_rounds):
            d_loss, d_acc = self.train_discriminator_round(where, self.adversarial_d_epochs())
        split["d_train_s"] += time.time() - t
        step = epoch * c.g_steps * self.g_updates_per_step()
        self.writer.add_scalar("losses/g_pg", pg_loss, step)
        self.writer.add_scalar("charts/reward_mean", all_rewards.mean().item(), step)
        self.writer.add_scalar("charts/reward_last_token", all_rewards[:, -1].mean().item(), step)
        if c.d_rounds:
            self.writer.add_scalar("losses/d", d_loss, step)
            self.writer.add_scalar("charts/d_accuracy", d_acc, step)
        for name, seconds in split.items():
            self.writer.add_scalar(f"charts/{name}_per_epoch", seconds / epoch, step)
        credit = self.credit_statistics()
        for name, value in credit.items():
            self.writer.add_scalar(f"charts/{name}", value, step)
        if group.is_main and (epoch % c.eval_every == 0 or epoch == c.adv_epochs):
            metrics, samples = self.evaluate(self.g)
            self.record(self.adversarial_model, {**metrics, **credit}, g_updates=step)
            self.writer.add_text(f"samples/{self.adversarial_model}", "\n\n".join(self.data.text(s) for s in samples[:5].cpu()), step)

    # --- the updates ---------------------------------------------------------------------------------
    def adversarial_batch_size(self) -> int:
        """G's samples per policy-gradient update."""
        return self.config.batch_size

    def adversarial_d_epochs(self) -> int:
        """Epochs over each D round's data in the adversarial phase."""
        return self.config.d_epochs

    def generator_samples(self, num: int) -> Tensor:
        """This process's samples for one G update, at temperature 1 but for SeqGAN's ColdGANs
        option (`sample_temperature`). Shape: -> (num, T)"""
        temperature = getattr(self.config, "sample_temperature", 1.0)
        return self.g.sample(num, self.data.length, temperature=temperature, generator=self.rng)

    def generator_rewards(self, samples: Tensor, where: str) -> tuple[Tensor, Tensor]:
        """SeqGAN's credit: each prefix's mean reward over its rollouts (D's probability of "real").
        Returns this process's rows and the whole batch's, checked.

        Shape: samples (b, T) -> rewards (b, T), all_rewards (B, T)
        """
        rewards = self.engine.rewards(samples, self.reward_fn, generator=self.rng)  # (b, T)
        self.count_rollouts()
        all_rewards = self.group.all_gather(rewards)  # (B, T): checked and charted alike on every process
        check_finite(all_rewards, "a rollout reward", where)
        return rewards, all_rewards

    def credit_statistics(self) -> dict:
        """What the recipe reports of its last update's credit, charted every epoch and kept in
        the history at each evaluation (MaliGAN's weights' effective sample size); none here."""
        return {}

    def count_rollouts(self) -> None:
        """Completions rolled out, and those a finished prefix made unnecessary (this process's rows)."""
        split = self.split
        split["rollout_rows"] = split.get("rollout_rows", 0) + self.engine.stats.rolled
        split["rollout_rows_skipped"] = split.get("rollout_rows_skipped", 0) + self.engine.stats.skipped

    def policy_gradient_step(self, samples: Tensor, rewards: Tensor, all_rewards: Tensor, where: str) -> float:
        c = self.config
        if self.summed_update:
            return summed_policy_gradient_step(self.g, self.g_adv_opt, self.rollout_policy, samples, rewards,
                                               c.grad_clip, c.rollout_rate, where, self.group, self.kl_reference(),
                                               c.kl_coef)
        start = self.group.rank * len(samples)  # this process's rows of the batch
        advantages = rewards - batch_baseline(all_rewards, c.pg_baseline)[start : start + len(samples)]
        return policy_gradient_step(self.g, self.g_adv_opt, self.rollout_policy, samples, advantages, c.grad_clip,
                                    c.rollout_rate, where, self.group, c.sample_temperature, c.importance_clip,
                                    c.importance_weight, c.importance_normalize, self.kl_reference(), c.kl_coef)

    def train_discriminator_round(self, where: str, epochs: Optional[int] = None) -> tuple[float, float]:
        """Fresh generated sequences vs as many real ones, `epochs` epochs (default `d_epochs`),
        a `discriminator_batch` update per batch. Returns (loss, accuracy).

        Each process draws its share of the generated sequences with its own generator and
        all of them are gathered, so every process holds the same training set and, with
        the shared data order, takes its rows of the same batches.
        """
        c, group, data = self.config, self.group, self.data
        num = min(c.d_samples, len(data.train))
        num -= num % group.world_size
        fake = group.all_gather(self.g.sample(num // group.world_size, data.length, generator=self.rng))
        real = data.train[torch.randperm(len(data.train), generator=self.order_rng)[:num]].to(fake.device)
        sequences = torch.cat([real, fake])
        labels = torch.cat([torch.ones(num), torch.zeros(num)]).to(fake.device)
        self.d.train()
        losses, correct, seen = [], 0, 0
        for _ in range(c.d_epochs if epochs is None else epochs):
            order = torch.randperm(len(sequences), generator=self.order_rng).to(fake.device)
            for begin in range(0, len(order) - c.batch_size + 1, c.batch_size):
                loss, right, rows = self.discriminator_batch(sequences, labels, order[begin : begin + c.batch_size],
                                                             where)
                losses.append(loss)
                correct += right
                seen += rows
        correct, seen = group.sum(torch.tensor([correct, seen], dtype=torch.float64, device=fake.device)).tolist()
        return float(np.mean(losses)) if losses else float("nan"), correct / max(seen, 1)

    def discriminator_batch(self, sequences: Tensor, labels: Tensor, batch: Tensor, where: str
                            ) -> tuple[float, int, int]:
        """One D update on a batch of a round's data, this process's rows of it. Returns the whole
        batch's loss, this process's correct guesses and the rows they were counted on.

        Shape: sequences (n, T), labels (n,), batch (batch_size,) int64 row indices
        """
        idx = self.group.shard(batch)
        loss, right = discriminator_step(self.d, self.d_opt, sequences[idx], labels[idx], self.config.d_l2, where,
                                         self.group)
        return loss, right, len(idx)


    # --- results ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def finish(self) -> dict:
        c = self.config
        results = super().finish()
        if c.adv_epochs:
            self.timings["adversarial_epoch_s"] = self.timings.get("adversarial_s", 0.0) / c.adv_epochs
            self.timings.update({f"adversarial_epoch_{k}": v / c.adv_epochs for k, v in self.split.items()})
        return results

    def print_table(self, results: dict) -> None:
        super().print_table(results)
        t = results["timings"]
        if "adversarial_epoch_s" in t:
            e = t["adversarial_epoch_s"]
            credit = "rollouts" if self.takes_rollouts else "rewards"  # the credit's share, with or without rollouts
            print(f"one adversarial epoch {e:.2f} s: {credit} {t['adversarial_epoch_rollout_s'] / e:.0%}, "
                  f"G update {t['adversarial_epoch_g_update_s'] / e:.0%}, "
                  f"D training {t['adversarial_epoch_d_train_s'] / e:.0%}")
            if "adversarial_epoch_rollout_rows" in t:
                rolled, skipped = t["adversarial_epoch_rollout_rows"], t.get("adversarial_epoch_rollout_rows_skipped", 0)
                print(f"rollouts per adversarial epoch: {rolled:,.0f} completions rolled out, {skipped:,.0f} skipped "
                      f"(their prefix had ended: {skipped / max(rolled + skipped, 1):.0%})")


def policy_gradient_step(g: nn.Module, opt: torch.optim.Optimizer, rollout_policy: nn.Module, samples: Tensor,
                         rewards: Tensor, clip: float, rate: float, where: str, group: Group = Group(),
                         sample_temperature: float = 1.0, importance_clip: float = 5.0,
                         importance_weight: str = "token", importance_normalize: bool = False,
                         reference: Optional[nn.Module] = None, kl_coef: float = 0.0) -> float:
    """One REINFORCE update of G from this process's rows, then the delayed policy's
    moving average (identical on every process: the update is). Returns the loss.

    Shape: samples (b, T), rewards (b, T) (the rollout rewards, less a baseline if any)

    What the update estimates. Q_t, token t's reward, is the mean reward of Monte Carlo
    completions of y_<=t drawn from the delayed rollout policy beta at the rollout
    temperature (at the last token, or the end token, D's reward of the text itself): an
    unbiased estimate of Q_beta(y_<=t), beta's expected reward from there, not G's. On
    G's own samples (`sample_temperature` 1) the update follows
    sum_t grad log p(y_t | y_<t) Q_t, of expectation
    g_beta = E_p[sum_t grad log p(y_t | y_<t) Q_beta(y_<=t)]: SeqGAN's update, which is
    the gradient of G's expected reward when beta is G at temperature 1 (rollout rate 0,
    rollout temperature 1). A baseline independent of the sequence (loo) leaves it as it is.

    Samples drawn at another `sample_temperature` (ColdGANs, Scialom et al., NeurIPS 2020)
    come from q = softmax(logits / temperature), not from p = G, and each token's term is
    multiplied by an importance weight (`losses.importance_weights`, constant in the
    gradient), clipped at `importance_clip` (0: not clipped):
      token (ColdGANs'): p(y_t | y_<t) / q(y_t | y_<t), the gradient of the per-token ratio
        surrogate sum_t r_t Q_t (PPO's, before its clip) with r_t truncated at the clip
        (truncated importance sampling: unlike PPO's clip, a truncated token still adds
        clip * grad log p * Q_t). It corrects the last token's draw only, not the prefix's,
        which came from q too: its expectation is not g_beta, even unclipped.
      prefix: prod_{s <= t} p(y_s | y_<s) / q(y_s | y_<s): unclipped and not normalised,
        its expectation under q is g_beta exactly (unbiased for the update on G's own
        samples, and for G's policy gradient where that one is). Its variance grows with
        the length.
    Clipping and self-normalising (`importance_normalize`) trade bias for variance;
    self-normalised unclipped weights are consistent (the bias vanishes as the batch grows).
    Beside the weights, the loss's mean over the batch's tokens divides by their count,
    a constant B * T unless texts end early. At temperature 1, p = q: no weights.

    `reference`, `kl_coef`: adds kl_coef * KL(G || reference) at each prefix of the samples
    (`losses.kl_to_reference`), RL fine-tuning's pull toward the starting model (`--kl-coef`).
    """
    mask = tokens_mask(samples, g.eos_token, g.pad_token)
    logits = g.target_logits(samples)
    if sample_temperature != 1.0:
        with torch.no_grad():
            weights = importance_weights(token_log_probs(logits, samples),
                                         token_log_probs(logits / sample_temperature, samples), mask,
                                         importance_weight, importance_clip, importance_normalize, group.sum)
        rewards = rewards * weights
    value = policy_gradient_update(g, opt, logits, samples, rewards, mask, group.token_normalizer(mask), clip, where,
                                   group, reference_logits=reference_logits(reference, samples), kl_coef=kl_coef)
    ema_update(rollout_policy, g, rate)
    return value


def discriminator_step(d: nn.Module, opt: torch.optim.Optimizer, sequences: Tensor, labels: Tensor, l2: float,
                       where: str, group: Group = Group()) -> tuple[float, int]:
    """One update of D from this process's rows of a batch. Returns the whole batch's
    loss and this process's count of correct guesses. D's `l2_penalty()`, if it has one,
    is added with weight `l2`.

    Shape: sequences (b, T), labels (b,) of 1 (real) / 0 (generated)
    """
    logits = d(sequences)
    value = discriminator_update(d, opt, discriminator_loss(logits, labels), l2, where, group)
    return value, int(correct_guesses(logits, labels).item())


def gathered_credit(local: Tensor, transform: Callable[[Tensor], Tensor], what: str, where: str = "",
                    group: Group = Group()) -> tuple[Tensor, Tensor]:
    """Credit that compares the whole batch's rows (MaliGAN's weights, RankGAN's ranking scores,
    LeakGAN's ranks): every process gathers its rows' scores, checks them, transforms the whole
    batch alike, and keeps its own rows. Returns (this process's rows, the whole batch's).

    Shape: local (b, ...) -> transform (B, ...) -> (B, ...'): rewards (b, ...'), all_rewards (B, ...')
    """
    everything = group.all_gather(local.contiguous())
    check_finite(everything, what, where)
    all_rewards = transform(everything)
    start = group.rank * len(local)
    return all_rewards[start : start + len(local)], all_rewards


def summed_policy_gradient_step(g: nn.Module, opt: torch.optim.Optimizer, rollout_policy: Optional[nn.Module], samples: Tensor,
                                rewards: Tensor, clip: float, rate: float, where: str, group: Group = Group(),
                                reference: Optional[nn.Module] = None, kl_coef: float = 0.0) -> float:
    """One update of G from this process's rows with credit already normalised over the batch
    (MaliGAN's weights, RankGAN's ranking scores), then the rollout policy's moving average
    (rate 0: G itself). Returns the loss.

    The loss is -sum_i sum_t r_it log p(y_it | y_i<t) over the batch: the sum those papers'
    codes take, not SeqGAN's mean over tokens, as the credit sums to a constant over the
    batch already. Without a rollout policy (None) there is no average to move. Under torchrun each process's share of the sum is scaled so that the
    averaged gradient is the whole batch's sum. `--kl-coef`'s KL is a mean over tokens, as
    in the other recipes.

    Shape: samples (b, T), rewards (b, T)
    """
    mask = tokens_mask(samples, g.eos_token, g.pad_token)
    logits = g.target_logits(samples)
    ref = reference_logits(reference, samples)
    kl = kl_coef * kl_to_reference(logits, ref, mask, group.token_normalizer(mask)) if ref is not None and kl_coef else None
    value = policy_gradient_update(g, opt, logits, samples, rewards, mask, 1.0 / group.world_size, clip, where, group,
                                   extra_loss=kl)
    if rollout_policy is not None:
        ema_update(rollout_policy, g, rate)
    return value
