"""A ScratchGAN-style recipe (de Masson d'Autume et al., "Training Language GANs from
Scratch", NeurIPS 2019) against an MLE baseline of equal budget.

What makes it ScratchGAN's rather than SeqGAN's, each as the paper's code computes it
(deepmind-research `scratchgan/`: losses.py, experiment.py, discriminator_nets.py,
generators.py, utils.py):
  * a discriminator that scores every prefix (`PrefixDiscriminator`: recurrent, a
    logit per token, position features cos(pi (t / period + shift)) with periods
    log-spaced from 2 to T), trained on real and generated text with a per-token
    cross-entropy, each half a mean over all B x T positions;
  * dense rewards without rollouts: r_t = 2 sigmoid(D(y_0..y_t)) - 1 from D as it
    trains (its dropout on), discounted returns R_t = sum_{s >= t} discount^(s - t) r_s
    (discount 0.23), less a baseline, an exponential moving average of the mean return
    over all B x T positions, the zeros after the end included (decay 0.08: mostly this
    batch's), updated before it is subtracted; G's loss the mean over B x T, its gradient
    not clipped;
  * large batches (512), one D update per G update on fresh samples each, Adam with
    beta1 = 0.5 for both (G 9.59e-5, D 9.38e-3), D regularised by dropout on its
    embedding matrix, L2 (1e-6) and layer norm;
  * `preset="paper"`: the paper's generator (`ScratchGANGenerator`: 2 LSTM layers of 512,
    tied embeddings), from scratch; `embeddings`: word vectors to start G's and D's
    embeddings from, as the code's GloVe.
Each place where this recipe used to differ is an option whose default is the code's
(`baseline_positions`, `loss_positions`, `adv_grad_clip`, `reward_dropout`,
`d_position_signal`, `d_init`); a checkpoint written before they existed resumes with its old
values (`OLDER_RUNS`). What still differs, and why, is listed once, in docs/recipes.md
("Where it still differs from the paper's code").
Beyond the paper, as its options: MLE pretraining (`pretrain_epochs`, 0 for the
paper's from-scratch training) and an MLE loss mixed into G's (`mle_weight`).

Phases: pretrain G (MLE, SeqGAN's batches and learning rate), pretrain D
(`d_pretrain_steps`: against a pretrained G a fresh D needs a head start, its
prefixes being hard to tell apart; not in the paper, which starts from scratch),
the MLE baseline (`adv_steps` more MLE updates from the pretrained G and its
optimiser), adversarial (`adv_steps` G updates, each after `d_steps` D updates).

    from seqadv import ScratchGANConfig, ScratchGANTrainer
    results = ScratchGANTrainer(ScratchGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()

Writes what SeqGAN writes, with scratchgan.pt for the adversarial model.
"""
from __future__ import annotations

from typing import ClassVar, Optional

import torch
from torch import Tensor, nn

from seqadv.core.masks import tokens_mask
from seqadv.core.modules import module_mode
from seqadv.data.word_vectors import known_words, load_word_vectors, start_embedding_
from seqadv.models.discriminator import INITS, POSITION_SIGNALS, PrefixDiscriminator
from seqadv.rl.advantages import (POSITIONS, discounted_returns, masked_batch_mean, mean_normalizer,
                                  moving_average_baseline)
from seqadv.rl.losses import mle_loss, prefix_discriminator_loss
from seqadv.rl.rewards import prefix_rewards
from seqadv.rl.update import check_finite, discriminator_update, policy_gradient_update, reference_logits
from seqadv.runtime.cli import check_ranges
from seqadv.runtime.distributed import Group
from seqadv.trainers.base import Phase, own_model, preset_config
from seqadv.trainers.text import HF_G_LR, TextGANConfig, TextGANTrainer

# what a mean over a batch's positions counts: all B x T (ScratchGAN's code) or the text ones


