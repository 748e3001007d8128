"""The ScratchGAN-style recipe and SeqGAN's options beyond the paper: the pieces against
hand computations, and training that does what the paper says it does."""
import math

import pytest
import torch
from test_resume import assert_same_tensors
from torch.testing import assert_close

from seqadv import ScratchGANConfig, ScratchGANTrainer, SeqGANConfig, SeqGANTrainer
from seqadv.models.discriminator import PrefixDiscriminator, position_signal
from seqadv.models.generator import Generator, ScratchGANGenerator
from seqadv.rl.advantages import batch_baseline, discounted_returns
from seqadv.rl.losses import prefix_discriminator_loss, token_log_probs
from seqadv.rl.rewards import prefix_rewards
from seqadv.runtime.checkpoint import load_checkpoint
from seqadv.trainers.scratchgan import dense_policy_gradient_step, prefix_discriminator_step
from seqadv.trainers.seqgan import policy_gradient_step


def test_the_prefix_discriminator_reads_left_to_right_and_ignores_what_follows_the_end():
    torch.manual_seed(0)
    d = PrefixDiscriminator(12, 8, 16, eos_token=1, pad_token=0).eval()
    x = torch.tensor([[3, 4, 5, 6, 7, 8], [9, 10, 1, 0, 0, 0]])
    y = x.clone()
    y[0, 3] = 11  # a later token changes no earlier prefix's logit
    logits, changed = d(x), d(y)
    assert_close(changed[0, :3], logits[0, :3])
    assert not torch.allclose(changed[0, 3:], logits[0, 3:])
    assert_close(logits[1, 3:], torch.zeros(3))  # past the end token: not text
    assert (logits[1, :3] != 0).all()


def test_dense_rewards_returns_and_the_discriminator_loss_against_hand_computations():
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, 0.5, 3.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    r = prefix_rewards(logits, mask)
    expected = (2 * torch.sigmoid(logits) - 1) * mask
    assert_close(r, expected)
    returns = discounted_returns(r, 0.23, mask)
    assert_close(returns[1, 0], r[1, 0] + 0.23 * r[1, 1] + 0.23 ** 2 * r[1, 2])
    assert_close(returns[0, 2], torch.tensor(0.0))
    fake = torch.tensor([[-2.0, 0.0, 5.0]])
    fake_mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss = prefix_discriminator_loss(logits, fake, mask, fake_mask)
    real_terms = [math.log1p(math.exp(-v)) for v, m in zip(logits.flatten().tolist(), mask.flatten().tolist()) if m]
    fake_terms = [math.log1p(math.exp(v)) for v in (-2.0, 0.0)]
    assert loss.item() == pytest.approx(0.5 * sum(real_terms) / 5 + 0.5 * sum(fake_terms) / 2, rel=1e-6)


def test_the_baselines_of_the_rollout_rewards():
    rewards = torch.tensor([[1.0, 0.2], [0.0, 0.4], [0.5, 0.9]])
    assert_close(batch_baseline(rewards, "none"), torch.zeros(3, 2))
    assert_close(batch_baseline(rewards, "mean"), rewards.mean(0).expand(3, 2))
    loo = torch.stack([(rewards.sum(0) - rewards[i]) / 2 for i in range(3)])
    assert_close(batch_baseline(rewards, "loo"), loo)


class TokenLover(torch.nn.Module):
    """A per-prefix "discriminator" that finds a prefix real when it ends in `token`."""

    def __init__(self, token):
        super().__init__()
        self.token = token
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        return torch.where(tokens == self.token, 4.0, -4.0)


def test_dense_rewards_teach_the_generator_what_the_discriminator_likes():
    torch.manual_seed(0)
    g = Generator(6, 8, 16, start_token=0)
    opt = torch.optim.Adam(g.parameters(), lr=0.02, betas=(0.5, 0.999))
    d = TokenLover(3)
    rng = torch.Generator().manual_seed(1)
    share = lambda: (g.sample(512, 5, generator=rng) == 3).float().mean().item()  # noqa: E731
    before, running = share(), 0.0
    for step in range(60):
        samples = g.sample(128, 5, generator=rng)
        _, mean_return, running = dense_policy_gradient_step(g, opt, d, samples, running, 0.23, 0.08, 5.0, "test")
    assert before < 0.3 and share() > 0.8, (before, share())
    # the baseline follows the returns: mostly this batch's mean (decay 0.08)
    assert running == pytest.approx(0.08 * running + 0.92 * mean_return, abs=0.1)


