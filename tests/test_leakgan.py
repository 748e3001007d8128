"""LeakGAN's generator: the policy the rollout engine serves, exact, with D's leaked features in
its state."""
import math

import pytest
import torch
from test_rollout import exact_rewards, reward_fn, within_mc_error
from torch.testing import assert_close

from seqadv.models.discriminator import Discriminator
from seqadv.models.leakgan import LeakGANGenerator, new_leakgan_discriminator
from seqadv.rl.advantages import block_ends, leakgan_block_cosines, leakgan_rescale, leakgan_worker_rewards
from seqadv.rl.rollout import RolloutEngine

V, T = 3, 5


def tiny(step_size=2, seed=0):
    """A manager/worker G over 3 tokens with goals every 2 steps, reading a tiny D (its own fill row)."""
    torch.manual_seed(seed)
    d = new_leakgan_discriminator(V, 4, (1, 2), (3, 3)).eval()
    with torch.no_grad():
        d.embedding.weight.mul_(5)
    g = LeakGANGenerator(V, max_length=T, embedding_dim=4, hidden_dim=5, goal_size=3, step_size=step_size,
                         start_token=0, d_embedding_dim=4, d_filter_sizes=(1, 2), d_num_filters=(3, 3)).load_leak(d)
    with torch.no_grad():
        g.worker_out.weight.mul_(20)  # peaky: wrong conditioning on the prefix or the goal would show
    return g, d


def test_teacher_forcing_is_the_step_and_the_prefix_reaches_the_manager():
    g, d = tiny()
    targets = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1], [0, 1, 1, 2, 0]])
    logits, parts = g.teacher_forcing(targets)
    state, tokens, stepped = g.initial_state(3), torch.zeros(3, dtype=torch.long), []
    for j in range(T):
        out, state = g.step(tokens, state)
        stepped.append(out)
        tokens = targets[:, j]
    assert_close(logits, torch.stack(stepped, 1))
    # the features the step carries are D's of the text consumed so far, then D's fill row,
    # the whole filled prefix convolved (per row: the rows' positions may differ in rollouts)
    for j in range(T + 1):
        filled = torch.full((3, T), V)
        filled[:, :j] = targets[:, :j]
        windows, _ = g.leak.extend_prefix(g.leak.prefix_window_state(3), torch.zeros(3, dtype=torch.long),
                                          torch.full((3,), -1), T)
        for i in range(j):
            windows, features = g.extend_leak(windows, targets[:, i], torch.full((3,), i))
        if j:
            assert_close(features, d.leaked_features(filled))
    assert state[4][0].shape == (3, 3 * 1 + 3 * 2) and state[4][1].shape == (3, 2 * 3)
    # f_j is D's feature of the first j tokens, the rest filled with D's own row
    filled = torch.full((3, T), V)
    filled[:, :2] = targets[:, :2]
    assert_close(parts["features"][:, 2], d.leaked_features(filled))
    # the goal is held within a block of 2 and changes between blocks; the first is goal_init
    goals = parts["goals"]
    assert_close(goals[:, 0], g.goal_init.expand(3, -1))
    assert_close(goals[:, 1], goals[:, 0])
    assert torch.equal(goals[:, 2], goals[:, 3]) and not torch.allclose(goals[:, 2], goals[:, 1])
    # a change of the first tokens changes later logits through the leaked feature alone
    g2, _ = tiny()
    g2.load_leak(new_leakgan_discriminator(V, 4, (1, 2), (3, 3)))
    assert not torch.allclose(g2.target_logits(targets)[:, 2:], logits[:, 2:])
    assert_close(g2.target_logits(targets)[:, :2], logits[:, :2])  # the first block reads goal_init only


@pytest.mark.parametrize("length, widths", [(9, (1, 2, 3, 5)), (3, (1, 2, 4))])
def test_a_prefix_grown_a_token_at_a_time_has_the_features_of_the_whole_filled_prefix(length, widths):
    """`extend_prefix`'s window sums against convolving each filled prefix, rows at different
    lengths in one call (as in rollouts), and a filter wider than the text (L = 4 > 3)."""
    torch.manual_seed(0)
    fill = 6
    d = Discriminator(7, 4, widths, (3, 2, 4, 2)[: len(widths)], 0.0, pad_token=fill)
    tokens = torch.randint(0, fill, (4, length))
    lag = torch.tensor([0, 1, 3, 2])  # row r starts r's lag steps late: its position is step - lag
    windows = d.prefix_window_state(4)
    for step in range(length + 3):
        position = step - 1 - lag  # the position this step's token lands at; -1 and below: nothing yet
        keep = position < length  # rows not yet past their text
        position = torch.where(keep, position, -1).clamp(min=-1)
        token = tokens[torch.arange(4), position.clamp(min=0)]
        windows, features = d.extend_prefix(windows, token, position, length)
        filled = torch.full((4, length), fill)
        for r, p in enumerate(position.tolist()):
            filled[r, : p + 1] = tokens[r, : p + 1]
        assert_close(features[keep], d.features(filled)[keep])


