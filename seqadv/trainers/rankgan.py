"""RankGAN (Lin et al., "Adversarial Ranking for Language Generation", NeurIPS 2017) against
an MLE baseline of equal budget, after its released code (cookielee77/RankGan-NIPS2017:
ranker.py, rollout.py, main.py, opt.py).

What makes it RankGAN's rather than SeqGAN's:
  * the adversary is a ranker, not a classifier (`seqadv.models.discriminator.Ranker`):
    SeqGAN's CNN up to its highway layer and dropout, a sequence's relevance to a reference
    set U of real sentences gamma * sum_{u in U} cos(f(s), f(u)) (gamma 1, |U| 16 drawn
    uniformly from the real data, with replacement, fresh for every batch and every reward);
  * its loss (`seqadv.rl.losses.rank_loss`): the ranking scores are a softmax of the
    relevances over the whole batch, real and generated rows shuffled together, and the
    ranker raises the real rows' mean log-score over the generated rows':
    -(mean_real log P - mean_fake log P); Adam 1e-4, no L2;
  * G's credit: every prefix is completed `num_rollouts` times by G itself (the code's
    rollout graph reads G's live weights: its 0.8 "delayed" update is never used, so
    `rollout_rate` 0), each completion's relevance to one reference draw is turned into a
    ranking score by a softmax over the batch's completions of the same prefix length and
    rollout, and token t's reward is the mean over the rollouts (the last token's: the
    softmax over the samples themselves). No baseline; the loss is a sum over the batch's
    tokens, as the code's `g_loss` (`summed_policy_gradient_step`);
  * its schedule (`paper` preset): G batches of 32 in the adversarial phase, 50 ranker
    pretraining rounds of 3 epochs, then per epoch 1 G step and 5 ranker rounds of 1 epoch
    (`d_adv_epochs`).

Where this recipe departs, and why (also in docs/recipes.md):
  * the paper writes the ranking score per reference, P(s | u, C) a softmax of
    gamma cos(s, u), then averages it over U; both public codes (this one's and
    Texygen's) aggregate the cosines first and take one softmax. The code's form is
    followed; `rank_aggregate=mean` gives Texygen's mean over U;
  * the paper's reward is written as the log of the ranking score; the code rewards the
    score itself, and so does this recipe;
  * the layers start from torch's initialisations, not the code's uniform(-0.1, 0.1);
  * under torchrun every process scores the whole ranker batch (its softmax spans the
    batch), so the ranker's update equals the one-process update, its work repeated.

    from seqadv import RankGANConfig, RankGANTrainer
    results = RankGANTrainer(RankGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()

Writes what SeqGAN writes, with rankgan.pt for the adversarial model.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from seqadv.models.discriminator import RANK_AGGREGATES, Ranker
from seqadv.rl.advantages import rank_probabilities
from seqadv.rl.losses import rank_loss
from seqadv.rl.rewards import RankerReward
from seqadv.rl.update import discriminator_update
from seqadv.runtime.cli import check_ranges
from seqadv.runtime.distributed import Group
from seqadv.trainers.base import preset_config
from seqadv.trainers.seqgan import RolloutGANConfig, SeqGANTrainer, gathered_credit
from seqadv.trainers.text import TextGANConfig


@preset_config
class RankGANConfig(RolloutGANConfig):
    out: str = "runs/rankgan"
    # the ranker (RankGAN's code: SeqGAN's CNN, embedding 64, dropout 0.25, Adam 1e-4, no L2)
    d_l2: float = 0.0  # L2 penalty (the ranker has no output layer to penalise)
    ref_size: int = 16  # real sentences in each reference set
    rank_gamma: float = 1.0  # gamma: the relevance's scale before the softmax
    rank_aggregate: str = "sum"  # the cosines to the references: sum (RankGAN's code) | mean (Texygen's)
    # adversarial (RankGAN's code: G batches of 32, 1 G step and 5 ranker rounds of 1 epoch per epoch)
    adv_batch_size: int = 32  # G's samples per adversarial update
    d_adv_epochs: int = 1  # epochs over each ranker round's data in the adversarial phase (d_epochs: pretraining)
    rollout_rate: float = 0.0  # G itself rolls out (the code's delayed update never takes effect)

    PRESETS: ClassVar[dict] = {
        "tiny": {**RolloutGANConfig.PRESETS["tiny"], "adv_batch_size": 64},
        # SeqGAN's cpu schedule (the same budget): G batches of 64, rounds of 2 epochs throughout
        "cpu": {**RolloutGANConfig.PRESETS["cpu"], "adv_batch_size": 64, "d_adv_epochs": 2},
        "paper": {},
    }
    CHOICES: ClassVar[dict] = {**TextGANConfig.CHOICES, "rank_aggregate": list(RANK_AGGREGATES)}

    def validate(self) -> None:
        super().validate()
        check_ranges(self, positive=["ref_size", "adv_batch_size", "rank_gamma"], non_negative=["d_adv_epochs"])
        if self.rank_aggregate not in RANK_AGGREGATES:
            raise ValueError(f"--rank-aggregate {self.rank_aggregate}: choose one of {', '.join(RANK_AGGREGATES)}")
        if self.adv_batch_size < 2:
            raise ValueError(f"--adv-batch-size {self.adv_batch_size}: RankGAN ranks G's samples against each "
                             f"other, so it needs at least 2")


class RankGANTrainer(SeqGANTrainer):
    """RankGAN and its MLE baseline, as a resumable, data-parallel run: SeqGAN's loop and
    schedule with RankGAN's ranker (`new_discriminator`, `discriminator_batch`), its credit
    (`generator_rewards`) and its summed update. `generator`: as `SeqGANTrainer`'s;
    `discriminator`: a ranker of one's own, `ranker(tokens (B, T), references (R, T)) -> (B,)`
    relevances, with `embed`, `head` and `features` as `Ranker`'s for the rollout rewards."""

    recipe, config_class, sweep_files = "rankgan", RankGANConfig, ("mle.pt", "rankgan.pt")
    baseline, adversarial_model, adversarial_label = "mle", "rankgan", "RankGAN"
    summed_update = True  # G's loss sums the credit over the batch, as its code does

    def new_discriminator(self) -> nn.Module:
        c, data = self.config, self.data
        return Ranker(data.vocab_size, c.d_embedding_dim, c.d_filter_sizes, c.d_num_filters, c.d_dropout,
                      pad_token=data.pad_token or 0, gamma=c.rank_gamma, aggregate=c.rank_aggregate)

    def adversarial_batch_size(self) -> int:
        return self.config.adv_batch_size

    def adversarial_d_epochs(self) -> int:
        return self.config.d_adv_epochs

    def references(self) -> Tensor:
        """A reference set: `ref_size` real sentences drawn uniformly, with replacement, from the
        training split (the same on every process: the shared data order's generator).
        Shape: -> (ref_size, T)"""
        train = self.data.train
        pick = torch.randint(len(train), (self.config.ref_size,), generator=self.order_rng)
        return train[pick].to(self.device)

    def discriminator_batch(self, sequences: Tensor, labels: Tensor, batch: Tensor, where: str
                            ) -> tuple[float, int, int]:
        """One ranker update on a whole batch (every process alike: the softmax spans the batch).
        A guess is right where a real row's relevance is above the batch's mean, a generated row's
        below it."""
        references = self.references()
        rows, truth = sequences[batch], labels[batch]
        scores = self.d(rows, references)  # (batch,)
        loss = discriminator_update(self.d, self.d_opt, rank_loss(scores, truth), self.config.d_l2, where, self.group)
        right = int(((scores > scores.mean()).float() == truth).sum()) if self.group.is_main else 0
        return loss, right, len(batch) if self.group.is_main else 0

    def generator_rewards(self, samples: Tensor, where: str) -> tuple[Tensor, Tensor]:
        """Each prefix's mean ranking score over its rollouts, this process's rows and the whole batch's.

        Shape: samples (b, T) -> rewards (b, T), all_rewards (B, T)
        """
        reward = RankerReward(self.d, self.references())
        scores = self.engine.rewards(samples, reward, generator=self.rng, per_completion=True)  # (b, T, N)
        self.count_rollouts()
        return rank_rewards(scores, where, self.group)



def rank_rewards(scores: Tensor, where: str = "", group: Group = Group()) -> tuple[Tensor, Tensor]:
    """RankGAN's credit from the relevance of each completion (`RolloutEngine.rewards(...,
    per_completion=True)`): a softmax over the whole batch's completions of the same prefix
    length and rollout, then the mean over the rollouts. Returns this process's rows and the
    whole batch's.

    Shape: scores (b, T, N) -> rewards (b, T), all_rewards (B, T)
    """
    return gathered_credit(scores, lambda all_scores: rank_probabilities(all_scores).mean(dim=2), "a ranker score",
                           where, group)
