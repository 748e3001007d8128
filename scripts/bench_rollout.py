#!/usr/bin/env python
"""Rollout speed, side by side on the same weights and input: the naive per-prefix
loop, the engine, and the floor (the work no implementation can avoid).

    python scripts/bench_rollout.py                       # the SeqGAN oracle case, both rewards
    python scripts/bench_rollout.py --reward cheap --scaling --json bench.json
    python scripts/bench_rollout.py --device cuda

The reference case is the paper's oracle experiment: batch 64, 16 rollouts,
length 20, vocabulary 5,000, generator 32/32, the paper's discriminator.
The floor is timed piece by piece on this machine: the output projection of
every rollout step, one exact categorical draw for every sampled token, and (for
the `paper` reward) one discriminator forward over all B*N*(T-1)+B sequences.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from seqadv.discriminator import Discriminator
from seqadv.generator import Generator
from seqadv.rewards import discriminator_reward
from seqadv.rollout import RolloutEngine
from seqadv.rollout_reference import naive_rollout_rewards
from seqadv.sampling import sample_from_logits


@dataclass
class Case:
    batch: int = 64
    rollouts: int = 16
    length: int = 20
    vocab: int = 5000
    embedding: int = 32
    hidden: int = 32


class PeakMemory:
    """Peak RSS (CPU, sampled every 2 ms) or peak allocated memory (CUDA) during a block, in GB."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._stop = threading.Event()
            self.peak = self._rss()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss())

    @property
    def gb(self) -> float:
        return self.peak / 2**30


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    once()
    return statistics.median(once() for _ in range(repeats))


def floor_seconds(g: Generator, d: Optional[Discriminator], case: Case, repeats: int, device: torch.device) -> dict:
    """The unavoidable parts, each timed alone at its best batching.

    Any exact rollout must compute one next-token distribution per distinct
    context and draw every sampled token from one. The distinct contexts are
    the B * (T - 1) prefixes (whose N first rollout tokens share a distribution)
    and, at position k = 2 .. T - 1, the (k - 1) * B * N rollouts already under
    way: B * (T - 1) + B * N * (T - 1) * (T - 2) / 2 rows (176,320 in the oracle
    case; counting one per sampled token, as a plain per-step loop must, gives
    B * N * T * (T - 1) / 2 = 194,560). Each part is timed alone on a reused,
    cache-sized buffer, at the best of several block sizes, so the floor leaves
    out every allocation, copy and state update the engine makes.
    """
    B, N, T, V, H = case.batch, case.rollouts, case.length, case.vocab, case.hidden
    prefix_rows = B * (T - 1)
    step_rows = B * N * (T - 1) * (T - 2) // 2
    gen = torch.Generator(device=device).manual_seed(0)
    weight, bias = g.head.weight.detach(), g.head.bias.detach()

    def in_blocks(rows: int, block: int, fn: Callable[[int], object]) -> None:
        for begin in range(0, rows, block):
            fn(min(block, rows - begin))

    def projections(block: int) -> float:
        hidden = torch.randn(block, H, device=device, generator=gen)
        out = torch.empty(block, V, device=device)
        project = lambda r: torch.addmm(bias, hidden[:r], weight.T, out=out[:r])
        return timed(lambda: in_blocks(prefix_rows + step_rows, block, project), repeats, device)

    def draws(block: int, block_size) -> float:
        # overwrite=True turns the buffer into exp(logits - max); re-sampling that
        # keeps every value finite and costs the same, so one buffer serves all calls
        logits = torch.randn(block, V, device=device, generator=gen)
        u_step = torch.rand(block, 1, device=device, generator=gen)
        u_prefix = torch.rand(block, N, device=device, generator=gen)
        def draw(u: torch.Tensor) -> Callable[[int], object]:
            return lambda r: sample_from_logits(logits[:r], u[:r], block_size=block_size, overwrite=True)
        return timed(lambda: (in_blocks(prefix_rows, block, draw(u_prefix)), in_blocks(step_rows, block, draw(u_step))),
                     repeats, device)

    blocks = [b for b in (64, 128, 256, 512, 1024, 4096) if b * V * 4 <= 2**30]
    parts = {
        "projection_s": min(projections(b) for b in blocks),
        # the sampler's two-level CDF (block_size None) or one running sum (0), whichever is faster
        "draw_s": min(draws(b, s) for b in blocks for s in (None, 0)),
    }
    if d is not None:
        count = B * N * (T - 1) + B
        sequences = torch.randint(V, (count, T), device=device, generator=gen)
        parts["reward_s"] = min(timed(lambda: discriminator_reward(d, max_rows=size)(sequences), repeats, device)
                                for size in (1024, 4096, count))
    parts["floor_s"] = sum(parts.values())
    return parts


