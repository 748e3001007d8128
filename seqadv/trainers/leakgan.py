"""LeakGAN (Guo et al., "Long Text Generation via Adversarial Training with Leaked
Information", AAAI 2018) against an MLE baseline of equal budget, after the official code
(CR-Gjx/LeakGAN: `Synthetic Data/` and `Image COCO/`, Main.py, LeakGANModel.py,
Discriminator.py).

What makes it LeakGAN's:
  * its generator (`seqadv.models.leakgan.LeakGANGenerator`): a manager that reads D's
    leaked feature of the prefix at every step and emits a goal for each block of c = 4
    tokens, and a worker whose logits follow the goal; it holds a frozen copy of D's layers,
    loaded after every D round (the official `update_feature_function`);
  * D: SeqGAN's CNN with a row of its own for "not generated yet", no dropout, L2 0.2 on its
    output layer, Adam 5e-5;
  * pretraining interleaved (`pretrain_cycles` 10): each cycle D rounds, then MLE epochs of
    the worker's likelihood and the manager's goal loss (its goals against D's feature changes
    over each block) at once; the MLE baseline continues with the same two losses;
  * rewards only at the end of each block (`RolloutEngine.rewards(prefixes=...)`: prefix
    lengths c, 2c, ..., the text itself for the last block), 4 rollouts by G itself, D's
    probability of "real", then the bootstrapped rescaling over the batch
    (`seqadv.rl.advantages.leakgan_rescale`: sigmoid(16 (rank / B - 1/2)), rank by value),
    divided by the rollouts (the official code rescales their sum);
  * the manager's update: -sum_k R_k cos(f_{end of block k} - f_{start of block k}, G_k) / (B K);
    the worker's: REINFORCE with the intrinsic reward cos(feature change since its block began,
    the block's goal) at each token, a mean over the B x T positions; each loss trains its own
    part only (the goal is the worker's input: no worker gradient reaches the manager), one Adam
    each (here one Adam over both, the same thing, the parts being disjoint), each gradient
    clipped at 5 on its own;
  * G's training samples drawn with the first two tokens' logits x 1.5 (`first_steps_scale`),
    as the official sampler does;
  * `paper` preset: the synthetic experiment's settings (80 MLE epochs and 50 D rounds of 3
    epochs in 10 cycles, 800 adversarial epochs of 1 G update and 5 D rounds, G Adam 0.0015);
    `reward_real` and `adv_mle_every 15`: the COCO code's real sentences in the rank pool and
    its MLE epoch every 15 adversarial epochs.

Where this recipe departs from the official code, and why (also in docs/recipes.md):
  * `rescale=sorted` (default) ranks by value, as the paper describes; the official `rescale`
    numbers the distinct rewards in a Python dict's order, which is not their order by value
    (`rescale=official` reproduces it, in Python 3's insertion order);
  * the losses' cosines are taken per block and per token, as the paper writes them; the
    official code's `tf.losses.cosine_distance` reduces them to one batch mean first, so every
    token gets the same intrinsic reward and every block the same manager cosine
    (`cosine=official` reproduces it);
  * one recurrence for sampling, teacher forcing and the rollouts (the official sampler feeds
    the manager one token less than its training recurrence), and `goal_init` one vector,
    not one per batch row (see `seqadv.models.leakgan`);
  * NLL-oracle and BLEU are measured on samples at temperature 1, as for every recipe here;
    the official evaluation samples with all logits x 1.5, which sharpens them;
  * D's real sentences come from the training split, as every recipe here; the synthetic
    code draws fresh ones from the oracle for each D round.

    from seqadv import LeakGANConfig, LeakGANTrainer
    results = LeakGANTrainer(LeakGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()

Writes what SeqGAN writes, with leakgan.pt for the adversarial model.
"""
from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np
import torch
from torch import Tensor, nn

from seqadv.core.masks import tokens_mask
from seqadv.data.dataset import SequenceData
from seqadv.models.leakgan import LeakGANGenerator, new_leakgan_discriminator
from seqadv.rl.advantages import (RESCALE_MODES, block_ends, leakgan_block_cosines, leakgan_rescale,
                                  leakgan_worker_rewards)
