"""Two adversarial steps of SeqGANTrainer on a fixed batch (the second with ColdGANs'
self-normalised importance weights): what test_distributed.py
runs on 2 processes under torchrun (gloo) and on 1 process, and compares.

    torchrun --standalone --nproc-per-node 2 tests/distributed_step.py OUT_DIR [lstm|hf|maligan|rankgan|leakgan]

`hf`: the generator a tiny Hugging Face GPT-2 (`HFGenerator`, built from a config), its
updates with a KL penalty to its starting weights. `maligan`: MaliGAN's steps instead
(each completion's logit, weights normalised over the whole batch, the summed update);
`rankgan`: RankGAN's (a ranker in place of D, updated on the whole batch by every process,
ranking scores over the whole batch's completions); `leakgan`: LeakGAN's (block rewards rescaled by
rank over the whole batch, the manager's and the worker's losses, D's layers reloaded into G).

Each process writes OUT_DIR/rank{r}.pt: the models and optimisers after the steps.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from seqadv.models.discriminator import Discriminator, Ranker
from seqadv.models.leakgan import LeakGANGenerator, new_leakgan_discriminator
from seqadv.rl.advantages import block_ends, leakgan_rescale
from seqadv.models.generator import Generator
from seqadv.rl.losses import rank_loss
from seqadv.rl.rewards import RankerReward, discriminator_reward
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.update import discriminator_update
from seqadv.runtime.distributed import Group, setup, teardown
from seqadv.trainers.leakgan import leakgan_step
from seqadv.trainers.maligan import maligan_rewards
from seqadv.trainers.rankgan import rank_rewards
from seqadv.trainers.seqgan import (SeqGANConfig, discriminator_step, policy_gradient_step,
                                   summed_policy_gradient_step)

B, T, V = 8, 7, 12
START, EOS, PAD = 0, 1, 2
STEPS = 2


def fixed_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generated samples whose ends fall early in the first half of the batch and late (or
    never) in the second, so the two processes' shards hold different numbers of tokens;
    real sequences for D; the seeds of each half's rollouts.

    Shape: -> samples (B, T), real (B, T), seeds (2,)
    """
    gen = torch.Generator().manual_seed(11)
    samples = torch.randint(3, V, (B, T), generator=gen)
    real = torch.randint(3, V, (B, T), generator=gen)
    for i, end in enumerate([1, 2, 1, 3, 5, T, 6, T]):
        if end < T:
            samples[i, end] = EOS
            samples[i, end + 1 :] = PAD
    return samples, real, torch.tensor([101, 202])


def build(kind: str = "lstm"):
    """The models and optimisers of SeqGANTrainer, small, from one seed."""
    torch.manual_seed(5)
    args = SeqGANConfig(batch_size=B, num_rollouts=3, d_dropout=0.0, grad_clip=0.5, g_lr=0.01, d_lr=0.01)
    if kind == "hf":
        import transformers

        from seqadv.hf import HFGenerator

        config = transformers.GPT2Config(vocab_size=V, n_positions=T + 1, n_embd=8, n_layer=1, n_head=2)
        g = HFGenerator(config.to_dict(), START, EOS, PAD)
    elif kind == "leakgan":
        g = LeakGANGenerator(V, T, 8, 8, goal_size=3, step_size=3, start_token=START, eos_token=EOS, pad_token=PAD,
                             d_embedding_dim=8, d_filter_sizes=(2, 3), d_num_filters=(4, 4))
    else:
        g = Generator(V, 8, 8, start_token=START, eos_token=EOS, pad_token=PAD)
    rollout_policy = copy.deepcopy(g).requires_grad_(False)
    if kind == "leakgan":
        d = new_leakgan_discriminator(V, 8, (2, 3), (4, 4))
        g.load_leak(d)
    else:
        d = (Ranker if kind == "rankgan" else Discriminator)(V, 8, (2, 3), (4, 4), 0.0, pad_token=PAD)
    return args, g, torch.optim.Adam(g.parameters(), lr=args.g_lr), rollout_policy, d, torch.optim.Adam(d.parameters(), lr=args.d_lr)


