#!/usr/bin/env python
"""SeqGAN (Yu et al., AAAI 2017) against an MLE baseline of equal budget.

    python scripts/train_seqgan.py --corpus poems              # the `cpu` preset
    python scripts/train_seqgan.py --corpus oracle --oracle paper
    python scripts/train_seqgan.py --corpus my.txt --tokenizer sentencepiece --vocab-size 4000

Phases, as in the official code (sequence_gan.py):
  1. pretrain G by MLE (teacher forcing);
  2. pretrain D on real vs generated sequences;
  3. MLE baseline: from the pretrained G, `adv_epochs * g_steps` more MLE updates;
  4. adversarial: per epoch, `g_steps` policy-gradient updates of G with rollout
     rewards from a delayed copy of G (moving average, rate 0.8), then `d_rounds`
     rounds of D training on fresh samples;
  5. evaluation of the pretrained G, the MLE baseline and SeqGAN on the same metrics.
Writes to --out: tensorboard logs (tb/), checkpoint.pt after every epoch of every
phase (atomic, the one before kept as checkpoint.pt.prev), pretrained.pt / mle.pt /
seqgan.pt, decoded samples, results.json.

    python scripts/train_seqgan.py --resume runs/seqgan      # after a crash, a kill or Ctrl-C

goes on from the checkpoint with the run's own options and ends with the same
parameters, bit for bit on CPU, as a run that never stopped. Ctrl-C (or SIGTERM)
stops at the next checkpoint. Bad input stops with one line and exit code 2; a
NaN or infinite loss, reward or gradient stops before the update with exit code 3.

    torchrun --standalone --nproc-per-node 2 scripts/train_seqgan.py --corpus poems --device cpu

trains data-parallel (gloo on CPU, NCCL on GPUs, `seqadv.distributed`): each process
samples, rolls out and trains on its rows of every batch (--batch-size is the
global batch), gradients are averaged before clipping, rank 0 alone evaluates and
writes; resume with the same number of processes.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from seqadv.checkpoint import CheckpointError, load_latest, save_checkpoint, write_text_atomic
from seqadv.cli import check_ranges, parse_dataclass_args, seed_everything
from seqadv.corpus import DataError
from seqadv.dataset import SequenceData, batches, load_corpus
from seqadv.discriminator import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, Discriminator
from seqadv.distributed import Group, setup, teardown
from seqadv.generator import Generator
from seqadv.losses import discriminator_loss, mle_loss, policy_gradient_loss
from seqadv.metrics import BLEU, nll, self_bleu
from seqadv.policy import ema_update
from seqadv.rewards import discriminator_reward
from seqadv.rollout import RolloutEngine
from seqadv.sampling import tokens_mask
from seqadv.training import NumericalError, check_finite, clip_and_step


@dataclass
class Args:
    corpus: str = "poems"  # poems | coco | oracle | path/to/file.txt
    preset: str = "cpu"  # tiny | cpu | paper
    oracle: str = "random"  # oracle corpus: random (seeded N(0,1)) | paper (the paper's oracle file)
    data_dir: Optional[str] = None
    tokenizer: Optional[str] = None  # char | word | sentencepiece (default: the recipe's, word for files)
    vocab_size: Optional[int] = None
    max_length: Optional[int] = None
    max_train: Optional[int] = None  # keep only this many training sequences
    max_test: Optional[int] = None
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 88
    out: str = "runs/seqgan"
    debug: bool = False  # show full tracebacks
    resume: Optional[str] = None  # a run's --out directory: go on from its checkpoint, with its options
    # generator (official: embedding 32, hidden 32, Adam 0.01, clip 5.0, batch 64)
    g_embedding_dim: int = 32
    g_hidden_dim: int = 32
    g_lr: float = 0.01
    grad_clip: float = 5.0
    batch_size: int = 64
    pretrain_epochs: int = 120
    # discriminator (official: embedding 64, widths 1-10, 15, 20, dropout 0.25, L2 0.2, Adam 1e-4)
    d_embedding_dim: int = 64
    d_filter_sizes: tuple[int, ...] = PAPER_FILTER_SIZES
    d_num_filters: tuple[int, ...] = PAPER_NUM_FILTERS
    d_dropout: float = 0.25
    d_l2: float = 0.2
    d_lr: float = 1e-4
    d_samples: int = 10000  # generated (and as many real) sequences per D round
    d_pretrain_rounds: int = 50
    d_epochs: int = 3  # epochs over each round's data
    # adversarial (official: 200 epochs of 1 G step and 5 D rounds, 16 rollouts, rate 0.8)
    adv_epochs: int = 200
    g_steps: int = 1
    d_rounds: int = 5
    num_rollouts: int = 16
    rollout_rate: float = 0.8
    rollout_memory_mb: float = 512.0
    # evaluation
    eval_every: int = 10  # adversarial epochs (and MLE-baseline steps) between evaluations
    pretrain_eval_every: int = 10  # pretraining epochs between evaluations
    eval_samples: int = 2000  # samples scored by BLEU / Self-BLEU
    nll_oracle_samples: int = 10000  # the paper's count
    bleu_max_n: int = 4


PRESETS: dict[str, dict] = {
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


# --- configuration -------------------------------------------------------------------------

def parse_args(argv: Optional[list[str]] = None) -> tuple[Args, dict]:
    """Dataclass defaults <- the preset <- options given on the command line.
    Returns the arguments and the options given explicitly."""
    args, given = parse_dataclass_args(Args, PRESETS, argv, __doc__.split("\n")[0], {"oracle": ["random", "paper"]})
    validate(args)
    return args, given


# options a resumed run may change: they do not alter what it computes (on one device)
RESUME_MAY_CHANGE = ("resume", "debug", "device", "data_dir")


def resumed_args(state: dict, given: dict, directory: str) -> Args:
    """The run's own options, from its checkpoint; an option given again must agree."""
    saved = state["args"]
    for key, value in given.items():
        if key in RESUME_MAY_CHANGE:
            continue
        if key == "out":
            if Path(value).resolve() != Path(directory).resolve():
                raise ValueError(f"--out {value}: a resumed run goes on writing into its own directory {directory}")
            continue
        if saved.get(key) != value:
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"--resume {directory}: {flag} {value} differs from the run's {saved.get(key)}; "
                             f"leave it out to go on with the run's own")
    args = Args(**{**saved, **{k: given[k] for k in RESUME_MAY_CHANGE if k in given}, "out": directory})
    validate(args)
    return args