@preset_config
class ScratchGANConfig(TextGANConfig):
    out: str = "runs/scratchgan"
    batch_size: int = 512  # sequences per adversarial batch, real and generated alike (ScratchGAN: 512)
    mle_batch_size: int = 64  # sequences per MLE batch: pretraining and the MLE baseline (SeqGAN's 64)
    adv_g_lr: float = 9.59e-5  # generator Adam learning rate in the adversarial phase (ScratchGAN's)
    g_beta1: float = 0.5  # generator Adam beta1 in the adversarial phase (ScratchGAN's)
    # discriminator (ScratchGAN: LSTM 512, embedding 64 + 8 position features, dropout 0.1, L2 1e-6, layer norm)
    d_embedding_dim: int = 64  # discriminator embedding size
    d_hidden_dim: int = 512  # discriminator LSTM size
    d_layers: int = 1  # discriminator LSTM layers
    d_dropout: float = 0.1  # dropout on the discriminator's embedding matrix
    d_layer_norm: bool = True  # layer norm on the discriminator's LSTM outputs
    d_l2: float = 1e-6  # L2 penalty on every discriminator parameter (half the squared norm)
    d_lr: float = 9.38e-3  # discriminator Adam learning rate (ScratchGAN's)
    d_beta1: float = 0.5  # discriminator Adam beta1
    d_steps: int = 1  # D updates before each G update
    d_pretrain_steps: int = 0  # D updates against the pretrained G before the adversarial phase (not in the paper)
    # adversarial
    adv_steps: int = 2000  # G updates in the adversarial phase (and MLE updates of the baseline)
    discount: float = 0.23  # of the per-token rewards in the returns (ScratchGAN's)
    baseline_decay: float = 0.08  # moving-average baseline: new = decay * old + (1 - decay) * mean return
    mle_weight: float = 0.0  # add this times the MLE loss of a real batch to G's adversarial loss
    embeddings: Optional[str] = None  # word vectors (GloVe's text format) to start G's and D's embeddings from
    # ScratchGAN's code by default; the other values restore what this recipe did before (see docs/recipes.md)
    baseline_positions: str = "all"  # baseline's mean return over: all B x T positions (ScratchGAN's) | text ones
    loss_positions: str = "all"  # G's loss, each half of D's: means over all B x T (ScratchGAN's) | text positions
    adv_grad_clip: float = 0.0  # G's gradient-norm clip in the adversarial phase (0: none, ScratchGAN's; before: 5)
    reward_dropout: bool = True  # D rewards G with its dropout on (ScratchGAN's); --no-reward-dropout: eval mode
    d_position_signal: str = "scratchgan"  # D's position features: scratchgan (periods 2..T, phases) | transformer
    d_init: str = "scratchgan"  # D's initial weights: scratchgan (the code's TensorFlow/Sonnet ones) | torch
    eval_every: int = 100  # G updates between evaluations (and checkpoints) in the long phases

    PRESETS: ClassVar[dict] = {
        # seconds: for tests and a first look
        "tiny": dict(
            g_embedding_dim=16, g_hidden_dim=16, pretrain_epochs=2, max_train=1024, max_test=256, batch_size=64,
            d_embedding_dim=16, d_hidden_dim=16, d_pretrain_steps=2, adv_steps=6, eval_every=3, pretrain_eval_every=1,
            eval_samples=200, nll_oracle_samples=500,
        ),
        # SeqGAN's cpu preset for the pretrained G (the same pretrained G for the same seed), then
        # ScratchGAN's adversarial training, smaller and shorter
        "cpu": dict(pretrain_epochs=40, batch_size=256, d_hidden_dim=128, d_lr=3e-3, d_pretrain_steps=300,
                    adv_steps=600, adv_g_lr=1e-3, eval_every=50),
        # the paper's settings and generator (2 LSTM layers of 512, tied embeddings of 64 trained dimensions,
        # and GloVe's 300 with --embeddings), from scratch (days on a CPU)
        "paper": dict(generator="scratchgan", g_embedding_dim=64, g_hidden_dim=512, g_layers=2, pretrain_epochs=0,
                      adv_steps=200000, eval_every=1000),
    }

    CHOICES: ClassVar[dict] = {**TextGANConfig.CHOICES, "baseline_positions": list(POSITIONS),
                               "loss_positions": list(POSITIONS), "d_position_signal": list(POSITION_SIGNALS),
                               "d_init": list(INITS)}
    # what a run made before these options existed did: a checkpoint without them resumes so
    OLDER_RUNS: ClassVar[dict] = {"baseline_positions": "text", "loss_positions": "text", "adv_grad_clip": 5.0,
                                "reward_dropout": False, "d_position_signal": "transformer", "d_init": "torch"}

    def validate(self) -> None:
        super().validate()
        check_ranges(self, positive=["mle_batch_size", "adv_g_lr", "d_embedding_dim", "d_hidden_dim", "d_layers",
                                     "d_lr", "d_steps"],
                     non_negative=["adv_steps", "d_l2", "d_dropout", "mle_weight", "d_pretrain_steps", "adv_grad_clip"],
                     unit=["g_beta1", "d_beta1", "discount", "baseline_decay"])
        if self.d_dropout >= 1:
            raise ValueError("--d-dropout must be below 1")
        if self.hf_directory is not None and "adv_g_lr" not in self.given:
            object.__setattr__(self, "adv_g_lr", HF_G_LR)  # a fine-tuning rate, as --g-lr's
        if self.embeddings is not None and self.generator != "scratchgan":
            raise ValueError(f"--embeddings starts ScratchGAN's generator and D: give --generator scratchgan "
                             f"(or --preset paper), not {self.generator}")
        for name in ("baseline_positions", "loss_positions", "d_position_signal", "d_init"):
            if getattr(self, name) not in self.CHOICES[name]:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: "
                                 f"choose one of {', '.join(self.CHOICES[name])}")


