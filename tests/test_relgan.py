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


def test_the_inverse_temperature_schedules_are_the_codes_and_beta_lags_one_step():
    from seqadv.trainers.relgan import RelGANConfig, RelGANTrainer, inverse_temperature

    N = 5000
    assert inverse_temperature(0, 100.0, "exp", N) == 1.0
    assert abs(inverse_temperature(2500, 100.0, "exp", N) - 10.0) < 1e-9  # beta_max^(i/N)
    assert abs(inverse_temperature(2000, 100.0, "exp", N) - 100 ** 0.4) < 1e-9  # where COCO's 2,000 steps end
    assert inverse_temperature(N - 1, 100.0, "lin", N) == 100.0 and inverse_temperature(0, 100.0, "lin", N) == 1.0
    assert abs(inverse_temperature(N - 1, 100.0, "log", N) - 100.0) < 1e-9
    assert abs(inverse_temperature(N // 2, 100.0, "sigmoid", N) - 50.5) < 1e-9
    assert inverse_temperature(N - 1, 100.0, "quad", N) == 100.0 and inverse_temperature(N - 1, 100.0, "sqrt", N) == 100.0
    assert inverse_temperature(7, 100.0, "no", N) == 100.0
    for adapt in ("exp", "lin", "log", "sigmoid", "quad", "sqrt"):  # rising from about 1
        values = [inverse_temperature(i, 100.0, adapt, N) for i in range(0, N, 250)]
        assert values == sorted(values) and values[0] < 1.01, adapt
    trainer = RelGANTrainer(RelGANConfig(preset="tiny", beta_max=100.0, temperature_steps=10))
    assert [trainer.beta(s) for s in (1, 2, 3, 12)] == [1.0, 1.0, 100 ** 0.1, 100.0]


def test_the_gan_losses_are_the_codes_formulas():
    from seqadv.rl.losses import GAN_LOSSES, gan_losses

    r, f = torch.tensor([[2.0, -1.0], [0.5, 3.0]]), torch.tensor([[0.0, 1.0], [-2.0, 2.5]])
    sig = torch.sigmoid
    expected = {
        "rsgan": (-torch.log(sig(r - f)).mean(), -torch.log(sig(f - r)).mean()),
        "standard": (-(torch.log(sig(r)).mean() + torch.log(1 - sig(f)).mean()), -torch.log(sig(f)).mean()),
        "js": (-(torch.log(sig(r)).mean() + torch.log(1 - sig(f)).mean()), torch.log(1 - sig(f)).mean()),
        "kl": (-(torch.log(sig(r)).mean() + torch.log(1 - sig(f)).mean()), -f.mean()),
        "hinge": (torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean(), -f.mean()),
        "tv": (torch.tanh(f).mean() - torch.tanh(r).mean(), -torch.tanh(f).mean()),
        "ls": (((r - 1) ** 2).mean() + (f ** 2).mean(), ((f - 1) ** 2).mean()),
    }
    assert set(expected) == set(GAN_LOSSES)
    for kind, (d_loss, g_loss) in expected.items():
        got = gan_losses(r, f, kind)
        assert_close(got[0], d_loss)
        assert_close(got[1], g_loss)


class PresenceD(torch.nn.Module):
    """A fixed D that likes (scale > 0) or dislikes one token: scale x its (soft) count."""

    def __init__(self, vocab_size, token, scale):
        super().__init__()
        self.vocab_size, self.token, self.scale = vocab_size, token, scale
        self.unused = torch.nn.Parameter(torch.zeros(1))  # D's optimiser needs a parameter

    def forward(self, x):
        if not x.is_floating_point():
            x = F.one_hot(x, self.vocab_size).float()
        return self.scale * x[..., self.token].sum(1, keepdim=True) + 0 * self.unused


def test_gs_gradient_through_the_gumbel_softmax_moves_it_toward_what_d_prefers(toy, tmp_path):
    """From one pretrained G, adversarial steps against a fixed D that likes a token raise its
    share of G's samples, against one that dislikes it lower it: D's gradient reaches G through
    the relaxed one-hots alone."""
    from seqadv.trainers.relgan import RelGANConfig, RelGANTrainer

    share = {}
    for scale in (1.0, -1.0):
        config = RelGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path / str(scale)), pretrain_epochs=3,
                              adv_steps=30, d_steps=1, eval_every=30, adv_g_lr=3e-3, beta_max=2.0,
                              temperature_steps=30)
        token = {}

        def build_d(data, scale=scale):
            token["id"] = data.vocab.stoi["w3"]
            return PresenceD(data.vocab_size, token["id"], scale)

        trainer = RelGANTrainer(config, discriminator=build_d)
        trainer.train()
        for name, model in trainer.final_models():
            samples = model.sample(2000, trainer.data.length, generator=torch.Generator().manual_seed(5))
            share[(scale, name)] = (samples == token["id"]).float().mean().item()
    assert share[(1.0, "pretrained")] == share[(-1.0, "pretrained")]
    assert share[(1.0, "relgan")] > 0.3 > 0.1 > share[(1.0, "pretrained")], share  # 0.79 from 0.033 when written
    assert share[(-1.0, "relgan")] < 0.25 * share[(-1.0, "pretrained")], share  # 0.0015


def test_relgans_d_learns_to_tell_real_text_from_gs(toy, tmp_path):
    from seqadv.trainers.relgan import RelGANConfig, RelGANTrainer

    config = RelGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=1, adv_steps=20,
                          d_steps=5, eval_every=20, adv_g_lr=1e-6, d_lr=3e-3)
    trainer = RelGANTrainer(config)
    trainer.train()
    gen = torch.Generator().manual_seed(3)
    real = trainer.data.train[torch.randperm(len(trainer.data.train), generator=gen)[:256]]
    with torch.no_grad():
        fake = trainer.g.sample(256, trainer.data.length, generator=gen)
        trained = (trainer.d(real).mean() - trainer.d(fake).mean()).item()
        fresh = RelGANDiscriminator(trainer.data.vocab_size, 8, 8, (2, 3), (8, 8))
        untrained = (fresh(real).mean() - fresh(fake).mean()).item()
    assert trained > 1.5 and abs(untrained) < 0.3, (trained, untrained)  # 2.78 and 0.009 when written
