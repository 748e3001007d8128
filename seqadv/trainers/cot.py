"""CoT, cooperative training (Lu, Yu, Feng, Zhu, Zhang and Yu, "CoT: Cooperative Training for
Generative Modeling of Discrete Data", ICML 2019), against an MLE baseline of equal budget,
after the official code (desire2020/CoT at its last commit: `cot.py`, `generator.py`,
`mediator.py`).

Not a GAN: a mediator M learns the balanced mixture of the data and G, and G moves toward M,
so the two cooperate on an estimate of the Jensen-Shannon divergence rather than play a
minimax game, with no REINFORCE and no rollouts. Per iteration:
  * G's update: on a fresh batch of G's samples, the dense loss
    mean_t sum_v pi_g(v | s_<t) (log pi_g(v | s_<t) - log pi_m(v | s_<t)), KL(G || M) at every
    prefix over the whole vocabulary (`rl.losses.kl_to_reference`, M's log-probabilities
    constants, M without dropout), the code's `g_loss`; the prefixes are G's samples, so the
    score-function term of the exact gradient is not taken, as in the code;
  * M's update: -(mean log M(real) + mean log M(G's fresh samples)) / 2 per token, 64 + 64
    sequences, M's dropout on;
  * G Adam 1e-3 and M Adam 3e-3, both betas (0.9, 0.95) (the code's "two time-scale" rates),
    no gradient clipping; M an LSTM twice G's embedding and width, dropout 0.5 on its outputs;
  * no MLE pretraining (the code's PRE_EPOCH_NUM 0, "not recommended"; the `paper` preset);
    `pretrain_epochs` adds some, as SeqGAN's (the `cpu` preset: 20 epochs, for its budget).

Where this recipe departs from the official code, and why (also in docs/recipes.md):
  * M's LSTM is this package's (`models.generator.Generator` with `dropout`), every weight
    N(0, 0.1) as G's, where the code's CuDNN LSTM draws its kernels orthogonal;
  * texts end: positions after the end token count in neither loss (the code's oracle texts
    have a fixed length);
  * real batches come from shuffled epochs of the training split, where the code cycles the
    file in order;
  * evaluation as for every recipe here (NLL-oracle of 10,000 samples and NLL-test of the
    held-out split on the oracle); the code's JSD estimate is not computed.

    from seqadv import CoTConfig, CoTTrainer
    results = CoTTrainer(CoTConfig(corpus="oracle", oracle="paper", preset="tiny", out="runs/x")).train()

Writes what SeqGAN writes, with cot.pt for the cooperatively trained model.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from seqadv.core.masks import tokens_mask
from seqadv.core.modules import module_mode
from seqadv.models.generator import Generator
from seqadv.rl.losses import kl_to_reference, mle_loss
from seqadv.rl.update import clip_and_step
from seqadv.runtime.cli import check_ranges
from seqadv.runtime.distributed import Group
from seqadv.trainers.base import Phase, own_model, preset_config
from seqadv.trainers.text import TextGANConfig, TextGANTrainer


@preset_config
class CoTConfig(TextGANConfig):
    out: str = "runs/cot"
    pretrain_epochs: int = 0  # MLE epochs before cooperative training (the code: none)
    iterations: int = 200000  # G updates, each followed by M updates (the code's TOTAL_BATCH)
    m_steps: int = 1  # M updates after each G update
    coop_g_lr: float = 1e-3  # G's Adam learning rate in cooperative training
    m_lr: float = 3e-3  # M's Adam learning rate
    adam_beta2: float = 0.95  # beta2 of both Adams (beta1 0.9)
    coop_grad_clip: float = 0.0  # G's and M's gradient-norm clip (0: none, the code's)
    m_scale: int = 2  # M's embedding and width: this times G's
    m_dropout: float = 0.5  # on M's LSTM outputs during its updates (the code's keep probability 0.5)
    eval_every: int = 1000  # iterations between evaluations (and checkpoints)

    PRESETS: ClassVar[dict] = {
        "tiny": dict(g_embedding_dim=16, g_hidden_dim=16, max_train=1024, max_test=256, batch_size=32,
                     iterations=30, eval_every=10, eval_samples=200, nll_oracle_samples=500, coop_g_lr=1e-2,
                     m_lr=1e-2),
        # a COCO seed within 45 minutes on 2 cores (docs/recipes.md): an iteration costs about 3.5 MLE
        # steps (0.7 to 1.6 s on COCO, one thread), so from scratch, as the code runs (200,000), it
        # would not get far; 20 MLE epochs first, then 2,000 iterations
        "cpu": dict(pretrain_epochs=20, iterations=2000, eval_every=250),
        "paper": {},
    }

    def validate(self) -> None:
        super().validate()
        check_ranges(self, positive=["iterations", "m_steps", "coop_g_lr", "m_lr", "m_scale", "eval_every"],
                     non_negative=["coop_grad_clip", "m_dropout"], unit=["adam_beta2"])
        if self.m_dropout >= 1:
            raise ValueError("--m-dropout must be below 1")
        if self.generator != "lstm":
            raise ValueError(f"--generator {self.generator}: CoT's mediator is an LSTM twice G's size; this recipe "
                             f"trains SeqGAN's LSTM G beside it (leave --generator out)")
        if self.kl_coef:
            raise ValueError("--kl-coef: CoT's G loss is already its KL to the mediator")


class CoTTrainer(TextGANTrainer):
    """CoT and its MLE baseline, as a resumable, data-parallel run. `discriminator`: a mediator
    of one's own (anything with `target_logits(tokens) -> (B, T, V)`), trained by MLE on real
    and G's text."""

    recipe, config_class, sweep_files = "cot", CoTConfig, ("mle.pt", "cot.pt")
    baseline, adversarial_model, adversarial_label = "mle", "cot", "CoT"

    def build_adversary(self) -> None:
        c, data = self.config, self.data
        m = own_model(self.user_discriminator, data)
        if m is None:
            m = Generator(data.vocab_size, c.m_scale * c.g_embedding_dim, c.m_scale * c.g_hidden_dim,
                          start_token=data.start_token, eos_token=data.eos_token, pad_token=data.pad_token,
                          dropout=c.m_dropout)
        self.d = m.to(self.device)
        betas = (0.9, c.adam_beta2)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=c.m_lr, betas=betas)
        self.build_step_adversary(c.coop_g_lr, betas)

    def adversarial_updates(self) -> int:
        return self.config.iterations

    def eval_every_updates(self) -> int:
        return self.config.eval_every

    def phases(self) -> list[Phase]:
        c = self.config
        return [Phase("pretrain_g", c.pretrain_epochs, "pretrain G (MLE)"),
                Phase("mle_baseline", c.iterations, "MLE baseline", "step", checkpoint_every=c.eval_every),
                Phase("adversarial", c.iterations, "cooperative", "step", checkpoint_every=c.eval_every)]

    def adversarial(self, step: int) -> None:
        c, group, data = self.config, self.group, self.data
        where = f"cooperative step {step}"
        local = group.local_size(c.batch_size, "--batch-size")
        samples = self.g.sample(local, data.length, generator=self.rng)
        g_loss = cooperative_g_step(self.g, self.g_adv_opt, self.d, samples, c.coop_grad_clip, where, group)
        for _ in range(c.m_steps):
            real = group.shard(self.real_stream.next())
            fake = self.g.sample(len(real), data.length, generator=self.rng)
            m_loss = mediator_step(self.d, self.d_opt, real, fake, c.coop_grad_clip, where, group)
        self.writer.add_scalar("losses/g_cooperative", g_loss, step)
        self.writer.add_scalar("losses/mediator", m_loss, step)
        if group.is_main and (step % c.eval_every == 0 or step == c.iterations):
            metrics, shown = self.evaluate(self.g)
            self.record(self.adversarial_model, metrics, g_updates=step)
            self.writer.add_text("samples/cot", "\n\n".join(data.text(s) for s in shown[:5].cpu()), step)