class ScratchGANTrainer(TextGANTrainer):
    """The ScratchGAN-style recipe and its MLE baseline, as a resumable, data-parallel run.

    `generator`: as for `SeqGANTrainer` (a policy of one's own with `target_logits` and
    `sample`). `discriminator`: an `nn.Module` mapping (B, T) token ids to (B, T) logits of
    "real", position t judging the prefix up to t, 0 where a position is not text; an
    `l2_penalty()` method, if it has one, is added with weight `d_l2`.
    """

    recipe, config_class, sweep_files = "scratchgan", ScratchGANConfig, ("mle.pt", "scratchgan.pt")
    baseline, adversarial_model, adversarial_label = "mle", "scratchgan", "ScratchGAN"
    state_attributes = TextGANTrainer.state_attributes + ("reward_baseline",)
    reward_baseline: float = 0.0  # the moving average of the mean return

    def mle_batch_size(self) -> int:
        return self.config.mle_batch_size

    def word_vectors(self, data) -> Optional[Tensor]:
        c = self.config
        if c.embeddings is None:
            self.vectors = None
        elif getattr(self, "vectors", None) is None:
            if data.vocab is None:
                raise ValueError(f"--embeddings {c.embeddings}: the corpus {c.corpus} has no words (its tokens are ids)")
            self.vectors = load_word_vectors(c.embeddings, data.vocab.itos)
            self.say(f"embeddings: {known_words(self.vectors)} of {data.vocab_size} tokens start from {c.embeddings} "
                     f"({self.vectors.shape[1]} dimensions), the rest drawn")
        return self.vectors

    def build_adversary(self) -> None:
        c, data = self.config, self.data
        d = own_model(self.user_discriminator, data)
        if d is None:
            vectors = self.word_vectors(data)
            d = PrefixDiscriminator(data.vocab_size, c.d_embedding_dim + (0 if vectors is None else vectors.shape[1]),
                                    c.d_hidden_dim, c.d_layers, c.d_dropout, c.d_layer_norm,
                                    eos_token=data.eos_token, pad_token=data.pad_token,
                                    position_signal=c.d_position_signal, init=c.d_init)
            if vectors is not None:
                start_embedding_(d.embedding.weight, vectors)
        self.d = d.to(self.device)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=c.d_lr, betas=(c.d_beta1, 0.999))
        self.build_step_adversary(c.adv_g_lr, (c.g_beta1, 0.999))

    def adversarial_updates(self) -> int:
        return self.config.adv_steps

    def eval_every_updates(self) -> int:
        return self.config.eval_every

    def phases(self) -> list[Phase]:
        c = self.config
        return [Phase("pretrain_g", c.pretrain_epochs, "pretrain G (MLE)"),
                Phase("pretrain_d", c.d_pretrain_steps, "pretrain D", "step", checkpoint_every=c.eval_every),
                Phase("mle_baseline", c.adv_steps, "MLE baseline", "step", checkpoint_every=c.eval_every),
                Phase("adversarial", c.adv_steps, "adversarial", "step", checkpoint_every=c.eval_every)]

    def pretrain_d(self, step: int) -> None:
        d_loss, d_real, d_fake = self.discriminator_step(f"pretrain D step {step}")
        self.writer.add_scalar("losses/d_pretrain", d_loss, step)
        self.writer.add_scalar("charts/d_pretrain_real_minus_fake", d_real - d_fake, step)

    def discriminator_step(self, where: str) -> tuple[float, float, float]:
        """One D update on the next real batch and fresh samples of G."""
        c = self.config
        real = self.group.shard(self.real_stream.next())
        fake = self.g.sample(len(real), self.data.length, generator=self.rng)
        return prefix_discriminator_step(self.d, self.d_opt, real, fake, c.d_l2, where, self.group, c.loss_positions)

    def adversarial(self, step: int) -> None:
        c, group, data = self.config, self.group, self.data
        where = f"adversarial step {step}"
        local = group.local_size(c.batch_size, "--batch-size")
        for _ in range(c.d_steps):
            d_loss, d_real, d_fake = self.discriminator_step(where)
        samples = self.g.sample(local, data.length, generator=self.rng)
        mle_batch = group.shard(self.mle_stream.next()) if c.mle_weight else None
        g_loss, mean_return, self.reward_baseline = dense_policy_gradient_step(
            self.g, self.g_adv_opt, self.d, samples, self.reward_baseline, c.discount, c.baseline_decay,
            c.adv_grad_clip, where, group, mle_batch, c.mle_weight, c.baseline_positions, c.loss_positions,
            c.reward_dropout, self.kl_reference(), c.kl_coef)
        self.writer.add_scalar("losses/g_adversarial", g_loss, step)
        self.writer.add_scalar("losses/d", d_loss, step)
        self.writer.add_scalar("charts/d_real", d_real, step)
        self.writer.add_scalar("charts/d_fake", d_fake, step)
        self.writer.add_scalar("charts/mean_return", mean_return, step)
        self.writer.add_scalar("charts/reward_baseline", self.reward_baseline, step)
        if group.is_main and (step % c.eval_every == 0 or step == c.adv_steps):
            metrics, shown = self.evaluate(self.g)
            self.record(self.adversarial_model, metrics, g_updates=step)
            self.writer.add_text("samples/scratchgan", "\n\n".join(data.text(s) for s in shown[:5].cpu()), step)