def test_cold_samples_are_importance_weighted_in_the_policy_gradient():
    torch.manual_seed(0)
    g = Generator(5, 4, 8, start_token=0)
    rollout_policy = Generator(5, 4, 8, start_token=0)
    samples = g.sample(16, 4, temperature=0.5, generator=torch.Generator().manual_seed(0))
    rewards = torch.rand(16, 4, generator=torch.Generator().manual_seed(1))
    logits = g.target_logits(samples).detach()
    weight = (token_log_probs(logits, samples) - token_log_probs(logits / 0.5, samples)).exp().clamp(max=5.0)
    expected = -(token_log_probs(logits, samples) * rewards * weight).mean()
    loss = policy_gradient_step(g, torch.optim.SGD(g.parameters(), lr=0.0), rollout_policy, samples, rewards, 0.0,
                                0.8, "test", sample_temperature=0.5, importance_clip=5.0)
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    plain = policy_gradient_step(g, torch.optim.SGD(g.parameters(), lr=0.0), rollout_policy, samples, rewards, 0.0,
                                 0.8, "test")
    assert plain == pytest.approx(-(token_log_probs(logits, samples) * rewards).mean().item(), rel=1e-5)
    assert abs(plain - loss) > 1e-3


# --- the reference's formulas (deepmind-research scratchgan/), against hand computations -------------
# A batch of B = 2, T = 4, end token 1 (padding 0 after it): row 0 is text at positions 0..2
# (its end token at 2), row 1 at all four.
SAMPLES = torch.tensor([[3, 2, 1, 0], [2, 3, 3, 2]])
MASK = [[1, 1, 1, 0], [1, 1, 1, 1]]
D_LOGITS = [[0.5, -1.0, 2.0, 0.0], [1.0, 0.0, -0.5, 1.5]]  # D masks what follows the end to 0


class FixedPolicy(torch.nn.Module):
    """A "generator" whose target logits are one fixed (2, 4, 5) parameter."""
    eos_token, pad_token = 1, 0

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.logits = torch.nn.Parameter(scale * torch.arange(40.0).reshape(2, 4, 5).sin())

    def target_logits(self, samples):
        return self.logits


class FixedCritic(torch.nn.Module):
    """A per-prefix "discriminator" with fixed logits (a parameter, for D's optimiser): the
    first rows, or with `rows` (token lists) the logits of the rows it is given."""
    eos_token, pad_token = 1, 0

    def __init__(self, logits=D_LOGITS, rows=None):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))
        self.rows = rows

    def forward(self, tokens):
        if self.rows is None:
            return self.logits[: len(tokens)]
        return self.logits[[self.rows.index(row) for row in tokens.tolist()]]


def hand_returns(gamma=0.23):
    """R_t = sum_{s >= t} gamma^(s - t) r_s, r_s = 2 sigmoid(l_s) - 1 on text, 0 after it."""
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    r = [[(2 * sigmoid(l) - 1) * m for l, m in zip(ls, ms)] for ls, ms in zip(D_LOGITS, MASK)]
    return [[sum(gamma ** (s - t) * row[s] for s in range(t, 4)) for t in range(4)] for row in r]


def hand_log_probs(logits):
    """log softmax of each sampled token, by hand."""
    return [[logits[i][t][SAMPLES[i, t]] - math.log(sum(math.exp(v) for v in logits[i][t])) for t in range(4)]
            for i in range(2)]


def hand_policy_loss(previous, decay, positions_of_baseline, positions_of_loss, scale=1.0):
    """The reference's `reinforce_loss` (ewma updated first, then R - ewma, loss = -mean(logp (R - b))),
    "all": means over the 8 positions (R = 0 after the end), "text": over the 7 text positions."""
    R = hand_returns()
    texts = sum(map(sum, MASK))
    count = {"all": 8, "text": texts}
    mean = sum(R[i][t] * (1 if positions_of_baseline == "all" else MASK[i][t]) for i in range(2) for t in range(4))
    mean /= count[positions_of_baseline]
    b = decay * previous + (1 - decay) * mean
    logp = hand_log_probs(FixedPolicy(scale).logits.tolist())
    loss = -sum(logp[i][t] * (R[i][t] - b) * MASK[i][t] for i in range(2) for t in range(4))
    return loss / count[positions_of_loss], mean, b