from seqadv.rl.losses import mle_loss, policy_gradient_loss
from seqadv.rl.rewards import discriminator_reward
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.update import clip_and_step
from seqadv.runtime.cli import check_ranges
from seqadv.runtime.distributed import Group
from seqadv.trainers.base import Phase, own_model, preset_config
from seqadv.trainers.seqgan import RolloutGANConfig, SeqGANTrainer, gathered_credit
from seqadv.trainers.text import TextGANConfig

COSINES = ("paper", "official")


@preset_config
class LeakGANConfig(RolloutGANConfig):
    out: str = "runs/leakgan"
    g_lr: float = 0.0015  # G's Adam learning rate, manager and worker, MLE and adversarial (the synthetic code's)
    pretrain_epochs: int = 80  # MLE epochs, spread over the pretraining cycles
    goal_size: int = 16  # k: the worker's goal embedding
    step_size: int = 4  # c: tokens per goal
    pretrain_cycles: int = 10  # pretraining: this many cycles of D rounds, then MLE epochs
    # D (official: SeqGAN's CNN, no dropout, L2 0.2, Adam 5e-5)
    d_dropout: float = 0.0
    d_lr: float = 5e-5
    # adversarial (official synthetic: 800 epochs of 1 G update and 5 D rounds, 4 rollouts)
    adv_epochs: int = 800
    num_rollouts: int = 4
    rollout_rate: float = 0.0  # G itself rolls out (the official rollouts read G's live weights)
    rescale: str = "sorted"  # rank rewards by value (the paper) | official (the code's dict order)
    rescale_delta: float = 16.0  # delta of the rescaled activation sigmoid(delta (rank / B - 1/2))
    cosine: str = "paper"  # the losses' cosines per block and token (the paper) | official (one batch mean, the code's)
    first_steps_scale: float = 1.5  # G's training samples: the first two tokens' logits times this (1: G's own)
    reward_real: bool = False  # put real sentences into the rank pool, min(B, 10 epoch / 20) of them (the COCO code)
    adv_mle_every: int = 0  # an MLE epoch after every this many adversarial epochs (0: never; the COCO code: 15)

    PRESETS: ClassVar[dict] = {
        "tiny": {**RolloutGANConfig.PRESETS["tiny"], "pretrain_epochs": 4, "pretrain_cycles": 2, "adv_epochs": 3,
                 "num_rollouts": 2, "goal_size": 4, "g_lr": 0.01},
        # a COCO seed within 45 minutes (measured: 24 minutes on one thread, docs/recipes.md): SeqGAN's
        # cpu D, a worker of goal size 4, 5 cycles of 1 D round and 1 MLE epoch, 30 adversarial epochs
        # with D rounds of 1,024 samples. An MLE epoch costs several of SeqGAN's (the worker's V x k
        # output and every prefix's leaked feature), so it gets fewer
        "cpu": {**RolloutGANConfig.PRESETS["cpu"], "pretrain_epochs": 5, "pretrain_cycles": 5, "d_pretrain_rounds": 5,
                "goal_size": 4, "adv_epochs": 30, "d_samples": 1024, "num_rollouts": 4},
        "paper": {},
    }
    CHOICES: ClassVar[dict] = {**TextGANConfig.CHOICES, "rescale": list(RESCALE_MODES), "cosine": list(COSINES)}

    def validate(self) -> None:
        super().validate()
        check_ranges(self, positive=["goal_size", "step_size", "pretrain_cycles", "first_steps_scale", "rescale_delta"],
                     non_negative=["adv_mle_every"])
        for name in ("rescale", "cosine"):
            if getattr(self, name) not in self.CHOICES[name]:
                raise ValueError(f"--{name} {getattr(self, name)}: choose one of {', '.join(self.CHOICES[name])}")
        if self.generator != "lstm":
            raise ValueError(f"--generator {self.generator}: LeakGAN trains its own generator (a manager and a "
                             f"worker reading D's features); leave --generator out")
        if self.kl_coef:
            raise ValueError("--kl-coef: LeakGAN's manager and worker losses take no KL penalty here")
        if self.init_from is not None:
            raise ValueError("--init-from: LeakGAN's pretraining interleaves D rounds with its own generator's "
                             "MLE epochs; it starts from scratch")
        for name in ("pretrain_epochs", "d_pretrain_rounds"):
            if getattr(self, name) % self.pretrain_cycles:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)} does not split into "
                                 f"--pretrain-cycles {self.pretrain_cycles}")


