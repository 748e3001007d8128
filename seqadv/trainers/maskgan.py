"""MaskGAN-style infilling (Fedus et al., ICLR 2018) against MaskMLE of equal budget.

Phases:
  1. MaskMLE: pretrain the encoder-decoder generator by teacher forcing on the
     hidden tokens of masked training texts (a fresh mask per batch);
  2. pretrain the discriminator on real vs filled texts: with reward `critic` the
     per-token discriminator (MaskGAN's), with `rollout` the SeqGAN CNN over whole texts;
  3. MaskMLE baseline: from the pretrained generator, `adv_epochs * g_steps` more MLE updates;
  4. adversarial: per epoch, `g_steps` policy-gradient updates on the filled tokens,
     then `d_steps` discriminator updates. Rewards:
       critic   log D(y_t) per filled token, discounted returns (gamma 0.89, as
                MaskGAN's code), minus a learned critic's value;
       rollout  Q(y_0..y_t) from `rollout.RolloutEngine` completing the blanks after t
                (fixed = every visible token) with a delayed copy of the generator
                (moving average, rate 0.8), scored by the sequence discriminator;
     both through `losses.policy_gradient_loss` on the hidden positions only;
  5. evaluation of the pretrained generator, MaskMLE and MaskGAN on the same masked
     test texts: perplexity of the hidden tokens, unique n-grams among the filled
     ones, BLEU of the filled texts against the rest of the test split, examples.

    from seqadv import MaskGANConfig, MaskGANTrainer
    results = MaskGANTrainer(MaskGANConfig(corpus="poems", preset="tiny", out="runs/m")).train()

Writes to `out`: checkpoint.pt (every `eval_every` units of the long phases), pretrained.pt /
maskmle.pt / maskgan.pt (self-describing: `seqadv.load`), examples.txt, results.json, tb/.
"""
from __future__ import annotations

import copy
import math
from typing import ClassVar, Optional

import torch
from torch import Tensor, nn

from seqadv.core.errors import DataError
from seqadv.core.modules import ema_update
from seqadv.data.dataset import BatchStream, SequenceData, batches, load_corpus
from seqadv.data.masking import MODES, apply_mask, mask_positions, maskable_positions
from seqadv.eval.metrics import BLEU, infilled_ngram_uniqueness
from seqadv.models.discriminator import Discriminator
from seqadv.models.infiller import Critic, InfillingGenerator, TokenDiscriminator
from seqadv.rl.advantages import discounted_returns
from seqadv.rl.losses import critic_loss, discriminator_loss, mle_loss
from seqadv.rl.rewards import discriminator_reward, token_log_rewards
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.update import check_finite, correct_guesses, discriminator_update, policy_gradient_update
from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import check_ranges
from seqadv.trainers.base import GANTrainer, Phase, TrainerConfig, own_model, preset_config
from seqadv.trainers.text import comparison_rows, describe_corpus, describe_model, text_meta


