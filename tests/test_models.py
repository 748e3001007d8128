import math
import pickle

import numpy as np
import torch
from torch.testing import assert_close

from seqadv.core.modules import ema_update
from seqadv.data.oracle import load_paper_oracle, random_oracle
from seqadv.models.discriminator import Discriminator
from seqadv.models.generator import Generator, ScratchGANGenerator
from seqadv.rl.losses import discriminator_loss, mle_loss, policy_gradient_loss
from seqadv.rl.rewards import discriminator_reward
from seqadv.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def toy_corpus(num=256, length=10, vocab=12, seed=0):
    """Arithmetic progressions mod vocab: easy to learn, impossible to guess at random."""
    gen = torch.Generator().manual_seed(seed)
    start = torch.randint(1, vocab, (num, 1), generator=gen)
    stride = torch.randint(1, 3, (num, 1), generator=gen)
    return (start + stride * torch.arange(length)) % (vocab - 1) + 1


def test_step_agrees_with_teacher_forcing():
    torch.manual_seed(0)
    g = Generator(vocab_size=15, embedding_dim=8, hidden_dim=12, num_layers=2, start_token=3)
    seqs = torch.randint(15, (4, 6))
    full = g.target_logits(seqs)
    state, tokens, steps = g.initial_state(4), torch.full((4,), 3), []
    for t in range(6):
        logits, state = g.step(tokens, state)
        steps.append(logits)
        tokens = seqs[:, t]
    assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_scratchgans_generator_ties_its_output_to_its_embedding_through_skip_connected_layers():
    torch.manual_seed(0)
    g = ScratchGANGenerator(vocab_size=15, embedding_dim=6, hidden_dim=8, num_layers=2, start_token=3)
    seqs = torch.randint(14, (4, 5))  # token 14 never read
    inputs = g.shift_right(seqs)
    # by hand: x = E[y] W_in; layer 1 reads x, layer 2 [x, h1]; logits = [h1, h2] W_out E^T + b
    x = g.embedding.weight[inputs] @ g.in_proj.weight.T
    h1, _ = g.layers[0](x)
    h2, _ = g.layers[1](torch.cat([x, h1], dim=2))
    expected = torch.cat([h1, h2], dim=2) @ g.out_proj.weight.T @ g.embedding.weight.T + g.out_bias
    assert_close(g.target_logits(seqs), expected)
    assert (g.layers[0].input_size, g.layers[1].input_size, g.out_proj.in_features) == (8, 16, 16)
    # tied: the output layer is the embedding itself, so a token never read still gets its row's gradient
    unseen = 14
    assert not (inputs == unseen).any()
    g.target_logits(seqs)[..., unseen].sum().backward()
    assert g.embedding.weight.grad[unseen].abs().sum() > 0
    assert not any(p.shape == (15, 16) or p.shape == (16, 15) for p in g.parameters())  # no separate output matrix
    # the policy protocol, a step at a time, agrees with teacher forcing
    state, tokens, steps = g.initial_state(4), torch.full((4,), 3), []
    for t in range(5):
        logits, state = g.step(tokens, state)
        steps.append(logits)
        tokens = seqs[:, t]
    assert_close(torch.stack(steps, 1), g.target_logits(seqs).detach(), rtol=1e-5, atol=1e-5)
    buffer = torch.empty(4, 15)
    with torch.no_grad():
        g.step(torch.full((4,), 3), g.initial_state(4), out=buffer)
    assert_close(buffer, steps[0].detach())
    # one layer: the output projection is the input one transposed, as the reference's
    one = ScratchGANGenerator(vocab_size=15, embedding_dim=6, hidden_dim=8, num_layers=1)
    x = one.embedding.weight[inputs] @ one.in_proj.weight.T
    h, _ = one.layers[0](x)
    assert one.out_proj is None
    assert_close(one(inputs), h @ one.in_proj.weight @ one.embedding.weight.T + one.out_bias)
    # Sonnet's LSTM: the gates' bias drawn as the weights (a truncated normal of std 1 / sqrt(inputs +
    # width), cut at 2 std), the forget gate's 1 more; torch's second bias 0
    lstm = g.layers[0]
    std = 1 / math.sqrt(lstm.input_size + lstm.hidden_size)
    b = lstm.bias_ih_l0 + lstm.bias_hh_l0
    assert torch.equal(lstm.bias_hh_l0, torch.zeros(32))
    shifted = b - torch.cat([torch.zeros(8), torch.ones(8), torch.zeros(16)])
    assert shifted.abs().max() <= 2 * std and shifted.abs().max() > 0