class LeakGANTrainer(SeqGANTrainer):
    """LeakGAN and its MLE baseline, as a resumable, data-parallel run on SeqGAN's loop: its
    generator (`generator_spec`), its interleaved pretraining (`pretrain`), its block rewards
    (`generator_rewards`) and its manager and worker updates (`policy_gradient_step`).
    `discriminator`: one of one's own needs `leaked_features(tokens) -> (B, F)` as well."""

    recipe, config_class, sweep_files = "leakgan", LeakGANConfig, ("mle.pt", "leakgan.pt")
    baseline, adversarial_model, adversarial_label = "mle", "leakgan", "LeakGAN"

    def generator_spec(self, data: SequenceData) -> Optional[tuple[type, dict]]:
        c = self.config
        return LeakGANGenerator, dict(
            vocab_size=data.vocab_size, max_length=data.length, embedding_dim=c.g_embedding_dim,
            hidden_dim=c.g_hidden_dim, goal_size=c.goal_size, step_size=c.step_size, start_token=data.start_token,
            eos_token=data.eos_token, pad_token=data.pad_token, d_embedding_dim=c.d_embedding_dim,
            d_filter_sizes=list(c.d_filter_sizes), d_num_filters=list(c.d_num_filters))

    def build_adversary(self) -> None:
        c, data = self.config, self.data
        if c.cosine == "official" and self.group.active:
            raise ValueError("--cosine official takes one mean over the whole batch, which the processes do not "
                             "share: run it on one process")
        d = own_model(self.user_discriminator, data)
        self.d = (new_leakgan_discriminator(data.vocab_size, c.d_embedding_dim, c.d_filter_sizes, c.d_num_filters,
                                            c.d_dropout) if d is None else d).to(self.device)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=c.d_lr)
        self.build_mle_baseline()
        self.g.load_leak(self.d)
        self.rollout_policy = self.g  # the official rollouts read G's live weights
        self.g_adv_opt = torch.optim.Adam([p for p in self.g.parameters() if p.requires_grad], lr=c.g_lr)
        self.modules = {"generator": self.g, "g_optimizer": self.g_opt, "discriminator": self.d,
                        "d_optimizer": self.d_opt, "mle_generator": self.mle, "mle_optimizer": self.mle_opt,
                        "g_adv_optimizer": self.g_adv_opt}
        self.split = {"rollout_s": 0.0, "g_update_s": 0.0, "d_train_s": 0.0, "leaked_features_s": 0.0}
        self.engine = RolloutEngine(self.g, c.num_rollouts, temperature=c.rollout_temperature,
                                    memory_budget_mb=c.rollout_memory_mb, eos_token=data.eos_token,
                                    pad_token=data.pad_token)
        self.reward_fn = discriminator_reward(self.d, share_prefix=hasattr(self.d, "rollout_logits"))

    def phases(self) -> list[Phase]:
        c = self.config
        return [Phase("pretrain", c.pretrain_cycles, "pretrain (D rounds, then MLE epochs)", "cycle"),
                Phase("mle_baseline", self.adversarial_updates(), "MLE baseline", "step",
                      checkpoint_every=self.eval_every_updates()),
                Phase("adversarial", c.adv_epochs, "adversarial")]

    # --- pretraining ----------------------------------------------------------------------------------
    def pretrain(self, cycle: int) -> None:
        """D rounds against the current G (its features loaded into G after each), then MLE epochs."""
        c = self.config
        rounds, epochs = c.d_pretrain_rounds // c.pretrain_cycles, c.pretrain_epochs // c.pretrain_cycles
        for r in range(rounds):
            d_loss, d_acc = self.train_discriminator_round(f"pretrain cycle {cycle}, D round {r + 1}")
            self.writer.add_scalar("losses/d_pretrain", d_loss, (cycle - 1) * rounds + r + 1)
            self.writer.add_scalar("charts/d_pretrain_accuracy", d_acc, (cycle - 1) * rounds + r + 1)
        for e in range(epochs):
            self.pretrain_g((cycle - 1) * epochs + e + 1)

    def end_phase(self, phase: str) -> None:
        super().end_phase("pretrain_g" if phase == "pretrain" else phase)

    def train_discriminator_round(self, where: str, epochs: Optional[int] = None) -> tuple[float, float]:
        result = super().train_discriminator_round(where, epochs)
        self.g.load_leak(self.d)  # the manager reads the D it now faces
        return result

    def mle_step(self, g: nn.Module, opt: torch.optim.Optimizer, batch: Tensor, where: str) -> float:
        """LeakGAN's MLE update: the worker's likelihood and the manager's goal loss at once."""
        return leakgan_mle_step(g, opt, batch, self.config.grad_clip, where, self.group, self.config.cosine)

    # --- the adversarial phase ------------------------------------------------------------------------
    def generator_samples(self, num: int) -> Tensor:
        return self.g.sample(num, self.data.length, generator=self.rng, first_steps_scale=self.config.first_steps_scale)

    def generator_rewards(self, samples: Tensor, where: str) -> tuple[Tensor, Tensor]:
        """Each block's reward: D's probability of "real" at its end, by rollouts, rescaled by
        rank over the batch (and real sentences, `reward_real`), over the rollouts.

        Shape: samples (b, T) -> rewards (b, K), all_rewards (B, K), K = ceil(T / c)
        """
        c, group = self.config, self.group
        T = samples.shape[1]
        ends = block_ends(T, c.step_size)
        leak_before = self.g.leak_seconds
        rewards = self.engine.rewards(samples, self.reward_fn, generator=self.rng, prefixes=ends[:-1])  # (b, T)
        self.split["leaked_features_s"] += self.g.leak_seconds - leak_before
        self.count_rollouts()
        # the prefixes inside a block were never asked for: not counted as skipped
        self.split["rollout_rows_skipped"] -= len(samples) * (T - len(ends)) * c.num_rollouts
        blocks = rewards[:, [e - 1 for e in ends]]  # (b, K)
        return gathered_credit(blocks, self.rescaled, "a rollout reward", where, group)

    def rescaled(self, blocks: Tensor) -> Tensor:
        """The whole batch's block rewards ranked over it (and over real rows, `reward_real`),
        over the rollouts. Shape: blocks (B, K) -> (B, K)"""
        c = self.config
        pool = blocks
        if c.reward_real:
            real = self.real_rows_scores()  # (P,): the same at every block
            pool = torch.cat([blocks, real[:, None].expand(-1, blocks.shape[1])])
        return leakgan_rescale(pool, c.rescale_delta, c.rescale)[: len(blocks)] / c.num_rollouts

    def real_rows_scores(self) -> Tensor:
        """The COCO code's real sentences in the rank pool: min(B, int(10 epoch / 20)) of them, a
        fresh draw for each rollout, D's probability summed over the rollouts / N. Shape: -> (P,)"""
        c, train = self.config, self.data.train
        epoch = self.progress.get("done", 0)  # adversarial epochs finished before this one
        count = min(c.batch_size, int(epoch / 20.0 * 10))
        if count == 0:
            return torch.empty(0, device=self.device)
        scores = torch.zeros(count, device=self.device)
        for _ in range(c.num_rollouts):
            rows = train[torch.randint(len(train), (count,), generator=self.order_rng)].to(self.device)
            scores += self.reward_fn(rows)
        return scores / c.num_rollouts

    def policy_gradient_step(self, samples: Tensor, rewards: Tensor, all_rewards: Tensor, where: str) -> float:
        c = self.config
        leak_before = self.g.leak_seconds
        value = leakgan_step(self.g, self.g_adv_opt, samples, rewards, c.grad_clip, where, self.group, c.cosine)
        self.split["leaked_features_s"] += self.g.leak_seconds - leak_before
        return value

    def adversarial(self, epoch: int) -> None:
        super().adversarial(epoch)
        c = self.config
        if c.adv_mle_every and epoch % c.adv_mle_every == 0:  # the COCO code's interleaved MLE epoch
            losses = self.mle_epoch(f"adversarial epoch {epoch} MLE")
            self.writer.add_scalar("losses/g_mle_interleaved", float(np.mean(losses)), epoch)

    def print_table(self, results: dict) -> None:
        super().print_table(results)
        t = results["timings"]
        if "adversarial_epoch_leaked_features_s" in t:
            e = t["adversarial_epoch_s"]
            print(f"of which D's leaked features (rollouts and G's update): "
                  f"{t['adversarial_epoch_leaked_features_s'] / e:.0%} of an adversarial epoch")


