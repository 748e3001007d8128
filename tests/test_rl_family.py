"""The RL text-GAN family on SeqGAN's loop (MaliGAN, RankGAN): each recipe's credit against
its formula, its adversary preferring real text, and training that moves G toward what its
reward prefers."""
import copy
import itertools
import json
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import seqadv
from seqadv import LeakGANConfig, LeakGANTrainer, MaliGANConfig, MaliGANTrainer, RankGANConfig, RankGANTrainer
from seqadv.core.modules import eval_mode
from seqadv.models.discriminator import Ranker
from seqadv.models.leakgan import LeakGANGenerator
from seqadv.models.generator import Generator
from seqadv.rl.advantages import maligan_weights, rank_probabilities
from seqadv.rl.losses import rank_loss, token_log_probs
from seqadv.rl.rewards import RankerReward
from seqadv.rl.rollout import RolloutEngine
from seqadv.trainers.maligan import effective_sample_size, maligan_rewards
from seqadv.trainers.rankgan import rank_rewards
from seqadv.trainers.seqgan import summed_policy_gradient_step

RECIPES = {"maligan": (MaliGANConfig, MaliGANTrainer), "rankgan": (RankGANConfig, RankGANTrainer)}


def test_maligan_weights_are_the_papers_and_texygens():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, 3, generator=gen, dtype=torch.float64) * 3
    d = torch.sigmoid(logits)
    r = d / (1 - d)  # the paper's D / (1 - D), normalised over the batch, less the mean weight 1/B
    assert_close(maligan_weights(logits, "paper"), r / r.sum(dim=0) - 1 / 16)
    assert_close(maligan_weights(logits, "texygen"), d / d.sum(dim=0) - (d / d.sum(dim=0)).mean(dim=0))
    # exact where D is 1 in float32 (logit 40): the weight is a softmax, no division by 1 - D
    w = maligan_weights(torch.tensor([40.0, 0.0, -3.0]))
    assert torch.isfinite(w).all() and w[0] > 0.66 - 1e-6 and abs(float(w.sum())) < 1e-6
    with pytest.raises(ValueError, match="choose one of paper, texygen"):
        maligan_weights(logits, "seqgan")
    # the weights' effective sample size: B when equal, 1 when one sample has them all, 1 / sum w^2 between
    assert effective_sample_size(torch.full((16,), 1 / 16)) == pytest.approx(16)
    assert effective_sample_size(torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(1)
    assert effective_sample_size(torch.tensor([0.5, 0.25, 0.25])) == pytest.approx(1 / 0.375)


class FirstToken(nn.Module):
    """An adversary that reads the first token only (a discriminator's logit, or a ranker's
    relevance, references ignored): every completion of a prefix scores as the sample itself."""

    def __init__(self, vocab):
        super().__init__()
        self.table = nn.Parameter(torch.randn(vocab, generator=torch.Generator().manual_seed(1)) * 2)

    def forward(self, sequences, references=None):
        return self.table[sequences[:, 0]]


@pytest.mark.parametrize("recipe", ["maligan", "rankgan"])
def test_mc_credit_compares_the_batchs_completions_of_each_prefix_length_and_rollout(recipe):
    """With an adversary of the first token alone, each completion scores as its sample: every
    column's credit is the last column's (the samples' own weights, or ranking scores), which
    holds only if the normalisation runs across the batch within each (prefix length, rollout)
    group; normalising each prefix's own completions would give uniform credit instead."""
    torch.manual_seed(0)
    g = Generator(6, 8, 8, start_token=0)
    adversary = FirstToken(6)
    samples = g.sample(12, 5, generator=torch.Generator().manual_seed(2))
    engine = RolloutEngine(g, 7)
    references = samples[:3]
    reward = adversary if recipe == "maligan" else RankerReward(adversary, references)
    with torch.no_grad():
        scores = engine.rewards(samples, reward, generator=torch.Generator().manual_seed(3), per_completion=True)
        own = adversary(samples)
    if recipe == "maligan":
        rewards, all_rewards = maligan_rewards(scores)
        expected = maligan_weights(own)
    else:
        rewards, all_rewards = rank_rewards(scores)
        expected = rank_probabilities(own)
    assert rewards.shape == (12, 5) and torch.equal(rewards, all_rewards)
    assert_close(rewards, expected[:, None].expand(12, 5))
    assert expected.std() > 0.01


class OptimalD(nn.Module):
    """The optimal discriminator between a data model and G, as a logit: log p_data(x) - log p_G(x)."""

    def __init__(self, data, g):
        super().__init__()
        self.data, self.g = copy.deepcopy(data), copy.deepcopy(g)

    @torch.no_grad()
    def forward(self, x):
        return sequence_log_prob(self.data, x) - sequence_log_prob(self.g, x)


def sequence_log_prob(model, x):
    """Shape: x (B, T) -> (B,)"""
    return token_log_probs(model.target_logits(x), x).sum(1)


@pytest.mark.parametrize("credit", ["mc", "sequence"])
def test_maligans_update_at_the_optimal_d_is_the_mle_gradient_on_the_data(credit):
    """The paper's claim, by enumeration (V = 4, T = 3, 64 sequences): with D optimal,
    D / (1 - D) = p_data / p_G, and MaliGAN's update on 4,096 of G's samples is
    E_data[grad log p_G(x)], the gradient of maximum likelihood on the data, within 10% (each
    credit, two draws); Texygen's D / sum D is not (about half of it, here)."""
    V, T = 4, 3
    torch.manual_seed(0)
    g = Generator(V, 8, 8, start_token=0)
    torch.manual_seed(1)
    data = Generator(V, 8, 8, start_token=0)
    with torch.no_grad():
        for p in data.parameters():
            p.mul_(3)  # a data distribution far from G's near-uniform one: ratios 0.27 to 2.3
    every = torch.tensor(list(itertools.product(range(V), repeat=T)))  # (64, T)
    with torch.no_grad():
        p_data = sequence_log_prob(data, every).exp()
    g.zero_grad()
    (p_data * sequence_log_prob(g, every)).sum().backward()
    truth = torch.cat([p.grad.flatten() for p in g.parameters()])

    def update(weights, seed):
        gen = torch.Generator().manual_seed(seed)
        samples = g.sample(4096, T, generator=gen)
        d = OptimalD(data, g)
        with torch.no_grad():
            if credit == "mc":
                logits = RolloutEngine(g, 4).rewards(samples, d, generator=gen, per_completion=True)
            else:
                logits = d(samples)[:, None, None].expand(-1, T, 1)
        rewards, _ = maligan_rewards(logits, weights)
        summed_policy_gradient_step(g, torch.optim.SGD(g.parameters(), lr=0.0), copy.deepcopy(g), samples, rewards,
                                    0.0, 0.0, "test")
        return -torch.cat([p.grad.flatten() for p in g.parameters()])  # the loss is minus the weighted sum

    for seed in (0, 1):
        assert (update("paper", seed) - truth).norm() < 0.1 * truth.norm()
    assert (update("texygen", 0) - truth).norm() > 0.3 * truth.norm()


def test_rank_loss_and_the_rankers_rewards_are_the_codes():
    gen = torch.Generator().manual_seed(0)
    scores, labels = torch.randn(10, generator=gen, dtype=torch.float64), torch.tensor([1, 0] * 5)
    log_p = scores - scores.exp().sum().log()
    assert_close(rank_loss(scores, labels), -(log_p[::2].mean() - log_p[1::2].mean()))
    # the ranker's relevance: gamma * the sum (or mean) of cosines to the references, in eval mode
    torch.manual_seed(1)
    ranker = Ranker(9, 8, (1, 2, 3), (4, 5, 6), 0.25, gamma=2.0).eval()
    tokens, refs = torch.randint(0, 9, (6, 7)), torch.randint(0, 9, (4, 7))
    f = lambda x: nn.functional.normalize(ranker.highway(ranker.features(x)), dim=1)  # noqa: E731
    assert_close(ranker(tokens, refs), 2.0 * (f(tokens) @ f(refs).T).sum(1))
    assert_close(Ranker(9, 8, (1, 2, 3), (4, 5, 6), 0.0, aggregate="mean").eval()(tokens, refs).shape, (6,))
    # the rollout path shares each prefix's windows and gives the same scores
    completions = tokens.repeat_interleave(3, dim=0)[: 3 * 6]
    reward = RankerReward(ranker, refs)
    assert_close(reward.score_rollouts(tokens[:1], tokens[:1].repeat(3 * 6, 1), 3, [1] * 6),
                 reward(tokens[:1].repeat(3 * 6, 1)))
    assert reward(completions).shape == (18,)


class Favourite(nn.Module):
    """A fixed discriminator that prefers sequences holding more of one token (never trained:
    `d_rounds` 0); its parameter only gives D's optimiser something to hold."""

    def __init__(self, token: int, scale: float = 6.0):
        super().__init__()
        self.token, self.scale = token, scale
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, sequences, references=None):
        return self.scale * (sequences == self.token).float().mean(dim=1) + 0 * self.unused


