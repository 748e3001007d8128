#!/usr/bin/env python
"""MaskGAN-style infilling (Fedus et al., ICLR 2018) against MaskMLE of equal budget.

    python scripts/train_maskgan.py --corpus ptb                    # the `cpu` preset
    python scripts/train_maskgan.py --corpus poems --mask random --mask-rate 0.3
    python scripts/train_maskgan.py --corpus ptb --reward rollout   # rewards from the rollout engine

Phases:
  1. MaskMLE: pretrain the encoder-decoder generator by teacher forcing on the
     hidden tokens of masked training texts (a fresh mask per batch);
  2. pretrain the discriminator on real vs filled texts: with --reward critic the
     per-token discriminator (MaskGAN's), with --reward rollout the SeqGAN CNN over
     whole texts;
  3. MaskMLE baseline: from the pretrained generator, `adv_epochs * g_steps` more
     MLE updates;
  4. adversarial: per epoch, `g_steps` policy-gradient updates on the filled
     tokens, then `d_steps` discriminator updates. Rewards:
       critic   log D(y_t) per filled token, discounted returns (gamma 0.89, as
                MaskGAN's code), minus a learned critic's value;
       rollout  Q(y_0..y_t) from `rollout.RolloutEngine` completing the blanks
                after t (fixed = every visible token; the prefix is always kept)
                with a delayed copy of the generator (moving average, rate 0.8),
                scored by the sequence discriminator, as SeqGAN;
     both through `losses.policy_gradient_loss` on the hidden positions only;
  5. evaluation of the pretrained generator, MaskMLE and MaskGAN on the same
     masked test texts: perplexity of the hidden tokens, the percentage of unique
     n-grams among the filled ones, BLEU of the filled texts against the rest of
     the test split, and examples.
Writes to --out: tensorboard logs (tb/), pretrained.pt / maskmle.pt / maskgan.pt
(atomic), examples.txt, results.json.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from seqadv.checkpoint import CheckpointError, save_checkpoint, write_text_atomic
from seqadv.cli import check_ranges, parse_dataclass_args, resolve_device, seed_everything
from seqadv.corpus import DataError
from seqadv.dataset import SequenceData, batches, load_corpus
from seqadv.discriminator import Discriminator
from seqadv.losses import critic_loss, discriminator_loss, mle_loss, policy_gradient_loss
from seqadv.maskgan import Critic, InfillingGenerator, TokenDiscriminator
from seqadv.masking import MODES, apply_mask, mask_positions, maskable_positions
from seqadv.metrics import BLEU, infilled_ngram_uniqueness
from seqadv.policy import ema_update
from seqadv.rewards import discounted_returns, discriminator_reward, token_log_rewards
from seqadv.rollout import RolloutEngine
from seqadv.training import NumericalError, check_finite, clip_and_step


@dataclass
class Args:
    corpus: str = "ptb"  # ptb | poems | coco | path/to/file.txt
    preset: str = "cpu"  # tiny | cpu | paper
    data_dir: Optional[str] = None
    tokenizer: Optional[str] = None
    vocab_size: Optional[int] = None
    max_length: Optional[int] = None
    max_train: Optional[int] = None
    max_test: Optional[int] = None
    device: str = "auto"
    seed: int = 88
    out: str = "runs/maskgan"
    debug: bool = False
    # masking (MaskGAN: contiguous, rate 0.5)
    mask: str = "contiguous"  # contiguous | random
    mask_rate: float = 0.5
    reward: str = "critic"  # critic | rollout
    # generator, discriminator and critic: one encoder-decoder size
    embedding_dim: int = 64
    hidden_dim: int = 64
    g_lr: float = 1e-3
    grad_clip: float = 5.0
    batch_size: int = 64
    pretrain_epochs: int = 4
    d_lr: float = 1e-3
    d_pretrain_steps: int = 100
    critic_lr: float = 1e-3
    gamma: float = 0.89
    # rollout mode: the sequence discriminator and the engine
    d_filter_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 8, 10, 15, 20)
    d_num_filters: tuple[int, ...] = (50, 100, 100, 100, 100, 50, 50, 80, 80)
    d_l2: float = 0.2
    num_rollouts: int = 8
    rollout_rate: float = 0.8
    # adversarial
    adv_epochs: int = 600
    g_steps: int = 1
    d_steps: int = 3
    # evaluation
    eval_every: int = 100
    eval_samples: int = 1000  # masked test texts filled by each model; the rest of the test split are BLEU's references
    examples: int = 5


PRESETS: dict[str, dict] = {
    "tiny": dict(embedding_dim=16, hidden_dim=16, pretrain_epochs=1, max_train=512, max_test=160, d_pretrain_steps=4,
                 d_filter_sizes=(1, 2, 3), d_num_filters=(8, 8, 8), num_rollouts=2, adv_epochs=4, d_steps=1,
                 eval_every=2, eval_samples=64, examples=2),
    # under 15 minutes on 2 CPU cores for PTB with --reward critic
    "cpu": dict(),
    # MaskGAN's PTB settings (650 units; hours on a CPU)
    "paper": dict(embedding_dim=650, hidden_dim=650, pretrain_epochs=20, batch_size=20, adv_epochs=1000),
}


def parse_args(argv: Optional[list[str]] = None) -> Args:
    args, _ = parse_dataclass_args(Args, PRESETS, argv, __doc__.split("\n")[0],
                                   {"mask": list(MODES), "reward": ["critic", "rollout"]})
    check_ranges(args, positive=["batch_size", "embedding_dim", "hidden_dim", "g_lr", "d_lr", "critic_lr", "num_rollouts",
                                 "eval_every", "eval_samples"],
                 non_negative=["pretrain_epochs", "d_pretrain_steps", "adv_epochs", "g_steps", "d_steps", "grad_clip",
                               "d_l2", "examples"])
    if not 0.0 < args.mask_rate <= 1.0:
        raise ValueError(f"--mask-rate must be in (0, 1], got {args.mask_rate}")
    for name in ["gamma", "rollout_rate"]:
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(args, name)}")
    if len(args.d_filter_sizes) != len(args.d_num_filters):
        raise ValueError("--d-filter-sizes and --d-num-filters must have the same length")
    return args


class Masker:
    """Fresh masks for batches of one corpus, from one seeded stream."""

    def __init__(self, data: SequenceData, args: Args, mask_token: int):
        self.data, self.args, self.mask_token = data, args, mask_token

    def __call__(self, tokens: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """tokens (B, T) -> masked input (B, T), hidden (B, T) bool."""
        maskable = maskable_positions(tokens, self.data.eos_token, self.data.pad_token)
        hidden = mask_positions(maskable, self.args.mask_rate, self.args.mask, generator)
        return apply_mask(tokens, hidden, self.mask_token), hidden


def mle_step(g: InfillingGenerator, opt, batch: Tensor, masker: Masker, rng, args: Args, where: str) -> float:
    """MaskMLE: teacher forcing, the loss on the hidden tokens only. batch (B, T)."""
    masked, hidden = masker(batch, rng)
    loss = mle_loss(g.target_logits(masked, batch), batch, hidden.float())
    return clip_and_step(g, opt, loss, args.grad_clip, where, "the MaskMLE loss")


def d_step(d, opt, g: InfillingGenerator, batch: Tensor, masker: Masker, rng, args: Args, where: str) -> tuple[float, float]:
    """One discriminator update on a real batch and its filled copy. Returns (loss, accuracy)."""
    masked, hidden = masker(batch, rng)
    filled = g.infill(masked, hidden, generator=rng)
    d.train()
    if isinstance(d, TokenDiscriminator):
        # per token: real tokens at the hidden positions are 1, filled ones 0
        logits = torch.cat([d(masked, batch)[hidden], d(masked, filled)[hidden]])
        labels = torch.cat([torch.ones(int(hidden.sum())), torch.zeros(int(hidden.sum()))]).to(logits.device)
        loss = discriminator_loss(logits, labels)
    else:
        logits = d(torch.cat([batch, filled]))
        labels = torch.cat([torch.ones(len(batch)), torch.zeros(len(batch))]).to(logits.device)
        loss = discriminator_loss(logits, labels) + args.d_l2 * d.l2_penalty()
    value = clip_and_step(d, opt, loss, 0.0, where, "the discriminator loss")
    return value, ((logits > 0).float() == labels).float().mean().item()


@torch.no_grad()
def evaluate(g: InfillingGenerator, data: SequenceData, masker: Masker, bleu: BLEU, args: Args, seed: int) -> tuple[dict, Tensor, Tensor, Tensor]:
    """The same masked test texts for every model (masks and samples from `seed`)."""
    rng = torch.Generator(device=g.device).manual_seed(seed)
    test = data.test.to(g.device)
    masked, hidden = masker(test, rng)
    g.eval()
    total, count = 0.0, 0.0
    for m, h, y in zip(masked.split(512), hidden.split(512), test.split(512)):
        total += mle_loss(g.target_logits(m, y), y, h.float()).item() * h.sum().item()
        count += h.sum().item()
    n = min(args.eval_samples, len(test))
    filled = g.infill(masked[:n], hidden[:n], generator=rng)
    g.train()
    tokens = [data.tokens(s) for s in filled.cpu()]
    rows = hidden[:n].cpu().tolist()
    metrics = {"infill_ppl": math.exp(total / max(count, 1.0))}
    for k in (2, 3, 4):
        metrics[f"unique{k}_pct"] = infilled_ngram_uniqueness(tokens, rows, k)
    for k in (2, 3, 4):
        metrics[f"bleu{k}"] = bleu.score(tokens, k)
    return metrics, masked[:n], hidden[:n], filled


def show(data: SequenceData, ids: Tensor, hidden: Optional[Tensor] = None) -> str:
    tokens = data.tokens(ids)
    if hidden is not None:
        tokens = ["_" if h else t for t, h in zip(tokens, hidden.tolist())]
    return data.tokenizer.detokenize(tokens)


def run(args: Args) -> dict:
    device = resolve_device(args.device)
    seed_everything(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_corpus(args.corpus, data_dir=args.data_dir, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                       max_length=args.max_length, max_train=args.max_train, max_test=args.max_test)
    if data.oracle is not None:
        raise DataError("oracle: infilling needs text; choose ptb, poems, coco or a text file")
    if len(data.train) < args.batch_size:
        raise DataError(f"{args.corpus}: {len(data.train)} training sequences, fewer than one batch of {args.batch_size}")
    if len(data.test) <= args.eval_samples:
        raise DataError(f"{args.corpus}: {len(data.test)} test sequences; need more than --eval-samples "
                        f"{args.eval_samples} (the rest are BLEU's references)")
    T = data.length
    print(f"corpus {data.name}: {len(data.train)} train / {len(data.test)} test sequences, length {T}, "
          f"vocabulary {data.vocab_size}; mask {args.mask} {args.mask_rate}; reward {args.reward}; device {device}; "
          f"preset {args.preset}")
    bleu = BLEU([data.tokens(s) for s in data.test[args.eval_samples :]], max_n=4)

    writer = SummaryWriter(str(out / "tb"))
    writer.add_text("config", "```\n" + json.dumps(dataclasses.asdict(args), indent=1) + "\n```")
    rng = torch.Generator(device=device).manual_seed(args.seed)  # masks, sampling and rollouts
    order_rng = torch.Generator().manual_seed(args.seed + 1)  # data order
    eval_seed = args.seed + 2

    config = dict(vocab_size=data.vocab_size, embedding_dim=args.embedding_dim, hidden_dim=args.hidden_dim,
                  start_token=data.start_token)
    meta = {"args": dataclasses.asdict(args), "vocab": data.vocab.itos, "data_info": data.info, "generator_config": config}
    g = InfillingGenerator(**config).to(device)
    masker = Masker(data, args, g.mask_token)
    g_opt = torch.optim.Adam(g.parameters(), lr=args.g_lr)
    if args.reward == "critic":
        d = TokenDiscriminator(**config).to(device)
        critic = Critic(**config).to(device)
        critic_opt = torch.optim.Adam(critic.parameters(), lr=args.critic_lr)
    else:
        d = Discriminator(data.vocab_size, args.embedding_dim, args.d_filter_sizes, args.d_num_filters,
                          pad_token=data.pad_token or 0).to(device)
    d_opt = torch.optim.Adam(d.parameters(), lr=args.d_lr)
    train = data.train.to(device)
    timings: dict[str, float] = {}
    history: dict[str, list] = {"pretrain": [], "maskmle": [], "maskgan": []}

    def real_batches():
        """Endless shuffled epochs of full training batches."""
        while True:
            yield from batches(train, args.batch_size, order_rng)

    # 1. MaskMLE pretraining -----------------------------------------------------------------
    t0 = time.time()
    step = 0
    for epoch in tqdm(range(1, args.pretrain_epochs + 1), desc="pretrain G (MaskMLE)", unit="epoch"):
        for batch in batches(train, args.batch_size, order_rng):
            step += 1
            writer.add_scalar("losses/g_mle", mle_step(g, g_opt, batch, masker, rng, args, f"pretrain epoch {epoch}"), step)
        metrics, *_ = evaluate(g, data, masker, bleu, args, eval_seed)
        history["pretrain"].append({"epoch": epoch, **metrics})
        for name, value in metrics.items():
            writer.add_scalar(f"eval/pretrain/{name}", value, epoch)
    timings["pretrain_g_s"] = time.time() - t0
    pretrained = {"generator": copy.deepcopy(g.state_dict()), "optimizer": copy.deepcopy(g_opt.state_dict())}
    save_checkpoint({**meta, "generator": pretrained["generator"]}, out / "pretrained.pt")

    # 2. discriminator pretraining -------------------------------------------------------------
    t0 = time.time()
    stream = real_batches()
    for i in tqdm(range(1, args.d_pretrain_steps + 1), desc="pretrain D", unit="step"):
        d_loss, d_acc = d_step(d, d_opt, g, next(stream), masker, rng, args, f"pretrain D step {i}")
        writer.add_scalar("losses/d_pretrain", d_loss, i)
        writer.add_scalar("charts/d_pretrain_accuracy", d_acc, i)
    timings["pretrain_d_s"] = time.time() - t0

    # 3. MaskMLE baseline of equal budget ----------------------------------------------------------
    t0 = time.time()
    budget = args.adv_epochs * args.g_steps
    mle = InfillingGenerator(**config).to(device)
    mle.load_state_dict(pretrained["generator"])
    mle_opt = torch.optim.Adam(mle.parameters(), lr=args.g_lr)
    mle_opt.load_state_dict(pretrained["optimizer"])
    for i in tqdm(range(1, budget + 1), desc="MaskMLE baseline", unit="step"):
        writer.add_scalar("losses/maskmle", mle_step(mle, mle_opt, next(stream), masker, rng, args, f"MaskMLE step {i}"), i)
        if i % (args.eval_every * args.g_steps) == 0 or i == budget:
            metrics, *_ = evaluate(mle, data, masker, bleu, args, eval_seed)
            history["maskmle"].append({"g_updates": i, **metrics})
            for name, value in metrics.items():
                writer.add_scalar(f"eval/maskmle/{name}", value, i)
    timings["maskmle_s"] = time.time() - t0
    save_checkpoint({**meta, "generator": mle.state_dict()}, out / "maskmle.pt")

    # 4. adversarial training -----------------------------------------------------------------------
    t0 = time.time()
    g_adv_opt = torch.optim.Adam(g.parameters(), lr=args.g_lr)
    rollout_policy = copy.deepcopy(g).requires_grad_(False) if args.reward == "rollout" else None
    reward_fn = discriminator_reward(d) if args.reward == "rollout" else None
    for epoch in tqdm(range(1, args.adv_epochs + 1), desc=f"adversarial ({args.reward})", unit="epoch"):
        where = f"adversarial epoch {epoch}"
        for _ in range(args.g_steps):
            batch = next(stream)
            masked, hidden = masker(batch, rng)
            filled = g.infill(masked, hidden, generator=rng)  # (B, T): visible tokens kept
            if args.reward == "critic":
                with torch.no_grad():
                    rewards = token_log_rewards(d(masked, filled), hidden)  # (B, T), 0 where visible
                returns = discounted_returns(rewards, args.gamma, hidden.float())
                values = critic(masked, filled)
                c_loss = critic_loss(values, returns, hidden.float())
                clip_and_step(critic, critic_opt, c_loss, args.grad_clip, where, "the critic loss")
                advantages = returns - values.detach()
            else:
                policy = rollout_policy.conditioned(masked)
                engine = RolloutEngine(policy, args.num_rollouts, eos_token=data.eos_token, pad_token=data.pad_token)
                rewards = engine.rewards(filled, reward_fn, fixed=~hidden, generator=rng,
                                         initial_state=policy.initial_state(len(filled)))  # (B, T)
                advantages = rewards
            check_finite(advantages, "a reward", where)
            pg_loss = policy_gradient_loss(g.target_logits(masked, filled), filled, advantages, hidden.float())
            clip_and_step(g, g_adv_opt, pg_loss, args.grad_clip, where, "the policy-gradient loss")
            if rollout_policy is not None:
                ema_update(rollout_policy, g, args.rollout_rate)
        for _ in range(args.d_steps):
            d_loss, d_acc = d_step(d, d_opt, g, next(stream), masker, rng, args, where)
        writer.add_scalar("losses/g_pg", pg_loss.item(), epoch)
        writer.add_scalar("charts/reward_mean", rewards[hidden].mean().item(), epoch)  # over the filled tokens
        if args.reward == "critic":
            writer.add_scalar("losses/critic", c_loss.item(), epoch)
        if args.d_steps:
            writer.add_scalar("losses/d", d_loss, epoch)
            writer.add_scalar("charts/d_accuracy", d_acc, epoch)
        if epoch % args.eval_every == 0 or epoch == args.adv_epochs:
            metrics, *_ = evaluate(g, data, masker, bleu, args, eval_seed)
            history["maskgan"].append({"g_updates": epoch * args.g_steps, **metrics})
            for name, value in metrics.items():
                writer.add_scalar(f"eval/maskgan/{name}", value, epoch * args.g_steps)
    timings["adversarial_s"] = time.time() - t0
    save_checkpoint({**meta, "generator": g.state_dict()}, out / "maskgan.pt")

    # 5. evaluation -----------------------------------------------------------------------------------
    t0 = time.time()
    results_by_model, fills = {}, {}
    for name, state in [("pretrained", pretrained["generator"]), ("maskmle", mle.state_dict()), ("maskgan", g.state_dict())]:
        model = InfillingGenerator(**config).to(device)
        model.load_state_dict(state)
        results_by_model[name], masked, hidden, fills[name] = evaluate(model, data, masker, bleu, args, eval_seed)
    examples = [{"masked": show(data, data.test[i], hidden[i]), "maskmle": show(data, fills["maskmle"][i]),
                 "maskgan": show(data, fills["maskgan"][i]), "truth": show(data, data.test[i])}
                for i in range(min(args.examples, len(masked)))]
    write_text_atomic(out / "examples.txt", "\n".join("".join(f"{k:>8}: {v}\n" for k, v in e.items()) for e in examples))
    timings["final_eval_s"] = time.time() - t0
    timings["total_s"] = sum(timings.values())
    writer.close()

    results = {"corpus": data.name, "preset": args.preset, "seed": args.seed, "device": str(device),
               "mask": args.mask, "mask_rate": args.mask_rate, "reward": args.reward,
               "generator_updates": {"pretrain_epochs": args.pretrain_epochs, "maskmle": budget, "maskgan": budget},
               "models": results_by_model, "history": history, "timings": timings, "examples": examples,
               "data": {**data.info, "num_train": len(data.train), "num_test": len(data.test), "vocab_size": data.vocab_size},
               "args": dataclasses.asdict(args)}
    write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    print_table(results)
    return results


def print_table(results: dict) -> None:
    models = results["models"]
    print(f"\n{results['corpus']} ({results['preset']} preset, seed {results['seed']}, mask {results['mask']} "
          f"{results['mask_rate']}, reward {results['reward']}): pretrained G, then "
          f"{results['generator_updates']['maskgan']} more G updates each")
    print(f"{'metric':<14}{'pretrained':>12}{'MaskMLE':>12}{'MaskGAN':>12}   better")
    for metric in models["maskgan"]:
        lower = metric == "infill_ppl"
        mle, gan = models["maskmle"][metric], models["maskgan"][metric]
        winner = "tie" if mle == gan else ("MaskGAN" if (gan < mle) == lower else "MaskMLE")
        row = "".join(f"{models[m][metric]:>12.4f}" for m in ("pretrained", "maskmle", "maskgan"))
        print(f"{metric:<14}{row}   {winner}{' (lower is better)' if lower else ''}")
    t = results["timings"]
    print(f"wall time {t['total_s']:.0f} s (pretrain G {t['pretrain_g_s']:.0f} s, pretrain D {t['pretrain_d_s']:.0f} s, "
          f"MaskMLE baseline {t['maskmle_s']:.0f} s, adversarial {t['adversarial_s']:.0f} s, eval {t['final_eval_s']:.0f} s)")
    for e in results["examples"]:
        print()
        for key, text in e.items():
            print(f"{key:>8}: {text}")


def main(argv: Optional[list[str]] = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    say = lambda line: print(f"train_maskgan.py: {line}", file=sys.stderr)  # noqa: E731
    try:
        run(parse_args(argv))
    except (DataError, CheckpointError, ValueError, NumericalError) as exc:
        if debug:
            raise
        say(f"error: {exc}")
        return 3 if isinstance(exc, NumericalError) else 2
    except KeyboardInterrupt:
        say("interrupted; the models saved so far are in --out")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
