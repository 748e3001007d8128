"""SeqGAN (Yu et al., AAAI 2017) against an MLE baseline of equal budget.

Phases, as in the official code (sequence_gan.py):
  1. pretrain G by MLE (teacher forcing);
  2. pretrain D on real vs generated sequences;
  3. MLE baseline: from the pretrained G, `adv_epochs * g_steps` more MLE updates;
  4. adversarial: per epoch, `g_steps` policy-gradient updates of G with rollout
     rewards from a delayed copy of G (moving average, rate 0.8), then `d_rounds`
     rounds of D training on fresh samples;
  5. evaluation of the pretrained G, the MLE baseline and SeqGAN on the same metrics.

    from seqadv import SeqGANConfig, SeqGANTrainer
    results = SeqGANTrainer(SeqGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()

Writes to `out`: checkpoint.pt after every epoch of every phase, pretrained.pt /
mle.pt / seqgan.pt (self-describing: `seqadv.load`), samples_*.txt, results.json, tb/.
"""
from __future__ import annotations

import copy
import time
from typing import ClassVar, Optional

import numpy as np
import torch
from torch import Tensor, nn

from ..cli import check_ranges
from ..corpus import DataError
from ..dataset import BatchStream, SequenceData, batches, load_corpus
from ..discriminator import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, Discriminator
from ..generator import Generator
from ..transformer import TransformerGenerator
from ..losses import discriminator_loss, mle_loss, policy_gradient_loss
from ..metrics import BLEU, nll, self_bleu
from ..policy import ema_update
from ..rewards import discriminator_reward
from ..rollout import RolloutEngine
from ..sampling import tokens_mask
from ..distributed import Group
from ..training import check_finite, clip_and_step
from .base import GANTrainer, Phase, TrainerConfig, own_model, preset_config
from .text import comparison_rows, describe_corpus, describe_model, text_meta, write_samples


