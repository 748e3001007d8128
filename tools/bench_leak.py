#!/usr/bin/env python
"""LeakGAN's leaked features per step of sampling and rollouts: D's window sums carried in the
policy state (`TextCNN.extend_prefix`, what `LeakGANGenerator.step` uses) against convolving the
whole filled prefix at every step (the official code's way, `Discriminator.leaked_features`),
and every prefix's features at once for teacher forcing (`TextCNN.prefix_features`) against
one convolution. The `cpu` preset's D over COCO's vocabulary (5,433 + the fill row) and length
(37), 256 rows; medians of 5 rounds of 37 steps, interleaved, after one.

    OMP_NUM_THREADS=1 python tools/bench_leak.py
"""
import statistics
import time

import torch

from seqadv.models.leakgan import new_leakgan_discriminator
from seqadv.trainers.leakgan import LeakGANConfig

torch.manual_seed(0)
c = LeakGANConfig(preset="cpu")
V, T, B = 5433, 37, 256
d = new_leakgan_discriminator(V, c.d_embedding_dim, c.d_filter_sizes, c.d_num_filters).eval()
tokens = torch.randint(0, V, (B, T))


def whole_prefix() -> None:
    prefix = torch.full((B, T), V)
    for j in range(T):
        prefix[:, j] = tokens[:, j]
        d.leak(d.features(prefix))


def carried() -> None:
    state = d.prefix_window_state(B)
    for j in range(T):
        state, pooled = d.extend_prefix(state, tokens[:, j], torch.full((B,), j), T)
        d.leak(pooled)


def every_prefix() -> None:
    d.leak(d.prefix_features(tokens[:64]))


def one_convolution() -> None:
    d.leak(d.features(tokens[:64]))


cases = {"whole prefix convolved per step": whole_prefix, "window sums carried per step": carried,
         "every prefix at once (64 rows)": every_prefix, "one convolution (64 rows)": one_convolution}
times = {name: [] for name in cases}
with torch.no_grad():
    for round_ in range(6):
        for name, case in cases.items():
            start = time.perf_counter()
            case()
            if round_:
                times[name].append(time.perf_counter() - start)
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; D: {len(c.d_filter_sizes)} filter banks "
      f"{list(c.d_filter_sizes)}, {sum(c.d_num_filters)} features")
median = {name: statistics.median(t) for name, t in times.items()}
for name, seconds in median.items():
    steps = T if "per step" in name else 1
    print(f"{name:<36}{1000 * seconds / steps:9.2f} ms" + (" a step" if steps > 1 else ""))
print(f"carried / whole prefix: {median['window sums carried per step'] / median['whole prefix convolved per step']:.2f}")