@pytest.mark.parametrize("recipe, options", [("maligan", {"credit": "mc"}), ("maligan", {"credit": "sequence"}),
                                             ("rankgan", {})])
def test_g_moves_toward_what_its_reward_prefers(toy, tmp_path, recipe, options):
    """Pretrained G, then the recipe's updates against an adversary that likes one token (never
    trained): G's samples hold more of it than the MLE baseline's (a sign error or credit that
    does not compare the samples would not), and NLL stays finite."""
    config_class, trainer_class = RECIPES[recipe]
    config = config_class(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=4, d_pretrain_rounds=0,
                          d_rounds=0, adv_epochs=12, eval_every=12, **options)
    favourite = {}

    def build_d(data):
        favourite["id"] = data.vocab.stoi["w3"]
        return Favourite(favourite["id"])

    trainer = trainer_class(config, discriminator=build_d)
    results = trainer.train()

    def share(g):
        samples = g.sample(2000, trainer.data.length, generator=torch.Generator().manual_seed(7))
        return (samples == favourite["id"]).float().mean().item()

    before, after = share(trainer.mle), share(trainer.g)  # the baseline moved by MLE only, as much
    assert after > before + 0.02, (before, after)
    if recipe == "maligan":  # the last update's weights, in the history: those of a D that favours w3-rich samples
        B, ess = config.batch_size, results["history"]["maligan"][-1]["weights_ess"]
        assert ess == pytest.approx(trainer.weights_ess) and 1 < ess < B - 1, (ess, B)
    assert math.isfinite(results["models"][recipe]["nll_test"])


