"""RelGAN (Nie, Narodytska and Patel, "RelGAN: Relational Generative Adversarial Networks for
Text Generation", ICLR 2019) against an MLE baseline of equal budget, after the official code
(weilinie/RelGAN: `run.py`, `real/real_gan/real_train.py`, `models/rmc_vanilla.py`, the
experiment scripts `real/experiments/coco_relgan.py` and `oracle/experiments/oracle_relgan.py`).

What makes it RelGAN's:
  * its generator, a relational memory core (`seqadv.models.relgan.RelGANGenerator`: 1 slot,
    2 heads of 256, embedding 32), pretrained by MLE (150 epochs, Adam 1e-2, clip 5);
  * no policy gradient: G writes its text by the Gumbel-max trick and D reads the relaxed
    one-hots softmax(beta (logits + g)) (`core.sampling.gumbel_generate`), so D's loss is
    differentiated through them into G;
  * the inverse temperature beta raised over the adversarial phase (`inverse_temperature`:
    beta_max^(i / N), the code's `exp`, beta_max 100, N 5000 whatever the phase's length, as
    the code fixes it; `temperature_adapt` gives its other schedules);
  * the relativistic standard GAN loss (`rl.losses.gan_losses`, `loss="rsgan"`, the experiment
    scripts'; `run.py`'s own default is `standard`), over every (sequence, representation);
  * D: the multi-representation CNN (`RelGANDiscriminator`: 64 representations of one
    dimension, widths 2-5 with 300 filters each, highway, dropout 0.25 always on), not
    pretrained;
  * per adversarial step: 1 G update, then 5 D updates, each on a fresh real and a fresh
    generated batch of 64, Adam 1e-4 (betas 0.9, 0.999) for both, both clipped at 5; COCO's
    2,000 steps (`paper` preset; the oracle experiment's 3,000 with `--adv-steps 3000`).

Where this recipe departs from the official code, and why (also in docs/recipes.md):
  * texts end: after G's end token the positions are padding, left out of the MLE loss and
    NLL, and D sees them as exact one-hots of the pad token, as it sees real text's. The
    code has no end token; its pad token is an ordinary word G writes, counted in its MLE
    loss and NLL_gen (which is why its COCO NLL_gen is below 1);
  * real batches come from shuffled epochs of the training split (resumable), where the code
    draws a random batch for each update;
  * evaluation, as for every recipe here, on `eval_samples` samples at temperature 1 (the code
    scores BLEU on the first 100 of 9,984 samples, NLL_gen on the training set);
  * the paper's Table 1 used beta_max 1 (length 20) and 2 (length 40), not the scripts'
    values (the author, weilinie/RelGAN#22): `--beta-max 1` for that experiment.

    from seqadv import RelGANConfig, RelGANTrainer
    results = RelGANTrainer(RelGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()

Writes what SeqGAN writes, with relgan.pt for the adversarial model.
"""
from __future__ import annotations

import contextlib
import math
from typing import ClassVar, Iterator, Optional

import torch
from torch import Tensor, nn

from seqadv.core.sampling import gumbel_generate
from seqadv.data.dataset import SequenceData
from seqadv.models.relgan import PAPER_D_FILTER_SIZES, PAPER_D_NUM_FILTERS, RelGANDiscriminator, RelGANGenerator
from seqadv.rl.losses import GAN_LOSSES, gan_losses
from seqadv.rl.update import clip_and_step
from seqadv.runtime.cli import check_ranges
from seqadv.trainers.base import Phase, own_model, preset_config
from seqadv.trainers.text import TextGANConfig, TextGANTrainer

TEMPERATURE_ADAPTS = ("exp", "no", "lin", "log", "sigmoid", "quad", "sqrt")