def policy_step(g, d=None, lr=0.0, **options):
    args = dict(baseline=0.2, discount=0.23, decay=0.08, clip=0.0) | {k: options.pop(k) for k in
                                                                        ("baseline", "decay", "clip") if k in options}
    opt = torch.optim.SGD(g.parameters(), lr=lr)
    return dense_policy_gradient_step(g, opt, d if d is not None else FixedCritic(), SAMPLES, args["baseline"],
                                      args["discount"], args["decay"], args["clip"], "test", **options)


def test_the_baseline_and_the_policy_loss_are_the_references_means_over_all_positions():
    R = hand_returns()
    assert R[0][3] == 0.0 and R[0][2] != 0.0  # after the end nothing, the end token is rewarded
    loss, mean_return, b = policy_step(FixedPolicy())
    expected, expected_mean, expected_b = hand_policy_loss(0.2, 0.08, "all", "all")
    assert mean_return == pytest.approx(sum(map(sum, R)) / 8, rel=1e-6) == pytest.approx(expected_mean, rel=1e-6)
    assert b == pytest.approx(0.08 * 0.2 + 0.92 * expected_mean, rel=1e-6) == pytest.approx(expected_b, rel=1e-6)
    assert loss == pytest.approx(expected, rel=1e-5)
    # the previous means, over the 7 text positions, as options
    for baseline_positions in ("all", "text"):
        for loss_positions in ("all", "text"):
            loss, mean_return, b = policy_step(FixedPolicy(), baseline_positions=baseline_positions,
                                               loss_positions=loss_positions)
            expected, expected_mean, expected_b = hand_policy_loss(0.2, 0.08, baseline_positions, loss_positions)
            assert (loss, mean_return, b) == pytest.approx((expected, expected_mean, expected_b), rel=1e-5)
    assert policy_step(FixedPolicy(), baseline_positions="text")[1] == pytest.approx(sum(map(sum, R)) / 7, rel=1e-6)


def test_the_generators_adversarial_gradient_is_not_clipped_unless_asked():
    # a baseline far from the returns makes the advantages, and the gradient, large
    options = dict(baseline=-100.0, decay=0.99)
    expected, _, _ = hand_policy_loss(-100.0, 0.99, "all", "all")
    reference = FixedPolicy()
    logits = reference.logits
    advantage = torch.tensor(hand_returns()) - (0.99 * -100.0 + 0.01 * sum(map(sum, hand_returns())) / 8)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, SAMPLES.unsqueeze(-1)).squeeze(-1)
    hand = -(logp * advantage * torch.tensor(MASK, dtype=torch.float)).sum() / 8
    assert hand.item() == pytest.approx(expected, rel=1e-5)
    grad, = torch.autograd.grad(hand, logits)
    assert grad.norm() > 5
    g = FixedPolicy()
    start = g.logits.detach().clone()
    policy_step(g, lr=1.0, **options)  # SGD, lr 1: the step is the gradient
    assert_close(start - g.logits.detach(), grad)
    g = FixedPolicy()
    policy_step(g, lr=1.0, clip=5.0, **options)  # the previous default: clipped at norm 5
    assert_close(start - g.logits.detach(), grad * 5 / grad.norm())


def test_rewards_come_from_the_discriminator_with_its_dropout_on_unless_asked():
    torch.manual_seed(0)
    d = PrefixDiscriminator(5, 8, 16, dropout=0.5, eos_token=1, pad_token=0).eval()
    mask = torch.tensor(MASK, dtype=torch.float)

    def mean_return(training, seed):
        torch.manual_seed(seed)
        with torch.no_grad():
            d.train(training)
            returns = discounted_returns(prefix_rewards(d(SAMPLES), mask), 0.23, mask)
        return returns.sum().item() / 8

    torch.manual_seed(7)
    _, with_dropout, _ = policy_step(FixedPolicy(), d)
    assert not d.training  # its mode is given back
    _, without, _ = policy_step(FixedPolicy(), d, reward_dropout=False)
    assert with_dropout == pytest.approx(mean_return(True, 7), rel=1e-6)  # the same dropout mask
    assert without == pytest.approx(mean_return(False, 7), rel=1e-6)
    assert abs(with_dropout - without) > 1e-3