@preset_config
class SeqGANConfig(TrainerConfig):
    out: str = "runs/seqgan"
    corpus: str = "poems"  # poems | coco | oracle | path/to/file.txt
    oracle: str = "random"  # oracle corpus: random (seeded N(0,1)) | paper (the paper's oracle file)
    tokenizer: Optional[str] = None  # char | word | sentencepiece (default: the recipe's, word for files)
    vocab_size: Optional[int] = None  # the largest vocabulary (sentencepiece: its size)
    max_length: Optional[int] = None  # tokens per sequence (longer lines are cut and counted)
    max_train: Optional[int] = None  # keep only this many training sequences
    max_test: Optional[int] = None  # keep only this many test sequences
    # generator (official: an LSTM, embedding 32, hidden 32, Adam 0.01, clip 5.0, batch 64)
    generator: str = "lstm"  # lstm (the paper's) | transformer (a causal Transformer with a KV cache)
    g_embedding_dim: int = 32  # generator embedding size (lstm)
    g_hidden_dim: int = 32  # generator LSTM size, or the Transformer's width
    g_layers: int = 2  # Transformer blocks (transformer)
    g_heads: int = 4  # attention heads (transformer)
    g_lr: float = 0.01  # generator Adam learning rate (MLE and policy gradient)
    grad_clip: float = 5.0  # generator gradient-norm clip (0: none)
    batch_size: int = 64  # sequences per batch (the global batch under torchrun)
    pretrain_epochs: int = 120  # MLE epochs over the training split
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
    # evaluation
    eval_every: int = 10  # adversarial epochs (and MLE-baseline steps / g_steps) between evaluations
    pretrain_eval_every: int = 10  # pretraining epochs between evaluations
    eval_samples: int = 2000  # samples scored by BLEU / Self-BLEU
    nll_oracle_samples: int = 10000  # samples scored by the oracle (the paper's count)
    bleu_max_n: int = 4  # BLEU and Self-BLEU orders 2..n

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
    CHOICES: ClassVar[dict] = {**TrainerConfig.CHOICES, "oracle": ["random", "paper"], "generator": ["lstm", "transformer"],
                               "tokenizer": ["char", "word", "sentencepiece"]}

    def validate(self) -> None:
        check_ranges(self, positive=["batch_size", "num_rollouts", "g_embedding_dim", "g_hidden_dim", "d_embedding_dim",
                                     "d_samples", "eval_samples", "nll_oracle_samples", "eval_every",
                                     "pretrain_eval_every", "g_lr", "d_lr", "g_steps", "rollout_memory_mb",
                                     "bleu_max_n"],
                     non_negative=["pretrain_epochs", "d_pretrain_rounds", "d_epochs", "adv_epochs", "d_rounds",
                                   "grad_clip", "d_l2", "d_dropout"],
                     unit=["rollout_rate"])
        for name in ("vocab_size", "max_length", "max_train", "max_test"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if len(self.d_filter_sizes) != len(self.d_num_filters):
            raise ValueError("--d-filter-sizes and --d-num-filters must have the same length")
        if self.generator == "transformer" and (self.g_layers < 1 or self.g_heads < 1 or self.g_hidden_dim % self.g_heads):
            raise ValueError(f"--g-hidden-dim {self.g_hidden_dim} must split into --g-heads {self.g_heads} "
                             f"(and --g-layers be positive) for --generator transformer")
        if not 1 <= self.bleu_max_n <= 5 or self.d_dropout >= 1:
            raise ValueError("--bleu-max-n must be in 1..5 and --d-dropout below 1")


class SeqGANTrainer(GANTrainer):
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

    recipe = "seqgan"
    baseline, adversarial_model = "mle", "seqgan"
    state_attributes = GANTrainer.state_attributes + ("split",)

    # --- building ------------------------------------------------------------------------------
    def build(self) -> None:
        c, group = self.config, self.group
        group.local_size(c.batch_size, "--batch-size")
        data = self.data = load_corpus(c.corpus, data_dir=c.data_dir, tokenizer=c.tokenizer, vocab_size=c.vocab_size,
                                       max_length=c.max_length, oracle=c.oracle, max_train=c.max_train,
                                       max_test=c.max_test)
        if data.oracle is not None:
            data.oracle.to(self.device)
        if len(data.train) < c.batch_size:
            raise DataError(f"{c.corpus}: {len(data.train)} training sequences, fewer than one batch of {c.batch_size}")
        self.say(describe_corpus(data, c, group, self.device))
        self.bleu = None
        if group.is_main and data.oracle is None:
            self.bleu = BLEU([data.tokens(s) for s in data.test], max_n=c.bleu_max_n)

        tokens = dict(vocab_size=data.vocab_size, start_token=data.start_token, eos_token=data.eos_token,
                      pad_token=data.pad_token)
        if c.generator == "transformer":
            model_class, generator_config = TransformerGenerator, dict(
                **tokens, d_model=c.g_hidden_dim, num_layers=c.g_layers, num_heads=c.g_heads, max_length=data.length)
        else:
            model_class = Generator
            generator_config = dict(vocab_size=data.vocab_size, embedding_dim=c.g_embedding_dim,
                                    hidden_dim=c.g_hidden_dim, start_token=data.start_token,
                                    eos_token=data.eos_token, pad_token=data.pad_token)
        g = own_model(self.user_generator, data)
        g = g if g is not None else model_class(**generator_config)
        self.g = g.to(self.device)
        self.meta.update(text_meta(data), model=describe_model(self.g, generator_config))
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=c.g_lr)
        d = own_model(self.user_discriminator, data)
        if d is None:
            d = Discriminator(data.vocab_size, c.d_embedding_dim, c.d_filter_sizes, c.d_num_filters, c.d_dropout,
                              pad_token=data.pad_token or 0)
        self.d = d.to(self.device)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=c.d_lr)
        self.mle = copy.deepcopy(self.g) if self.user_generator is not None else model_class(**generator_config).to(self.device)
        self.mle_opt = torch.optim.Adam(self.mle.parameters(), lr=c.g_lr)
        self.rollout_policy = copy.deepcopy(self.g).requires_grad_(False)  # SeqGAN's delayed policy of the rollouts
        self.g_adv_opt = torch.optim.Adam(self.g.parameters(), lr=c.g_lr)  # the official code's separate optimizer
        self.train_data = data.train.to(self.device)
        self.modules = {"generator": self.g, "g_optimizer": self.g_opt, "discriminator": self.d,
                        "d_optimizer": self.d_opt, "mle_generator": self.mle, "mle_optimizer": self.mle_opt,
                        "rollout_policy": self.rollout_policy, "g_adv_optimizer": self.g_adv_opt}
        self.split = {"rollout_s": 0.0, "g_update_s": 0.0, "d_train_s": 0.0}
        self.history = {"pretrain": [], "mle": [], "seqgan": []}
        self.mle_stream = BatchStream(self.train_data, c.batch_size, self.order_rng)
        self.streams = {"mle": self.mle_stream}
        self.engine = RolloutEngine(self.rollout_policy, c.num_rollouts, memory_budget_mb=c.rollout_memory_mb,
                                    eos_token=data.eos_token, pad_token=data.pad_token)
        # sigmoid(D) in eval mode; windows inside a kept prefix computed once where D can (the CNN)
        self.reward_fn = discriminator_reward(self.d, share_prefix=hasattr(self.d, "rollout_logits"))

    def phases(self) -> list[Phase]:
        c = self.config
        budget = c.adv_epochs * c.g_steps
        return [Phase("pretrain_g", c.pretrain_epochs, "pretrain G (MLE)"),
                Phase("pretrain_d", c.d_pretrain_rounds, "pretrain D", "round"),
                Phase("mle_baseline", budget, "MLE baseline", "step", checkpoint_every=c.eval_every * c.g_steps),
                Phase("adversarial", c.adv_epochs, "adversarial")]

    # --- one unit of each phase -------------------------------------------------------------------
    def pretrain_g(self, epoch: int) -> None:
        c = self.config
        losses = [self.mle_step(self.g, self.g_opt, self.group.shard(batch), f"pretrain G epoch {epoch}")
                  for batch in batches(self.train_data, c.batch_size, self.order_rng)]
        self.progress["g_step"] = self.progress.get("g_step", 0) + len(losses)
        self.writer.add_scalar("losses/g_mle", float(np.mean(losses)), self.progress["g_step"])
        if self.group.is_main and (epoch % c.pretrain_eval_every == 0 or epoch == c.pretrain_epochs):
            metrics, _ = self.evaluate(self.g)
            self.record("pretrain", metrics, epoch=epoch)

    def pretrain_d(self, round_: int) -> None:
        d_loss, d_acc = self.train_discriminator_round(f"pretrain D round {round_}")
        self.writer.add_scalar("losses/d_pretrain", d_loss, round_)
        self.writer.add_scalar("charts/d_pretrain_accuracy", d_acc, round_)

    def mle_baseline(self, step: int) -> None:
        c = self.config
        if step == 1:
            self.start_baseline()
        # shuffled epochs of full batches, as in pretraining; the place in it is checkpointed
        batch = self.mle_stream.next()
        loss = self.mle_step(self.mle, self.mle_opt, self.group.shard(batch), f"MLE baseline step {step}")
        self.writer.add_scalar("losses/mle_baseline", loss, step)
        if self.group.is_main and (step % (c.eval_every * c.g_steps) == 0 or step == c.adv_epochs * c.g_steps):
            metrics, _ = self.evaluate(self.mle)
            self.record("mle", metrics, g_updates=step)

    def adversarial(self, epoch: int) -> None:
        c, group, split = self.config, self.group, self.split
        where = f"adversarial epoch {epoch}"
        if epoch == 1:
            self.rollout_policy.load_state_dict(self.g.state_dict())
        for _ in range(c.g_steps):
            t = time.time()
            # this process's rows of the batch, and their rewards: the rollouts are split, not repeated
            samples = self.g.sample(group.local_size(c.batch_size, "--batch-size"), self.data.length, generator=self.rng)
            rewards = self.engine.rewards(samples, self.reward_fn, generator=self.rng)  # (b, T)
            all_rewards = group.all_gather(rewards)  # (B, T): checked and charted alike on every process
            check_finite(all_rewards, "a rollout reward", where)
            split["rollout_s"] += time.time() - t
            t = time.time()
            pg_loss = self.policy_gradient_step(samples, rewards, where)
            split["g_update_s"] += time.time() - t
        t = time.time()
        for _ in range(c.d_rounds):
            d_loss, d_acc = self.train_discriminator_round(where)
        split["d_train_s"] += time.time() - t
        step = epoch * c.g_steps
        self.writer.add_scalar("losses/g_pg", pg_loss, step)
        self.writer.add_scalar("charts/reward_mean", all_rewards.mean().item(), step)
        self.writer.add_scalar("charts/reward_last_token", all_rewards[:, -1].mean().item(), step)
        if c.d_rounds:
            self.writer.add_scalar("losses/d", d_loss, step)
            self.writer.add_scalar("charts/d_accuracy", d_acc, step)
        for name, seconds in split.items():
            self.writer.add_scalar(f"charts/{name}_per_epoch", seconds / epoch, step)
        if group.is_main and (epoch % c.eval_every == 0 or epoch == c.adv_epochs):
            metrics, samples = self.evaluate(self.g)
            self.record("seqgan", metrics, g_updates=step)
            self.writer.add_text("samples/seqgan", "\n\n".join(self.data.text(s) for s in samples[:5].cpu()), step)

    # --- the updates ---------------------------------------------------------------------------------
    def mle_step(self, g: nn.Module, opt: torch.optim.Optimizer, batch: Tensor, where: str) -> float:
        return mle_step(g, opt, batch, self.config.grad_clip, where, self.group)

    def policy_gradient_step(self, samples: Tensor, rewards: Tensor, where: str) -> float:
        c = self.config
        return policy_gradient_step(self.g, self.g_adv_opt, self.rollout_policy, samples, rewards, c.grad_clip,
                                    c.rollout_rate, where, self.group)

    def train_discriminator_round(self, where: str) -> tuple[float, float]:
        """Fresh generated sequences vs as many real ones, `d_epochs` epochs. Returns (loss, accuracy).

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
        for _ in range(c.d_epochs):
            order = torch.randperm(len(sequences), generator=self.order_rng).to(fake.device)
            for begin in range(0, len(order) - c.batch_size + 1, c.batch_size):
                idx = group.shard(order[begin : begin + c.batch_size])
                loss, right = discriminator_step(self.d, self.d_opt, sequences[idx], labels[idx], c.d_l2, where, group)
                losses.append(loss)
                correct += right
                seen += len(idx)
        correct, seen = group.sum(torch.tensor([correct, seen], dtype=torch.float64, device=fake.device)).tolist()
        return float(np.mean(losses)) if losses else float("nan"), correct / max(seen, 1)

    # --- evaluation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, g: nn.Module) -> tuple[dict, Tensor]:
        """Metrics of one generator, on samples drawn with the run's evaluation seed."""
        return evaluate_generator(g, self.data, self.config, self.bleu, self.eval_seed)

    def finish(self) -> dict:
        c = self.config
        results_by_model = {}
        for name, model in self.final_models():
            metrics, samples = self.evaluate(model)
            results_by_model[name] = metrics
            write_samples(self.out / f"samples_{name}.txt", samples[: c.eval_samples], self.data)
            self.writer.add_text(f"samples/final_{name}", "\n\n".join(self.data.text(s) for s in samples[:10].cpu()))
        if c.adv_epochs:
            self.timings["adversarial_epoch_s"] = self.timings.get("adversarial_s", 0.0) / c.adv_epochs
            self.timings.update({f"adversarial_epoch_{k}": v / c.adv_epochs for k, v in self.split.items()})
        budget = c.adv_epochs * c.g_steps
        data = self.data
        return {"corpus": data.name, "preset": c.preset, "seed": c.seed,
                "generator_updates": {"pretrain_epochs": c.pretrain_epochs, "mle_baseline": budget, "seqgan": budget},
                "models": results_by_model,
                "data": {**data.info, "num_train": len(data.train), "num_test": len(data.test),
                         "vocab_size": data.vocab_size}}

    def print_table(self, results: dict) -> None:
        print_table(results)