def inverse_temperature(i: int, beta_max: float, adapt: str = "exp", total: int = 5000) -> float:
    """RelGAN's beta at adversarial iteration i (0-based) of N = `total`, as the code's
    `get_fixed_temperature` computes each schedule."""
    N = total
    if adapt == "no":
        return beta_max
    if adapt == "lin":
        return 1 + i / (N - 1) * (beta_max - 1)
    if adapt == "exp":
        return beta_max ** (i / N)
    if adapt == "log":
        return 1 + (beta_max - 1) * math.log(i + 1) / math.log(N)
    if adapt == "sigmoid":
        return 1 + (beta_max - 1) / (1 + math.exp((N / 2 - i) * 20 / N))
    if adapt == "quad":
        return 1 + (beta_max - 1) * i ** 2 / (N - 1) ** 2
    if adapt == "sqrt":
        return 1 + (beta_max - 1) * math.sqrt(i) / math.sqrt(N - 1)
    raise ValueError(f"temperature schedule {adapt!r}: choose one of {', '.join(TEMPERATURE_ADAPTS)}")


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """The module's parameters without gradients inside (G's update reads D, does not train it)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


@preset_config
class RelGANConfig(TextGANConfig):
    out: str = "runs/relgan"
    generator: str = "relgan"  # relgan (the relational memory core) | lstm (the paper's LSTM ablation)
    mem_slots: int = 1  # memory slots N
    head_size: int = 256  # per attention head (the memory's width is heads x this)
    num_heads: int = 2  # attention heads
    pretrain_epochs: int = 150  # MLE epochs (the code's npre_epochs)
    # adversarial (the code: 2,000 steps on COCO, 1 G and 5 D updates each, Adam 1e-4 both, clip 5 both)
    adv_steps: int = 2000  # G updates in the adversarial phase (and MLE updates of the baseline)
    d_steps: int = 5  # D updates after each G update
    adv_g_lr: float = 1e-4  # G's Adam learning rate in the adversarial phase
    d_lr: float = 1e-4  # D's Adam learning rate
    d_grad_clip: float = 5.0  # D's gradient-norm clip (0: none)
    loss: str = "rsgan"  # rsgan (the scripts') | standard | js | kl | hinge | tv | ls
    beta_max: float = 100.0  # the inverse temperature's last value of the schedule (COCO: 100 or 1000)
    temperature_adapt: str = "exp"  # beta's schedule: exp (beta_max^(i/N)) | no | lin | log | sigmoid | quad | sqrt
    temperature_steps: int = 5000  # N of the schedule (the code's, fixed whatever --adv-steps; the paper's: the steps)
    # D (the code: 64 representations of one dimension, widths 2-5 x 300 filters, dropout 0.25 always on)
    d_embedding_dim: int = 64  # D's embedding, split into the representations
    num_rep: int = 64  # representations
    d_filter_sizes: tuple[int, ...] = PAPER_D_FILTER_SIZES  # CNN window widths
    d_num_filters: tuple[int, ...] = PAPER_D_NUM_FILTERS  # filters per width
    d_dropout: float = 0.25  # before D's output layers, in every pass
    eval_every: int = 100  # G updates between evaluations (and checkpoints) in the long phases

    GENERATORS: ClassVar[tuple] = ("relgan", "lstm")
    CHOICES: ClassVar[dict] = {**TextGANConfig.CHOICES, "loss": list(GAN_LOSSES),
                               "temperature_adapt": list(TEMPERATURE_ADAPTS)}
    PRESETS: ClassVar[dict] = {
        # seconds: for tests and a first look
        "tiny": dict(g_embedding_dim=8, head_size=8, pretrain_epochs=2, max_train=1024, max_test=256, batch_size=32,
                     d_embedding_dim=8, num_rep=8, d_filter_sizes=(2, 3), d_num_filters=(8, 8), adv_steps=6,
                     d_steps=2, eval_every=3, pretrain_eval_every=1, eval_samples=200, nll_oracle_samples=500),
        # a COCO seed within 45 minutes on 2 cores (docs/recipes.md): a memory of 2 heads of 64, 20 MLE
        # epochs, 200 adversarial steps of 1 G and 5 D updates with D's filters at 50 per width (its
        # highway layer over B x 64 rows costs the square of their sum); beta's schedule as long
        # against the phase as the code's COCO run (2,000 steps of N = 5,000: beta ends at beta_max^0.4)
        "cpu": dict(head_size=64, pretrain_epochs=20, adv_steps=200, temperature_steps=500,
                    d_num_filters=(50, 50, 50, 50), eval_every=50),
        "paper": {},
    }

    def validate(self) -> None:
        super().validate()
        check_ranges(self, positive=["mem_slots", "head_size", "num_heads", "adv_steps", "d_steps", "adv_g_lr", "d_lr",
                                     "beta_max", "temperature_steps", "d_embedding_dim", "num_rep"],
                     non_negative=["d_grad_clip", "d_dropout"])
        for name in ("loss", "temperature_adapt"):
            if getattr(self, name) not in self.CHOICES[name]:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: "
                                 f"choose one of {', '.join(self.CHOICES[name])}")
        if self.temperature_steps < 2:
            raise ValueError(f"--temperature-steps must be at least 2, got {self.temperature_steps}")
        if self.adv_steps > self.temperature_steps:
            raise ValueError(f"--adv-steps {self.adv_steps} runs past the temperature schedule's "
                             f"--temperature-steps {self.temperature_steps} (the code asserts it)")
        if self.d_embedding_dim % self.num_rep:
            raise ValueError(f"--d-embedding-dim {self.d_embedding_dim} does not split into --num-rep {self.num_rep}")
        if len(self.d_filter_sizes) != len(self.d_num_filters) or min(self.d_filter_sizes, default=0) < 1:
            raise ValueError("--d-filter-sizes and --d-num-filters: one positive width per filter count")
        if self.d_dropout >= 1:
            raise ValueError("--d-dropout must be below 1")
        if self.kl_coef:
            raise ValueError("--kl-coef: RelGAN's generator loss is D's, through the Gumbel-softmax; it takes no "
                             "KL penalty here")


class RelGANTrainer(TextGANTrainer):
    """RelGAN and its MLE baseline, as a resumable, data-parallel run.

    `generator`: a policy of one's own (`initial_state`, `step`, `target_logits`, `sample`)
    whose steps keep their gradients. `discriminator`: an `nn.Module` mapping token ids (B, T)
    or (soft) one-hots (B, T, V) to logits of "real" of any shape (B, ...).
    """

    recipe, config_class, sweep_files = "relgan", RelGANConfig, ("mle.pt", "relgan.pt")
    baseline, adversarial_model, adversarial_label = "mle", "relgan", "RelGAN"

    def generator_spec(self, data: SequenceData) -> Optional[tuple[type, dict]]:
        c = self.config
        if c.generator != "relgan":
            return None
        return RelGANGenerator, dict(vocab_size=data.vocab_size, embedding_dim=c.g_embedding_dim,
                                     mem_slots=c.mem_slots, head_size=c.head_size, num_heads=c.num_heads,
                                     start_token=data.start_token, eos_token=data.eos_token, pad_token=data.pad_token)

    def build_adversary(self) -> None:
        c, data = self.config, self.data
        d = own_model(self.user_discriminator, data)
        self.d = (RelGANDiscriminator(data.vocab_size, c.d_embedding_dim, c.num_rep, c.d_filter_sizes,
                                      c.d_num_filters, c.d_dropout) if d is None else d).to(self.device)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=c.d_lr)
        self.build_step_adversary(c.adv_g_lr)

    def adversarial_updates(self) -> int:
        return self.config.adv_steps

    def eval_every_updates(self) -> int:
        return self.config.eval_every

    def phases(self) -> list[Phase]:
        c = self.config
        return [Phase("pretrain_g", c.pretrain_epochs, "pretrain G (MLE)"),
                Phase("mle_baseline", c.adv_steps, "MLE baseline", "step", checkpoint_every=c.eval_every),
                Phase("adversarial", c.adv_steps, "adversarial", "step", checkpoint_every=c.eval_every)]

    def beta(self, step: int) -> float:
        """The inverse temperature of adversarial step `step` (1-based). The code sets beta after
        each iteration's updates, so iteration i trains with the schedule's value at i - 1, the
        first with beta's initial 1."""
        c = self.config
        return 1.0 if step == 1 else inverse_temperature(step - 2, c.beta_max, c.temperature_adapt, c.temperature_steps)

    def generated(self, rows: int, beta: float) -> tuple[Tensor, Tensor]:
        """G's Gumbel-max text and its relaxed one-hots. Shape: -> (rows, T), (rows, T, V)"""
        data = self.data
        return gumbel_generate(self.g, rows, data.length, beta, generator=self.rng, device=self.device,
                               eos_token=data.eos_token, pad_token=data.pad_token)

    def adversarial(self, step: int) -> None:
        c, group, data = self.config, self.group, self.data
        where = f"adversarial step {step}"
        beta = self.beta(step)
        real = group.shard(self.real_stream.next())
        _, soft = self.generated(len(real), beta)
        with frozen(self.d):
            _, g_loss = gan_losses(self.d(real), self.d(soft), c.loss)
        g_value = clip_and_step(self.g, self.g_adv_opt, g_loss, c.grad_clip, where, "G's adversarial loss",
                                group.average_gradients)
        for _ in range(c.d_steps):
            real = group.shard(self.real_stream.next())
            with torch.no_grad():
                _, soft = self.generated(len(real), beta)
            d_real, d_fake = self.d(real), self.d(soft)
            d_loss, _ = gan_losses(d_real, d_fake, c.loss)
            d_value = clip_and_step(self.d, self.d_opt, d_loss, c.d_grad_clip, where, "the discriminator loss",
                                    group.average_gradients)
        self.writer.add_scalar("losses/g_adversarial", g_value, step)
        self.writer.add_scalar("losses/d", d_value, step)
        self.writer.add_scalar("charts/beta", beta, step)
        self.writer.add_scalar("charts/d_real_minus_fake", (d_real - d_fake).mean().item(), step)
        if group.is_main and (step % c.eval_every == 0 or step == c.adv_steps):
            metrics, shown = self.evaluate(self.g)
            self.record(self.adversarial_model, metrics, g_updates=step)
            self.writer.add_text("samples/relgan", "\n\n".join(data.text(s) for s in shown[:5].cpu()), step)