def test_the_rankers_rounds_make_it_rank_real_text_above_generated(toy, tmp_path):
    """RankGAN's ranker after its pretraining rounds against a pretrained G: held-out real
    sentences get higher ranking scores than fresh samples, against references from the
    training split, and far more so than by an untrained ranker (whose random features already
    find real text nearer the real references)."""
    config = RankGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=4, d_pretrain_rounds=8,
                           d_lr=2e-3, d_epochs=2, adv_epochs=0)
    trainer = RankGANTrainer(config)
    trainer.train()
    data = trainer.data
    fake = trainer.g.sample(len(data.test), data.length, generator=torch.Generator().manual_seed(5))
    refs = data.train[torch.randint(len(data.train), (16,), generator=torch.Generator().manual_seed(6))]

    def ratio(ranker):
        with torch.no_grad(), eval_mode(ranker):
            p = rank_probabilities(ranker(torch.cat([data.test, fake]), refs))
        return float(p[: len(data.test)].mean() / p[len(data.test) :].mean())

    untrained = Ranker(data.vocab_size, 16, (1, 2, 3, 5), (8, 8, 8, 8), pad_token=data.pad_token or 0)
    assert ratio(trainer.d) > 5 * max(1.0, ratio(untrained)), (ratio(trainer.d), ratio(untrained))