def validate(args: Args) -> None:
    check_ranges(args, positive=["batch_size", "num_rollouts", "g_embedding_dim", "g_hidden_dim", "d_embedding_dim",
                                 "d_samples", "eval_samples", "nll_oracle_samples", "eval_every", "pretrain_eval_every",
                                 "g_lr", "d_lr"],
                 non_negative=["pretrain_epochs", "d_pretrain_rounds", "d_epochs", "adv_epochs", "g_steps", "d_rounds",
                               "grad_clip", "d_l2", "d_dropout"])
    if not 0.0 <= args.rollout_rate <= 1.0:
        raise ValueError(f"--rollout-rate must be in [0, 1], got {args.rollout_rate}")
    if len(args.d_filter_sizes) != len(args.d_num_filters):
        raise ValueError("--d-filter-sizes and --d-num-filters must have the same length")


# --- training pieces -------------------------------------------------------------------------

def mle_step(g: Generator, opt: torch.optim.Optimizer, batch: torch.Tensor, args: Args, where: str,
             group: Group) -> float:
    """One teacher-forcing update from this process's rows of a batch. batch (b, T).
    Returns the loss of the whole batch (the mean over its tokens)."""
    mask = tokens_mask(batch, g.eos_token, g.pad_token)
    loss = mle_loss(g.target_logits(batch), batch, mask, normalizer=group.token_normalizer(mask))
    return clip_and_step(g, opt, loss, args.grad_clip, where, "the MLE loss", group.average_gradients)