def steps(group: Group, samples: torch.Tensor, real: torch.Tensor, rewards_of, kind: str = "lstm") -> dict:
    """`STEPS` adversarial steps from this process's rows: rollout rewards (from
    `rewards_of(engine, reward)`), a policy-gradient update of G with the delayed
    policy's average, one D update on real vs these samples. Shape: samples, real (b, T)"""
    args, g, g_opt, rollout_policy, d, d_opt = build(kind)
    kl = dict(reference=copy.deepcopy(g).requires_grad_(False), kl_coef=0.1) if kind == "hf" else {}
    engine = RolloutEngine(g if kind == "leakgan" else rollout_policy, args.num_rollouts, eos_token=EOS, pad_token=PAD)
    losses = []
    for step in range(STEPS):
        d.eval()
        # G's update, the recipe's own
        if kind == "leakgan":
            ends = block_ends(T, g.step_size)
            blocks = rewards_of(engine, discriminator_reward(d), prefixes=ends[:-1])[:, [e - 1 for e in ends]]
            start = group.rank * len(samples)
            rewards = leakgan_rescale(group.all_gather(blocks))[start : start + len(samples)] / args.num_rollouts
            losses.append(leakgan_step(g, g_opt, samples, rewards, args.grad_clip, "test", group))
        elif kind in ("maligan", "rankgan"):
            if kind == "maligan":
                logits = rewards_of(engine, discriminator_reward(d, logits=True), per_completion=True)  # (b, T, N)
                rewards = maligan_rewards(logits, "paper", "test", group)[0]
            else:
                scores = rewards_of(engine, RankerReward(d, real[:3]), per_completion=True)  # (b, T, N)
                rewards = rank_rewards(scores, "test", group)[0]
            losses.append(summed_policy_gradient_step(g, g_opt, rollout_policy, samples, rewards, args.grad_clip, 0.0,
                                                      "test", group))
        else:
            rewards = rewards_of(engine, discriminator_reward(d))
            # the second step as if the samples were drawn colder, with self-normalised prefix weights:
            # their per-position means are the whole batch's on every process
            cold = dict(sample_temperature=0.7, importance_weight="prefix", importance_normalize=True) if step else {}
            losses.append(policy_gradient_step(g, g_opt, rollout_policy, samples, rewards, args.grad_clip,
                                               args.rollout_rate, "test", group, **cold, **kl))
        # D's update: the ranker's on the whole batch (`real` is the whole batch's), else D's on this process's rows
        d.train()
        if kind == "rankgan":
            rows = torch.cat([real, group.all_gather(samples)])
            labels = torch.cat([torch.ones(len(real)), torch.zeros(len(rows) - len(real))])
            losses.append(discriminator_update(d, d_opt, rank_loss(d(rows, real[3:6]), labels), 0.0, "test", group))
        else:
            sequences, labels = torch.cat([real, samples]), torch.cat([torch.ones(len(real)), torch.zeros(len(samples))])
            losses.append(discriminator_step(d, d_opt, sequences, labels, args.d_l2, "test", group)[0])
        if kind == "leakgan":
            g.load_leak(d)
    return {"generator": g.state_dict(), "g_optimizer": g_opt.state_dict(), "rollout_policy": rollout_policy.state_dict(),
            "discriminator": d.state_dict(), "d_optimizer": d_opt.state_dict(), "losses": torch.tensor(losses)}


def main(out: str, kind: str = "lstm") -> None:
    group = setup("cpu")
    samples, real, seeds = fixed_batch()
    rng = torch.Generator().manual_seed(int(seeds[group.rank]))
    mine = group.shard(samples)
    result = steps(group, mine, real if kind == "rankgan" else group.shard(real),
                   lambda engine, reward, **options: engine.rewards(mine, reward, generator=rng, **options), kind)
    # what train_discriminator_round does with each process's draws: all of them, in rank order
    result["gathered"] = group.all_gather(torch.full((2, T), group.rank))
    torch.save(result, Path(out) / f"rank{group.rank}.pt")
    teardown()


if __name__ == "__main__":
    main(*sys.argv[1:])
