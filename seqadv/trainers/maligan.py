"""MaliGAN (Che et al., "Maximum-Likelihood Augmented Discrete Generative Adversarial
Networks", arXiv 1702.07983, 2017) against an MLE baseline of equal budget.

What makes it MaliGAN's rather than SeqGAN's is G's credit. At the optimal D,
p_data(x) = p_G(x) D(x) / (1 - D(x)), so r(x) = D(x) / (1 - D(x)) reweights G's own samples
toward the data; MaliGAN's update is maximum likelihood on G's samples under the
normalised weights, less a baseline:

    grad = sum_i (r(x_i) / sum_j r(x_j) - b) * grad log p_G(x_i)

a sum over the batch and its tokens (the paper's and both public codes' sum), with b the
mean weight 1/B (`seqadv.rl.advantages.maligan_weights`: with D = sigmoid(logit) the
weights are a softmax of D's logits over the batch, exact at any D). G's samples are drawn
at temperature 1; D is SeqGAN's CNN, trained as SeqGAN trains it.

`credit` chooses where the weights are taken:
  mc (default): the paper's Monte Carlo search, on the rollout engine: every prefix
    y_0..y_t of a sample is completed `num_rollouts` times by G (`rollout_rate` 0: G
    itself, there is no delayed copy in MaliGAN), D scores each completion, the weights
    are normalised over the batch's completions of the same prefix length and rollout,
    and token t's credit is their mean over the rollouts (the last token's: the sample's
    own weight). This is the grouping of Texygen's `MaliganReward` loop, which however
    scores the unfinished sample itself in place of each completion.
  sequence: the paper's basic algorithm: every token of x_i gets x_i's weight. What
    Texygen and TextGAN-PyTorch compute in effect (their "rollouts" re-score the same
    samples, so all N passes agree).

Where this recipe departs from the paper, and why (also in docs/recipes.md):
  * the mixed MLE-Mali training of the paper's Algorithm 2 (teacher-forced real prefixes
    of length N, samples continuing each, N shrinking by K) is not implemented: no public
    code has it, and its printed update carries a typo the authors acknowledged; the
    weights here are normalised over the batch, not over the continuations of one real
    prefix;
  * the paper reports no synthetic-oracle experiment: the `paper` preset is SeqGAN's
    official schedule, which both public MaliGAN codes reuse;
  * `weights=texygen` reproduces Texygen's D / sum D in place of the paper's ratio.

    from seqadv import MaliGANConfig, MaliGANTrainer
    results = MaliGANTrainer(MaliGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()

Writes what SeqGAN writes, with maligan.pt for the adversarial model.
"""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from seqadv.rl.advantages import MALIGAN_WEIGHTS, maligan_weights
from seqadv.rl.rewards import discriminator_reward
from seqadv.runtime.distributed import Group
from seqadv.trainers.base import preset_config
from seqadv.trainers.seqgan import RolloutGANConfig, SeqGANTrainer, gathered_credit
from seqadv.trainers.text import TextGANConfig

CREDITS = ("mc", "sequence")


@preset_config
class MaliGANConfig(RolloutGANConfig):
    out: str = "runs/maligan"
    credit: str = "mc"  # mc (the paper's Monte Carlo search: weights of each prefix's completions) | sequence (the basic algorithm: the sample's weight at every token)
    weights: str = "paper"  # paper (D/(1-D), normalised; TextGAN-PyTorch's too) | texygen (D/sum D)
    rollout_rate: float = 0.0  # G itself rolls out (MaliGAN has no delayed policy)

    # SeqGAN's schedules: the same budget, so the recipes compare at equal cost
    PRESETS: ClassVar[dict] = RolloutGANConfig.PRESETS
    CHOICES: ClassVar[dict] = {**TextGANConfig.CHOICES, "credit": list(CREDITS), "weights": list(MALIGAN_WEIGHTS)}

    def validate(self) -> None:
        super().validate()
        for name in ("credit", "weights"):
            if getattr(self, name) not in self.CHOICES[name]:
                raise ValueError(f"--{name} {getattr(self, name)}: choose one of {', '.join(self.CHOICES[name])}")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size {self.batch_size}: MaliGAN normalises its weights over the batch, "
                             f"so it needs at least 2")


class MaliGANTrainer(SeqGANTrainer):
    """MaliGAN and its MLE baseline, as a resumable, data-parallel run: SeqGAN's loop, D and
    schedule, with MaliGAN's credit (`generator_rewards`) and its summed update
    (`policy_gradient_step`). `generator` and `discriminator`: as `SeqGANTrainer`'s."""

    recipe, config_class, sweep_files = "maligan", MaliGANConfig, ("mle.pt", "maligan.pt")
    baseline, adversarial_model, adversarial_label = "mle", "maligan", "MaliGAN"
    summed_update = True  # G's loss sums the credit over the batch, as its code does

    def build_adversary(self) -> None:
        super().build_adversary()
        # D's log-odds: the weights are a softmax of them (r = D / (1 - D) = exp(logit))
        self.reward_fn = discriminator_reward(self.d, share_prefix=hasattr(self.d, "rollout_logits"), logits=True)

    def generator_rewards(self, samples: Tensor, where: str) -> tuple[Tensor, Tensor]:
        """Each token's weight less the mean weight, this process's rows and the whole batch's.

        Shape: samples (b, T) -> rewards (b, T), all_rewards (B, T)
        """
        if self.config.credit == "mc":
            logits = self.engine.rewards(samples, self.reward_fn, generator=self.rng, per_completion=True)  # (b, T, N)
            self.count_rollouts()
        else:
            logits = self.reward_fn(samples)[:, None, None].expand(-1, samples.shape[1], 1)  # (b, T, 1)
        rewards, all_rewards = maligan_rewards(logits, self.config.weights, where, self.group)
        self.weights_ess = effective_sample_size(all_rewards[:, -1] + 1.0 / len(all_rewards))
        return rewards, all_rewards

    def credit_statistics(self) -> dict:
        # of the whole samples' weights: near B while D cannot tell G's samples apart, near 1 when
        # one sample takes the whole update (a D far from optimal, sure of itself)
        return {"weights_ess": self.weights_ess}



def effective_sample_size(weights: Tensor) -> float:
    """Kish's effective sample size of normalised weights, 1 / sum w^2: B for equal weights, 1
    for one sample with all of it. Shape: weights (B,), summing to 1"""
    return float(1.0 / weights.double().square().sum())


def maligan_rewards(logits: Tensor, weights: str = "paper", where: str = "", group: Group = Group()
                    ) -> tuple[Tensor, Tensor]:
    """MaliGAN's credit from D's logits of each completion (or of each sample, N = 1): the
    normalised weights less their mean over the whole batch's completions of the same prefix
    length and rollout, averaged over the rollouts. Returns this process's rows and the whole
    batch's (every process gathers the logits, so the weights are normalised alike).

    Shape: logits (b, T, N) -> rewards (b, T), all_rewards (B, T)
    """
    return gathered_credit(logits, lambda all_logits: maligan_weights(all_logits, weights).mean(dim=2),
                           "a discriminator logit", where, group)