def leakgan_losses(g: LeakGANGenerator, samples: Tensor, rewards: Optional[Tensor], group: Group,
                   cosine: str = "paper") -> tuple[Tensor, Tensor, Tensor]:
    """The manager's goal loss and the worker's loss on G's teacher-forced pass over `samples`.

    rewards None (pretraining, the MLE baseline): the manager's goal loss without rewards and
    the worker's likelihood; otherwise the manager's loss weighted by each block's reward and
    the worker's REINFORCE with its intrinsic reward. Blocks and tokens after a text's end do
    not count; means are over the whole batch's blocks and tokens. `cosine="official"`: every
    cosine replaced by the batch's mean cosine, as the official code's
    `tf.losses.cosine_distance` reduces it (one process only). Returns (manager loss, worker
    loss, logits).

    Shape: samples (b, T), rewards (b, K) or None
    """
    c = g.step_size
    logits, parts = g.teacher_forcing(samples)
    mask = tokens_mask(samples, g.eos_token, g.pad_token)  # (b, T)
    block_mask = mask[:, ::c]  # (b, K): a block counts if its first token is text
    cosines = leakgan_block_cosines(parts["features"], parts["goals"], c)  # (b, K), through the goals
    if cosine == "official":
        cosines = ((cosines * block_mask).sum() / block_mask.sum().clamp(min=1)).expand_as(cosines)
    weights = torch.ones_like(cosines) if rewards is None else rewards.detach()
    manager = -(weights * cosines * block_mask).sum() / group.token_normalizer(block_mask)
    if rewards is None:
        return manager, mle_loss(logits, samples, mask, normalizer=group.token_normalizer(mask)), logits
    with torch.no_grad():
        intrinsic = leakgan_worker_rewards(parts["features"], parts["goals"], c)  # (b, T)
        if cosine == "official":
            intrinsic = ((intrinsic * mask).sum() / mask.sum().clamp(min=1)).expand_as(intrinsic)
    worker = policy_gradient_loss(logits, samples, intrinsic, mask, normalizer=group.token_normalizer(mask))
    return manager, worker, logits