def test_mle_loss_falls_on_a_toy_corpus():
    torch.manual_seed(0)
    data = toy_corpus()
    g = Generator(vocab_size=12, embedding_dim=16, hidden_dim=32)
    opt = torch.optim.Adam(g.parameters(), lr=0.01)
    first = mle_loss(g.target_logits(data), data).item()
    for _ in range(150):
        loss = mle_loss(g.target_logits(data), data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 2.0  # about log(12) at the start
    assert loss.item() < 0.5 * first


def test_policy_gradient_raises_the_probability_of_rewarded_tokens():
    torch.manual_seed(0)
    g = Generator(vocab_size=6, embedding_dim=8, hidden_dim=8)
    opt = torch.optim.Adam(g.parameters(), lr=0.05)
    for _ in range(60):
        samples = g.sample(64, 5)
        rewards = (samples == 4).float()  # token 4 is good wherever it appears
        loss = policy_gradient_loss(g.target_logits(samples), samples, rewards)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (g.sample(2000, 5) == 4).float().mean().item() > 0.5  # from 1/6


def test_discriminator_learns_real_vs_shuffled():
    torch.manual_seed(0)
    real = toy_corpus(num=512, length=12, vocab=20)
    shuffled = torch.stack([row[torch.randperm(12)] for row in real])
    d = Discriminator(vocab_size=20, embedding_dim=16, filter_sizes=(2, 3, 4), num_filters=(16, 16, 16))
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    x = torch.cat([real[:384], shuffled[:384]])
    y = torch.cat([torch.ones(384), torch.zeros(384)])
    for _ in range(15):
        for idx in torch.randperm(768).split(64):
            loss = discriminator_loss(d(x[idx]), y[idx]) + 0.2 * d.l2_penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
    reward = discriminator_reward(d)
    real_reward, fake_reward = reward(real[384:]), reward(shuffled[384:])
    accuracy = ((real_reward > 0.5).float().mean() + (fake_reward < 0.5).float().mean()) / 2
    assert accuracy > 0.9
    assert real_reward.mean() > fake_reward.mean() + 0.5  # the reward favours real data
    assert d.training  # the reward put D back in the mode it found it in


def test_discriminator_handles_sequences_shorter_than_its_widest_filter():
    d = Discriminator(vocab_size=10, embedding_dim=4, filter_sizes=(1, 5), num_filters=(3, 3))
    assert d(torch.randint(10, (2, 3))).shape == (2,)


def test_ema_update():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = 0.8 * a.weight.detach().clone() + 0.2 * b.weight.detach()
    ema_update(a, b, 0.8)
    assert_close(a.weight.detach(), expected)
    # a model averaged with itself is itself (in place, mul_ then add_ would zero it)
    before = b.weight.detach().clone()
    ema_update(b, b, 0.0)
    assert_close(b.weight.detach(), before)


def official_cell_logits(params, seqs):
    """The official TargetLSTM written out in numpy, row vectors as in the paper's code."""
    emb, wi, ui, bi, wf, uf, bf, wo, uo, bo, wc, uc, bc, w_out, b_out = params
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    B, T = seqs.shape
    h = np.zeros((B, ui.shape[0]))
    c = np.zeros_like(h)
    x = emb[np.zeros(B, dtype=int)]
    out = []
    for t in range(T):
        i, f, o = sig(x @ wi + h @ ui + bi), sig(x @ wf + h @ uf + bf), sig(x @ wo + h @ uo + bo)
        c = f * c + i * np.tanh(x @ wc + h @ uc + bc)
        h = o * np.tanh(c)
        out.append(h @ w_out + b_out)
        x = emb[seqs[:, t]]
    return np.stack(out, 1)


def test_oracle_weights_map_to_the_official_cell(tmp_path):
    rng = np.random.default_rng(0)
    V, E, H = 30, 5, 7
    shapes = [(V, E)] + [(E, H), (H, H), (H,)] * 4 + [(H, V), (V,)]
    params = [rng.normal(size=s).astype(np.float32) for s in shapes]
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps(params))
    oracle = load_paper_oracle(path)
    seqs = rng.integers(0, V, size=(4, 6))
    ours = oracle.target_logits(torch.from_numpy(seqs)).detach().numpy()
    np.testing.assert_allclose(ours, official_cell_logits(params, seqs), rtol=1e-4, atol=1e-4)


def test_the_papers_oracle_loads_and_matches_its_known_entropy(shared_dir):
    oracle = load_paper_oracle(shared_dir / "oracle" / "seqgan_target_params_py3.pkl")
    assert oracle.vocab_size == 5000 and oracle.lstm.hidden_size == 32
    from seqadv.eval.metrics import nll

    samples = oracle.sample(2000, 20, generator=torch.Generator().manual_seed(0))
    # the NLL of the oracle's own samples is about 5.75 (the official code's log)
    assert abs(nll(oracle, samples) - 5.75) < 0.1


def test_random_oracle_is_seeded():
    a, b = random_oracle(1, 50, 4, 4), random_oracle(1, 50, 4, 4)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert a.embedding.weight.std().item() > 0.8  # N(0, 1), not torch's default init


def test_checkpoint_round_trip_and_corruption(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"x": torch.arange(5)}, path)
    assert torch.equal(load_checkpoint(path)["x"], torch.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left behind
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        load_checkpoint(path)
    except CheckpointError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("a truncated checkpoint loaded")