def test_the_oracle_table_is_mean_and_std_over_seeds_with_the_paired_difference(tmp_path):
    from seqadv.eval import oracle_family

    for seed, (pre, mle, gan) in zip((88, 89), [(9.0, 8.9, 8.7), (9.2, 9.1, 8.7)]):
        result = {"recipe": "rankgan", "models": {"pretrained": {"nll_oracle": pre},
                                                  "mle": {"nll_oracle": mle, "nll_test": 7.0},
                                                  "rankgan": {"nll_oracle": gan, "nll_test": 7.0 + seed - 88}},
                  "config": {"oracle": "paper", "seed": seed, "preset": "cpu", "out": f"runs/oracle/rankgan/seed-{seed}",
                             "init_from": f"runs/oracle/seqgan/seed-{seed}"}}
        (tmp_path / "rankgan").mkdir(exist_ok=True)
        (tmp_path / "rankgan" / f"seed-{seed}.json").write_text(json.dumps(result))
    header, row = oracle_family.table(tmp_path)
    # pretrained 9.1 ± 0.141, MLE 9.0 ± 0.141, RankGAN 8.7 ± 0, RankGAN - MLE: -0.2, -0.4 -> -0.3 ± 0.141;
    # NLL-test, RankGAN - MLE: 0, 1 -> 0.5 ± 0.707
    assert row.split()[:17] == ["RankGAN", "2", "9.100", "±", "0.141", "9.000", "±", "0.141", "8.700", "±", "0.000",
                                "-0.300", "±", "0.141", "0.500", "±", "0.707"]
    assert "8.247" in row
    assert oracle_family.command(result) == ("python scripts/train_rankgan.py --corpus oracle --oracle paper --seed 89 "
                                            "--out runs/oracle/rankgan/seed-89 --init-from runs/oracle/seqgan/seed-89")
    # what is left: every other (recipe, seed), each as the command that --collect would record, and the paper seed
    todo = oracle_family.todo(tmp_path)
    seed_90 = {**result, "config": {k: str(v).replace("89", "90") if k != "seed" else 90 for k, v in result["config"].items()}}
    assert [line for line in todo if "rankgan" in line] == [oracle_family.command(seed_90)]
    assert len(todo) == len(oracle_family.ORDER) * 3 - 2 + 1 and todo[0].startswith("python scripts/train_seqgan.py")
    # RelGAN's seeds run from scratch with its paper's oracle beta_max, and --collect records it
    relgan = {"recipe": "relgan", "config": {"oracle": "paper", "seed": 88, "preset": "cpu", "beta_max": 1.0,
                                             "out": "runs/oracle/relgan/seed-88", "init_from": None}}
    assert oracle_family.command(relgan) in todo and oracle_family.command(relgan).endswith(" --beta-max 1")
    assert todo[-1].endswith("--preset paper --seed 88 --out runs/oracle/seqgan-paper/seed-88")
    # a recipe whose pretrained G is not SeqGAN's of the seed is named under the table; a shared one is not
    assert oracle_family.unpaired(tmp_path) == []
    for seed, pre in ((88, 9.0), (89, 9.25)):
        seqgan = {"recipe": "seqgan", "models": {"pretrained": {"nll_oracle": pre}}}
        (tmp_path / "seqgan").mkdir(exist_ok=True)
        (tmp_path / "seqgan" / f"seed-{seed}.json").write_text(json.dumps(seqgan))
    assert oracle_family.unpaired(tmp_path) == ["RankGAN: seed 89 started from a pretrained G other than SeqGAN's "
                                               "of the seed (their pretrained NLLs differ)"]


def presence_discriminator(vocab: int, like: int, other: int, scale: float):
    """A fixed LeakGAN D whose leaked features are the presence of token `like`, of token `other`,
    and the largest of a random score per token (so that no two texts tie, as with a trained D),
    and whose logit is `scale` times the first plus the third: the features it leaks carry what
    it prefers, as a trained D's do."""
    from seqadv.models.leakgan import new_leakgan_discriminator

    d = new_leakgan_discriminator(vocab, 3, (1,), (3,))
    with torch.no_grad():
        d.embedding.weight.zero_()
        d.embedding.weight[:, 2] = torch.rand(vocab + 1, generator=torch.Generator().manual_seed(0))
        d.embedding.weight[like, 0] = d.embedding.weight[other, 1] = 1.0
        d.convs[0].weight.copy_(torch.eye(3)[:, :, None])
        d.convs[0].bias.zero_()
        d.highway.gate.weight.zero_()
        d.highway.gate.bias.fill_(-30.0)  # the highway layer carries its input through
        d.out.weight.copy_(torch.tensor([[scale, 0.0, 1.0]]))
        d.out.bias.fill_(-scale / 2)
    return d