def prefix_discriminator_step(d: nn.Module, opt: torch.optim.Optimizer, real: Tensor, fake: Tensor, l2: float,
                              where: str, group: Group = Group(), loss_positions: str = "all"
                              ) -> tuple[float, float, float]:
    """One update of a per-prefix D on this process's rows of a real and a generated batch.
    Returns the whole batch's loss and D's mean probability of "real" on real and on
    generated text (over their text positions).

    Each half of the loss is a mean over its batch's positions (`mean_normalizer`): with
    "all", ScratchGAN's, over all B x T, the positions after the end counting 0 (the
    reference's loss counts log 2 there, D's logit being masked to 0: a constant without a
    gradient, left out of the value here); with "text" over its own text positions.

    Shape: real (b, T), fake (b, T) int64
    """
    d.train()
    # two passes, as the reference's two calls: each half draws its own dropout mask of D's
    # embedding matrix (one pass over both would give a token the same noise in both)
    real_logits, fake_logits = d(real), d(fake)  # (b, T) each
    real_mask = tokens_mask(real, getattr(d, "eos_token", None), getattr(d, "pad_token", None))
    fake_mask = tokens_mask(fake, getattr(d, "eos_token", None), getattr(d, "pad_token", None))
    loss = prefix_discriminator_loss(real_logits, fake_logits, real_mask, fake_mask,
                                     mean_normalizer(real_mask, loss_positions, group),
                                     mean_normalizer(fake_mask, loss_positions, group))
    value = discriminator_update(d, opt, loss, l2, where, group)
    with torch.no_grad():
        real_p = masked_batch_mean(torch.sigmoid(real_logits), real_mask, group)
        fake_p = masked_batch_mean(torch.sigmoid(fake_logits), fake_mask, group)
    return value, real_p.item(), fake_p.item()