def mle_step(g: nn.Module, opt: torch.optim.Optimizer, batch: Tensor, clip: float, where: str,
             group: Group = Group()) -> float:
    """One teacher-forcing update from this process's rows of a batch. Returns the loss
    of the whole batch (the mean over its tokens).

    Shape: batch (b, T)
    """
    mask = tokens_mask(batch, g.eos_token, g.pad_token)
    loss = mle_loss(g.target_logits(batch), batch, mask, normalizer=group.token_normalizer(mask))
    return clip_and_step(g, opt, loss, clip, where, "the MLE loss", group.average_gradients)


def policy_gradient_step(g: nn.Module, opt: torch.optim.Optimizer, rollout_policy: nn.Module, samples: Tensor,
                         rewards: Tensor, clip: float, rate: float, where: str, group: Group = Group()) -> float:
    """One REINFORCE update of G from this process's rows, then the delayed policy's
    moving average (identical on every process: the update is). Returns the loss.

    Shape: samples (b, T), rewards (b, T)
    """
    mask = tokens_mask(samples, g.eos_token, g.pad_token)
    loss = policy_gradient_loss(g.target_logits(samples), samples, rewards, mask,
                                normalizer=group.token_normalizer(mask))
    value = clip_and_step(g, opt, loss, clip, where, "the policy-gradient loss", group.average_gradients)
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
    loss = discriminator_loss(logits, labels)
    if hasattr(d, "l2_penalty"):
        loss = loss + l2 * d.l2_penalty()
    value = clip_and_step(d, opt, loss, 0.0, where, "the discriminator loss", group.average_gradients)
    return value, int(((logits > 0).float() == labels).sum().item())