def test_the_engine_gives_leakgans_exact_rewards():
    """Monte Carlo rollouts of LeakGAN's generator (LSTMs, goals, the prefix buffer D reads)
    against the expectation over every completion, enumerated."""
    g, _ = tiny()
    seqs = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1], [0, 1, 1, 2, 0]])
    with torch.no_grad():
        mean, var = exact_rewards(g, seqs, reward_fn, V)
        n = 20000
        rewards = RolloutEngine(g, n).rewards(seqs, reward_fn, generator=torch.Generator().manual_seed(0))
    within_mc_error(rewards, mean, var, n)
    # and the samples are the step's distribution: the first two tokens' frequencies
    samples = g.sample(20000, T, generator=torch.Generator().manual_seed(1))
    p0 = torch.softmax(g.step(torch.zeros(1, dtype=torch.long), g.initial_state(1))[0], 1)[0]
    freq = torch.bincount(samples[:, 0], minlength=V).float() / 20000
    assert (freq - p0).abs().max() < 5 * (p0 * (1 - p0) / 20000).sqrt().max() + 1e-3


def test_g_carries_a_frozen_copy_of_d_that_its_updates_leave_alone():
    g, d = tiny()
    targets = torch.tensor([[1, 2, 0, 1, 1]])
    trainable = {id(p) for p in g.worker_parameters() + g.manager_parameters()}
    assert trainable == {id(p) for p in g.parameters() if p.requires_grad}
    assert all(not p.requires_grad for p in g.leak.parameters())
    g.target_logits(targets).sum().backward()
    assert all(p.grad is None for p in g.leak.parameters()) and all(p.grad is None for p in d.parameters())
    # the copy is D's weights, and follows D only when loaded again
    assert_close(g.leak.leaked_features(targets), d.leaked_features(targets))
    with torch.no_grad():
        d.embedding.weight.add_(1.0)
    assert not torch.allclose(g.leak.leaked_features(targets), d.leaked_features(targets))
    g.load_leak(d)
    assert_close(g.leak.leaked_features(targets), d.leaked_features(targets))
    assert g.leak_seconds > 0 and g.train().leak.training is False  # D's features never with dropout


def test_the_official_first_steps_scale_sharpens_the_first_tokens():
    g, _ = tiny()
    gen = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    plain, sharp = g.sample(4000, T, generator=gen()), g.sample(4000, T, generator=gen(), first_steps_scale=4.0)
    logits = g.target_logits(plain[:1])
    p0 = torch.softmax(logits[0, 0], 0)
    p0_sharp = torch.softmax(4.0 * logits[0, 0], 0)
    f = lambda s: torch.bincount(s[:, 0], minlength=V).float() / len(s)  # noqa: E731
    assert (f(plain) - p0).abs().max() < 0.03 and (f(sharp) - p0_sharp).abs().max() < 0.03
    assert (p0_sharp - p0).abs().max() > 0.05


def official_rescale(reward):
    """The official code's `rescale` on (K, B) rewards, written out (Python 3's dict order)."""
    out = torch.zeros_like(reward, dtype=torch.float64)
    for i, row in enumerate(reward.tolist()):
        slots = {}
        for s in row:
            slots.setdefault(s, len(slots) + 1)
        for j, s in enumerate(row):
            x = slots[s] / len(row) * 16.0
            out[i, j] = math.exp(x - 8.0) / (1.0 + math.exp(x - 8.0))
    return out


