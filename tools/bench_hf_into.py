"""The engine on an HF GPT-2 with and without writing into its buffers, against the built-in
Transformer of the same size (the reference case: batch 64, 16 rollouts, length 20, vocabulary
5,000, the cheap reward), medians of 3 interleaved rounds after a warm-up.

    python tools/bench_hf_into.py
"""
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # bench_rollout's model and reward
import bench_rollout as b  # noqa: E402

from seqadv import RolloutEngine, TransformerGenerator  # noqa: E402
from seqadv.hf import HFPolicy  # noqa: E402

class NoInto(HFPolicy):  # the step before this change: the model concatenates its cache
    def step(self, tokens, state):
        return super().step(tokens, state)

torch.manual_seed(0)
V, T, B, N = 5000, 20, 64, 16
g = TransformerGenerator(V, d_model=64, num_layers=2, num_heads=4, max_length=T + 1).eval()
hf = b.hf_twin(g, torch.device("cpu"))
seqs = g.sample(B, T, generator=torch.Generator().manual_seed(1))
contenders = {"engine (TransformerGenerator)": g, "engine on HF GPT-2, into": HFPolicy(hf), "engine on HF GPT-2, concatenating": NoInto(hf)}
times = {k: [] for k in contenders}
for r in range(4):
    for name, policy in contenders.items():
        e = RolloutEngine(policy, N)
        t0 = time.perf_counter(); e.rewards(seqs, b.cheap_reward, generator=torch.Generator().manual_seed(2)); dt = time.perf_counter() - t0
        if r: times[name].append(dt)
base = statistics.median(times["engine (TransformerGenerator)"])
for k, v in times.items():
    print(f"{k:36s} {statistics.median(v):6.2f} s  {statistics.median(v) / base:5.2f}x")
