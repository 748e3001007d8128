"""DPGAN (Xu, Ren, Lin and Sun, "Diversity-Promoting GAN: A Cross-Entropy Based Generative
Adversarial Network for Diversified Text Generation", EMNLP 2018; arXiv 1802.01345) against an
MLE baseline of equal budget, after the official code (lancopku/DPGAN) and TextGAN-PyTorch's
unconditional DPGAN (`instructor/real_data/dpgan_instructor.py`, `run/run_dpgan.py`).

What makes it DPGAN's rather than SeqGAN's:
  * the discriminator is a language model (an LSTM of G's sizes, as in both codes), and its
    cross-entropy is the reward: r_t = -log D(y_t | y_<t), each word's, and
    R(y) = mean_t r_t, the sentence's (`rl.advantages.sentence_rewards`). D learns G's text,
    so text G repeats is predictable to it and earns little, and novel text earns much;
  * D's loss (`rl.losses.dpgan_discriminator_loss`): mean R(G's text) - `d_real_weight` *
    mean R(real text), D learning G's text and, a little, unlearning the real text: the
    official code's weights (+1 and -1e-4). In effect the code's real weight is 0 (stored in
    an int32 array), an option; TextGAN-PyTorch's weight of 1 is one too, but that loss has
    no minimum: D raises its NLL of real text round after round (tests/test_dpgan.py);
  * G's step (`reward`): official, the default, the authors' code's (`official_step`): a
    REINFORCE update on G's samples with each word's reward clipped at 12 and scaled by 1e-4
    (`rl.advantages.dpgan_rewards`), then a teacher-forcing update on a real batch, each real
    token weighted by D's reward of it / 10 (`rl.advantages.dpgan_teacher_weights`), both
    with G's one optimiser. At that scale the real-text update does nearly all the moving: G
    is trained towards the real text D finds novel, the "fluent" half of the abstract's
    "novel and fluent". The MLE baseline gets two updates per G step, as G does. paper,
    TextGAN-PyTorch's credit: Q_t = R(y) times the word-level return sum_{s >= t}
    discount^(s - t) r_s (discount 1), no real-text update. word: the official code's credit
    of G's samples alone, unscaled;
  * no Monte Carlo rollouts: the language model scores every prefix directly (neither code
    has any), so the rollout options of SeqGAN's family do not apply;
  * G's updates: REINFORCE without a baseline, both losses the mean over all b x T positions
    as the official code takes them (paper and word: -sum_i sum_t Q_it log p(y_it | y_i<t)
    over the batch, TextGAN-PyTorch's sum), Adam at G's learning rate, clipped at 5; D Adam
    0.01, clipped at 5 (TextGAN-PyTorch's `dis_lr` and `clip_norm`);
  * its schedule (`paper` preset, TextGAN-PyTorch's `run_dpgan.py`): 120 MLE epochs, 5 D
    rounds of 3 epochs, then per epoch 1 G step and 4 D rounds of 2 epochs, 200 epochs.

Where this recipe departs, and why (also in docs/recipes.md):
  * I could not read the paper's text here, only its abstract, the figure TextGAN-PyTorch
    reproduces and a student report that quotes its equations (jsbaan/DPAC-DialogueGAN,
    DP_DialogueGAN.pdf): D's objective there is -(E_real R(y) - E_G R(y)), real weight 1,
    as TextGAN-PyTorch's. The default follows the official code's 1e-4 instead, since the
    paper's loss has no minimum (above) and its authors' code weights the real text so;
    `--d-real-weight 1` is the paper's. G's step is the official code's (Adam where it uses
    Adagrad at 0.6, clip 2); whether the paper's text has its teacher-forcing update could
    not be checked. TextGAN-PyTorch's credit (the figure's sentence-level reward times
    word-level rewards; the report: a return of all the rewards after t, no discount) is
    `--reward paper`. It is not the default because on text that ends its return grows with
    the text's length (every word's reward is positive, and ending forfeits the rest): on
    COCO it taught G to run to the length limit, NLL-test 4.62 to 6.99 (docs/results.md).
    TextGAN-PyTorch has the same pull, its padding scored near 0 by a D that has learnt it;
  * G's samples are drawn from G, free-running at temperature 1, as REINFORCE needs: the
    official code rewards a greedy continuation of one sampled token, TextGAN-PyTorch the
    argmax at each position given a real prefix, neither of which is G's distribution;
  * texts end: R(y) is the mean over a row's text (through its end token) and positions after
    it earn nothing, where TextGAN-PyTorch averages over all 20 positions, padding included;
  * D's rounds are SeqGAN's (`d_samples` real and as many fresh G sequences, shuffled
    together, every process scoring the whole batch), where TextGAN-PyTorch pairs batch i of
    the training file with batch i of G's samples and the official code trains D after every
    1,000 G steps on all the samples written so far; the official code's review pipeline
    (an encoder, sentences of reviews, its clean-up of G's text, which drops short and
    near-repeated sentences) has no counterpart here;
  * Adam, not the official Adagrad: Adam normalises each step, so the first update of the
    official step moves G by a full step of the learning rate at first and then mostly
    carries on the teacher-forcing updates' momentum, where Adagrad's barely moves G.

    from seqadv import DPGANConfig, DPGANTrainer
    results = DPGANTrainer(DPGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()

Writes what SeqGAN writes, with dpgan.pt for the adversarial model.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor, nn

from seqadv.core.masks import tokens_mask
from seqadv.core.modules import eval_mode
from seqadv.data.dataset import BatchStream
from seqadv.models.generator import Generator
from seqadv.rl.advantages import DPGAN_REWARDS, dpgan_rewards, dpgan_teacher_weights, sentence_rewards
from seqadv.rl.losses import dpgan_discriminator_loss, token_log_probs
from seqadv.rl.update import check_finite, clip_and_step, policy_gradient_update, reference_logits
from seqadv.runtime.cli import check_ranges
from seqadv.trainers.base import preset_config
from seqadv.trainers.seqgan import RolloutGANConfig, SeqGANTrainer
from seqadv.trainers.text import TextGANConfig

# SeqGAN's family options DPGAN has no use for: its D is no CNN, its credit takes no rollouts
_UNUSED = ("d_filter_sizes", "d_num_filters", "d_dropout", "d_l2", "num_rollouts", "rollout_rate",
           "rollout_memory_mb", "rollout_temperature")


def _without_unused(preset: dict) -> dict:
    return {k: v for k, v in preset.items() if k not in _UNUSED}


@preset_config
class DPGANConfig(RolloutGANConfig):
    out: str = "runs/dpgan"
    # the language-model discriminator (both codes: an LSTM of G's sizes; TextGAN-PyTorch: Adam 0.01, clip 5)
    d_embedding_dim: int = 32  # D's embedding size (the codes: G's)
    d_hidden_dim: int = 32  # D's LSTM size (the codes: G's)
    d_lr: float = 0.01  # D's Adam learning rate
    d_grad_clip: float = 5.0  # D's gradient-norm clip (0: none)
    d_real_weight: float = 1e-4  # D's loss: NLL of G's text - this x NLL of real text (the official code's 1e-4; 0: the code in effect; 1: TextGAN-PyTorch's, unbounded)
    reward: str = "official"  # official (the official code's G step: each word's reward x 1e-4, then a teacher-forcing step on real text weighted by D) | paper (sentence reward x word-level return: TextGAN-PyTorch) | word (the official code's credit alone)
    discount: float = 1.0  # the word-level return's discount (TextGAN-PyTorch: 1)
    # schedule (TextGAN-PyTorch's run_dpgan.py: 5 D rounds of 3 epochs; per epoch 1 G step, 4 D rounds of 2 epochs)
    d_pretrain_rounds: int = 5
    d_epochs: int = 3  # epochs over each pretraining round's data
    d_rounds: int = 4
    d_adv_epochs: int = 2  # epochs over each D round's data in the adversarial phase

    UNUSED: ClassVar[tuple] = _UNUSED
    PRESETS: ClassVar[dict] = {
        "tiny": {**_without_unused(RolloutGANConfig.PRESETS["tiny"]), "d_hidden_dim": 16},
        # SeqGAN's cpu schedule (40 MLE epochs, 80 adversarial epochs of one G step and one D round of
        # 2 epochs over 2,048 + 2,048 sequences: the same budget); TextGAN-PyTorch's 4 rounds of 2 epochs
        # over the whole training set per G step would be 10x the D updates (an LM over COCO's 5,433
        # words costs about 0.1 s an update on one thread), past 45 minutes
        "cpu": {**_without_unused(RolloutGANConfig.PRESETS["cpu"]), "d_pretrain_rounds": 5, "d_epochs": 3,
                "d_rounds": 1, "d_adv_epochs": 2},
        "paper": {},
    }
    CHOICES: ClassVar[dict] = {**TextGANConfig.CHOICES, "reward": list(DPGAN_REWARDS)}

    def validate(self) -> None:
        super().validate()
        defaults = {f.name: f.default for f in dataclasses.fields(RolloutGANConfig)}
        for name in _UNUSED:
            if getattr(self, name) != defaults[name]:
                raise ValueError(f"--{name.replace('_', '-')}: does not apply to DPGAN (its D is a language model "
                                 f"and its credit takes no rollouts)")
        check_ranges(self, positive=["d_hidden_dim"], non_negative=["d_grad_clip", "d_adv_epochs", "d_real_weight"],
                     unit=["discount"])
        if self.reward not in DPGAN_REWARDS:
            raise ValueError(f"--reward {self.reward}: choose one of {', '.join(DPGAN_REWARDS)}")


class DPGANTrainer(SeqGANTrainer):
    """DPGAN and its MLE baseline, as a resumable, data-parallel run: SeqGAN's loop with DPGAN's
    language-model D (`new_discriminator`, `discriminator_batch`), its credit without rollouts
    (`generator_rewards`) and its summed update. `generator`: as `SeqGANTrainer`'s;
    `discriminator`: a language model of one's own, with `target_logits(tokens (B, T)) ->
    (B, T, V)` over G's vocabulary."""

    recipe, config_class, sweep_files = "dpgan", DPGANConfig, ("mle.pt", "dpgan.pt")
    baseline, adversarial_model, adversarial_label = "mle", "dpgan", "DPGAN"
    # its language model scores every prefix itself; G's loss sums the credit over the batch (TextGAN-PyTorch)
    takes_rollouts, summed_update = False, True

    def build_adversary(self) -> None:
        super().build_adversary()
        if self.config.reward == "official":  # the teacher-forcing step's real batches, checkpointed
            self.real_stream = BatchStream(self.train_data, self.config.batch_size, self.order_rng)
            self.streams = {**self.streams, "real": self.real_stream}

    def g_updates_per_step(self) -> int:
        return 2 if self.config.reward == "official" else 1

    def new_discriminator(self) -> nn.Module:
        c, data = self.config, self.data
        return Generator(data.vocab_size, c.d_embedding_dim, c.d_hidden_dim,
                         start_token=data.start_token, eos_token=data.eos_token, pad_token=data.pad_token)

    def adversarial_d_epochs(self) -> int:
        return self.config.d_adv_epochs

    def discriminator_batch(self, sequences: Tensor, labels: Tensor, batch: Tensor, where: str
                            ) -> tuple[float, int, int]:
        """One D update on a whole batch (every process alike: the loss's two means span the
        batch). A guess is right where a real row's R(y) is above the batch's mean, a generated
        row's below it."""
        rows, truth = sequences[batch], labels[batch]
        r_s = sentence_rewards(*self.word_rewards(rows))  # (batch,)
        loss = dpgan_discriminator_loss(r_s, truth, self.config.d_real_weight)
        value = clip_and_step(self.d, self.d_opt, loss, self.config.d_grad_clip, where, "the discriminator loss",
                              self.group.average_gradients)
        right = int(((r_s > r_s.mean()).float() == truth).sum()) if self.group.is_main else 0
        return value, right, len(batch) if self.group.is_main else 0

    def word_rewards(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """D's cross-entropy of each token given its prefix, and which tokens are text.

        Shape: tokens (B, T) -> r (B, T), mask (B, T)
        """
        mask = tokens_mask(tokens, self.data.eos_token, self.data.pad_token)
        return -token_log_probs(self.d.target_logits(tokens), tokens), mask

    def generator_rewards(self, samples: Tensor, where: str) -> tuple[Tensor, Tensor]:
        """Each token's credit from D's cross-entropies of the sample, this process's rows and the
        whole batch's, checked.

        Shape: samples (b, T) -> rewards (b, T), all_rewards (B, T)
        """
        c = self.config
        with torch.no_grad(), eval_mode(self.d):
            r, mask = self.word_rewards(samples)
        self.sentence_reward = float(self.group.all_gather(sentence_rewards(r, mask)).mean())
        rewards = dpgan_rewards(r, mask, c.reward, c.discount)
        all_rewards = self.group.all_gather(rewards)
        check_finite(all_rewards, "a discriminator reward", where)
        return rewards, all_rewards

    def credit_statistics(self) -> dict:
        # R(y) of G's last batch: how novel D finds G's text (it rises as G moves away from what D learnt);
        # with the official update, also its teacher-forcing step's loss
        if self.config.reward == "official":
            return {"sentence_reward": self.sentence_reward, "g_teacher_forcing": self.teacher_loss}
        return {"sentence_reward": self.sentence_reward}

    def policy_gradient_step(self, samples: Tensor, rewards: Tensor, all_rewards: Tensor, where: str) -> float:
        c = self.config
        if c.reward == "official":
            return self.official_step(samples, rewards, where)
        return super().policy_gradient_step(samples, rewards, all_rewards, where)

    def official_step(self, samples: Tensor, rewards: Tensor, where: str) -> float:
        """The official code's G step (lancopku/DPGAN `main.py`, `run_train_generator`): a
        REINFORCE update on G's samples with their word-level rewards at its scale, then a
        teacher-forcing update on a batch of real text, each token weighted by D's reward of it
        (`dpgan_teacher_weights`); both losses the mean over all b x T positions, as its
        `sequence_loss` without averaging and `reduce_mean` take them. Returns the first loss;
        the second is charted and recorded (`g_teacher_forcing`).

        Shape: samples (b, T), rewards (b, T)
        """
        c, group = self.config, self.group
        reference = self.kl_reference()
        pg = policy_gradient_update(self.g, self.g_adv_opt, self.g.target_logits(samples), samples, rewards,
                                    tokens_mask(samples, self.g.eos_token, self.g.pad_token), samples.numel(),
                                    c.grad_clip, where, group, reference_logits=reference_logits(reference, samples),
                                    kl_coef=c.kl_coef)
        real = group.shard(self.real_stream.next())  # (b, T)
        with torch.no_grad(), eval_mode(self.d):
            r, mask = self.word_rewards(real)
        self.teacher_loss = policy_gradient_update(
            self.g, self.g_adv_opt, self.g.target_logits(real), real, dpgan_teacher_weights(r, mask), mask,
            real.numel(), c.grad_clip, where, group, what="the teacher-forcing loss",
            reference_logits=reference_logits(reference, real), kl_coef=c.kl_coef)
        return pg