def test_leakgans_manager_aims_its_goals_at_what_d_prefers(toy, tmp_path):
    """LeakGAN's pretrained G, then its updates against a fixed D that likes (or dislikes) one
    token, from the same pretrained G: D's preference reaches G through the manager only (the
    worker's reward is intrinsic), so the manager's goals, in D's feature space, point further
    toward that token's feature when D likes it than when D dislikes it. NLL stays finite and
    the run's timings count the leaked features."""
    aim = {}
    for scale in (6.0, -6.0):
        config = LeakGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path / str(scale)), pretrain_epochs=8,
                               pretrain_cycles=2, d_pretrain_rounds=0, d_rounds=0, adv_epochs=15, eval_every=15,
                               d_embedding_dim=3, d_filter_sizes=(1,), d_num_filters=(3,))
        token = {}

        def build_d(data, scale=scale):
            token["id"] = data.vocab.stoi["w3"]
            return presence_discriminator(data.vocab_size, token["id"], data.vocab.stoi["w7"], scale)

        trainer = LeakGANTrainer(config, discriminator=build_d)
        results = trainer.train()
        samples = trainer.g.sample(500, trainer.data.length, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            goals = trainer.g.teacher_forcing(samples)[1]["goals"][:, trainer.config.step_size :]  # the manager's
        aim[scale] = nn.functional.normalize(goals, dim=2)[..., 0].mean().item()  # toward "w3 is present"
        assert math.isfinite(results["models"]["leakgan"]["nll_test"])
        assert results["timings"]["adversarial_epoch_leaked_features_s"] > 0
    assert aim[6.0] > aim[-6.0] + 0.1, aim
    # the saved model carries D's layers it reads: loaded, it samples as the trained G does
    model, _ = seqadv.load(tmp_path / "-6.0")
    assert isinstance(model, LeakGANGenerator)
    same = lambda g: g.sample(50, trainer.data.length, generator=torch.Generator().manual_seed(3))  # noqa: E731
    assert torch.equal(same(model), same(trainer.g))


def test_leakgans_coco_options_add_real_rows_to_the_rank_pool_and_interleave_mle(toy, tmp_path):
    """`reward_real`: after e adversarial epochs, min(B, int(10 e / 20)) real rows join the rank
    pool (so G's rewards rank among B + P rows); `adv_mle_every 1`: an MLE epoch with the
    pretraining optimiser after every adversarial epoch."""
    config = LeakGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=2, pretrain_cycles=1,
                           d_pretrain_rounds=1, adv_epochs=3, eval_every=3, reward_real=True, adv_mle_every=1,
                           d_embedding_dim=3, d_filter_sizes=(1,), d_num_filters=(3,))
    trainer = LeakGANTrainer(config)
    trainer.train()
    per_epoch = len(trainer.data.train) // config.batch_size
    assert trainer.g_opt.state_dict()["state"][0]["step"] == (2 + 3) * per_epoch  # pretraining, then 3 interleaved
    trainer.progress["done"] = 4
    assert trainer.real_rows_scores().shape == (2,)  # int(10 * 4 / 20)
    trainer.progress["done"] = 1
    assert trainer.real_rows_scores().shape == (0,)
    samples = trainer.g.sample(8, trainer.data.length, generator=torch.Generator().manual_seed(0))
    trainer.progress["done"] = 400  # 64 real rows: the samples' ranks spread over B + 64 rows
    rewards, _ = trainer.generator_rewards(samples, "test")
    assert rewards.shape == (8, math.ceil(trainer.data.length / config.step_size))
    ranks = (torch.logit(rewards.double() * config.num_rollouts) + 8) * (8 + 64) / 16  # sigmoid(16 rank / 72 - 8)
    assert_close(ranks, ranks.round(), atol=1e-3, rtol=0)
    assert ranks.max() <= 72 and ranks.min() >= 1
    assert (ranks.round() % 9 != 0).any()  # ranks among 72, not among the 8 samples (which would be 9, 18, ...)