@preset_config
class MaskGANConfig(TrainerConfig):
    out: str = "runs/maskgan"
    corpus: str = "ptb"  # ptb | poems | coco | path/to/file.txt
    tokenizer: Optional[str] = None  # char | word | sentencepiece (default: the recipe's, word for files)
    vocab_size: Optional[int] = None  # the largest vocabulary (sentencepiece: its size)
    max_length: Optional[int] = None  # tokens per text
    max_train: Optional[int] = None  # keep only this many training texts
    max_test: Optional[int] = None  # keep only this many test texts
    # masking (MaskGAN: contiguous, rate 0.5)
    mask: str = "contiguous"  # contiguous (one span) | random (positions)
    mask_rate: float = 0.5  # the share of each text hidden
    reward: str = "critic"  # critic (MaskGAN's log D with a learned baseline) | rollout (SeqGAN's, on the engine)
    # generator, discriminator and critic: one encoder-decoder size
    embedding_dim: int = 64  # embedding size of every network
    hidden_dim: int = 64  # LSTM size of every network
    g_lr: float = 1e-3  # generator Adam learning rate
    grad_clip: float = 5.0  # generator and critic gradient-norm clip (0: none)
    batch_size: int = 64  # texts per batch (the global batch under torchrun)
    pretrain_epochs: int = 4  # MaskMLE epochs over the training split
    d_lr: float = 1e-3  # discriminator Adam learning rate
    d_pretrain_steps: int = 100  # discriminator updates before the adversarial phase
    critic_lr: float = 1e-3  # critic Adam learning rate (reward critic)
    gamma: float = 0.89  # discount of the returns (reward critic)
    # rollout mode: the sequence discriminator and the engine
    d_filter_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 8, 10, 15, 20)  # CNN window widths (reward rollout)
    d_num_filters: tuple[int, ...] = (50, 100, 100, 100, 100, 50, 50, 80, 80)  # CNN filters per width (reward rollout)
    d_l2: float = 0.2  # L2 penalty on the CNN's output layer (reward rollout)
    num_rollouts: int = 8  # completions per prefix (reward rollout)
    rollout_rate: float = 0.8  # the delayed rollout policy's moving-average rate (reward rollout)
    # adversarial
    adv_epochs: int = 600  # adversarial epochs
    g_steps: int = 1  # policy-gradient updates per adversarial epoch
    d_steps: int = 3  # discriminator updates per adversarial epoch
    # evaluation
    eval_every: int = 100  # adversarial epochs (and baseline steps / g_steps, D steps) between evaluations and checkpoints
    eval_samples: int = 1000  # masked test texts filled by each model; the rest of the test split are BLEU's references
    examples: int = 5  # examples printed and written to examples.txt

    PRESETS: ClassVar[dict] = {
        "tiny": dict(embedding_dim=16, hidden_dim=16, pretrain_epochs=1, max_train=512, max_test=160,
                     d_pretrain_steps=4, d_filter_sizes=(1, 2, 3), d_num_filters=(8, 8, 8), num_rollouts=2,
                     adv_epochs=4, d_steps=1, eval_every=2, eval_samples=64, examples=2),
        # under 15 minutes on 2 CPU cores for PTB with reward critic
        "cpu": dict(),
        # MaskGAN's PTB settings (650 units; hours on a CPU)
        "paper": dict(embedding_dim=650, hidden_dim=650, pretrain_epochs=20, batch_size=20, adv_epochs=1000),
    }
    CHOICES: ClassVar[dict] = {**TrainerConfig.CHOICES, "mask": list(MODES), "reward": ["critic", "rollout"],
                               "tokenizer": ["char", "word", "sentencepiece"]}

    def validate(self) -> None:
        check_ranges(self, positive=["batch_size", "embedding_dim", "hidden_dim", "g_lr", "d_lr", "critic_lr",
                                     "num_rollouts", "eval_every", "eval_samples", "g_steps"],
                     non_negative=["pretrain_epochs", "d_pretrain_steps", "adv_epochs", "d_steps", "grad_clip",
                                   "d_l2", "examples"],
                     unit=["gamma", "rollout_rate"])
        if not 0.0 < self.mask_rate <= 1.0:
            raise ValueError(f"--mask-rate must be in (0, 1], got {self.mask_rate}")
        if len(self.d_filter_sizes) != len(self.d_num_filters):
            raise ValueError("--d-filter-sizes and --d-num-filters must have the same length")


