"""RelGAN's generator (the relational memory core) and its multi-representation discriminator."""
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from seqadv.models.relgan import JointLayerNorm, RelationalMemory, RelGANDiscriminator, RelGANGenerator


def tiny_g(V=5, eos=None, pad=None, seed=0):
    torch.manual_seed(seed)
    return RelGANGenerator(V, embedding_dim=4, mem_slots=2, head_size=3, num_heads=2, start_token=0, eos_token=eos,
                           pad_token=pad)


def test_the_layer_norm_takes_its_statistics_over_rows_and_features_together():
    torch.manual_seed(0)
    norm = JointLayerNorm(4)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, 2, 4) * 5 + 2
    expected = F.layer_norm(x, (2, 4), eps=1e-12) * norm.weight + norm.bias
    assert_close(norm(x), expected)
    # not a per-row norm: the rows' own means survive
    assert not torch.allclose(norm(x), F.layer_norm(x, (4,), eps=1e-12) * norm.weight + norm.bias, atol=1e-3)


def test_the_core_starts_from_the_padded_identity_and_remembers_its_first_input():
    core = RelationalMemory(input_size=4, mem_slots=2, head_size=3, num_heads=2)
    memory = core.initial_memory(3)
    assert_close(memory[1], torch.tensor([[1.0, 0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0]]))
    assert not any(memory is p for p in core.parameters())
    torch.manual_seed(1)
    first, rest = torch.randn(2, 4), torch.randn(5, 2, 4)
    outs = []
    for x0 in (first, first.flip(0)):
        m = core.initial_memory(2)
        for x in (x0, *rest):
            m = core(x, m)
        outs.append(m)
    # six steps later, the rows that saw different first inputs still differ
    assert (outs[0][0] - outs[1][0]).abs().max() > 1e-3


def test_teacher_forcing_is_the_policy_step_and_mle_learns_a_pattern():
    g = tiny_g()
    targets = torch.tensor([[1, 2, 3, 4, 1, 2], [2, 3, 4, 1, 2, 3]])
    logits = g.target_logits(targets)
    state, tokens, stepped = g.initial_state(2), torch.zeros(2, dtype=torch.long), []
    for t in range(6):
        out, state = g.step(tokens, state)
        stepped.append(out)
        tokens = targets[:, t]
    assert_close(logits, torch.stack(stepped, 1))
    nll = lambda: F.cross_entropy(g.target_logits(targets).flatten(0, 1), targets.flatten()).item()  # noqa: E731
    before = nll()
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(g.target_logits(targets).flatten(0, 1), targets.flatten()).backward()
        opt.step()
    # the floor is log(2) / 6 = 0.116: the first token is 1 or 2, the rest follow from it
    assert nll() < 0.2 < before


def test_gumbel_max_tokens_are_exact_samples_and_the_soft_ones_follow_them():
    g = tiny_g()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        tokens, soft = g.gumbel_sample(20000, 2, beta=1.0, generator=gen)
        first = torch.softmax(g.step(torch.zeros(1, dtype=torch.long), g.initial_state(1))[0], dim=1)[0]
    counts = torch.bincount(tokens[:, 0], minlength=5).double() / 20000
    sd = (first.double() * (1 - first.double()) / 20000).sqrt()
    assert ((counts - first.double()).abs() < 4 * sd + 1e-4).all(), (counts, first)
    # the second token given the first, for the most frequent first token
    t0 = int(first.argmax())
    with torch.no_grad():
        _, state = g.step(torch.zeros(1, dtype=torch.long), g.initial_state(1))
        second = torch.softmax(g.step(torch.tensor([t0]), state)[0], dim=1)[0].double()
    rows = tokens[tokens[:, 0] == t0, 1]
    counts = torch.bincount(rows, minlength=5).double() / len(rows)
    assert ((counts - second).abs() < 4 * (second * (1 - second) / len(rows)).sqrt() + 1e-4).all()
    # the soft one-hots: distributions, peaked on the token drawn (the same noise)
    assert_close(soft.sum(-1), torch.ones(20000, 2))
    assert torch.equal(soft.argmax(-1), tokens)
    with torch.no_grad():
        _, sharp = g.gumbel_sample(50, 3, beta=1000.0, generator=torch.Generator().manual_seed(1))
    assert (sharp.max(-1).values > 0.99).float().mean() > 0.95


def test_d_gradient_reaches_g_through_the_soft_one_hots_and_the_end_is_padding():
    V, eos, pad = 6, 4, 5
    g = tiny_g(V, eos, pad)
    with torch.no_grad():
        g.head.bias[eos] += 2.0  # texts end early
    d = RelGANDiscriminator(V, embedding_dim=4, num_rep=4, filter_sizes=(2, 3), num_filters=(3, 3), dropout=0.0)
    tokens, soft = g.gumbel_sample(16, 6, beta=2.0, generator=torch.Generator().manual_seed(0))
    ended = (tokens == eos).cumsum(1) - (tokens == eos).long() > 0
    assert ended.any() and (tokens[ended] == pad).all()
    assert_close(soft[ended], F.one_hot(torch.full((int(ended.sum()),), pad), V).float())
    d(soft).sum().backward()
    assert g.head.weight.grad.abs().sum() > 0 and g.memory.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in g.parameters())


def test_each_representation_is_its_own_column_of_the_embedding_and_ids_are_one_hots():
    torch.manual_seed(0)
    V, S = 7, 4
    d = RelGANDiscriminator(V, embedding_dim=8, num_rep=S, filter_sizes=(2, 3), num_filters=(5, 5), dropout=0.0)
    x = torch.randint(0, V, (3, 6))
    assert_close(d(x), d(F.one_hot(x, V).float()))
    before = d(x)
    assert before.shape == (3, S)
    with torch.no_grad():  # representation 2 is the embedding's columns 4 and 5 (2 dimensions each)
        d.embedding[:, 4:6] += torch.randn(V, 2)
    after = d(x)
    changed = (after - before).abs().amax(0) > 1e-6
    assert changed.tolist() == [False, False, True, False]
    # the dropout the code never turns off
    noisy = RelGANDiscriminator(V, embedding_dim=8, num_rep=S, filter_sizes=(2,), num_filters=(5,)).eval()
    assert not torch.equal(noisy(x), noisy(x))