def dense_policy_gradient_step(g: nn.Module, opt: torch.optim.Optimizer, d: nn.Module, samples: Tensor,
                               baseline: float, discount: float, decay: float, clip: float, where: str,
                               group: Group = Group(), mle_batch: Tensor | None = None, mle_weight: float = 0.0,
                               baseline_positions: str = "all", loss_positions: str = "all",
                               reward_dropout: bool = True, reference: Optional[nn.Module] = None,
                               kl_coef: float = 0.0) -> tuple[float, float, float]:
    """One REINFORCE update of G with ScratchGAN's dense rewards (its code's `reinforce_loss`):
    D's per-prefix rewards r_t = 2 sigmoid(D(y_0..y_t)) - 1, the returns
    R_t = sum_{s >= t} discount^(s - t) r_s, the baseline first updated with this batch's mean
    return, b = decay * b + (1 - decay) * mean(R), then the loss -mean(log pi(y_t) (R_t - b))
    over the text positions' terms. With `mle_weight`, that times the MLE loss of `mle_batch`
    is added. Returns the loss, the batch's mean return and the new baseline.

    The reference's choices, each an argument: `reward_dropout`, D scores the samples with
    its dropout on (train mode; False: eval mode); `baseline_positions`, the mean return
    over all B x T positions, the zeros after the end included ("all"), or over text
    positions ("text"); `loss_positions`, the loss divided by B x T ("all") or by the count
    of text positions ("text"); `clip`, G's gradient-norm clip (0: none, the reference's).

    Shape: samples (b, T) drawn from g; mle_batch (b', T) of real text or None
    """
    mask = tokens_mask(samples, g.eos_token, g.pad_token)
    # the reference scores G's samples with the same D as it trains, its dropout on
    with torch.no_grad(), module_mode(d, reward_dropout):
        returns = discounted_returns(prefix_rewards(d(samples), mask), discount, mask)  # (b, T), 0 after the end
    if baseline_positions not in POSITIONS:
        raise ValueError(f"baseline positions {baseline_positions!r}: choose one of {', '.join(POSITIONS)}")
    counted = mask if baseline_positions == "text" else torch.ones_like(mask)
    mean_return = masked_batch_mean(returns, counted, group).item()
    check_finite(torch.tensor(mean_return), "the mean return", where)
    baseline = moving_average_baseline(baseline, mean_return, decay)
    logits = g.target_logits(samples)  # before the MLE batch's: G's dropout draws in the reference's order
    mle_term = None
    if mle_batch is not None and mle_weight:
        mle_mask = tokens_mask(mle_batch, g.eos_token, g.pad_token)
        mle_term = mle_weight * mle_loss(g.target_logits(mle_batch), mle_batch, mle_mask,
                                         normalizer=group.token_normalizer(mle_mask))
    value = policy_gradient_update(g, opt, logits, samples, returns - baseline, mask,
                                   mean_normalizer(mask, loss_positions, group), clip, where, group, mle_term,
                                   "the generator's adversarial loss", reference_logits(reference, samples), kl_coef)
    return value, mean_return, baseline
