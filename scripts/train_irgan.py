#!/usr/bin/env python
"""IRGAN item recommendation (Wang et al., SIGIR 2017) against its BPR baseline, on MovieLens-100k.

    python scripts/train_irgan.py                      # ml-100k, the `cpu` preset, 3 seeds (about 4 min each)
    python scripts/train_irgan.py --data my_ratings.tsv --seeds 1

Phases, per seed:
  1. BPR: matrix factorisation (user and item vectors of dimension 5, item bias)
     trained by Bayesian personalised ranking against uniform negatives. It is the
     baseline row of the table and the generator's starting point (IRGAN starts
     its generator from a pretrained factorisation too);
  2. IRGAN, `gan_epochs` times:
       D: every `d_resample_every` passes, each training positive gets one negative
          drawn from the generator's softmax(scores / temperature); D (the
          same scorer, its own parameters) is trained on positives vs those
          negatives (logistic loss, L2);
       G: for each user, 2 x (their positives) items drawn from the proposal
          (1 - mix) * policy + mix * uniform(positives), rewarded
          2 * (sigmoid(D) - 0.5) through the rollout engine with T = 1, weighted
          by policy / proposal, REINFORCE;
  3. evaluation of BPR and IRGAN's generator: every test user's items ranked,
     training positives left out; P@3/5/10, NDCG@3/5/10.
Writes to --out (one folder per seed): tensorboard logs, bpr.pt, irgan.pt (both
scorers), results.json; and, over seeds, seeds.json and a mean ± std table.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
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
from seqadv.irgan import ItemPolicy, ItemReward, ItemScorer, bpr_loss, sample_proposal
from seqadv.losses import discriminator_loss, policy_gradient_loss
from seqadv.metrics import ranking_metrics
from seqadv.policy import generate
from seqadv.ratings import RatingData, load_ratings
from seqadv.rollout import RolloutEngine
from seqadv.training import NumericalError, check_finite, clip_and_step


@dataclass
class Args:
    data: str = "ml-100k"  # ml-100k | path/to/ratings (user item rating per line)
    preset: str = "cpu"  # tiny | cpu | paper
    data_dir: Optional[str] = None
    test_rows: Optional[int] = None  # for a file: the first rows are the test set (default: a seeded 20%)
    device: str = "auto"
    seed: int = 88
    seeds: int = 3  # run seeds seed, seed + 1, ... and report mean ± std
    out: str = "runs/irgan"
    debug: bool = False
    dim: int = 5  # IRGAN's embedding size
    temperature: float = 0.2  # the generator's temperature when it draws D's negatives (IRGAN)
    g_temperature: float = 1.0  # its temperature in its own update (the official code: 1)
    mix: float = 0.2  # IRGAN's lambda: the proposal's share of the user's positives
    batch_size: int = 256
    # BPR baseline and the generator's pretraining
    bpr_epochs: int = 60
    bpr_lr: float = 0.01
    bpr_l2: float = 0.05
    # IRGAN
    gan_epochs: int = 10  # the official code: 15
    d_epochs: int = 10  # passes over D's data per GAN epoch
    d_resample_every: int = 5  # passes between fresh generator negatives
    # the official code: plain SGD, learning rate 0.001 per batch of 16 (D) or per user (G); here
    # per batch of `batch_size` examples / `user_batch` users, so the rates are scaled by those sizes
    d_lr: float = 0.016
    d_l2: float = 0.1
    g_epochs: int = 10  # passes over the users per GAN epoch
    g_lr: float = 0.032
    user_batch: int = 32


PRESETS: dict[str, dict] = {
    "tiny": dict(seeds=2, bpr_epochs=3, gan_epochs=2, d_epochs=2, d_resample_every=1, g_epochs=2, batch_size=64),
    "cpu": dict(),
    # the official code's counts: 15 GAN epochs of 100 D passes (fresh negatives every 5) and 50 G passes
    "paper": dict(gan_epochs=15, d_epochs=100, g_epochs=50, batch_size=16, user_batch=1, d_lr=0.001, g_lr=0.001),
}


def parse_args(argv: Optional[list[str]] = None) -> Args:
    args, _ = parse_dataclass_args(Args, PRESETS, argv, __doc__.split("\n")[0])
    check_ranges(args, positive=["dim", "temperature", "g_temperature", "batch_size", "bpr_lr", "d_lr", "g_lr",
                                 "user_batch", "seeds", "d_resample_every"],
                 non_negative=["bpr_epochs", "gan_epochs", "d_epochs", "g_epochs", "bpr_l2", "d_l2"])
    if not 0.0 <= args.mix < 1.0:
        raise ValueError(f"--mix must be in [0, 1), got {args.mix}")
    return args


def shuffled(n: int, batch: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for begin in range(0, n, batch):
        yield order[begin : begin + batch]


@torch.no_grad()
def sample_items(scorer: ItemScorer, users: Tensor, temperature: float, rng: torch.Generator, chunk: int = 8192) -> Tensor:
    """One item per entry of users (R,), from the policy softmax(scores / temperature) -> (R,)."""
    policy = ItemPolicy(scorer, temperature)
    return torch.cat([generate(policy, len(u), 1, generator=rng, initial_state=u)[:, 0] for u in users.split(chunk)])


def evaluate(scorer: ItemScorer, data: RatingData) -> dict:
    with torch.no_grad():
        scores = scorer.all_scores(torch.arange(data.num_users, device=scorer.bias.device)).cpu()
    return ranking_metrics(scores, data.test_positive, data.train_positive)


def train_bpr(g: ItemScorer, data: RatingData, args: Args, rng: torch.Generator, writer: SummaryWriter) -> None:
    pairs = data.train_pairs.to(g.bias.device)
    opt = torch.optim.Adam(g.parameters(), lr=args.bpr_lr)
    for epoch in tqdm(range(1, args.bpr_epochs + 1), desc="BPR", unit="epoch", leave=False):
        for idx in shuffled(len(pairs), args.batch_size, rng):
            users, positives = pairs[idx, 0], pairs[idx, 1]
            negatives = torch.randint(0, data.num_items, (len(idx),), generator=rng).to(users.device)
            loss = bpr_loss(g, users, positives, negatives, args.bpr_l2)
            clip_and_step(g, opt, loss, 0.0, f"BPR epoch {epoch}", "the BPR loss")
        writer.add_scalar("losses/bpr", loss.item(), epoch)


def train_irgan(g: ItemScorer, d: ItemScorer, data: RatingData, args: Args, rng: torch.Generator,
                writer: SummaryWriter) -> list[dict]:
    device = g.bias.device
    pairs = data.train_pairs.to(device)
    positives = data.train_positive.to(device)
    users_with_positives = positives.any(dim=1).nonzero().flatten()
    per_user = 2 * positives.sum(dim=1)  # IRGAN: twice as many samples as the user has positives
    g_opt = torch.optim.SGD(g.parameters(), lr=args.g_lr)
    d_opt = torch.optim.SGD(d.parameters(), lr=args.d_lr)
    history = []
    for epoch in tqdm(range(1, args.gan_epochs + 1), desc="IRGAN", unit="epoch", leave=False):
        where = f"IRGAN epoch {epoch}"
        for d_pass in range(args.d_epochs):
            if d_pass % args.d_resample_every == 0:
                negatives = sample_items(g, pairs[:, 0], args.temperature, rng)  # (P,)
            for idx in shuffled(len(pairs), args.batch_size, rng):
                users = torch.cat([pairs[idx, 0], pairs[idx, 0]])
                items = torch.cat([pairs[idx, 1], negatives[idx]])
                labels = torch.cat([torch.ones(len(idx)), torch.zeros(len(idx))]).to(device)
                loss = discriminator_loss(d(users, items), labels) + args.d_l2 * d.l2(users, items) / len(users)
                clip_and_step(d, d_opt, loss, 0.0, where, "the discriminator loss")
        writer.add_scalar("losses/d", loss.item(), epoch)
        for _ in range(args.g_epochs):
            for idx in shuffled(len(users_with_positives), args.user_batch, rng):
                users = users_with_positives[idx].repeat_interleave(per_user[users_with_positives[idx]])  # (R,)
                logits = g.all_scores(users) / args.g_temperature  # (R, I)
                items, weights = sample_proposal(logits.detach(), positives[users], args.mix, rng)
                policy = ItemPolicy(g, args.g_temperature)
                rewards = RolloutEngine(policy, num_rollouts=1).rewards(
                    items.unsqueeze(1), ItemReward(d, users), initial_state=users)  # (R, 1): T = 1, no rollout
                advantages = rewards * weights.unsqueeze(1)
                check_finite(advantages, "a reward", where)
                pg = policy_gradient_loss(logits.unsqueeze(1), items.unsqueeze(1), advantages)
                clip_and_step(g, g_opt, pg, 0.0, where, "the policy-gradient loss")
        writer.add_scalar("losses/g_pg", pg.item(), epoch)
        writer.add_scalar("charts/reward_mean", rewards.mean().item(), epoch)
        metrics = evaluate(g, data)
        history.append({"epoch": epoch, **metrics})
        for name, value in metrics.items():
            writer.add_scalar(f"eval/irgan/{name}", value, epoch)
    return history


def run_seed(args: Args, data: RatingData, seed: int, out: Path) -> dict:
    device = resolve_device(args.device)
    seed_everything(seed)
    out.mkdir(parents=True, exist_ok=True)
    rng = torch.Generator(device=device).manual_seed(seed)
    writer = SummaryWriter(str(out / "tb"))
    timings = {}
    t0 = time.time()
    g = ItemScorer(data.num_users, data.num_items, args.dim).to(device)
    train_bpr(g, data, args, rng, writer)
    bpr_metrics = evaluate(g, data)
    for name, value in bpr_metrics.items():
        writer.add_scalar(f"eval/bpr/{name}", value, 0)
    save_checkpoint({"args": dataclasses.asdict(args), "generator": g.state_dict()}, out / "bpr.pt")
    timings["bpr_s"] = time.time() - t0
    t0 = time.time()
    d = ItemScorer(data.num_users, data.num_items, args.dim).to(device)
    history = train_irgan(g, d, data, args, rng, writer)
    timings["irgan_s"] = time.time() - t0
    save_checkpoint({"args": dataclasses.asdict(args), "generator": g.state_dict(), "discriminator": d.state_dict()},
                    out / "irgan.pt")
    writer.close()
    results = {"seed": seed, "models": {"bpr": bpr_metrics, "irgan": evaluate(g, data)}, "history": history,
               "timings": timings, "data": data.info, "args": dataclasses.asdict(args)}
    write_json(out / "results.json", results)
    return results


def write_json(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2))


COLUMNS = ["p@3", "p@5", "p@10", "ndcg@3", "ndcg@5", "ndcg@10"]


def print_table(summary: dict, seeds: list[int], wall: float, data: RatingData) -> None:
    print(f"\n{data.name}: {data.num_users} users, {data.num_items} items, {data.info['train_positives']} training / "
          f"{data.info['test_positives']} test positives; mean ± std over seeds {', '.join(map(str, seeds))}")
    print(f"{'model':<8}" + "".join(f"{c:>17}" for c in COLUMNS))
    for model, metrics in summary.items():
        print(f"{model:<8}" + "".join(f"{metrics[c]['mean']:>9.4f} ± {metrics[c]['std']:.4f}" for c in COLUMNS))
    print(f"wall time {wall:.0f} s for {len(seeds)} seeds")


def run(args: Args) -> dict:
    data = load_ratings(args.data, data_dir=args.data_dir, test_rows=args.test_rows)
    print(f"{data.name}: {data.info['ratings']} ratings, {data.info['split']}; positives are ratings >= "
          f"{data.info['positive_rating']:g}; preset {args.preset}")
    out = Path(args.out)
    seeds = [args.seed + i for i in range(args.seeds)]
    start = time.time()
    runs = [run_seed(args, data, s, out / f"seed-{s}") for s in tqdm(seeds, desc="seeds", unit="seed")]
    wall = time.time() - start
    summary = {model: {metric: {"mean": statistics.fmean(r["models"][model][metric] for r in runs),
                                "std": statistics.stdev(r["models"][model][metric] for r in runs) if len(runs) > 1 else 0.0,
                                "values": [r["models"][model][metric] for r in runs]}
                       for metric in runs[0]["models"][model]}
               for model in ("bpr", "irgan")}
    write_json(out / "seeds.json", {"seeds": seeds, "wall_s": wall, "summary": summary, "data": data.info,
                                    "args": dataclasses.asdict(args)})
    print_table(summary, seeds, wall, data)
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        run(parse_args(argv))
    except (DataError, CheckpointError, ValueError, NumericalError) as exc:
        if debug:
            raise
        print(f"train_irgan.py: error: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, NumericalError) else 2
    except KeyboardInterrupt:
        print("train_irgan.py: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