class Masker:
    """Fresh masks for batches of one corpus, from one seeded stream."""

    def __init__(self, data: SequenceData, mode: str, rate: float, mask_token: int):
        self.data, self.mode, self.rate, self.mask_token = data, mode, rate, mask_token

    def __call__(self, tokens: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """tokens (B, T) -> masked input (B, T), hidden (B, T) bool."""
        maskable = maskable_positions(tokens, self.data.eos_token, self.data.pad_token)
        hidden = mask_positions(maskable, self.rate, self.mode, generator)
        return apply_mask(tokens, hidden, self.mask_token), hidden


class MaskGANTrainer(GANTrainer):
    """MaskGAN-style infilling and its MaskMLE baseline, as a resumable, data-parallel run.

    `generator`: an infilling generator of one's own in place of `InfillingGenerator`:
    an `nn.Module` with `mask_token`, `target_logits(masked, targets) -> (B, T, V)`,
    `conditioned(masked) -> a Policy` whose `initial_state(B)` row r fills masked text r,
    and `infill(masked, hidden, generator=) -> (B, T)`. `discriminator`: with reward
    `critic`, (masked, filled) (B, T) -> per-token logits (B, T); with `rollout`,
    (B, T) -> (B,) logits. Each may also be a function of the loaded data (`SequenceData`) that builds one.
    Give the same again to resume such a run.
    """

    recipe, config_class, kind = "maskgan", MaskGANConfig, "infilling"
    baseline, adversarial_model = "maskmle", "maskgan"

    def build(self) -> None:
        c, group = self.config, self.group
        group.local_size(c.batch_size, "--batch-size")
        data = self.data = load_corpus(c.corpus, data_dir=c.data_dir, tokenizer=c.tokenizer, vocab_size=c.vocab_size,
                                       max_length=c.max_length, max_train=c.max_train, max_test=c.max_test)
        if data.oracle is not None:
            raise DataError("oracle: infilling needs text; choose ptb, poems, coco or a text file")
        if len(data.train) < c.batch_size:
            raise DataError(f"{c.corpus}: {len(data.train)} training sequences, fewer than one batch of {c.batch_size}")
        if len(data.test) <= c.eval_samples:
            raise DataError(f"{c.corpus}: {len(data.test)} test sequences; need more than --eval-samples "
                            f"{c.eval_samples} (the rest are BLEU's references)")
        self.say(describe_corpus(data, c, group, self.device, f"mask {c.mask} {c.mask_rate}; reward {c.reward}; "))
        self.bleu = BLEU([data.tokens(s) for s in data.test[c.eval_samples :]], max_n=4)

        config = dict(vocab_size=data.vocab_size, embedding_dim=c.embedding_dim, hidden_dim=c.hidden_dim,
                      start_token=data.start_token)
        g = own_model(self.user_generator, data)
        g = g if g is not None else InfillingGenerator(**config)
        self.g = g.to(self.device)
        self.meta.update(text_meta(data), model=describe_model(self.g, config))
        self.masker = Masker(data, c.mask, c.mask_rate, self.g.mask_token)
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=c.g_lr)
        d = own_model(self.user_discriminator, data)
        if d is None and c.reward == "critic":
            d = TokenDiscriminator(**config)
        self.critic = self.critic_opt = None
        if c.reward == "critic":
            self.critic = Critic(**config).to(self.device)
            self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr)
        if d is None:
            d = Discriminator(data.vocab_size, c.embedding_dim, c.d_filter_sizes, c.d_num_filters,
                              pad_token=data.pad_token or 0)
        self.d = d.to(self.device)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=c.d_lr)
        self.mle = copy.deepcopy(self.g)  # the MaskMLE baseline: the pretrained G is loaded into it
        self.mle_opt = torch.optim.Adam(self.mle.parameters(), lr=c.g_lr)
        self.g_adv_opt = torch.optim.Adam(self.g.parameters(), lr=c.g_lr)
        self.rollout_policy = copy.deepcopy(self.g).requires_grad_(False) if c.reward == "rollout" else None
        self.reward_fn = discriminator_reward(self.d) if c.reward == "rollout" else None
        self.train_data = data.train.to(self.device)
        self.modules = {"generator": self.g, "g_optimizer": self.g_opt, "discriminator": self.d,
                        "d_optimizer": self.d_opt, "mle_generator": self.mle, "mle_optimizer": self.mle_opt,
                        "g_adv_optimizer": self.g_adv_opt}
        if self.critic is not None:
            self.modules.update(critic=self.critic, critic_optimizer=self.critic_opt)
        if self.rollout_policy is not None:
            self.modules["rollout_policy"] = self.rollout_policy
        self.stream = BatchStream(self.train_data, c.batch_size, self.order_rng)  # D, the baseline, adversarial
        self.streams = {"real": self.stream}
        self.history = {"pretrain": [], "maskmle": [], "maskgan": []}

    def phases(self) -> list[Phase]:
        c = self.config
        every = c.eval_every * c.g_steps
        return [Phase("pretrain_g", c.pretrain_epochs, "pretrain G (MaskMLE)"),
                Phase("pretrain_d", c.d_pretrain_steps, "pretrain D", "step", checkpoint_every=c.eval_every),
                Phase("mle_baseline", c.adv_epochs * c.g_steps, "MaskMLE baseline", "step", checkpoint_every=every),
                Phase("adversarial", c.adv_epochs, f"adversarial ({c.reward})", checkpoint_every=c.eval_every)]

    # --- the phases' units --------------------------------------------------------------------------
    def batch(self) -> Tensor:
        """This process's rows of the next global batch."""
        return self.group.shard(self.stream.next())

    def pretrain_g(self, epoch: int) -> None:
        for batch in batches(self.train_data, self.config.batch_size, self.order_rng):
            self.progress["g_step"] = self.progress.get("g_step", 0) + 1
            loss = self.mle_step(self.g, self.g_opt, self.group.shard(batch), f"pretrain epoch {epoch}")
            self.writer.add_scalar("losses/g_mle", loss, self.progress["g_step"])
        if self.group.is_main:
            metrics, *_ = self.evaluate(self.g)
            self.record("pretrain", metrics, epoch=epoch)

    def pretrain_d(self, step: int) -> None:
        d_loss, d_acc = self.d_step(self.batch(), f"pretrain D step {step}")
        self.writer.add_scalar("losses/d_pretrain", d_loss, step)
        self.writer.add_scalar("charts/d_pretrain_accuracy", d_acc, step)

    def mle_baseline(self, step: int) -> None:
        c = self.config
        if step == 1:
            self.start_baseline()
        self.writer.add_scalar("losses/maskmle", self.mle_step(self.mle, self.mle_opt, self.batch(),
                                                               f"MaskMLE step {step}"), step)
        if self.group.is_main and (step % (c.eval_every * c.g_steps) == 0 or step == c.adv_epochs * c.g_steps):
            metrics, *_ = self.evaluate(self.mle)
            self.record("maskmle", metrics, g_updates=step)

    def adversarial(self, epoch: int) -> None:
        c, group, g = self.config, self.group, self.g
        where = f"adversarial epoch {epoch}"
        if epoch == 1 and self.rollout_policy is not None:
            self.rollout_policy.load_state_dict(g.state_dict())
        for _ in range(c.g_steps):
            batch = self.batch()
            masked, hidden = self.masker(batch, self.rng)
            filled = g.infill(masked, hidden, generator=self.rng)  # (b, T): visible tokens kept
            weight = hidden.float()
            if c.reward == "critic":
                with torch.no_grad():
                    rewards = token_log_rewards(self.d(masked, filled), hidden)  # (b, T), 0 where visible
                returns = discounted_returns(rewards, c.gamma, weight)
                values = self.critic(masked, filled)
                c_loss = critic_loss(values, returns, weight, normalizer=group.token_normalizer(weight))
                c_loss = self.update(self.critic, self.critic_opt, c_loss, c.grad_clip, where, "the critic loss")
                advantages = returns - values.detach()
            else:
                policy = self.rollout_policy.conditioned(masked)
                engine = RolloutEngine(policy, c.num_rollouts, eos_token=self.data.eos_token,
                                       pad_token=self.data.pad_token)
                rewards = engine.rewards(filled, self.reward_fn, fixed=~hidden, generator=self.rng,
                                         initial_state=policy.initial_state(len(filled)))  # (b, T)
                advantages = rewards
            check_finite(group.all_gather(advantages), "a reward", where)
            pg_loss = policy_gradient_update(g, self.g_adv_opt, g.target_logits(masked, filled), filled, advantages,
                                             weight, group.token_normalizer(weight), c.grad_clip, where, group)
            if self.rollout_policy is not None:
                ema_update(self.rollout_policy, g, c.rollout_rate)
        for _ in range(c.d_steps):
            d_loss, d_acc = self.d_step(self.batch(), where)
        self.writer.add_scalar("losses/g_pg", pg_loss, epoch)
        self.writer.add_scalar("charts/reward_mean", rewards[hidden].mean().item(), epoch)  # over the filled tokens
        if c.reward == "critic":
            self.writer.add_scalar("losses/critic", c_loss, epoch)
        if c.d_steps:
            self.writer.add_scalar("losses/d", d_loss, epoch)
            self.writer.add_scalar("charts/d_accuracy", d_acc, epoch)
        if group.is_main and (epoch % c.eval_every == 0 or epoch == c.adv_epochs):
            metrics, *_ = self.evaluate(g)
            self.record("maskgan", metrics, g_updates=epoch * c.g_steps)

    # --- the updates ---------------------------------------------------------------------------------
    def mle_step(self, g: nn.Module, opt: torch.optim.Optimizer, batch: Tensor, where: str) -> float:
        """MaskMLE: teacher forcing, the loss on the hidden tokens only. batch (b, T)."""
        masked, hidden = self.masker(batch, self.rng)
        weight = hidden.float()
        loss = mle_loss(g.target_logits(masked, batch), batch, weight, normalizer=self.group.token_normalizer(weight))
        return self.update(g, opt, loss, self.config.grad_clip, where, "the MaskMLE loss")

    def d_step(self, batch: Tensor, where: str) -> tuple[float, float]:
        """One discriminator update on this process's real rows and their filled copies.
        Returns (the whole batch's loss, this process's accuracy)."""
        d = self.d
        masked, hidden = self.masker(batch, self.rng)
        filled = self.g.infill(masked, hidden, generator=self.rng)
        d.train()
        if self.config.reward == "critic":
            # per token: real tokens at the hidden positions are 1, filled ones 0
            logits = torch.cat([d(masked, batch)[hidden], d(masked, filled)[hidden]])
            labels = torch.cat([torch.ones(int(hidden.sum())), torch.zeros(int(hidden.sum()))]).to(logits.device)
            l2 = 0.0  # MaskGAN's per-token D has no penalty
        else:
            logits = d(torch.cat([batch, filled]))
            labels = torch.cat([torch.ones(len(batch)), torch.zeros(len(batch))]).to(logits.device)
            l2 = self.config.d_l2
        # a mean over the whole batch's tokens: this process's mean weighed by its share (1 for one process)
        share = len(labels) / self.group.token_normalizer(torch.ones_like(labels))
        value = discriminator_update(d, self.d_opt, discriminator_loss(logits, labels) * share, l2, where, self.group)
        return value, (correct_guesses(logits, labels) / len(labels)).item()

    # --- evaluation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, g: nn.Module) -> tuple[dict, Tensor, Tensor, Tensor]:
        """The same masked test texts for every model (masks and samples from the evaluation seed)."""
        c, data = self.config, self.data
        rng = torch.Generator(device=self.device).manual_seed(self.eval_seed)
        test = data.test.to(self.device)
        masked, hidden = self.masker(test, rng)
        g.eval()
        total, count = 0.0, 0.0
        for m, h, y in zip(masked.split(512), hidden.split(512), test.split(512)):
            total += mle_loss(g.target_logits(m, y), y, h.float()).item() * h.sum().item()
            count += h.sum().item()
        n = min(c.eval_samples, len(test))
        filled = g.infill(masked[:n], hidden[:n], generator=rng)
        g.train()
        tokens = [data.tokens(s) for s in filled.cpu()]
        rows = hidden[:n].cpu().tolist()
        metrics = {"infill_ppl": math.exp(total / max(count, 1.0))}
        for k in (2, 3, 4):
            metrics[f"unique{k}_pct"] = infilled_ngram_uniqueness(tokens, rows, k)
        for k in (2, 3, 4):
            metrics[f"bleu{k}"] = self.bleu.score(tokens, k)
        return metrics, masked[:n], hidden[:n], filled

    def show(self, ids: Tensor, hidden: Optional[Tensor] = None) -> str:
        tokens = self.data.tokens(ids)
        if hidden is not None:
            tokens = ["_" if h else t for t, h in zip(tokens, hidden.tolist())]
        return self.data.tokenizer.detokenize(tokens)

    def finish(self) -> dict:
        c, data = self.config, self.data
        results_by_model, fills = {}, {}
        for name, model in self.final_models():
            results_by_model[name], masked, hidden, fills[name] = self.evaluate(model)
        examples = [{"masked": self.show(data.test[i], hidden[i]), "maskmle": self.show(fills["maskmle"][i]),
                     "maskgan": self.show(fills["maskgan"][i]), "truth": self.show(data.test[i])}
                    for i in range(min(c.examples, len(masked)))]
        write_text_atomic(self.out / "examples.txt",
                          "\n".join("".join(f"{k:>8}: {v}\n" for k, v in e.items()) for e in examples))
        budget = c.adv_epochs * c.g_steps
        if c.adv_epochs:
            self.timings["adversarial_epoch_s"] = self.timings.get("adversarial_s", 0.0) / c.adv_epochs
        return {"corpus": data.name, "preset": c.preset, "seed": c.seed, "mask": c.mask, "mask_rate": c.mask_rate,
                "reward": c.reward,
                "generator_updates": {"pretrain_epochs": c.pretrain_epochs, "maskmle": budget, "maskgan": budget},
                "models": results_by_model, "examples": examples,
                "data": {**data.info, "num_train": len(data.train), "num_test": len(data.test),
                         "vocab_size": data.vocab_size}}

    def print_table(self, results: dict) -> None:
        models = results["models"]
        print(f"\n{results['corpus']} ({results['preset']} preset, seed {results['seed']}, mask {results['mask']} "
              f"{results['mask_rate']}, reward {results['reward']}): pretrained G, then "
              f"{results['generator_updates']['maskgan']} more G updates each")
        print("\n".join(comparison_rows(models, ["pretrained", "maskmle", "maskgan"],
                                         ["pretrained", "MaskMLE", "MaskGAN"], lambda metric: metric == "infill_ppl")))
        t = results["timings"]
        print(f"wall time {t['total_s']:.0f} s (pretrain G {t.get('pretrain_g_s', 0):.0f} s, "
              f"pretrain D {t.get('pretrain_d_s', 0):.0f} s, MaskMLE baseline {t.get('mle_baseline_s', 0):.0f} s, "
              f"adversarial {t.get('adversarial_s', 0):.0f} s, eval {t['final_eval_s']:.0f} s)")
        if "adversarial_epoch_s" in t:
            print(f"one adversarial epoch {t['adversarial_epoch_s']:.2f} s ({results['reward']} rewards)")
        for e in results["examples"]:
            print()
            for key, text in e.items():
                print(f"{key:>8}: {text}")