def test_each_half_of_the_discriminators_loss_is_a_mean_over_all_positions():
    real = torch.tensor([[2, 3, 1, 0], [3, 3, 2, 1]])  # text: 3 and 4 positions
    fake = torch.tensor([[2, 1, 0, 0], [3, 2, 2, 2]])  # text: 2 and 4 positions
    real_logits = [[0.3, 1.2, -0.7, 0.0], [2.0, -0.4, 0.9, 0.1]]  # 0 after the end, as D masks it
    fake_logits = [[-1.5, 0.6, 0.0, 0.0], [0.2, -2.0, 1.1, -0.3]]
    d = FixedCritic(real_logits + fake_logits, rows=real.tolist() + fake.tolist())
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    real_terms = [softplus(-v) for row, n in zip(real_logits, (3, 4)) for v in row[:n]]
    fake_terms = [softplus(v) for row, n in zip(fake_logits, (2, 4)) for v in row[:n]]
    for positions, (n_real, n_fake) in (("all", (8, 8)), ("text", (7, 6))):
        loss, real_p, fake_p = prefix_discriminator_step(d, torch.optim.SGD(d.parameters(), lr=0.0), real, fake,
                                                         0.0, "test", loss_positions=positions)
        assert loss == pytest.approx(0.5 * sum(real_terms) / n_real + 0.5 * sum(fake_terms) / n_fake, rel=1e-6)
    # the reference's loss also counts log 2 at each of the 1 + 2 positions after the end (logit 0 there):
    # a constant, so the same gradient
    full = torch.tensor(real_logits + fake_logits, requires_grad=True)
    labels = torch.tensor([[1.0] * 4] * 2 + [[0.0] * 4] * 2)
    reference = 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(full[:2], labels[:2]) \
        + 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(full[2:], labels[2:])
    assert reference.item() == pytest.approx(0.5 * (sum(real_terms) + math.log(2)) / 8
                                             + 0.5 * (sum(fake_terms) + 2 * math.log(2)) / 8, rel=1e-6)
    masked = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float)
    grad, = torch.autograd.grad(reference, full)
    d.logits.grad = None
    prefix_discriminator_step(d, torch.optim.SGD(d.parameters(), lr=0.0), real, fake, 0.0, "test")
    assert_close(d.logits.grad, grad * masked)  # where D's logit is masked to 0 it gets no gradient anyway