@torch.no_grad()
def evaluate_generator(g: nn.Module, data: SequenceData, config: SeqGANConfig, bleu: Optional[BLEU],
                       seed: int) -> tuple[dict, Tensor]:
    """NLL-test, and NLL-oracle (oracle corpus) or BLEU / Self-BLEU, on samples from `seed`."""
    device = next(g.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    metrics = {"nll_test": nll(g, data.test.to(device), eos_token=data.eos_token, pad_token=data.pad_token)}
    if data.oracle is not None:
        samples = g.sample(config.nll_oracle_samples, data.length, generator=rng)
        metrics["nll_oracle"] = nll(data.oracle, samples)
    else:
        samples = g.sample(config.eval_samples, data.length, generator=rng)
        tokens = [data.tokens(s) for s in samples.cpu()]
        for n in range(2, config.bleu_max_n + 1):
            metrics[f"bleu{n}"] = bleu.score(tokens, n)
        for n in range(2, config.bleu_max_n + 1):
            metrics[f"self_bleu{n}"] = self_bleu(tokens, n)
    return metrics, samples


LOWER_IS_BETTER = ("nll_test", "nll_oracle", "self_bleu")


def print_table(results: dict) -> None:
    models = results["models"]
    print(f"\n{results['corpus']} ({results['preset']} preset, seed {results['seed']}): "
          f"pretrained G, then {results['generator_updates']['seqgan']} more G updates each")
    print("\n".join(comparison_rows(models, ["pretrained", "mle", "seqgan"], ["pretrained", "MLE", "SeqGAN"],
                                     lambda metric: metric.startswith(LOWER_IS_BETTER))))
    t = results["timings"]
    print(f"wall time {t['total_s']:.0f} s (pretrain G {t.get('pretrain_g_s', 0):.0f} s, "
          f"pretrain D {t.get('pretrain_d_s', 0):.0f} s, MLE baseline {t.get('mle_baseline_s', 0):.0f} s, "
          f"adversarial {t.get('adversarial_s', 0):.0f} s, eval {t['final_eval_s']:.0f} s)")
    if "adversarial_epoch_s" in t:
        e = t["adversarial_epoch_s"]
        print(f"one adversarial epoch {e:.2f} s: rollouts {t['adversarial_epoch_rollout_s'] / e:.0%}, "
              f"G update {t['adversarial_epoch_g_update_s'] / e:.0%}, D training {t['adversarial_epoch_d_train_s'] / e:.0%}")
