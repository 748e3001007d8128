#!/usr/bin/env python
"""Rollout speed, side by side on the same weights and input: the naive per-prefix
loop, the engine, and the floor (the work no implementation can avoid).

    python scripts/bench_rollout.py                       # the SeqGAN oracle case, both rewards
    python scripts/bench_rollout.py --reward cheap --scaling --json bench.json
    python scripts/bench_rollout.py --device cuda
    python scripts/bench_rollout.py --nproc 1,2            # the batch's rollouts split over processes
    python scripts/bench_rollout.py --model transformer    # a GPT with a KV cache: naive, HF generate, engine, floor
                                                           # and the engine on HF GPT-2 and Llama models
    python scripts/bench_rollout.py --eos                  # COCO captions, which end: finished text skipped or not

The reference case is the paper's oracle experiment: batch 64, 16 rollouts,
length 20, vocabulary 5,000, generator 32/32, the paper's discriminator.
The floor is timed piece by piece on this machine: the output projection of
every rollout step, one exact categorical draw for every sampled token, and (for
the `paper` reward) one discriminator forward over all B*N*(T-1)+B sequences.

`--nproc 1,2` times instead what `torchrun --nproc-per-node K train_seqgan.py` does
with a batch's rollouts: each of K processes (launched by torchrun, gloo on CPU,
NCCL on CUDA) computes the rewards of its B/K sequences and all gather them, for
each K given, with `--threads` threads per process (and once as one process with
all the machine's cores). It reports rewards per second and the scaling efficiency:
the speed-up over one process with as many threads, over K.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from seqadv.core.masks import mask_after_eos
from seqadv.core.sampling import sample_from_logits
from seqadv.models.discriminator import Discriminator
from seqadv.models.generator import Generator
from seqadv.rl.rewards import discriminator_reward
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.rollout_reference import naive_rollout_rewards
from seqadv.runtime.cli import OneLineParser, below_minimum, guarded, int_tuple, writable_file
from seqadv.runtime.distributed import setup, teardown


@dataclass
class Case:
    batch: int = 64
    rollouts: int = 16
    length: int = 20
    vocab: int = 5000
    embedding: int = 32
    hidden: int = 32


def peak_memory_gb(case: Case, variant: str, device: torch.device) -> float:
    """Peak memory of one engine call: on CPU the peak RSS of a fresh process that
    builds the models and runs it (so nothing an earlier measurement left behind
    counts), on CUDA `torch.cuda.max_memory_allocated`."""
    if device.type == "cuda":
        g, d, sequences = build(case, device)
        torch.cuda.reset_peak_memory_stats(device)
        RolloutEngine(g, case.rollouts).rewards(sequences, make_reward(variant, d))
        return torch.cuda.max_memory_allocated(device) / 2**30
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_peak_rss_of_one_call, (vars(case), variant)) / 2**30


def _peak_rss_of_one_call(case: dict, variant: str) -> int:
    case = Case(**case)
    g, d, sequences = build(case, torch.device("cpu"))
    RolloutEngine(g, case.rollouts).rewards(sequences, make_reward(variant, d))
    # VmHWM, not getrusage's ru_maxrss: that one keeps the parent's peak across fork and exec
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024


def timed_together(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each function over `repeats` rounds, after a warm-up round.

    Each round calls every function once, so a drift in the machine's speed (a busy
    neighbour, a clock change) weighs on the engine and on the floor alike.
    """
    def once(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    for fn in fns.values():
        once(fn)
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            seconds[name].append(once(fn))
    return {name: statistics.median(values) for name, values in seconds.items()}


def floor_parts(g: Generator, d: Optional[Discriminator], case: Case, device: torch.device) -> dict[str, Callable[[], object]]:
    """The unavoidable parts, each alone, at several batchings; the floor takes the best of each.

    Any exact rollout must compute one next-token distribution per distinct
    context and draw every sampled token from one. The distinct contexts are
    the B * (T - 1) prefixes (whose N first rollout tokens share a distribution)
    and, at position k = 2 .. T - 1, the (k - 1) * B * N rollouts already under
    way: B * (T - 1) + B * N * (T - 1) * (T - 2) / 2 rows (176,320 in the oracle
    case; counting one per sampled token, as a plain per-step loop must, gives
    B * N * T * (T - 1) / 2 = 194,560). Each part runs on a reused buffer, so the
    floor leaves out every allocation, copy, state update and policy step the
    engine makes. Keys are "part/batching".
    """
    B, N, T, V, H = case.batch, case.rollouts, case.length, case.vocab, case.hidden
    prefix_rows = B * (T - 1)
    step_rows = B * N * (T - 1) * (T - 2) // 2
    gen = torch.Generator(device=device).manual_seed(0)
    weight, bias = g.head.weight.detach(), g.head.bias.detach()

    def in_blocks(rows: int, block: int, fn: Callable[[int], object]) -> None:
        for begin in range(0, rows, block):
            fn(min(block, rows - begin))

    def projections(block: int) -> Callable[[], None]:
        hidden = torch.randn(block, H, device=device, generator=gen)
        out = torch.empty(block, V, device=device)
        project = lambda r: torch.addmm(bias, hidden[:r], weight.T, out=out[:r])  # noqa: E731
        return lambda: in_blocks(prefix_rows + step_rows, block, project)

    def draws(block: int) -> Callable[[], None]:
        # overwrite=True turns the buffer into softmax(logits); re-sampling that keeps
        # every value finite and costs the same, so one buffer serves every call
        logits = torch.randn(block, V, device=device, generator=gen)
        u_step = torch.rand(block, 1, device=device, generator=gen)
        u_prefix = torch.rand(block, N, device=device, generator=gen)
        def draw(u: torch.Tensor) -> Callable[[int], object]:
            return lambda r: sample_from_logits(logits[:r], u[:r], overwrite=True)
        return lambda: (in_blocks(prefix_rows, block, draw(u_prefix)), in_blocks(step_rows, block, draw(u_step)))

    blocks = [b for b in (128, 256, 512, 1024) if b * V * 4 <= 2**30]
    parts = {f"projection/{b}": projections(b) for b in blocks}
    parts.update({f"draw/{b}": draws(b) for b in blocks})
    if d is not None:
        count = B * N * (T - 1) + B
        sequences = torch.randint(V, (count, T), device=device, generator=gen)
        for size in (512, 1024, 2048):
            reward = discriminator_reward(d, max_rows=size)
            parts[f"reward/{size}"] = lambda reward=reward: reward(sequences)
    return parts


def best_parts(seconds: dict[str, float]) -> dict[str, float]:
    """{"projection/128": s, ...} -> {"projection_s": best, ..., "floor_s": their sum}."""
    best: dict[str, float] = {}
    for key, value in seconds.items():
        part = key.split("/")[0] + "_s"
        best[part] = min(best.get(part, float("inf")), value)
    best["floor_s"] = sum(best.values())
    return best


def build(case: Case, device: torch.device, seed: int = 0):
    torch.manual_seed(seed)
    g = Generator(case.vocab, case.embedding, case.hidden).to(device).eval()
    d = Discriminator(case.vocab).to(device).eval()
    sequences = g.sample(case.batch, case.length, generator=torch.Generator(device=device).manual_seed(seed))
    return g, d, sequences


def cheap_reward(sequences: torch.Tensor) -> torch.Tensor:
    """Near-free: the sum of token ids, so only the rollouts are timed."""
    return sequences.float().sum(dim=1)


def make_reward(variant: str, d: Discriminator):
    return {"paper": lambda: discriminator_reward(d, share_prefix=False),
            "paper-shared": lambda: discriminator_reward(d), "cheap": lambda: cheap_reward}[variant]()


def bench_reward(case: Case, reward_name: str, args, device: torch.device, naive: bool = True) -> dict[str, dict]:
    """Rows for one reward: `paper` gives two, the dense discriminator and `paper-shared`
    (the default `DiscriminatorReward`, which computes windows inside a prefix once)."""
    g, d, sequences = build(case, device)
    variants = {name: make_reward(name, d) for name in (["paper", "paper-shared"] if reward_name == "paper" else ["cheap"])}
    engine = RolloutEngine(g, case.rollouts)
    gen = torch.Generator(device=device).manual_seed(1)
    fns = {f"engine/{name}": (lambda reward=reward: engine.rewards(sequences, reward, generator=gen))
           for name, reward in variants.items()}
    if naive:
        fns["naive"] = lambda: naive_rollout_rewards(g, sequences, variants[reward_name], case.rollouts, generator=gen)
    fns.update(floor_parts(g, d if reward_name == "paper" else None, case, device))
    seconds = timed_together(fns, args.repeats, device)
    floor = best_parts({k: v for k, v in seconds.items() if not k.startswith(("engine", "naive"))})
    # the count: one projection and one draw per sampled token, at the same cost per row
    B, N, T = case.batch, case.rollouts, case.length
    per_token = (B * N * T * (T - 1) / 2) / (B * (T - 1) + B * N * (T - 1) * (T - 2) / 2)
    floor["floor_per_token_s"] = (floor["projection_s"] + floor["draw_s"]) * per_token + floor.get("reward_s", 0.0)
    rows = {}
    for name, reward in variants.items():
        engine_s = seconds[f"engine/{name}"]
        rows[name] = {"engine_s": engine_s, "peak_memory_gb": peak_memory_gb(case, name, device), **floor,
                      "floor_ratio": engine_s / floor["floor_s"],
                      "floor_per_token_ratio": engine_s / floor["floor_per_token_s"]}
        if naive:
            rows[name].update(naive_s=seconds["naive"], speedup=seconds["naive"] / engine_s)
    return rows


def distributed_worker(case: Case, args) -> None:
    """One of the processes torchrun starts for `--nproc`: the rewards of its rows of the
    batch, gathered from all; rank 0 writes the slowest process's time of each round."""
    group = setup(args.device)
    torch.set_num_threads(args.threads)
    g, d, sequences = build(case, group.device)  # the same seed: the same models and batch on every process
    engine = RolloutEngine(g, case.rollouts)
    reward = make_reward("paper-shared" if args.reward != "cheap" else "cheap", d)
    mine = group.shard(sequences)
    gen = torch.Generator(device=group.device).manual_seed(1 + group.rank)

    def once() -> float:
        group.barrier()
        if group.device.type == "cuda":
            torch.cuda.synchronize(group.device)
        start = time.perf_counter()
        rewards = group.all_gather(engine.rewards(mine, reward, generator=gen))  # (B, T) on every process
        if group.device.type == "cuda":
            torch.cuda.synchronize(group.device)
        assert rewards.shape == sequences.shape
        return time.perf_counter() - start

    once()
    seconds = [once() for _ in range(args.repeats)]
    slowest = [max(round_) for round_ in zip(*group.gather_objects(seconds))]
    if group.is_main:
        with open(args.worker, "w") as f:
            json.dump({"seconds": slowest}, f)
    teardown()


def bench_processes(case: Case, args) -> list[dict]:
    """Launch torchrun for each process count; rows of medians, speed-ups and efficiency."""
    cores = os.cpu_count() or 1
    configs = [(1, cores)] if args.device == "cpu" and cores > args.threads else []
    configs += [(k, args.threads) for k in args.nproc]
    rows = []
    for nproc, threads in configs:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "seconds.json")
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                       __file__, "--worker", out, "--threads", str(threads), "--device", args.device,
                       "--reward", args.reward, "--repeats", str(args.repeats),
                       *[x for k, v in vars(case).items() for x in (f"--{k}", str(v))]]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                sys.exit(f"bench_rollout.py: {nproc} processes failed:\n{result.stderr[-3000:]}")
            with open(out) as f:
                seconds = statistics.median(json.load(f)["seconds"])
        rows.append({"processes": nproc, "threads": threads, "seconds": seconds,
                     "rewards_per_s": case.batch * case.length / seconds,
                     "rollouts_per_s": case.batch * case.rollouts * (case.length - 1) / seconds})
    whole = rows[0]  # one process, all the cores (or the first configuration asked for)
    for row in rows:
        one = next((r for r in rows if r["processes"] == 1 and r["threads"] == row["threads"]), None)
        if one is not None:
            row["speedup"] = row["rewards_per_s"] / one["rewards_per_s"]
            row["efficiency"] = row["speedup"] / row["processes"]
        row["vs_first"] = row["rewards_per_s"] / whole["rewards_per_s"]
    return rows