def test_the_position_features_are_the_references_cosines_of_log_spaced_periods():
    T, P = 5, 4
    periods = [math.exp(math.log(2) + p / (P - 1) * (math.log(T) - math.log(2))) for p in range(P)]
    assert periods[0] == pytest.approx(2) and periods[-1] == pytest.approx(T)
    expected = [[math.cos(math.pi * (t / periods[p] + 2 * p / (P - 1))) for p in range(P)] for t in range(T)]
    assert_close(position_signal(T, P), torch.tensor(expected))
    # the previous ones: Vaswani's, base 10,000
    previous = [[f(t * 10000 ** (-2 * (p // 2) / P)) for p, f in zip(range(P), [math.sin, math.cos] * P)]
                for t in range(T)]
    assert_close(position_signal(T, P, kind="transformer"), torch.tensor(previous))
    # over COCO's 38 positions the reference's features all move; half of the previous ones hardly do
    spread = lambda kind: position_signal(38, 8, kind=kind).amax(0) - position_signal(38, 8, kind=kind).amin(0)  # noqa: E731
    assert (spread("scratchgan") > 0.9).all()
    assert (spread("transformer") < 0.2).sum() == 3
    torch.manual_seed(0)
    d = PrefixDiscriminator(6, 4, 8, dropout=0.0, eos_token=1, pad_token=0).eval()
    before = d(SAMPLES)
    d.position_signal = "transformer"
    assert not torch.allclose(before, d(SAMPLES))


def test_the_previous_options_together_give_the_previous_loss():
    """--baseline-positions text --loss-positions text --adv-grad-clip 5 --no-reward-dropout: what the
    recipe computed before, by hand: D in eval mode, the mean return over the text positions,
    the loss divided by their count, the gradient clipped at 5."""
    config = ScratchGANConfig(**ScratchGANConfig.OLDER_RUNS)
    assert (config.baseline_positions, config.loss_positions, config.adv_grad_clip, config.reward_dropout,
            config.d_position_signal, config.d_init) == ("text", "text", 5.0, False, "transformer", "torch")
    torch.manual_seed(0)
    d = PrefixDiscriminator(5, 8, 16, dropout=0.5, eos_token=1, pad_token=0, position_signal="transformer")
    mask = torch.tensor(MASK, dtype=torch.float)
    with torch.no_grad():
        returns = discounted_returns(prefix_rewards(d.eval()(SAMPLES), mask), 0.23, mask)
    d.train()
    mean = returns.sum().item() / 7
    b = 0.99 * -100.0 + 0.01 * mean  # far from the returns: a gradient above the clip
    g = FixedPolicy()
    logp = torch.log_softmax(g.logits, dim=-1).gather(-1, SAMPLES.unsqueeze(-1)).squeeze(-1)
    hand = -(logp * (returns - b) * mask).sum() / 7
    grad, = torch.autograd.grad(hand, g.logits)
    start = g.logits.detach().clone()
    loss, mean_return, new_b = policy_step(g, d, lr=1.0, baseline=-100.0, decay=0.99, clip=config.adv_grad_clip,
                                           baseline_positions=config.baseline_positions,
                                           loss_positions=config.loss_positions,
                                           reward_dropout=config.reward_dropout)
    assert (loss, mean_return, new_b) == pytest.approx((hand.item(), mean, b), rel=1e-5)
    assert grad.norm() > 5
    assert_close(start - g.logits.detach(), grad * 5 / grad.norm())


def test_a_checkpoint_made_before_the_reference_options_resumes_with_the_previous_behaviour(tmp_path):
    from dataclasses import asdict

    from seqadv.trainers.base import resumed_config

    saved = {k: v for k, v in asdict(ScratchGANConfig(preset="tiny")).items() if k not in ScratchGANConfig.OLDER_RUNS}
    old = resumed_config(ScratchGANConfig, saved, {}, str(tmp_path))
    assert {k: getattr(old, k) for k in ScratchGANConfig.OLDER_RUNS} == ScratchGANConfig.OLDER_RUNS
    new = resumed_config(ScratchGANConfig, asdict(ScratchGANConfig(preset="tiny")), {}, str(tmp_path))
    assert (new.baseline_positions, new.adv_grad_clip, new.reward_dropout) == ("all", 0.0, True)


def test_the_command_line_flags_that_restore_the_previous_recipe():
    from seqadv.runtime.cli import parse_config

    flags = ["--baseline-positions", "text", "--loss-positions", "text", "--adv-grad-clip", "5",
             "--no-reward-dropout", "--d-position-signal", "transformer", "--d-init", "torch"]
    config = parse_config(ScratchGANConfig, flags, "")
    assert {k: getattr(config, k) for k in ScratchGANConfig.OLDER_RUNS} == ScratchGANConfig.OLDER_RUNS
    default = parse_config(ScratchGANConfig, [], "")
    assert all(getattr(default, k) != v for k, v in ScratchGANConfig.OLDER_RUNS.items())


def test_word_vectors_are_read_by_token_and_start_the_first_columns_of_a_table(tmp_path):
    from seqadv.core.errors import DataError
    from seqadv.data.word_vectors import load_word_vectors, start_embedding_

    path = tmp_path / "vectors.txt"
    path.write_text("3 2\nw1 0.5 -1\nw2 2 3\nw1 9 9\nzz 1 1\n", encoding="utf-8")  # word2vec's header, then GloVe
    vectors = load_word_vectors(path, ["<pad>", "w1", "w2"])
    assert vectors[0].isnan().all()
    assert_close(vectors[1:], torch.tensor([[0.5, -1.0], [2.0, 3.0]]))  # the first vector of a word wins
    weight = torch.zeros(3, 5)
    torch.manual_seed(0)
    start_embedding_(weight, vectors)
    assert_close(weight[1:, :2], vectors[1:])
    assert weight[0].abs().min() > 0 and weight[:, 2:].abs().min() > 0  # drawn: N(0, 0.3836), as ScratchGAN's
    (tmp_path / "ragged.txt").write_text("w1 1 2\nw2 3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ragged.txt:2: 1 values, the lines before have 2"):
        load_word_vectors(tmp_path / "ragged.txt", ["w1"])
    with pytest.raises(DataError, match="none of the vocabulary's tokens"):
        load_word_vectors(path, ["a", "b"])


def test_the_paper_preset_builds_the_papers_generator_and_starts_embeddings_from_a_file(toy, tmp_path):
    """--preset paper: ScratchGAN's generator, 2 LSTM layers of 512 with tied embeddings (64 trained
    dimensions, more from --embeddings). Run with a smaller D and batch: this checks the build."""
    paper = ScratchGANConfig(preset="paper")
    assert (paper.generator, paper.g_layers, paper.g_hidden_dim, paper.g_embedding_dim, paper.pretrain_epochs,
            paper.embeddings) == ("scratchgan", 2, 512, 64, 0, None)
    vectors = tmp_path / "glove.txt"
    vectors.write_text("".join(f"w{i} {i / 10} {-i / 10} 0.5\n" for i in range(0, 20, 2)), encoding="utf-8")
    trainer = ScratchGANTrainer(ScratchGANConfig(
        corpus=str(toy), preset="paper", out=str(tmp_path / "run"), embeddings=str(vectors), adv_steps=1,
        eval_every=1, batch_size=16, mle_batch_size=16, max_train=256, max_test=32, eval_samples=20, d_hidden_dim=8,
        d_embedding_dim=4))
    trainer.train()
    g, d, data = trainer.g, trainer.d, trainer.data
    assert isinstance(g, ScratchGANGenerator)
    assert [(lstm.hidden_size, lstm.num_layers) for lstm in g.layers] == [(512, 1), (512, 1)]
    assert g.embedding.weight.shape == (data.vocab_size, 64 + 3) and d.embedding.weight.shape[1] == 4 + 3
    # the logits are scored against the embedding itself
    features, _ = g._layers(g.in_proj(g.embedding(torch.tensor([[data.start_token]]))))
    assert_close(g(torch.tensor([[data.start_token]])),
                 features @ g.out_proj.weight.T @ g.embedding.weight.T + g.out_bias)
    # started from the file (the pretrained G: no adversarial step has moved it)
    start = load_checkpoint(tmp_path / "run" / "pretrained.pt")["generator"]["embedding.weight"]
    w4 = data.vocab.stoi["w4"]
    assert_close(start[w4, :3], torch.tensor([0.4, -0.4, 0.5]))
    assert d.embedding.weight[w4, :3].sub(torch.tensor([0.4, -0.4, 0.5])).abs().max() < 0.1  # after a few D steps
    with pytest.raises(ValueError, match="--embeddings starts ScratchGAN's generator"):
        ScratchGANConfig(embeddings=str(vectors))


@pytest.fixture(scope="module")
def scratchgan_run(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("scratchgan")
    trainer = ScratchGANTrainer(ScratchGANConfig(corpus=str(toy), preset="tiny", out=str(out), adv_steps=40,
                                                 eval_every=20, d_lr=9.38e-3))
    return trainer, trainer.train(), out


def test_scratchgan_trains_a_discriminator_of_prefixes_and_writes_its_models(scratchgan_run):
    trainer, results, out = scratchgan_run
    data = trainer.data
    assert set(results["models"]) == {"pretrained", "mle", "scratchgan"}
    assert results["generator_updates"] == {"pretrain_epochs": 2, "mle_baseline": 40, "scratchgan": 40}
    for name in ("pretrained.pt", "mle.pt", "scratchgan.pt"):
        assert (out / name).is_file()
    # D on held-out real text against fresh samples of the final G: real prefixes score higher
    fake = trainer.g.sample(len(data.test), data.length, generator=torch.Generator().manual_seed(5))
    d = trainer.d.eval()
    with torch.no_grad():
        real_p = torch.sigmoid(d(data.test))[:, :3].mean().item()
        fake_p = torch.sigmoid(d(fake))[:, :3].mean().item()
    assert real_p > fake_p + 0.05, (real_p, fake_p)
    # the adversarial phase moved G away from the pretrained one
    pretrained = load_checkpoint(out / "pretrained.pt")["generator"]
    assert any(not torch.equal(pretrained[k], v) for k, v in trainer.g.state_dict().items())


def test_scratchgan_and_seqgan_start_from_the_same_pretrained_generator(toy, tmp_path):
    common = dict(corpus=str(toy), preset="tiny", adv_steps=0, d_pretrain_steps=0)
    ScratchGANTrainer(ScratchGANConfig(**common, out=str(tmp_path / "scratch"))).train()
    SeqGANTrainer(SeqGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path / "seqgan"), adv_epochs=0,
                               d_pretrain_rounds=0)).train()
    assert_same_tensors(load_checkpoint(tmp_path / "scratch" / "pretrained.pt")["generator"],
                        load_checkpoint(tmp_path / "seqgan" / "pretrained.pt")["generator"])


def test_a_run_can_start_from_another_runs_pretrained_generator_and_optimiser(toy, tmp_path):
    from seqadv.core.errors import DataError

    SeqGANTrainer(SeqGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path / "seqgan"), adv_epochs=0,
                               d_pretrain_rounds=0)).train()
    state = load_checkpoint(tmp_path / "seqgan" / "checkpoint.pt")
    # the run's last checkpoint came at its last pretraining epoch: G and its optimiser there are the pretrained ones
    assert (state["progress"]["phase"], state["progress"]["done"], state["pretrained"]) == ("pretrain_g", 2, None)
    source = {"generator": state["generator"], "optimizer": state["g_optimizer"]}
    common = dict(corpus=str(toy), preset="tiny", adv_steps=2, d_pretrain_steps=0, init_from=str(tmp_path / "seqgan"))
    trainer = ScratchGANTrainer(ScratchGANConfig(**common, out=str(tmp_path / "scratch")))
    results = trainer.train()
    # no pretraining here: the other run's G and its Adam state, bit for bit, are this run's pretrained ones
    assert results["generator_updates"]["pretrain_epochs"] == 0 and results["config"]["pretrain_epochs"] == 0
    assert_same_tensors(load_checkpoint(tmp_path / "scratch" / "pretrained.pt")["generator"], source["generator"])
    assert_same_tensors(trainer.pretrained["optimizer"]["state"], source["optimizer"]["state"])
    with pytest.raises(ValueError, match="--init-from .* drop --pretrain-epochs"):
        ScratchGANConfig(**common, pretrain_epochs=3)
    with pytest.raises(DataError, match="its model differs"):
        ScratchGANTrainer(ScratchGANConfig(**common, g_hidden_dim=8, out=str(tmp_path / "other"))).train()
    with pytest.raises(DataError, match="no checkpoint.pt there"):
        ScratchGANTrainer(ScratchGANConfig(**{**common, "init_from": str(tmp_path)}, out=str(tmp_path / "none"))).train()


def test_seqgan_with_its_options_trains_and_differs_from_the_paper_recipe(toy, tmp_path):
    common = dict(corpus=str(toy), preset="tiny", adv_epochs=2)
    plain = SeqGANTrainer(SeqGANConfig(**common, out=str(tmp_path / "plain")))
    plain.train()
    options = SeqGANTrainer(SeqGANConfig(**common, out=str(tmp_path / "options"), pg_baseline="loo",
                                         sample_temperature=0.8, rollout_temperature=0.9, importance_weight="prefix",
                                         importance_clip=0.0, importance_normalize=True))
    results = options.train()
    assert results["generator_updates"]["seqgan"] == 2
    assert options.engine.temperature == 0.9
    assert results["config"]["importance_weight"] == "prefix" and results["config"]["importance_normalize"] is True
    # the same pretrained G, then other updates
    assert_same_tensors(load_checkpoint(tmp_path / "plain" / "pretrained.pt")["generator"],
                        load_checkpoint(tmp_path / "options" / "pretrained.pt")["generator"])
    assert any(not torch.equal(a, b) for a, b in zip(plain.g.state_dict().values(), options.g.state_dict().values()))


def test_bad_options_of_the_new_recipes_are_one_line():
    with pytest.raises(ValueError, match="--discount"):
        ScratchGANConfig(discount=1.5)
    with pytest.raises(ValueError, match="--loss-positions tokens: choose one of all, text"):
        ScratchGANConfig(loss_positions="tokens")
    with pytest.raises(ValueError, match="--adv-grad-clip must not be negative"):
        ScratchGANConfig(adv_grad_clip=-1.0)
    with pytest.raises(ValueError, match="--sample-temperature"):
        SeqGANConfig(sample_temperature=0.0)


def test_mle_to_its_best_validation_nll_keeps_the_best_epoch_and_stops_when_it_stops_improving(toy, tmp_path):
    from seqadv.trainers import MLEConfig, MLETrainer

    trainer = MLETrainer(MLEConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=40, patience=2,
                                   g_lr=0.05))
    results = trainer.train()
    curve = [h["validation_nll"] for h in results["history"]["pretrain"]]
    best = results["generator_updates"]["best_epoch"]
    assert results["best_validation_nll"] == min(curve) == curve[best - 1]
    # stopped `patience` epochs after the best one, well before 40 (this learning rate overfits the toy corpus)
    assert len(curve) == best + 2 < 40, curve
    saved = load_checkpoint(tmp_path / "mle_best.pt")
    assert saved["best_epoch"] == best
    model = trainer.final_models()[0][1]
    data = trainer.data
    from seqadv.eval.metrics import nll
    assert nll(model, trainer.validation, eos_token=data.eos_token, pad_token=data.pad_token) == pytest.approx(min(curve))
    assert len(trainer.validation) + len(trainer.train_data) == len(data.train)


