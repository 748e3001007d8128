"""The engine on HF models through HFPolicy against the built-in Transformer of the same size
(the reference case: batch 64, 16 rollouts, length 20, vocabulary 5,000, the cheap reward),
medians of 3 interleaved rounds after a warm-up: HF GPT-2 (the built-in GPT's twin: its
weights and function) against `TransformerGenerator`, an HF Llama of the same width and depth
against `TransformerGenerator` with rotary positions, and HF GPT-2 stepped the way older
transformers are (the cache object rebuilt from the state each step, the whole forward, no
buffers). `scripts/bench_rollout.py --model transformer` has the full table (and HF generate).

    OMP_NUM_THREADS=1 python tools/bench_hf_into.py
"""
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # bench_rollout's models and reward
import bench_rollout as b  # noqa: E402

from seqadv import RolloutEngine  # noqa: E402
from seqadv.hf import HFPolicy  # noqa: E402


class Rebuilt(HFPolicy):  # each step builds the model's cache object from the state (transformers < 4.56)
    def __init__(self, model):
        super().__init__(model)
        self._cache = self._head = None

    def step(self, tokens, state):
        return super().step(tokens, state)


case, cpu = b.Case(), torch.device("cpu")
g, seqs = b.gpt(case, cpu)
rotary, _ = b.gpt(case, cpu, positions="rotary")
hf, llama = b.hf_twin(g, cpu), b.llama_like(g, cpu)
contenders = {"engine (TransformerGenerator)": g, "engine on HF GPT-2": HFPolicy(hf),
              "engine (TransformerGenerator, rotary)": rotary, "engine on HF Llama": HFPolicy(llama),
              "engine on HF GPT-2, cache rebuilt": Rebuilt(hf)}
base = {"engine on HF Llama": "engine (TransformerGenerator, rotary)"}
times = {k: [] for k in contenders}
for r in range(4):
    for name, policy in contenders.items():
        e = RolloutEngine(policy, case.rollouts)
        t0 = time.perf_counter()
        e.rewards(seqs, b.cheap_reward, generator=torch.Generator().manual_seed(2))
        if r:
            times[name].append(time.perf_counter() - t0)
for k, v in times.items():
    against = base.get(k, "engine (TransformerGenerator)")
    ratio = statistics.median([a / c for a, c in zip(v, times[against])])  # each round's ratio, then their median
    print(f"{k:40s} {statistics.median(v):6.2f} s  {ratio:5.2f}x {against}")
