"""IRGAN item recommendation (Wang et al., SIGIR 2017) against its BPR baseline.

Phases of one run (one seed):
  1. bpr: matrix factorisation (user and item vectors of dimension 5, item bias) trained
     by Bayesian personalised ranking against uniform negatives: the baseline row of the
     table and the generator's starting point (IRGAN starts from a pretrained factorisation);
  2. irgan, `gan_epochs` times:
       D: every `d_resample_every` passes, each training positive gets one negative drawn
          from the generator's softmax(scores / temperature); D (the same scorer, its own
          parameters) learns positives vs those negatives (logistic loss, L2);
       G: for each user, 2 x (their positives) items drawn from the proposal
          (1 - mix) * policy + mix * uniform(positives), rewarded 2 * (sigmoid(D) - 0.5)
          through the rollout engine with T = 1, weighted by policy / proposal, REINFORCE;
  3. evaluation of BPR and IRGAN's generator: every test user's items ranked, training
     positives left out; P@3/5/10, NDCG@3/5/10.

    from seqadv import IRGANConfig, IRGANTrainer
    results = IRGANTrainer(IRGANConfig(data="ml-100k", preset="tiny", out="runs/i")).train()

`train_seeds(config)` runs seeds seed, seed + 1, ... (each in out/seed-<s>, resumable)
and returns mean ± std of every metric, as `scripts/train_irgan.py` prints it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from pathlib import Path
from typing import ClassVar, Iterator, Optional

import torch
from torch import Tensor

from seqadv.core.errors import DataError
from seqadv.core.sampling import generate
from seqadv.data.ratings import RatingData, load_ratings
from seqadv.eval.metrics import ranking_metrics
from seqadv.models.items import ItemPolicy, ItemReward, ItemScorer, bpr_loss, sample_proposal
from seqadv.rl.losses import discriminator_loss
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.update import check_finite, discriminator_update, policy_gradient_update
from seqadv.runtime.checkpoint import write_text_atomic
from seqadv.runtime.cli import check_ranges, writable_dir
from seqadv.runtime.distributed import joined_group
from seqadv.runtime.faults import CrashPoint
from seqadv.trainers.base import Phase, Trainer, TrainerConfig, own_model, preset_config, resumed_config
from seqadv.trainers.text import describe_model

RANKING_CUTOFFS = (3, 5, 10)  # the k of P@k and NDCG@k (`metrics.ranking_metrics`)


@preset_config
class IRGANConfig(TrainerConfig):
    out: str = "runs/irgan"
    data: str = "ml-100k"  # ml-100k | path/to/ratings (user item rating per line)
    test_rows: Optional[int] = None  # for a file: the first rows are the test set (default: a seeded 20%)
    seeds: int = 3  # train_irgan.py runs seeds seed, seed + 1, ... and reports mean ± std
    dim: int = 5  # IRGAN's embedding size
    temperature: float = 0.2  # the generator's temperature when it draws D's negatives (IRGAN)
    g_temperature: float = 1.0  # its temperature in its own update (the official code: 1)
    mix: float = 0.2  # IRGAN's lambda: the proposal's share of the user's positives
    batch_size: int = 256  # (user, item) pairs per BPR and D batch (the global batch under torchrun)
    # BPR baseline and the generator's pretraining
    bpr_epochs: int = 60  # BPR epochs over the training positives
    bpr_lr: float = 0.01  # BPR Adam learning rate
    bpr_l2: float = 0.05  # BPR L2 weight
    # IRGAN
    gan_epochs: int = 10  # IRGAN epochs (the official code: 15)
    d_epochs: int = 10  # passes over D's data per GAN epoch
    d_resample_every: int = 5  # passes between fresh generator negatives
    # the official code: plain SGD, learning rate 0.001 per batch of 16 (D) or per user (G); here
    # per batch of `batch_size` examples / `user_batch` users, so the rates are scaled by those sizes
    d_lr: float = 0.016  # D's SGD learning rate
    d_l2: float = 0.1  # D's L2 weight
    g_epochs: int = 10  # passes over the users per GAN epoch
    g_lr: float = 0.032  # G's SGD learning rate
    user_batch: int = 32  # users per G update (the global batch under torchrun)

    PRESETS: ClassVar[dict] = {
        "tiny": dict(seeds=2, bpr_epochs=3, gan_epochs=2, d_epochs=2, d_resample_every=1, g_epochs=2, batch_size=64),
        "cpu": dict(),
        # the official code's counts: 15 GAN epochs of 100 D passes (fresh negatives every 5) and 50 G passes
        "paper": dict(gan_epochs=15, d_epochs=100, g_epochs=50, batch_size=16, user_batch=1, d_lr=0.001, g_lr=0.001),
    }

    def validate(self) -> None:
        check_ranges(self, positive=["dim", "temperature", "g_temperature", "batch_size", "bpr_lr", "d_lr", "g_lr",
                                     "user_batch", "seeds", "d_resample_every"],
                     non_negative=["bpr_epochs", "gan_epochs", "d_epochs", "g_epochs", "bpr_l2", "d_l2"])
        if not 0.0 <= self.mix < 1.0:
            raise ValueError(f"--mix must be in [0, 1), got {self.mix}")
        if self.test_rows is not None and self.test_rows <= 0:
            raise ValueError(f"--test-rows must be positive, got {self.test_rows}")


class IRGANTrainer(Trainer):
    """BPR, then IRGAN from it, for one seed, as a resumable, data-parallel run.

    `generator` / `discriminator`: scorers of one's own in place of `ItemScorer`: an
    `nn.Module` with `forward(users, items) -> (B,)`, `all_scores(users) -> (B, I)` and
    `l2(users, items) -> scalar` (the regulariser). Each may also be a function of the loaded data (`RatingData`) that builds one.
    Give the same again to resume such a run.
    """

    recipe, config_class, kind = "irgan", IRGANConfig, "items"
    state_attributes = ("progress", "timings", "history", "bpr_metrics")
    resume_checks = {"id_maps": "users and items", "model": "model"}

    def __init__(self, config: IRGANConfig, generator: Optional[torch.nn.Module] = None,
                 discriminator: Optional[torch.nn.Module] = None, data: Optional[RatingData] = None,
                 crash_at: Optional[CrashPoint] = None):
        super().__init__(config, crash_at)
        self.user_generator, self.user_discriminator, self.given_data = generator, discriminator, data

    def build(self) -> None:
        c, group = self.config, self.group
        group.local_size(c.batch_size, "--batch-size")
        group.local_size(c.user_batch, "--user-batch")
        data = self.data = self.given_data or load_ratings(c.data, data_dir=c.data_dir, test_rows=c.test_rows)
        if data.num_items < max(RANKING_CUTOFFS):
            raise DataError(f"{c.data}: {data.num_items} items, too few to rank: P@{max(RANKING_CUTOFFS)} and "
                            f"NDCG@{max(RANKING_CUTOFFS)} need at least {max(RANKING_CUTOFFS)}")
        self.say(f"{data.name}: {data.info['ratings']} ratings, {data.info['split']}; positives are ratings >= "
                 f"{data.info['positive_rating']:g}; seed {c.seed}; device {self.device}"
                 + (f" x {group.world_size} processes" if group.active else "") + f"; preset {c.preset}")
        model_config = dict(num_users=data.num_users, num_items=data.num_items, dim=c.dim)
        g, d = own_model(self.user_generator, data), own_model(self.user_discriminator, data)
        g = g if g is not None else ItemScorer(**model_config)
        d = d if d is not None else ItemScorer(**model_config)
        self.g, self.d = g.to(self.device), d.to(self.device)
        self.meta.update(model=describe_model(self.g, model_config), data_info=data.info,
                         id_maps={"users": data.user_ids, "items": data.item_ids})
        self.bpr_opt = torch.optim.Adam(self.g.parameters(), lr=c.bpr_lr)
        self.g_opt = torch.optim.SGD(self.g.parameters(), lr=c.g_lr)
        self.d_opt = torch.optim.SGD(self.d.parameters(), lr=c.d_lr)
        self.modules = {"generator": self.g, "bpr_optimizer": self.bpr_opt, "discriminator": self.d,
                        "d_optimizer": self.d_opt, "g_optimizer": self.g_opt}
        self.pairs = data.train_pairs.to(self.device)  # (P, 2) user, item
        self.positives = data.train_positive.to(self.device)  # (U, I) bool
        self.users_with_positives = self.positives.any(dim=1).nonzero().flatten()
        self.per_user = 2 * self.positives.sum(dim=1)  # IRGAN: twice as many samples as the user has positives
        self.history = {"irgan": []}
        self.bpr_metrics: Optional[dict] = None

    def phases(self) -> list[Phase]:
        return [Phase("bpr", self.config.bpr_epochs, "BPR"), Phase("irgan", self.config.gan_epochs, "IRGAN")]

    def shuffled(self, n: int, batch: int) -> Iterator[Tensor]:
        """Index batches of one shuffled pass over n rows, from the shared data-order stream
        (on the CPU, whatever the device). Under torchrun the last batch is cut to a multiple
        of the number of processes, so that every batch splits."""
        order = torch.randperm(n, generator=self.order_rng).to(self.device)
        for begin in range(0, n, batch):
            idx = order[begin : begin + batch]
            idx = idx[: len(idx) - len(idx) % self.group.world_size]
            if len(idx):
                yield self.group.shard(idx)

    def bpr(self, epoch: int) -> None:
        c, data = self.config, self.data
        for idx in self.shuffled(len(self.pairs), c.batch_size):
            users, positives = self.pairs[idx, 0], self.pairs[idx, 1]
            negatives = torch.randint(0, data.num_items, (len(idx),), generator=self.rng, device=self.device)
            loss = bpr_loss(self.g, users, positives, negatives, c.bpr_l2)
            self.update(self.g, self.bpr_opt, loss, 0.0, f"BPR epoch {epoch}", "the BPR loss")
        self.writer.add_scalar("losses/bpr", loss.item(), epoch)

    def end_phase(self, phase: str) -> None:
        if phase == "bpr":
            if self.bpr_metrics is None and self.group.is_main:
                self.bpr_metrics = self.evaluate(self.g)
                self.log_metrics("bpr", self.bpr_metrics, 0)
            self.save_model("bpr.pt", {"generator": self.g.state_dict()})
        elif phase == "irgan":
            self.save_model("irgan.pt", {"generator": self.g.state_dict(), "discriminator": self.d.state_dict()})

    @torch.no_grad()
    def sample_items(self, users: Tensor, temperature: float, chunk: int = 8192) -> Tensor:
        """One item per entry of users (R,), from the policy softmax(scores / temperature) -> (R,)."""
        policy = ItemPolicy(self.g, temperature)
        return torch.cat([generate(policy, len(u), 1, generator=self.rng, initial_state=u)[:, 0]
                          for u in users.split(chunk)])

    def irgan(self, epoch: int) -> None:
        c, group, g, d = self.config, self.group, self.g, self.d
        where = f"IRGAN epoch {epoch}"
        for d_pass in range(c.d_epochs):
            if d_pass % c.d_resample_every == 0:
                # every process draws its own negatives and uses those of its rows
                negatives = self.sample_items(self.pairs[:, 0], c.temperature)  # (P,)
            for idx in self.shuffled(len(self.pairs), c.batch_size):
                users = torch.cat([self.pairs[idx, 0], self.pairs[idx, 0]])
                items = torch.cat([self.pairs[idx, 1], negatives[idx]])
                labels = torch.cat([torch.ones(len(idx)), torch.zeros(len(idx))]).to(self.device)
                # IRGAN's penalty is on the embeddings of the pairs scored, not on a layer of D
                loss = discriminator_loss(d(users, items), labels) + c.d_l2 * d.l2(users, items) / len(users)
                d_loss = discriminator_update(d, self.d_opt, loss, 0.0, where, group)
        if c.d_epochs:
            self.writer.add_scalar("losses/d", d_loss, epoch)
        for _ in range(c.g_epochs):
            for idx in self.shuffled(len(self.users_with_positives), c.user_batch):
                users = self.users_with_positives[idx].repeat_interleave(self.per_user[self.users_with_positives[idx]])
                logits = g.all_scores(users) / c.g_temperature  # (R, I)
                items, weights = sample_proposal(logits.detach(), self.positives[users], c.mix, self.rng)
                policy = ItemPolicy(g, c.g_temperature)
                rewards = RolloutEngine(policy, num_rollouts=1).rewards(
                    items.unsqueeze(1), ItemReward(d, users), initial_state=users)  # (R, 1): T = 1, no rollout
                advantages = rewards * weights.unsqueeze(1)
                check_finite(advantages, "a reward", where)
                rows = torch.ones_like(advantages)
                pg = policy_gradient_update(g, self.g_opt, logits.unsqueeze(1), items.unsqueeze(1), advantages, None,
                                            group.token_normalizer(rows) if group.active else None, 0.0, where, group)
        if c.g_epochs:
            self.writer.add_scalar("losses/g_pg", pg, epoch)
            self.writer.add_scalar("charts/reward_mean", rewards.mean().item(), epoch)
        if group.is_main:
            metrics = self.evaluate(g)
            self.record("irgan", metrics, epoch=epoch)

    @torch.no_grad()
    def evaluate(self, scorer: torch.nn.Module) -> dict:
        scores = scorer.all_scores(torch.arange(self.data.num_users, device=self.device)).cpu()
        return ranking_metrics(scores, self.data.test_positive, self.data.train_positive, RANKING_CUTOFFS)

    def finish(self) -> dict:
        return {"data": self.data.info, "seed": self.config.seed,
                "models": {"bpr": self.bpr_metrics, "irgan": self.evaluate(self.g)}}


COLUMNS = ["p@3", "p@5", "p@10", "ndcg@3", "ndcg@5", "ndcg@10"]


def train_seeds(config: IRGANConfig, crash_at: Optional[CrashPoint] = None) -> dict:
    """IRGAN against BPR for seeds config.seed, +1, ... (`config.seeds` of them), each in
    out/seed-<s>; a seed whose results.json exists is not run again and one that was
    stopped goes on from its checkpoint, so the same call (or `resume=out`) goes on after
    an interruption. Writes out/seeds.json, prints and returns the mean ± std summary."""
    out = Path(config.resume or config.out)
    given_resume = config.resume is not None
    if config.resume is not None:  # the options the runs were started with
        saved = out / "config.json"
        if not saved.is_file():
            raise ValueError(f"--resume {out}: no config.json of train_irgan.py there")
        given = {k: getattr(config, k) for k in config.given}
        config = resumed_config(IRGANConfig, json.loads(saved.read_text()), given, str(out))
        config = dataclasses.replace(config, resume=None)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun rank 0 writes
        writable_dir(out, "--resume" if given_resume else "--out")
        write_text_atomic(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2))
    data = load_ratings(config.data, data_dir=config.data_dir, test_rows=config.test_rows)
    # under torchrun the processes stay in one group for all the seeds and leave it together
    # at the very end: one that leaves and exits while rank 0 still works can be aborted by gloo
    with joined_group(config.device):
        summary = _train_seeds(config, data, out, crash_at)
    return summary


def _train_seeds(config: IRGANConfig, data: RatingData, out: Path, crash_at: Optional[CrashPoint]) -> dict:
    seeds = [config.seed + i for i in range(config.seeds)]
    start = time.time()
    runs = []
    for seed in seeds:
        run_dir = out / f"seed-{seed}"
        if (run_dir / "results.json").is_file():
            runs.append(json.loads((run_dir / "results.json").read_text()))
            continue
        resume = str(run_dir) if (run_dir / "checkpoint.pt").is_file() else None
        run_config = dataclasses.replace(config, seed=seed, out=str(run_dir), resume=resume)
        results = IRGANTrainer(run_config, data=data, crash_at=crash_at).train()
        if results is None:  # not rank 0 under torchrun
            continue
        runs.append(results)
    if not runs:
        return {}
    wall = time.time() - start
    summary = {model: {metric: {"mean": statistics.fmean(r["models"][model][metric] for r in runs),
                                "std": statistics.stdev(r["models"][model][metric] for r in runs) if len(runs) > 1 else 0.0,
                                "values": [r["models"][model][metric] for r in runs]}
                       for metric in runs[0]["models"][model]}
               for model in ("bpr", "irgan")}
    write_text_atomic(out / "seeds.json", json.dumps({"seeds": seeds, "wall_s": wall, "summary": summary,
                                                      "data": data.info, "config": dataclasses.asdict(config)}, indent=2))
    print(f"\n{data.name}: {data.num_users} users, {data.num_items} items, {data.info['train_positives']} training / "
          f"{data.info['test_positives']} test positives; mean ± std over seeds {', '.join(map(str, seeds))}")
    print(f"{'model':<8}" + "".join(f"{c:>17}" for c in COLUMNS))
    for model, metrics in summary.items():
        print(f"{model:<8}" + "".join(f"{metrics[c]['mean']:>9.4f} ± {metrics[c]['std']:.4f}" for c in COLUMNS))
    print(f"wall time {wall:.0f} s for {len(seeds)} seeds")
    return summary