# --- the Transformer rows (--model transformer) ------------------------------------------------

def gpt(case: Case, device: torch.device, seed: int = 0, positions: str = "learned"):
    """The stated GPT (2 layers, width 64, 4 heads, learned or rotary positions, tied embeddings) and a batch."""
    from seqadv.models.transformer import TransformerGenerator

    torch.manual_seed(seed)
    g = TransformerGenerator(case.vocab, d_model=64, num_layers=2, num_heads=4, max_length=case.length + 1,
                             init_std=0.1, positions=positions).to(device).eval()
    sequences = g.sample(case.batch, case.length, generator=torch.Generator(device=device).manual_seed(seed))
    return g, sequences


def transformer_floor_parts(g, case: Case, device: torch.device) -> dict[str, Callable[[], object]]:
    """The work no exact implementation avoids, each part alone at several batchings, counted
    per sampled token (B * N * T * (T - 1) / 2 of them; k * B * N at position k = 1 .. T-1):
    the model's layers once per sampled token, one position at a time on a preallocated cache
    (no copies: the new key and value written in place), the output projection, one draw."""
    import torch.nn.functional as F

    B, N, T, V = case.batch, case.rollouts, case.length, case.vocab
    d, heads = g.d_model, g.num_heads
    gen = torch.Generator(device=device).manual_seed(0)
    tokens_total = B * N * T * (T - 1) // 2
    weight = g.head.weight.detach()

    def layers(block: int) -> Callable[[], None]:
        caches = [(torch.randn(block, heads, T + 1, d // heads, device=device, generator=gen),
                   torch.randn(block, heads, T + 1, d // heads, device=device, generator=gen)) for _ in g.blocks]
        x0 = torch.randn(block, 1, d, device=device, generator=gen)

        @torch.no_grad()
        def run(rows: int, k: int) -> None:
            x = x0[:rows]
            for layer, (kc, vc) in zip(g.blocks, caches):
                q, key, value = (layer.heads(z) for z in layer.qkv(layer.norm1(x)).split(d, dim=2))
                kc[:rows, :, k : k + 1] = key
                vc[:rows, :, k : k + 1] = value
                attended = F.scaled_dot_product_attention(q, kc[:rows, :, : k + 1], vc[:rows, :, : k + 1])
                x = x + layer.proj(attended.transpose(1, 2).reshape(rows, 1, d))
                x = x + layer.mlp(layer.norm2(x))
            g.norm(x)

        def all_positions() -> None:
            for k in range(1, T):
                rows = k * B * N
                for begin in range(0, rows, block):
                    run(min(block, rows - begin), k)
        return all_positions

    def projections(block: int) -> Callable[[], None]:
        hidden = torch.randn(block, d, device=device, generator=gen)
        out = torch.empty(block, V, device=device)

        def all_rows() -> None:
            for begin in range(0, tokens_total, block):
                r = min(block, tokens_total - begin)
                torch.mm(hidden[:r], weight.T, out=out[:r])
        return all_rows

    def draws(block: int) -> Callable[[], None]:
        logits = torch.randn(block, V, device=device, generator=gen)
        u = torch.rand(block, 1, device=device, generator=gen)

        def all_rows() -> None:
            for begin in range(0, tokens_total, block):
                r = min(block, tokens_total - begin)
                sample_from_logits(logits[:r], u[:r], overwrite=True)
        return all_rows

    blocks = [b for b in (256, 1024, 4096) if b * V * 4 <= 2**30]
    parts = {f"layers/{b}": layers(b) for b in blocks}
    parts.update({f"projection/{b}": projections(b) for b in blocks})
    parts.update({f"draw/{b}": draws(b) for b in blocks})
    return parts


def hf_twin(g, device: torch.device):
    """A Hugging Face GPT-2 that computes what `g` (learned positions) computes: its size, its
    weights (GPT-2's Conv1D holds them transposed), exact GELU (`activation_function="gelu"`;
    GPT-2's own tanh approximation costs three more elementwise passes per MLP) and tied
    embeddings. Checked: the same logits as `g` on a batch."""
    import transformers

    c = transformers.GPT2Config(vocab_size=g.vocab_size, n_positions=g.max_length, n_embd=g.d_model,
                                n_layer=len(g.blocks), n_head=g.num_heads, bos_token_id=g.start_token,
                                eos_token_id=g.start_token, pad_token_id=g.start_token, activation_function="gelu",
                                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(c).to(device).eval()
    with torch.no_grad():
        body = hf.transformer
        body.wte.weight.copy_(g.embedding.weight)
        body.wpe.weight.copy_(g.position.weight)
        for layer, block in zip(body.h, g.blocks):
            for theirs, ours in [(layer.ln_1, block.norm1), (layer.ln_2, block.norm2)]:
                theirs.weight.copy_(ours.weight)
                theirs.bias.copy_(ours.bias)
            for theirs, ours in [(layer.attn.c_attn, block.qkv), (layer.attn.c_proj, block.proj),
                                 (layer.mlp.c_fc, block.mlp[0]), (layer.mlp.c_proj, block.mlp[2])]:
                theirs.weight.copy_(ours.weight.T)
                theirs.bias.copy_(ours.bias)
        body.ln_f.weight.copy_(g.norm.weight)
        body.ln_f.bias.copy_(g.norm.bias)
        hf.lm_head.weight.copy_(g.head.weight)
        inputs = torch.randint(g.vocab_size, (4, g.max_length - 1), device=device,
                               generator=torch.Generator(device=device).manual_seed(0))
        start = torch.full((4, 1), g.start_token, device=device)
        ours, theirs = g(torch.cat([start, inputs], 1)), hf(input_ids=torch.cat([start, inputs], 1)).logits
    if not torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"the HF GPT-2 twin differs from the TransformerGenerator by "
                           f"{(ours - theirs).abs().max().item():.2e}")
    return hf


def llama_like(g, device: torch.device, seed: int = 0):
    """A Hugging Face Llama of `g`'s width, depth and heads (random weights): rotary positions,
    RMSNorm, no biases, grouped-query attention (half as many key/value heads), a SwiGLU MLP
    of 8/3 the width (about the parameters and work of `g`'s 4x GELU MLP), tied embeddings."""
    import transformers

    torch.manual_seed(seed)
    c = transformers.LlamaConfig(vocab_size=g.vocab_size, hidden_size=g.d_model, num_hidden_layers=len(g.blocks),
                                 num_attention_heads=g.num_heads, num_key_value_heads=max(1, g.num_heads // 2),
                                 intermediate_size=-(-8 * g.d_model // 3), max_position_embeddings=g.max_length,
                                 bos_token_id=g.start_token, eos_token_id=g.start_token, pad_token_id=g.start_token,
                                 tie_word_embeddings=True, initializer_range=0.1)
    return transformers.LlamaForCausalLM(c).to(device).eval()


def generate_reference(model, sequences: torch.Tensor, case: Case, reward) -> torch.Tensor:
    """What a user of HF's `generate` writes: for each prefix length, N sampled completions of
    every prefix (num_return_sequences), scored and averaged."""
    B, T, N = sequences.shape[0], sequences.shape[1], case.rollouts
    start = torch.full((B, 1), model.config.bos_token_id, device=sequences.device)
    rewards = torch.zeros(B, T, device=sequences.device)
    with torch.no_grad():
        for t in range(1, T):
            prompt = torch.cat([start, sequences[:, :t]], 1)
            completed = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True, top_k=0,
                                       num_return_sequences=N, max_new_tokens=T - t, min_new_tokens=T - t,
                                       pad_token_id=model.config.pad_token_id)[:, 1:]
            rewards[:, t - 1] = reward(completed).view(B, N).mean(1)
    rewards[:, T - 1] = reward(sequences)
    return rewards


def _peak_rss_of_a_transformer_call(case: dict) -> int:
    case = Case(**case)
    g, sequences = gpt(case, torch.device("cpu"))
    RolloutEngine(g, case.rollouts).rewards(sequences, cheap_reward)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024


HF_ROWS = {  # key: (label, the built-in engine it is compared with, its generate key)
    "engine_hf": ("engine on HF GPT-2 (HFPolicy)", "engine", "generate"),
    "engine_llama": ("engine on HF Llama (HFPolicy)", "engine_rotary", "generate_llama"),
}


def bench_transformer(case: Case, args, device: torch.device, references: bool = True) -> dict:
    """Seconds of the naive loop, HF's generate and the engine on HF models (GPT-2, the twin of
    the built-in GPT; a Llama of its size against the built-in GPT with rotary positions), the
    engine on `TransformerGenerator` and its floor, in the same interleaved rounds."""
    from seqadv.hf import HFPolicy

    g, sequences = gpt(case, device)
    engine = RolloutEngine(g, case.rollouts)
    gen = torch.Generator(device=device).manual_seed(1)
    fns = {"engine": lambda: engine.rewards(sequences, cheap_reward, generator=gen)}
    if references:
        rotary, _ = gpt(case, device, positions="rotary")
        hf, llama = hf_twin(g, device), llama_like(g, device)
        engines = {"engine_rotary": RolloutEngine(rotary, case.rollouts),
                   "engine_hf": RolloutEngine(HFPolicy(hf), case.rollouts),
                   "engine_llama": RolloutEngine(HFPolicy(llama), case.rollouts)}
        fns["naive"] = lambda: naive_rollout_rewards(g, sequences, cheap_reward, case.rollouts, generator=gen)
        fns["generate"] = lambda: generate_reference(hf, sequences, case, cheap_reward)
        fns["generate_llama"] = lambda: generate_reference(llama, sequences, case, cheap_reward)
        fns.update({key: (lambda e=e: e.rewards(sequences, cheap_reward, generator=gen)) for key, e in engines.items()})
    fns.update(transformer_floor_parts(g, case, device))
    seconds = timed_together(fns, args.repeats, device)
    row = {k: v for k, v in seconds.items() if "/" not in k}
    row.update(best_parts({k: v for k, v in seconds.items() if "/" in k}))
    row["floor_ratio"] = row["engine"] / row["floor_s"]
    for key, (_, builtin, generate) in HF_ROWS.items():
        if key in row:
            row[f"{key}_vs_builtin"] = row[key] / row[builtin]
            row[f"{key}_speedup_over_generate"] = row[generate] / row[key]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        engine.rewards(sequences, cheap_reward)
        row["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            row["peak_memory_gb"] = pool.apply(_peak_rss_of_a_transformer_call, (vars(case),)) / 2**30
    return row


def report_transformer(case: Case, args, device: torch.device, machine: str) -> dict:
    print(f"transformer rollout benchmark: GPT 2 layers, width 64, 4 heads (TransformerGenerator; HF GPT-2 of the same "
          f"size and weights, and an HF Llama of the same width and depth), batch {case.batch}, {case.rollouts} "
          f"rollouts, length {case.length}, vocab {case.vocab}, cheap reward; device {device} ({machine}), "
          f"torch {torch.__version__}, median of {args.repeats} interleaved rounds after a warm-up")
    row = bench_transformer(case, args, device)
    print(f"{'contender':<44}{'seconds':>9}{'engine is':>12}")
    for key, label in [("naive", "naive loop (torch.multinomial)"), ("generate", "HF generate on GPT-2, N per prefix"),
                       ("generate_llama", "HF generate on Llama, N per prefix"),
                       ("engine_hf", "engine on HF GPT-2 (HFPolicy)"), ("engine_llama", "engine on HF Llama (HFPolicy)"),
                       ("engine_rotary", "engine (TransformerGenerator, rotary)"),
                       ("engine", "engine (TransformerGenerator)")]:
        ratio = "" if key == "engine" else f"{row[key] / row['engine']:>10.2f}x"
        print(f"{label:<44}{row[key]:>9.2f}{ratio:>12}")
    print(f"{'floor: layers + projection + draw':<44}{row['floor_s']:>9.2f}   engine / floor {row['floor_ratio']:.2f} "
          f"(layers {row['layers_s']:.2f}, projection {row['projection_s']:.2f}, draw {row['draw_s']:.2f}); "
          f"peak memory {row['peak_memory_gb']:.2f} GB")
    print(f"\nthe engine on HF models (HFPolicy){'':<11}{'/ built-in engine':>18}{'speed-up over generate':>24}")
    for key, (label, builtin, _) in HF_ROWS.items():
        against = "TransformerGenerator" if builtin == "engine" else "TransformerGenerator, rotary"
        print(f"{label:<44}{row[key + '_vs_builtin']:>17.2f}x{row[key + '_speedup_over_generate']:>23.1f}x   "
              f"(against {against})")
    print("GPT-2: the built-in GPT's weights and function (exact GELU); Llama: random weights, rotary positions like "
          "the rotary built-in GPT, but RMSNorm, no biases, 2 key/value heads of 4 and a SwiGLU MLP of 8/3 the width "
          "(the built-in: LayerNorm, 4 heads, a 4x GELU MLP); generate draws the same completions (N per prefix)")
    results = {"case": vars(case), "row": row, "scaling": []}
    if args.no_scaling:
        return results
    print("\nhow the cost grows with T (engine against its floor)")
    print(f"{'length':>7}{'engine s':>10}{'floor s':>9}{'/floor':>8}{'peak GB':>9}")
    for length in (20, 40, 80):
        scaled = bench_transformer(Case(**{**vars(case), "length": length}), args, device, references=False)
        results["scaling"].append({"length": length, **scaled})
        print(f"{length:>7}{scaled['engine']:>10.2f}{scaled['floor_s']:>9.2f}{scaled['floor_ratio']:>8.2f}"
              f"{scaled['peak_memory_gb']:>9.2f}")
    return results


# --- text that ends (--eos) --------------------------------------------------------------------------

class MaskedReward:
    """A reward that sets everything after the first end token to padding before scoring: what
    the engine did for every row before it skipped finished prefixes (`eos_token` unset here,
    so it rolls every prefix out to the full length, as it then did)."""

    def __init__(self, reward, eos: int, pad: int):
        self.reward, self.eos, self.pad = reward, eos, pad

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        return self.reward(mask_after_eos(rows, self.eos, self.pad))

    def score_rollouts(self, sequences, completions, num_rollouts, counts):
        return self.reward.score_rollouts(mask_after_eos(sequences, self.eos, self.pad),
                                          mask_after_eos(completions, self.eos, self.pad), num_rollouts, counts)


def report_end_tokens(args, device: torch.device, machine: str) -> dict:
    """COCO's shape (length 37 with the end token, its vocabulary), a batch of its training
    captions as the sequences rolled out (they end where real captions end), and the paper's
    generator (32/32) whose end-token bias makes its completions end at the captions' rate
    (P(end) = 1 / mean length at each step), so rollouts end as a trained G's do. The engine
    that skips finished text against the same engine rolling every prefix to the end with a
    reward that pads after the end token (the behaviour before), on the same uniforms."""
    from seqadv.data.dataset import load_corpus

    data = load_corpus("coco", data_dir=os.environ.get("SEQADV_DATA_DIR"))
    eos, pad = data.eos_token, data.pad_token
    gen = torch.Generator().manual_seed(0)
    sequences = data.train[torch.randperm(len(data.train), generator=gen)[: args.batch]].to(device)
    case = Case(batch=args.batch, rollouts=args.rollouts, length=data.length, vocab=data.vocab_size,
                embedding=args.embedding, hidden=args.hidden)
    lengths = (sequences == eos).long().argmax(dim=1).float() + 1  # tokens up to and with the end token
    torch.manual_seed(0)
    g = Generator(case.vocab, case.embedding, case.hidden, start_token=data.start_token, eos_token=eos,
                  pad_token=pad).to(device).eval()
    with torch.no_grad():  # logits near 0 (weights from N(0, 0.1)): p(end) = e^b / (e^b + V - 1)
        g.head.bias[eos] = math.log((case.vocab - 1) / (lengths.mean().item() - 1))
    d = Discriminator(case.vocab, 64, pad_token=pad).to(device).eval()
    skipping = RolloutEngine(g, case.rollouts, eos_token=eos, pad_token=pad)
    everything = RolloutEngine(g, case.rollouts)
    seed = lambda: torch.Generator(device=device).manual_seed(1)  # noqa: E731
    print(f"text that ends: COCO, {case}, captions of mean length {lengths.mean().item():.1f} "
          f"(end token included), device {device} ({machine}), torch {torch.__version__}, "
          f"median of {args.repeats} interleaved rounds after a warm-up")
    print(f"{'reward':<14}{'engine':<24}{'seconds':>9}{'speed-up':>10}{'rolled out':>12}{'skipped':>10}{'row-steps':>11}")
    results = {"machine": machine, "device": str(device), "torch": torch.__version__, "case": vars(case),
               "mean_length": lengths.mean().item(), "rewards": {}}
    # paper-shared: the trainer's reward (D's windows inside a prefix computed once)
    for reward_name in (["paper-shared", "cheap"] if args.reward == "both" else
                        ["paper-shared" if args.reward == "paper" else "cheap"]):
        reward = make_reward(reward_name, d)
        masked = MaskedReward(reward, eos, pad) if reward_name != "cheap" else (
            lambda rows, r=reward: r(mask_after_eos(rows, eos, pad)))
        runs = {"every prefix (before)": lambda: everything.rewards(sequences, masked, generator=seed()),
                "finished skipped": lambda: skipping.rewards(sequences, reward, generator=seed())}
        seconds = timed_together(runs, args.repeats, device)
        before, after = runs["every prefix (before)"](), runs["finished skipped"]()
        rows = {"every prefix (before)": (case.batch * (case.length - 1) * case.rollouts, 0,
                                          case.batch * case.rollouts * case.length * (case.length - 1) // 2),
                "finished skipped": (skipping.stats.rolled, skipping.stats.skipped, skipping.stats.row_steps)}
        results["rewards"][reward_name] = {"max_abs_difference": (before - after).abs().max().item()}
        for name, (rolled, skipped, steps) in rows.items():
            speedup = seconds["every prefix (before)"] / seconds[name]
            results["rewards"][reward_name][name] = {"seconds": seconds[name], "speedup": speedup, "rolled": rolled,
                                                     "skipped": skipped, "row_steps": steps}
            print(f"{reward_name:<14}{name:<24}{seconds[name]:>9.2f}{speedup:>9.2f}x{rolled:>12,}{skipped:>10,}"
                  f"{steps:>11,}")
    differences = ", ".join(f"{k} {v['max_abs_difference']:.1e}" for k, v in results["rewards"].items())
    print(f"the same rewards, largest difference: {differences} (the same completions after the end token, scored "
          f"in other batches); row-steps: policy steps summed over rows; before: every prefix rolled out to the "
          f"full length, padded after the end token for the reward")
    return results


def main(argv: Optional[list[str]] = None) -> None:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    for name, default in vars(Case()).items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--reward", choices=["paper", "cheap", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after a warm-up round; medians are shown")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scaling", action="store_true", help="also time T, V and N changed one at a time (engine vs floor)")
    parser.add_argument("--scaling-reward", choices=["paper", "cheap"], default="cheap")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--nproc", type=int_tuple,
                        help="comma-separated process counts: time the batch's rollouts split over them (torchrun)")
    parser.add_argument("--threads", type=int, default=1, help="with --nproc: torch threads per process")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one process of --nproc: where rank 0 writes
    parser.add_argument("--eos", action="store_true",
                        help="COCO captions, which end: the engine skipping finished text against rolling every prefix "
                             "out (COCO's length and vocabulary: --length and --vocab do not apply)")
    parser.add_argument("--model", choices=["lstm", "transformer"], default="lstm",
                        help="transformer: a 2-layer GPT with a KV cache against the naive loop, HF generate, the engine "
                             "on HF GPT-2 and Llama models, and its floor")
    parser.add_argument("--no-scaling", action="store_true",
                        help="with --model transformer: the reference case only (not how the cost grows with T)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    problem = below_minimum(args, 1, [*vars(Case()), "repeats", "threads"])
    if problem:
        parser.error(problem)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device {args.device}: not a device (cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    if args.eos and (args.model == "transformer" or args.nproc or args.scaling):
        parser.error("--eos times the LSTM policy in one process: not with --model transformer, --nproc or --scaling")
    if args.json:
        writable_file(args.json, "--json")  # before the benchmark, not after it
    case = Case(**{k: getattr(args, k) for k in vars(Case())})
    if args.worker:
        return distributed_worker(case, args)
    if args.nproc:
        if any(k < 1 or case.batch % k for k in args.nproc):
            parser.error(f"--nproc: every count must be at least 1 and divide --batch {case.batch}")
        machine = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
        reward = "cheap" if args.reward == "cheap" else "paper-shared"
        print(f"rollouts split over processes (torchrun): {case}, reward {reward}, device {device} ({machine}, "
              f"{os.cpu_count()} cores), torch {torch.__version__}, median of {args.repeats} rounds after a warm-up")
        rows = bench_processes(case, args)
        first = f"vs {rows[0]['processes']}x{rows[0]['threads']}"
        print(f"{'processes':>9}{'threads':>9}{'seconds':>9}{'rewards/s':>11}{'rollouts/s':>12}{'speed-up':>10}"
              f"{'efficiency':>12}{first:>9}")
        for row in rows:
            print(f"{row['processes']:>9}{row['threads']:>9}{row['seconds']:>9.3f}{row['rewards_per_s']:>11.0f}"
                  f"{row['rollouts_per_s']:>12.0f}{row['speedup']:>9.2f}x{row['efficiency']:>11.0%}{row['vs_first']:>8.2f}x")
        print("rewards/s: per-token rewards of the batch (B x T) per second, gathered on every process; speed-up: "
              "over one process with as many threads; efficiency: speed-up / processes; "
              f"{first}: over the first row (processes x threads)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"device": str(device), "machine": machine, "reward": reward, "case": vars(case),
                           "rows": rows}, f, indent=2)
        return
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    if args.model == "transformer" or args.eos:
        results = report_end_tokens(args, device, machine) if args.eos else report_transformer(case, args, device, machine)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
        return
    print(f"rollout benchmark: {case}, device {device} ({machine}), torch {torch.__version__}, "
          f"median of {args.repeats} interleaved rounds after a warm-up")

    results: dict = {"machine": machine, "device": str(device), "torch": torch.__version__, "case": vars(case)}
    rewards = ["paper", "cheap"] if args.reward == "both" else [args.reward]
    print("floor: one projection and draw per distinct context; /token: per sampled token, the issue's count")
    print(f"{'reward':<14}{'naive s':>9}{'engine s':>10}{'floor s':>9}{'speed-up':>10}{'/floor':>8}{'/token':>8}{'peak GB':>9}")
    for reward_name in rewards:
        for name, row in bench_reward(case, reward_name, args, device).items():
            results[name] = row
            print(f"{name:<14}{row['naive_s']:>9.2f}{row['engine_s']:>10.2f}{row['floor_s']:>9.2f}"
                  f"{row['speedup']:>9.1f}x{row['floor_ratio']:>8.2f}{row['floor_per_token_ratio']:>8.2f}"
                  f"{row['peak_memory_gb']:>9.2f}")

    if args.scaling:
        print(f"\nscaling ({args.scaling_reward} reward; one setting changed at a time)")
        print(f"{'setting':<16}{'reward':<14}{'engine s':>10}{'floor s':>9}{'/floor':>8}{'/token':>8}{'peak GB':>9}")
        results["scaling"] = []
        for field, values in [("length", (10, 20, 40)), ("vocab", (5000, 20000)), ("rollouts", (8, 16, 32))]:
            for value in values:
                changed = Case(**{**vars(case), field: value})
                for name, row in bench_reward(changed, args.scaling_reward, args, device, naive=False).items():
                    results["scaling"].append({field: value, "reward": name, **row})
                    print(f"{field + '=' + str(value):<16}{name:<14}{row['engine_s']:>10.2f}{row['floor_s']:>9.2f}"
                          f"{row['floor_ratio']:>8.2f}{row['floor_per_token_ratio']:>8.2f}{row['peak_memory_gb']:>9.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(guarded("bench_rollout.py", main))