def leakgan_step(g: LeakGANGenerator, opt: torch.optim.Optimizer, samples: Tensor, rewards: Tensor, clip: float,
                 where: str, group: Group = Group(), cosine: str = "paper") -> float:
    """One adversarial update of LeakGAN's manager and worker from this process's rows, each
    gradient clipped on its own. Returns the summed loss.

    Shape: samples (b, T), rewards (b, K) (rescaled block rewards)
    """
    manager, worker, _ = leakgan_losses(g, samples, rewards, group, cosine)
    return clip_and_step(g, opt, manager + worker, clip, where, "LeakGAN's manager and worker losses",
                         group.average_gradients, clip_groups=[g.manager_parameters(), g.worker_parameters()])


def leakgan_mle_step(g: LeakGANGenerator, opt: torch.optim.Optimizer, batch: Tensor, clip: float, where: str,
                     group: Group = Group(), cosine: str = "paper") -> float:
    """One pretraining (or MLE baseline) update: the worker's NLL and the manager's goal loss
    (its goals against D's feature change over each block, no reward), each gradient clipped on
    its own. Returns the worker's NLL (the MLE loss the other recipes report).

    Shape: batch (b, T) real text
    """
    manager, worker, _ = leakgan_losses(g, batch, None, group, cosine)
    clip_and_step(g, opt, manager + worker, clip, where, "LeakGAN's MLE losses", group.average_gradients,
                  clip_groups=[g.manager_parameters(), g.worker_parameters()])
    return float(worker.detach()) if not group.active else float(group.sum(worker.detach()) / group.world_size)