def policy_gradient_step(g: Generator, opt: torch.optim.Optimizer, rollout_policy: Generator, samples: torch.Tensor,
                         rewards: torch.Tensor, args: Args, where: str, group: Group) -> float:
    """One REINFORCE update of G from this process's rows, then the delayed policy's
    moving average (identical on every process: the update is). Returns the loss.

    Shape: samples (b, T), rewards (b, T)
    """
    mask = tokens_mask(samples, g.eos_token, g.pad_token)
    loss = policy_gradient_loss(g.target_logits(samples), samples, rewards, mask,
                                normalizer=group.token_normalizer(mask))
    value = clip_and_step(g, opt, loss, args.grad_clip, where, "the policy-gradient loss", group.average_gradients)
    ema_update(rollout_policy, g, args.rollout_rate)
    return value


def discriminator_step(d: Discriminator, opt: torch.optim.Optimizer, sequences: torch.Tensor, labels: torch.Tensor,
                       args: Args, where: str, group: Group) -> tuple[float, int]:
    """One update of D from this process's rows of a batch. Returns the whole batch's
    loss and this process's count of correct guesses.

    Shape: sequences (b, T), labels (b,) of 1 (real) / 0 (generated)
    """
    logits = d(sequences)
    loss = discriminator_loss(logits, labels) + args.d_l2 * d.l2_penalty()
    value = clip_and_step(d, opt, loss, 0.0, where, "the discriminator loss", group.average_gradients)
    return value, int(((logits > 0).float() == labels).sum().item())