def test_the_discriminator_starts_as_the_references_and_torch_defaults_on_request():
    from seqadv.models.discriminator import PrefixDiscriminator as D

    V, E, H = 5000, 64, 32
    torch.manual_seed(0)
    d = D(V, E, H)
    # the embedding Glorot-uniform: bound sqrt(6 / (V + E)), about 0.034 (torch's N(0, 1): ~50 times wider)
    bound = math.sqrt(6 / (V + E))
    assert d.embedding.weight.abs().max() <= bound and d.embedding.weight.abs().max() > 0.9 * bound
    # Sonnet's linear layers: truncated normal of std 1 / sqrt(inputs), cut at 2 std; bias 0
    for linear in (d.inputs, d.out):
        std = 1 / math.sqrt(linear.in_features)
        assert linear.weight.abs().max() <= 2 * std and torch.equal(linear.bias, torch.zeros_like(linear.bias))
    # Sonnet's LSTM: weights and gate bias from one truncated normal of std 1 / sqrt(inputs + width),
    # the forget gate's bias 1 more; torch's second bias 0
    std = 1 / math.sqrt(H + H)
    assert d.lstm.weight_ih_l0.abs().max() <= 2 * std and d.lstm.weight_hh_l0.abs().max() <= 2 * std
    assert torch.equal(d.lstm.bias_hh_l0, torch.zeros(4 * H))
    forget = d.lstm.bias_ih_l0[H:2 * H]
    others = torch.cat([d.lstm.bias_ih_l0[:H], d.lstm.bias_ih_l0[2 * H:]])
    assert (forget - 1).abs().max() <= 2 * std and others.abs().max() <= 2 * std and others.std() > 0.5 * std
    torch.manual_seed(0)
    old = D(V, E, H, init="torch")
    assert old.embedding.weight.std() > 0.9 and old.lstm.bias_hh_l0.abs().max() > 0
    with pytest.raises(ValueError, match="init 'tf'"):
        D(V, E, H, init="tf")
    assert ScratchGANConfig().d_init == "scratchgan"
    with pytest.raises(ValueError, match="--d-init"):
        ScratchGANConfig(d_init="tf")


def test_the_discriminators_update_scores_each_half_in_its_own_pass():
    """The reference calls D once on real and once on generated text: each half draws its own
    dropout mask of the embedding matrix."""
    from seqadv.trainers.scratchgan import prefix_discriminator_step

    torch.manual_seed(0)
    d = PrefixDiscriminator(6, 4, 8, dropout=0.5, eos_token=1, pad_token=0)
    seen = []
    d.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    real = torch.tensor([[2, 3, 4, 1], [3, 4, 5, 1]])
    fake = torch.tensor([[5, 5, 1, 0], [2, 2, 2, 1], [4, 3, 1, 0]])
    prefix_discriminator_step(d, torch.optim.Adam(d.parameters()), real, fake, 0.0, "test")
    assert len(seen) == 2 and torch.equal(seen[0], real) and torch.equal(seen[1], fake)