def cooperative_g_step(g: nn.Module, opt: torch.optim.Optimizer, m: nn.Module, samples: Tensor, clip: float,
                       where: str, group: Group = Group()) -> float:
    """CoT's G update: KL(pi_g || pi_m) at each prefix of G's own samples, exact over the
    vocabulary, a mean over the text positions; M's log-probabilities are constants, taken
    without its dropout. Returns the whole batch's loss.

    Shape: samples (b, T) drawn from g
    """
    mask = tokens_mask(samples, g.eos_token, g.pad_token)
    with torch.no_grad(), module_mode(m, False):
        m_logits = m.target_logits(samples)  # (b, T, V)
    loss = kl_to_reference(g.target_logits(samples), m_logits, mask, group.token_normalizer(mask))
    return clip_and_step(g, opt, loss, clip, where, "G's cooperative loss", group.average_gradients)


def mediator_step(m: nn.Module, opt: torch.optim.Optimizer, real: Tensor, fake: Tensor, clip: float, where: str,
                  group: Group = Group()) -> float:
    """CoT's M update: maximum likelihood on the balanced mixture, -(mean log M(real) + mean
    log M(fake)) / 2, each a mean over its text tokens, M's dropout on. Returns the loss.

    Shape: real (b, T), fake (b, T)
    """
    halves = []
    with module_mode(m, True):
        for batch in (real, fake):
            mask = tokens_mask(batch, getattr(m, "eos_token", None), getattr(m, "pad_token", None))
            halves.append(mle_loss(m.target_logits(batch), batch, mask, group.token_normalizer(mask)))
    return clip_and_step(m, opt, (halves[0] + halves[1]) / 2, clip, where, "the mediator's loss",
                         group.average_gradients)