def test_rescaled_rewards_rank_by_value_or_as_the_official_code():
    r = torch.tensor([[0.3, 0.1], [0.1, 0.2], [0.5, 0.1], [0.3, 0.9]], dtype=torch.float64)
    sigmoid = lambda rank: 1 / (1 + math.exp(-(16 * rank / 4 - 8)))  # noqa: E731
    # by value: column 0 has distinct values 0.1 < 0.3 < 0.5 (ranks 1, 2, 3; the two 0.3 share one)
    expected = torch.tensor([[sigmoid(2), sigmoid(1)], [sigmoid(1), sigmoid(2)], [sigmoid(3), sigmoid(1)],
                             [sigmoid(2), sigmoid(3)]], dtype=torch.float64)
    assert_close(leakgan_rescale(r), expected)
    assert_close(leakgan_rescale(r, mode="official"), official_rescale(r.T).T)
    assert not torch.allclose(leakgan_rescale(r), leakgan_rescale(r, mode="official"))
    gen = torch.Generator().manual_seed(0)
    many = torch.randint(0, 9, (32, 5), generator=gen).double() / 8  # ties
    assert_close(leakgan_rescale(many, mode="official"), official_rescale(many.T).T)


def test_the_manager_and_worker_cosines_are_the_feature_changes_against_the_goals():
    gen = torch.Generator().manual_seed(0)
    B, T, Fd, c = 2, 6, 5, 4
    features, goals = torch.randn(B, T + 1, Fd, generator=gen), torch.randn(B, T, Fd, generator=gen)
    cos = torch.nn.functional.cosine_similarity
    blocks = leakgan_block_cosines(features, goals, c)  # blocks [0, 4) and [4, 6)
    assert_close(blocks[:, 0], cos(features[:, 4] - features[:, 0], goals[:, 0], dim=1))
    assert_close(blocks[:, 1], cos(features[:, 6] - features[:, 4], goals[:, 4], dim=1))
    worker = leakgan_worker_rewards(features, goals, c)
    for t, since in [(0, 0), (2, 0), (3, 0), (4, 4), (5, 4)]:  # token t: the change since its block began
        assert_close(worker[:, t], cos(features[:, t + 1] - features[:, since], goals[:, t], dim=1))
    assert block_ends(6, 4) == [4, 6] and block_ends(20, 4) == [4, 8, 12, 16, 20]


def test_the_workers_logits_are_its_matrix_times_the_normalised_goal():
    """logits = O w, O = (W h + b) viewed as V x k, w = normalize(G W_g): the module's regrouped sums."""
    g, _ = tiny()
    state = g.initial_state(4)
    tokens = torch.tensor([0, 1, 2, 1])
    logits, new = g.step(tokens, state)
    h = g.worker(g.embedding(tokens), state[0])[0]
    o = g.worker_out(h).view(4, V, g.goal_size)
    w = torch.nn.functional.normalize(new[3] @ g.goal_projection, dim=1)
    assert_close(logits, (o @ w.unsqueeze(2)).squeeze(2))


def test_every_prefixs_features_in_one_pass_equal_each_prefix_convolved():
    """`prefix_features`: the CNN's features of each prefix filled with D's own row, for texts
    shorter and longer than the widest filter, equal to convolving each filled prefix."""
    torch.manual_seed(0)
    for T, widths in [(7, (1, 2, 3, 5, 9)), (20, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)), (4, (1, 2, 6))]:
        d = new_leakgan_discriminator(10, 5, widths, [3] * len(widths)).eval()
        x = torch.randint(0, 10, (4, T))
        filled = torch.full((4, T + 1, T), 10)
        for j in range(T + 1):
            filled[:, j, :j] = x[:, :j]
        assert_close(d.prefix_features(x), d.features(filled.flatten(0, 1)).view(4, T + 1, -1))


@pytest.mark.parametrize("rewarded", [False, True])
def test_the_worker_loss_trains_the_worker_only_and_the_goal_loss_the_manager_only(rewarded):
    """The paper's two objectives, as the official code applies them (each loss's gradients w.r.t.
    its own parameters): the worker's likelihood or REINFORCE reaches no manager parameter (the
    goal is the worker's input), the manager's goal loss no worker parameter."""
    from seqadv.runtime.distributed import Group
    from seqadv.trainers.leakgan import leakgan_losses

    g, _ = tiny()
    samples = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1], [0, 1, 1, 2, 0]])
    rewards = torch.tensor([[0.2, 0.9, 0.5], [0.7, 0.1, 0.3], [0.4, 0.6, 0.8]]) if rewarded else None
    manager_params, worker_params = g.manager_parameters(), g.worker_parameters()
    assert {id(p) for p in manager_params} | {id(p) for p in worker_params} == {id(p) for p in g.parameters()
                                                                                 if p.requires_grad}
    for loss_index, own, other in [(0, manager_params, worker_params), (1, worker_params, manager_params)]:
        g.zero_grad(set_to_none=True)
        leakgan_losses(g, samples, rewards, Group())[loss_index].backward()
        assert all(p.grad is None or not p.grad.any() for p in other)
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in own)