def train_discriminator_round(d: Discriminator, opt, g: Generator, data: SequenceData, args: Args,
                              rng: torch.Generator, order_rng: torch.Generator, where: str,
                              group: Group) -> tuple[float, float]:
    """Fresh generated sequences vs as many real ones, `d_epochs` epochs. Returns (loss, accuracy).

    Each process draws its share of the generated sequences with its own generator and
    all of them are gathered, so every process holds the same training set and, with
    the shared data order, takes its rows of the same batches.
    """
    num = min(args.d_samples, len(data.train))
    num -= num % group.world_size
    fake = group.all_gather(g.sample(num // group.world_size, data.length, generator=rng))
    real = data.train[torch.randperm(len(data.train), generator=order_rng)[:num]].to(fake.device)
    sequences = torch.cat([real, fake])
    labels = torch.cat([torch.ones(num), torch.zeros(num)]).to(fake.device)
    d.train()
    losses, correct, seen = [], 0, 0
    for _ in range(args.d_epochs):
        order = torch.randperm(len(sequences), generator=order_rng).to(fake.device)
        for begin in range(0, len(order) - args.batch_size + 1, args.batch_size):
            idx = group.shard(order[begin : begin + args.batch_size])
            loss, right = discriminator_step(d, opt, sequences[idx], labels[idx], args, where, group)
            losses.append(loss)
            correct += right
            seen += len(idx)
    correct, seen = group.sum(torch.tensor([correct, seen], dtype=torch.float64, device=fake.device)).tolist()
    return float(np.mean(losses)) if losses else float("nan"), correct / max(seen, 1)


@torch.no_grad()
def evaluate(g: Generator, data: SequenceData, args: Args, bleu: Optional[BLEU], seed: int) -> tuple[dict, torch.Tensor]:
    """Metrics of one generator, on samples drawn with a fixed seed."""
    rng = torch.Generator(device=g.device).manual_seed(seed)
    test = data.test.to(g.device)
    metrics = {"nll_test": nll(g, test, eos_token=data.eos_token, pad_token=data.pad_token)}
    if data.oracle is not None:
        samples = g.sample(args.nll_oracle_samples, data.length, generator=rng)
        metrics["nll_oracle"] = nll(data.oracle, samples)
    else:
        samples = g.sample(args.eval_samples, data.length, generator=rng)
        tokens = [data.tokens(s) for s in samples.cpu()]
        for n in range(2, args.bleu_max_n + 1):
            metrics[f"bleu{n}"] = bleu.score(tokens, n)
        for n in range(2, args.bleu_max_n + 1):
            metrics[f"self_bleu{n}"] = self_bleu(tokens, n)
    return metrics, samples


def log_metrics(writer: SummaryWriter, model: str, metrics: dict, step: int) -> None:
    for name, value in metrics.items():
        writer.add_scalar(f"eval/{model}/{name}", value, step)


def write_samples(path: Path, samples: torch.Tensor, data: SequenceData) -> None:
    write_text_atomic(path, "".join(data.text(s) + "\n" for s in samples.cpu()))


# --- the run -----------------------------------------------------------------------------------

PHASES = ("pretrain_g", "pretrain_d", "mle_baseline", "adversarial")


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) was honoured at a checkpoint."""


class StopAtCheckpoint:
    """Ctrl-C and SIGTERM ask the run to stop at its next checkpoint, so that what it
    leaves is consistent and resumes exactly; a second Ctrl-C stops it at once (the
    last checkpoint is still there)."""

    def __init__(self, announce: bool = True):
        self.requested = False
        self.announce = announce  # under torchrun every process gets the signal; rank 0 says so

    def __enter__(self) -> "StopAtCheckpoint":
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            print("\nstopping at the next checkpoint (Ctrl-C again to stop now)", file=sys.stderr, flush=True)


def rng_states(rng: torch.Generator, order_rng: torch.Generator) -> dict:
    states = {"sampling": rng.get_state(), "order": order_rng.get_state(), "torch": torch.get_rng_state(),
              "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict, rng: torch.Generator, order_rng: torch.Generator) -> None:
    rng.set_state(states["sampling"])
    order_rng.set_state(states["order"])
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _crash_point(phase: str, unit: int) -> Optional[Callable[[], None]]:
    """Tests: SEQADV_CRASH_AT=phase:unit kills the run (SIGKILL) once that unit's work is
    done but before its checkpoint is written, as a crash would; phase:unit:write kills it
    after the new checkpoint is written to its temporary file, before the rename."""
    point = os.environ.get("SEQADV_CRASH_AT")
    kill = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    if point == f"{phase}:{unit}":
        kill()
    return kill if point == f"{phase}:{unit}:write" else None


# the random streams of process r > 0 start this far from the run's seed; process 0 keeps
# the run's own, so a single process draws exactly what a plain run draws
RANK_SEED_STRIDE = 1_000_003


class NoWriter:
    """Where processes other than rank 0 send their logs: nowhere."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def run(args: Args, resume: Optional[dict] = None, stop: Optional[StopAtCheckpoint] = None,
        group: Optional[Group] = None) -> Optional[dict]:
    """The whole run. Under torchrun `group` is this process's place in the group:
    every process trains on its rows of each batch; rank 0 alone evaluates, logs and
    writes files, and returns the results (the others return None)."""
    group = group or setup(args.device)
    device = group.device
    main_process = group.is_main
    group.local_size(args.batch_size, "--batch-size")
    made_by = resume.get("world_size", 1) if resume is not None else group.world_size
    if made_by != group.world_size:
        raise ValueError(f"--resume {args.resume}: the run was made by {made_by} process(es), this one has "
                         f"{group.world_size}; resume it with "
                         + ("python (no torchrun)" if made_by == 1 else f"torchrun --nproc-per-node {made_by}"))
    seed_everything(args.seed)
    out = Path(args.out)
    if main_process:
        out.mkdir(parents=True, exist_ok=True)

    # rank 0 reads the corpus first, so the others find its caches made instead of racing to make them
    if not main_process:
        group.barrier()
    data = load_corpus(args.corpus, data_dir=args.data_dir, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                       max_length=args.max_length, oracle=args.oracle, max_train=args.max_train, max_test=args.max_test)
    if main_process:
        group.barrier()
    if data.oracle is not None:
        data.oracle.to(device)
    if len(data.train) < args.batch_size:
        raise DataError(f"{args.corpus}: {len(data.train)} training sequences, fewer than one batch of {args.batch_size}")
    T = data.length
    truncated = data.info.get("truncated_train_lines", 0) + data.info.get("truncated_test_lines", 0)
    if main_process:
        print(f"corpus {data.name}: {len(data.train)} train / {len(data.test)} test sequences, length {T}"
              + (f" ({truncated} longer lines cut to it)" if truncated else "")
              + f", vocabulary {data.vocab_size}; device {device}"
              + (f" x {group.world_size} processes" if group.active else "") + f"; preset {args.preset}")
    bleu = None
    if main_process and data.oracle is None:
        bleu = BLEU([data.tokens(s) for s in data.test], max_n=args.bleu_max_n)

    writer = SummaryWriter(str(out / "tb")) if main_process else NoWriter()
    writer.add_text("config", "```\n" + json.dumps(dataclasses.asdict(args), indent=1) + "\n```")
    # sampling and rollouts: each process its own stream; the data order: one stream shared by all
    rng = torch.Generator(device=device).manual_seed(args.seed + RANK_SEED_STRIDE * group.rank)
    order_rng = torch.Generator().manual_seed(args.seed + 1)  # data order
    eval_seed = args.seed + 2  # every evaluation draws from the same seed: comparable across models

    meta = {"args": dataclasses.asdict(args), "vocab": data.vocab.itos if data.vocab else None,
            "tokenizer": data.tokenizer.state() if data.tokenizer else None, "data_info": data.info,
            "generator_config": dict(vocab_size=data.vocab_size, embedding_dim=args.g_embedding_dim,
                                     hidden_dim=args.g_hidden_dim, start_token=data.start_token,
                                     eos_token=data.eos_token, pad_token=data.pad_token)}
    g = Generator(**meta["generator_config"]).to(device)
    g_opt = torch.optim.Adam(g.parameters(), lr=args.g_lr)
    d = Discriminator(data.vocab_size, args.d_embedding_dim, args.d_filter_sizes, args.d_num_filters,
                      args.d_dropout, pad_token=data.pad_token or 0).to(device)
    d_opt = torch.optim.Adam(d.parameters(), lr=args.d_lr)
    mle = Generator(**meta["generator_config"]).to(device)  # the MLE baseline, from the pretrained G
    mle_opt = torch.optim.Adam(mle.parameters(), lr=args.g_lr)
    rollout_policy = copy.deepcopy(g).requires_grad_(False)  # SeqGAN's delayed policy of the rollouts
    g_adv_opt = torch.optim.Adam(g.parameters(), lr=args.g_lr)  # the official code's separate optimizer
    train = data.train.to(device)

    # where the run is: the phase, the units (epochs, rounds, steps) done in it, and the
    # MLE baseline's place in its shuffled epoch
    progress = {"phase": PHASES[0], "done": 0, "g_step": 0, "mle_order": None, "mle_position": 0}
    pretrained: Optional[dict] = None  # G and its optimizer after MLE pretraining
    timings: dict[str, float] = {}
    split = {"rollout_s": 0.0, "g_update_s": 0.0, "d_train_s": 0.0}
    history: dict[str, list] = {"pretrain": [], "mle": [], "seqgan": []}
    modules = {"generator": g, "g_optimizer": g_opt, "discriminator": d, "d_optimizer": d_opt,
               "mle_generator": mle, "mle_optimizer": mle_opt, "rollout_policy": rollout_policy,
               "g_adv_optimizer": g_adv_opt}
    for model in (g, d, mle, rollout_policy):
        group.broadcast_(model)  # equal already (one seed); this makes sure
    if group.rank > 0:
        torch.manual_seed(args.seed + RANK_SEED_STRIDE * group.rank)  # D's dropout: a different mask per process

    if resume is not None:
        check_resume_data(resume, meta, args.resume)
        for name, module in modules.items():
            module.load_state_dict(resume[name])
        progress, pretrained, timings = resume["progress"], resume["pretrained"], resume["timings"]
        split, history = resume["split"], resume["history"]
        states = resume["rng"] if isinstance(resume["rng"], list) else [resume["rng"]]  # one per process
        set_rng_states(states[group.rank], rng, order_rng)
        if main_process:
            print(f"resumed from {args.resume}: {progress['phase']}, {progress['done']} done")

    def checkpoint(phase: str, unit: int) -> None:
        """Everything the run needs to go on exactly as if it had not stopped: rank 0
        writes it, with every process's random streams."""
        crash_in_write = _crash_point(phase, unit)
        progress.update(phase=phase, done=unit)
        states = group.gather_objects(rng_states(rng, order_rng))
        if main_process:
            save_checkpoint({**meta, **{name: m.state_dict() for name, m in modules.items()},
                             "progress": progress, "pretrained": pretrained, "timings": timings, "split": split,
                             "history": history, "rng": states, "world_size": group.world_size},
                            out / "checkpoint.pt", keep_previous=True, _before_rename=crash_in_write)
        # a stop asked of any process stops them all, at the same checkpoint
        if group.any(stop is not None and stop.requested):
            raise Interrupted(f"stopped after {phase} {unit}; go on with --resume {out}")

    def first_unit(phase: str) -> Optional[int]:
        """The first unit of `phase` still to run, or None if the phase was finished before."""
        if PHASES.index(progress["phase"]) > PHASES.index(phase):
            return None
        return progress["done"] + 1 if progress["phase"] == phase else 1

    def add_time(key: str, since: float) -> None:
        timings[key] = timings.get(key, 0.0) + time.time() - since

    # 1. MLE pretraining ------------------------------------------------------------------
    t0 = time.time()
    if (first := first_unit("pretrain_g")) is not None:
        for epoch in tqdm(range(first, args.pretrain_epochs + 1), desc="pretrain G (MLE)", unit="epoch",
                          disable=not main_process):
            where = f"pretrain G epoch {epoch}"
            losses = [mle_step(g, g_opt, group.shard(batch), args, where, group)
                      for batch in batches(train, args.batch_size, order_rng)]
            progress["g_step"] += len(losses)
            writer.add_scalar("losses/g_mle", float(np.mean(losses)), progress["g_step"])
            if main_process and (epoch % args.pretrain_eval_every == 0 or epoch == args.pretrain_epochs):
                metrics, _ = evaluate(g, data, args, bleu, eval_seed)
                log_metrics(writer, "pretrain", metrics, epoch)
                history["pretrain"].append({"epoch": epoch, **metrics})
            checkpoint("pretrain_g", epoch)
        add_time("pretrain_g_s", t0)
    if pretrained is None:
        pretrained = {"generator": copy.deepcopy(g.state_dict()), "optimizer": copy.deepcopy(g_opt.state_dict())}
        if main_process:
            save_checkpoint({**meta, "generator": pretrained["generator"]}, out / "pretrained.pt")

    # 2. D pretraining ------------------------------------------------------------------------
    t0 = time.time()
    if (first := first_unit("pretrain_d")) is not None:
        for round_ in tqdm(range(first, args.d_pretrain_rounds + 1), desc="pretrain D", unit="round",
                           disable=not main_process):
            d_loss, d_acc = train_discriminator_round(d, d_opt, g, data, args, rng, order_rng,
                                                      f"pretrain D round {round_}", group)
            writer.add_scalar("losses/d_pretrain", d_loss, round_)
            writer.add_scalar("charts/d_pretrain_accuracy", d_acc, round_)
            checkpoint("pretrain_d", round_)
        add_time("pretrain_d_s", t0)

    # 3. MLE baseline of equal budget: as many G updates as the adversarial phase makes -----
    t0 = time.time()
    budget = args.adv_epochs * args.g_steps
    if (first := first_unit("mle_baseline")) is not None:
        if first == 1:
            mle.load_state_dict(pretrained["generator"])
            mle_opt.load_state_dict(pretrained["optimizer"])
        for step in tqdm(range(first, budget + 1), desc="MLE baseline", unit="step", disable=not main_process):
            # shuffled epochs of full batches, as in pretraining; the place in it is checkpointed
            if progress["mle_order"] is None or progress["mle_position"] + args.batch_size > len(train):
                progress["mle_order"] = torch.randperm(len(train), generator=order_rng)
                progress["mle_position"] = 0
            begin = progress["mle_position"]
            batch = train[progress["mle_order"][begin : begin + args.batch_size].to(device)]
            progress["mle_position"] += args.batch_size
            loss = mle_step(mle, mle_opt, group.shard(batch), args, f"MLE baseline step {step}", group)
            writer.add_scalar("losses/mle_baseline", loss, step)
            if step % (args.eval_every * args.g_steps) == 0 or step == budget:
                if main_process:
                    metrics, _ = evaluate(mle, data, args, bleu, eval_seed)
                    log_metrics(writer, "mle", metrics, step)
                    history["mle"].append({"g_updates": step, **metrics})
                checkpoint("mle_baseline", step)
        add_time("mle_baseline_s", t0)
    if main_process:
        save_checkpoint({**meta, "generator": mle.state_dict()}, out / "mle.pt")

    # 4. Adversarial training -----------------------------------------------------------------
    t0 = time.time()
    engine = RolloutEngine(rollout_policy, args.num_rollouts, memory_budget_mb=args.rollout_memory_mb,
                           eos_token=data.eos_token, pad_token=data.pad_token)
    reward_fn = discriminator_reward(d)
    if (first := first_unit("adversarial")) is not None:
        if first == 1:
            rollout_policy.load_state_dict(g.state_dict())
        for epoch in tqdm(range(first, args.adv_epochs + 1), desc="adversarial", unit="epoch", disable=not main_process):
            where = f"adversarial epoch {epoch}"
            for _ in range(args.g_steps):
                t = time.time()
                # this process's rows of the batch, and their rewards: the rollouts are split, not repeated
                samples = g.sample(group.local_size(args.batch_size, "--batch-size"), T, generator=rng)
                rewards = engine.rewards(samples, reward_fn, generator=rng)  # (b, T)
                all_rewards = group.all_gather(rewards)  # (B, T): checked and charted alike on every process
                check_finite(all_rewards, "a rollout reward", where)
                split["rollout_s"] += time.time() - t
                t = time.time()
                pg_loss = policy_gradient_step(g, g_adv_opt, rollout_policy, samples, rewards, args, where, group)
                split["g_update_s"] += time.time() - t
            t = time.time()
            for _ in range(args.d_rounds):
                d_loss, d_acc = train_discriminator_round(d, d_opt, g, data, args, rng, order_rng, where, group)
            split["d_train_s"] += time.time() - t
            step = epoch * args.g_steps
            writer.add_scalar("losses/g_pg", pg_loss, step)
            writer.add_scalar("charts/reward_mean", all_rewards.mean().item(), step)
            writer.add_scalar("charts/reward_last_token", all_rewards[:, -1].mean().item(), step)
            if args.d_rounds:
                writer.add_scalar("losses/d", d_loss, step)
                writer.add_scalar("charts/d_accuracy", d_acc, step)
            for name, seconds in split.items():
                writer.add_scalar(f"charts/{name}_per_epoch", seconds / epoch, step)
            if main_process and (epoch % args.eval_every == 0 or epoch == args.adv_epochs):
                metrics, samples = evaluate(g, data, args, bleu, eval_seed)
                log_metrics(writer, "seqgan", metrics, step)
                history["seqgan"].append({"g_updates": step, **metrics})
                writer.add_text("samples/seqgan", "\n\n".join(data.text(s) for s in samples[:5].cpu()), step)
            checkpoint("adversarial", epoch)
        add_time("adversarial_s", t0)
    if not main_process:
        return None  # rank 0 evaluates and writes what is left
    save_checkpoint({**meta, "generator": g.state_dict()}, out / "seqgan.pt")
    if args.adv_epochs:
        timings["adversarial_epoch_s"] = timings.get("adversarial_s", 0.0) / args.adv_epochs
        timings.update({f"adversarial_epoch_{k}": v / args.adv_epochs for k, v in split.items()})

    # 5. Final evaluation -----------------------------------------------------------------------
    t0 = time.time()
    results_by_model = {}
    for name, state in [("pretrained", pretrained["generator"]), ("mle", mle.state_dict()), ("seqgan", g.state_dict())]:
        model = Generator(**meta["generator_config"]).to(device)
        model.load_state_dict(state)
        metrics, samples = evaluate(model, data, args, bleu, eval_seed)
        results_by_model[name] = metrics
        write_samples(out / f"samples_{name}.txt", samples[: args.eval_samples], data)
        writer.add_text(f"samples/final_{name}", "\n\n".join(data.text(s) for s in samples[:10].cpu()))
    timings["final_eval_s"] = time.time() - t0
    timings["total_s"] = sum(timings.get(f"{phase}_s", 0.0) for phase in PHASES) + timings["final_eval_s"]
    writer.close()

    results = {
        "corpus": data.name, "preset": args.preset, "seed": args.seed, "device": str(device),
        "processes": group.world_size,
        "generator_updates": {"pretrain_epochs": args.pretrain_epochs, "mle_baseline": budget, "seqgan": budget},
        "models": results_by_model, "history": history, "timings": timings,
        "data": {**data.info, "num_train": len(data.train), "num_test": len(data.test), "vocab_size": data.vocab_size},
        "args": dataclasses.asdict(args),
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    print_table(results)
    return results


def check_resume_data(state: dict, meta: dict, where: str) -> None:
    """The corpus must encode as it did when the run began."""
    for key, what in [("vocab", "vocabulary"), ("tokenizer", "tokenizer"), ("generator_config", "generator")]:
        if state.get(key) != meta[key]:
            raise DataError(f"{where}: the checkpoint's {what} does not match this corpus's "
                            f"(the data or its options changed since the run began)")


LOWER_IS_BETTER = ("nll_test", "nll_oracle", "self_bleu")


def print_table(results: dict) -> None:
    models = results["models"]
    names = list(models["seqgan"])
    print(f"\n{results['corpus']} ({results['preset']} preset, seed {results['seed']}): "
          f"pretrained G, then {results['generator_updates']['seqgan']} more G updates each")
    print(f"{'metric':<14}{'pretrained':>12}{'MLE':>12}{'SeqGAN':>12}   better")
    for metric in names:
        lower = metric.startswith(LOWER_IS_BETTER)
        row = "".join(f"{models[m][metric]:>12.4f}" for m in ("pretrained", "mle", "seqgan"))
        mle, gan = models["mle"][metric], models["seqgan"][metric]
        winner = "tie" if mle == gan else ("SeqGAN" if (gan < mle) == lower else "MLE")
        note = " (lower is better)" if lower else ""
        print(f"{metric:<14}{row}   {winner}{note}")
    t = results["timings"]
    print(f"wall time {t['total_s']:.0f} s (pretrain G {t['pretrain_g_s']:.0f} s, pretrain D {t['pretrain_d_s']:.0f} s, "
          f"MLE baseline {t['mle_baseline_s']:.0f} s, adversarial {t['adversarial_s']:.0f} s, eval {t['final_eval_s']:.0f} s)")
    if "adversarial_epoch_s" in t:
        e = t["adversarial_epoch_s"]
        print(f"one adversarial epoch {e:.2f} s: rollouts {t['adversarial_epoch_rollout_s'] / e:.0%}, "
              f"G update {t['adversarial_epoch_g_update_s'] / e:.0%}, D training {t['adversarial_epoch_d_train_s'] / e:.0%}")


def main(argv: Optional[list[str]] = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    # under torchrun every process meets the same errors: rank 0 tells them
    quiet = int(os.environ.get("RANK", "0")) != 0
    say = lambda line: quiet or print(f"train_seqgan.py: {line}", file=sys.stderr)  # noqa: E731
    try:
        args, given = parse_args(argv)
        resume = None
        if args.resume is not None:
            path = Path(args.resume) / "checkpoint.pt"
            resume = load_latest(path, warn=lambda line: say(f"warning: {line}"))
            args = resumed_args(resume, given, args.resume)
        group = setup(args.device)
        with StopAtCheckpoint(announce=not quiet) as stop:
            run(args, resume, stop, group)
        teardown()  # every process waits for rank 0's evaluation, and they leave together
    except (DataError, CheckpointError, ValueError, NumericalError) as exc:
        if debug:
            raise
        say(f"error: {exc}")
        return 3 if isinstance(exc, NumericalError) else 2
    except Interrupted as exc:
        say(str(exc))
        return 130
    except KeyboardInterrupt:
        say("interrupted; the last checkpoint is in --out (go on with --resume)")
        return 130
    finally:
        teardown(together=False)  # after an error; a run that ended has left already
    return 0


if __name__ == "__main__":
    sys.exit(main())