def build(case: Case, device: torch.device, seed: int = 0):
    torch.manual_seed(seed)
    g = Generator(case.vocab, case.embedding, case.hidden).to(device).eval()
    d = Discriminator(case.vocab).to(device).eval()
    sequences = g.sample(case.batch, case.length, generator=torch.Generator(device=device).manual_seed(seed))
    return g, d, sequences


def cheap_reward(sequences: torch.Tensor) -> torch.Tensor:
    """Near-free: the sum of token ids, so only the rollouts are timed."""
    return sequences.float().sum(dim=1)


def bench_reward(case: Case, reward_name: str, args, device: torch.device, naive: bool = True) -> dict[str, dict]:
    """Rows for one reward: `paper` gives two, the dense discriminator and `paper-shared`
    (the default `DiscriminatorReward`, which computes windows inside a prefix once)."""
    g, d, sequences = build(case, device)
    if reward_name == "paper":
        variants = {"paper": discriminator_reward(d, share_prefix=False), "paper-shared": discriminator_reward(d)}
    else:
        variants = {"cheap": cheap_reward}
    engine = RolloutEngine(g, case.rollouts)
    rows = {}
    for name, reward in variants.items():
        gen = torch.Generator(device=device).manual_seed(1)
        engine_s = timed(lambda: engine.rewards(sequences, reward, generator=gen), args.repeats, device)
        # measured apart: polling the RSS slows the timed calls by a few per cent
        with PeakMemory(device) as memory:
            engine.rewards(sequences, reward, generator=gen)
        rows[name] = {"engine_s": engine_s, "peak_memory_gb": memory.gb}
    if naive:
        gen = torch.Generator(device=device).manual_seed(1)
        naive_s = timed(lambda: naive_rollout_rewards(g, sequences, variants[reward_name], case.rollouts, generator=gen),
                        args.repeats, device)
    floor = floor_seconds(g, d if reward_name == "paper" else None, case, args.repeats, device)
    for row in rows.values():
        if naive:
            row.update(naive_s=naive_s, speedup=naive_s / row["engine_s"])
        row.update(floor, floor_ratio=row["engine_s"] / floor["floor_s"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in vars(Case()).items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--reward", choices=["paper", "cheap", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after one warm-up; the median is shown")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scaling", action="store_true", help="also time T, V and N changed one at a time (engine vs floor)")
    parser.add_argument("--scaling-reward", choices=["paper", "cheap"], default="cheap")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    case = Case(**{k: getattr(args, k) for k in vars(Case())})
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"rollout benchmark: {case}, device {device} ({machine}), torch {torch.__version__}, "
          f"median of {args.repeats} after a warm-up")

    results: dict = {"machine": machine, "device": str(device), "torch": torch.__version__, "case": vars(case)}
    rewards = ["paper", "cheap"] if args.reward == "both" else [args.reward]
    print(f"{'reward':<14}{'naive s':>9}{'engine s':>10}{'floor s':>9}{'speed-up':>10}{'/floor':>8}{'peak GB':>9}")
    for reward_name in rewards:
        for name, row in bench_reward(case, reward_name, args, device).items():
            results[name] = row
            print(f"{name:<14}{row['naive_s']:>9.2f}{row['engine_s']:>10.2f}{row['floor_s']:>9.2f}"
                  f"{row['speedup']:>9.1f}x{row['floor_ratio']:>8.2f}{row['peak_memory_gb']:>9.2f}")

    if args.scaling:
        print(f"\nscaling ({args.scaling_reward} reward; one setting changed at a time)")
        print(f"{'setting':<16}{'reward':<14}{'engine s':>10}{'floor s':>9}{'/floor':>8}{'peak GB':>9}")
        results["scaling"] = []
        for field, values in [("length", (10, 20, 40)), ("vocab", (5000, 20000)), ("rollouts", (8, 16, 32))]:
            for value in values:
                changed = Case(**{**vars(case), field: value})
                for name, row in bench_reward(changed, args.scaling_reward, args, device, naive=False).items():
                    results["scaling"].append({field: value, "reward": name, **row})
                    print(f"{field + '=' + str(value):<16}{name:<14}{row['engine_s']:>10.2f}{row['floor_s']:>9.2f}"
                          f"{row['floor_ratio']:>8.2f}{row['peak_memory_gb']:>9.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
