"""The rollout engine against exact expectations and the naive per-prefix reference."""
import itertools
import math

import pytest
import torch
from torch.testing import assert_close

from seqadv.core.masks import mask_after_eos
from seqadv.models.generator import Generator
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.rollout_reference import naive_rollout_rewards


class MarkovPolicy:
    """A policy that is not a Generator: logits depend on the last token only; its state is a
    plain tensor (a step counter), to show the engine needs nothing but the protocol."""

    start_token = 0

    def __init__(self, logits: torch.Tensor):
        self.table = logits  # (V, V): row = previous token

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 1)

    def step(self, tokens, state):
        return self.table[tokens], state + 1


def sequence_log_probs(policy, sequences):
    """log p(y_k | y_<k) for every position. (B, T) -> (B, T)"""
    B, T = sequences.shape
    state = policy.initial_state(B)
    tokens = torch.full((B,), policy.start_token, dtype=torch.long)
    out = []
    for k in range(T):
        logits, state = policy.step(tokens, state)
        out.append(torch.log_softmax(logits.double(), 1).gather(1, sequences[:, k : k + 1])[:, 0])
        tokens = sequences[:, k]
    return torch.stack(out, 1)


def exact_rewards(policy, sequences, reward_fn, vocab, fixed=None, eos=None, pad=None):
    """Exact Q by enumerating every completion, and the variance of one rollout's reward;
    with `eos` and `pad`, each completion is scored as it is after its first end token.
    Returns (mean (B, T), variance (B, T))."""
    B, T = sequences.shape
    everything = torch.tensor(list(itertools.product(range(vocab), repeat=T)))
    logp = sequence_log_probs(policy, everything)  # (V^T, T)
    rewards = reward_fn(mask_after_eos(everything, eos, pad)).double()
    mean = torch.zeros(B, T, dtype=torch.double)
    var = torch.zeros(B, T, dtype=torch.double)
    for b in range(B):
        for t in range(T):
            keep = torch.zeros(T, dtype=torch.bool)
            keep[: t + 1] = True
            if fixed is not None:
                keep |= fixed[b]
            match = (everything[:, keep] == sequences[b, keep]).all(1)
            # kept tokens are forced, not drawn: only drawn positions carry probability
            weight = logp[match][:, ~keep].sum(1).exp()
            r = rewards[match]
            mean[b, t] = (weight * r).sum()
            var[b, t] = (weight * r.square()).sum() - mean[b, t] ** 2
    return mean, var


def reward_fn(s):
    # favours token 1, with a position-dependent twist so prefixes matter
    return ((s == 1).float() * torch.linspace(0.5, 1.5, s.shape[1])).mean(1) / 1.5


@pytest.fixture
def lstm():
    torch.manual_seed(0)
    g = Generator(vocab_size=3, embedding_dim=8, hidden_dim=8, start_token=0)
    with torch.no_grad():
        g.head.weight.mul_(4)  # peakier distributions, so wrong conditioning would show
    return g


def within_mc_error(estimate, mean, var, n, sigmas=5.0):
    bound = sigmas * (var / n).sqrt() + 1e-6
    assert ((estimate.double() - mean).abs() <= bound).all(), (estimate, mean, bound)


def test_engine_matches_exact_expectation(lstm):
    seqs = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1], [0, 1, 1, 2, 0]])
    mean, var = exact_rewards(lstm, seqs, reward_fn, 3)
    n = 20000
    rewards = RolloutEngine(lstm, n).rewards(seqs, reward_fn, generator=torch.Generator().manual_seed(0))
    within_mc_error(rewards, mean, var, n)


def test_naive_reference_matches_exact_expectation(lstm):
    seqs = torch.tensor([[1, 2, 0, 1], [2, 0, 2, 1]])
    mean, var = exact_rewards(lstm, seqs, reward_fn, 3)
    n = 300
    rewards = naive_rollout_rewards(lstm, seqs, reward_fn, n, generator=torch.Generator().manual_seed(1))
    within_mc_error(rewards, mean, var, n)


def test_engine_matches_naive_reference_on_a_larger_model():
    torch.manual_seed(3)
    g = Generator(vocab_size=50, embedding_dim=16, hidden_dim=16, start_token=0)
    seqs = g.sample(6, 6, generator=torch.Generator().manual_seed(0))
    reward = lambda s: (s < 10).float().mean(1)  # noqa: E731
    fast = RolloutEngine(g, 4000).rewards(seqs, reward, generator=torch.Generator().manual_seed(1))
    slow = naive_rollout_rewards(g, seqs, reward, 250, generator=torch.Generator().manual_seed(2))
    # rewards lie in [0, 1]: one rollout's variance is at most 1/4
    bound = 5 * math.sqrt(0.25 / 4000 + 0.25 / 250)
    assert (fast - slow).abs().max().item() < bound
    assert_close(fast[:, -1], slow[:, -1])


def test_engine_matches_naive_reference_with_scratchgans_generator():
    """Skip-connected layers and a tied output under the engine's probe, buffers and end tokens."""
    from seqadv.models.generator import ScratchGANGenerator

    torch.manual_seed(3)
    g = ScratchGANGenerator(vocab_size=20, embedding_dim=8, hidden_dim=8, num_layers=2, start_token=0, eos_token=1,
                            pad_token=2)
    seqs = g.sample(6, 6, generator=torch.Generator().manual_seed(0))
    reward = lambda s: (s < 10).float().mean(1)  # noqa: E731
    fast = RolloutEngine(g, 4000).rewards(seqs, reward, generator=torch.Generator().manual_seed(1))
    slow = naive_rollout_rewards(g, seqs, reward, 250, generator=torch.Generator().manual_seed(2))
    assert (fast - slow).abs().max().item() < 5 * math.sqrt(0.25 / 4000 + 0.25 / 250)
    assert_close(fast[:, -1], slow[:, -1])


def test_engine_with_fixed_positions_matches_exact_expectation(lstm):
    seqs = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1]])
    fixed = torch.tensor([[0, 0, 1, 0, 1], [0, 1, 0, 1, 0]], dtype=torch.bool)
    mean, var = exact_rewards(lstm, seqs, reward_fn, 3, fixed)
    n = 20000
    rewards = RolloutEngine(lstm, n).rewards(seqs, reward_fn, fixed=fixed, generator=torch.Generator().manual_seed(0))
    within_mc_error(rewards, mean, var, n)


def test_any_policy_with_the_protocol():
    torch.manual_seed(1)
    policy = MarkovPolicy(torch.randn(3, 3) * 2)
    seqs = torch.tensor([[1, 1, 2, 0], [0, 2, 2, 1]])
    mean, var = exact_rewards(policy, seqs, reward_fn, 3)
    n = 20000
    rewards = RolloutEngine(policy, n).rewards(seqs, reward_fn, generator=torch.Generator().manual_seed(0))
    within_mc_error(rewards, mean, var, n)


def test_prefixes_and_fixed_positions_never_change():
    """Every completion keeps its prefix and its sequence's fixed positions; the prefixes whose
    later positions are all fixed have one completion (the sequence) and are not rolled out."""
    torch.manual_seed(0)
    g = Generator(vocab_size=20, embedding_dim=8, hidden_dim=8, start_token=0)
    B, T, N = 5, 9, 7
    seqs = g.sample(B, T, generator=torch.Generator().manual_seed(0))
    fixed = torch.rand(B, T, generator=torch.Generator().manual_seed(1)) < 0.3
    fixed[1, 5:] = True  # sequence 1: prefixes of length 5..8 are known
    seen = []

    class Checking:
        def __call__(self, rows, index):
            return rows.float().mean(1)

        def score_rollouts(self, sequences, completions, num_rollouts, counts, index):
            seen.append((sequences, completions, counts, index))
            return self(completions, index)

    rewards = RolloutEngine(g, N, max_batch_rows=2 * (T - 1) * N).rewards(seqs, Checking(), fixed=fixed)
    covered = torch.zeros(B, T - 1, dtype=torch.long)
    for sequences, completions, counts, index in seen:
        row = 0
        for t, c in enumerate(counts, start=1):
            group, which = completions[row : row + c * N].view(c, N, T), index[row : row + c * N : N]
            assert torch.equal(sequences[:c], seqs[which])
            keep = fixed[which].clone()
            keep[:, :t] = True
            assert torch.equal(group[keep.unsqueeze(1).expand(c, N, T)],
                               seqs[which].unsqueeze(1).expand(c, N, T)[keep.unsqueeze(1).expand(c, N, T)])
            assert not fixed[which, t].any()  # its next position is drawn
            covered[which, t - 1] += 1
            row += c * N
        # and the rollouts do sample: some free position differs from the given sequence
        free = ~fixed[index]
        assert (completions != seqs[index])[free].any()
    # each prefix whose next position is free is rolled out once; one whose next position is
    # kept takes the next prefix's value (its completions are those); the others (nothing left
    # to draw) get the sequence's reward
    free_after = torch.stack([(~fixed[:, t:]).any(dim=1) for t in range(1, T)], dim=1)
    next_kept = fixed[:, 1:] & free_after
    assert torch.equal(covered, (free_after & ~next_kept).long())
    assert next_kept.any() and (free_after & ~next_kept).any()
    assert torch.equal(rewards[:, :-1][next_kept], rewards[:, 1:][next_kept])
    assert torch.equal(rewards[:, :-1][~free_after], rewards[:, -1:].expand(B, T - 1)[~free_after])
    assert not free_after[1, 4:].any()


def test_last_column_is_the_reward_of_the_given_sequence():
    torch.manual_seed(0)
    g = Generator(vocab_size=30, embedding_dim=8, hidden_dim=8, start_token=0)
    seqs = g.sample(7, 6, generator=torch.Generator().manual_seed(0))
    reward = lambda s: torch.sin(s.float()).sum(1)  # noqa: E731
    rewards = RolloutEngine(g, 4).rewards(seqs, reward)
    assert_close(rewards[:, -1], reward(seqs))


def test_result_does_not_depend_on_chunk_size():
    torch.manual_seed(0)
    g = Generator(vocab_size=40, embedding_dim=8, hidden_dim=8, start_token=0)
    seqs = g.sample(9, 7, generator=torch.Generator().manual_seed(0))
    reward = lambda s: (s % 3 == 0).float().mean(1)  # noqa: E731
    results = [
        RolloutEngine(g, 5, max_batch_rows=rows).rewards(seqs, reward, generator=torch.Generator().manual_seed(42))
        for rows in (1, 2 * 6 * 5, 4 * 6 * 5 + 3, 10**6)
    ]
    for r in results[1:]:
        assert_close(r, results[0])


class WithoutOut:
    """The same generator behind a `step` that takes no `out` buffer (a plain protocol policy)."""

    def __init__(self, g):
        self.g, self.start_token = g, g.start_token

    def initial_state(self, batch_size):
        return self.g.initial_state(batch_size)

    def step(self, tokens, state):
        return self.g.step(tokens, state)


def test_result_does_not_depend_on_block_size_or_logits_buffer():
    torch.manual_seed(0)
    # a vocabulary large enough for the sampler's two-level CDF
    g = Generator(vocab_size=1500, embedding_dim=8, hidden_dim=8, start_token=0).eval()
    seqs = g.sample(4, 6, generator=torch.Generator().manual_seed(0))
    reward = lambda s: (s % 7 == 0).float().mean(1)  # noqa: E731
    run = lambda policy, block: RolloutEngine(policy, 3, block_rows=block).rewards(  # noqa: E731
        seqs, reward, generator=torch.Generator().manual_seed(42))
    reference = run(g, None)
    for block in (1, 7, 24, 10**4):
        assert_close(run(g, block), reference)
    assert_close(run(WithoutOut(g), 7), reference)
    assert not torch.equal(reference[:, :-1], reference[:, -1:].expand(-1, 5))  # the rollouts did vary


def test_end_token_pads_the_rest_before_scoring():
    torch.manual_seed(0)
    g = Generator(vocab_size=6, embedding_dim=8, hidden_dim=8, start_token=1, eos_token=2, pad_token=0)
    seqs = torch.tensor([[3, 4, 5, 3, 4, 5], [3, 2, 0, 0, 0, 0]])
    seen = []

    def record(s):
        seen.append(s.clone())
        return torch.zeros(len(s))

    RolloutEngine(g, 8, eos_token=2, pad_token=0).rewards(seqs, record)
    for s in seen:
        assert torch.equal(s, mask_after_eos(s, 2, 0))
    assert (torch.cat(seen) == 2).any()  # some rollouts did end early


def test_invalid_arguments_are_rejected():
    g = Generator(vocab_size=5, embedding_dim=4, hidden_dim=4)
    with pytest.raises(ValueError, match="num_rollouts"):
        RolloutEngine(g, 0)
    with pytest.raises(ValueError, match="fixed"):
        RolloutEngine(g, 2).rewards(torch.zeros(2, 3, dtype=torch.long), lambda s: s.sum(1), fixed=torch.zeros(2, 4, dtype=torch.bool))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_engine_on_cuda_matches_cpu():
    torch.manual_seed(0)
    g = Generator(vocab_size=3, embedding_dim=8, hidden_dim=8, start_token=0)
    seqs = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1]])
    mean, var = exact_rewards(g, seqs, reward_fn, 3)
    n = 20000
    cuda = torch.device("cuda")
    g_cuda = Generator(vocab_size=3, embedding_dim=8, hidden_dim=8, start_token=0).to(cuda)
    g_cuda.load_state_dict(g.state_dict())
    rewards = RolloutEngine(g_cuda, n).rewards(seqs.to(cuda), reward_fn, generator=torch.Generator(cuda).manual_seed(0))
    assert rewards.device.type == "cuda"
    within_mc_error(rewards.cpu(), mean, var, n)


def test_the_engine_writes_neither_into_the_policys_logits_nor_into_the_callers_state():
    """A policy whose logits are its own tensor (rows of a table): the engine must leave it as
    it was. A policy that writes into its input state is refused, the caller's state unchanged."""

    class OwnLogits:
        start_token = 0

        def __init__(self, in_place=False):
            self.table, self.in_place = torch.randn(7, 7), in_place

        def initial_state(self, batch_size):
            return torch.zeros(batch_size, 1)

        def step(self, tokens, state):
            if self.in_place:
                state.add_(1.0)
                return self.table[tokens], state
            return self.table[tokens], state + 1.0

    policy = OwnLogits()
    table = policy.table.clone()
    sequences = torch.randint(0, 7, (3, 4), generator=torch.Generator().manual_seed(0))
    RolloutEngine(policy, 2).rewards(sequences, lambda s: s.float().mean(dim=1), initial_state=torch.zeros(3, 1))
    assert torch.equal(policy.table, table)
    initial = torch.zeros(3, 1)
    with pytest.raises(ValueError, match="changed the state it was given in place"):
        RolloutEngine(OwnLogits(in_place=True), 2).rewards(sequences, lambda s: s.float().mean(dim=1),
                                                          initial_state=initial)
    assert torch.equal(initial, torch.zeros(3, 1))


@pytest.mark.parametrize("reward, message", [
    (lambda s: s.float().mean(dim=1, keepdim=True), r"returned shape \(4, 1\) for 4 sequences"),
    (lambda s: torch.full((len(s),), float("nan")), "non-finite value"),
    (lambda s: [0.0] * len(s), "returned a list"),
])
def test_a_reward_of_the_wrong_shape_or_not_finite_is_one_clear_error(reward, message):
    g = Generator(6, 4, 4)
    sequences = torch.randint(0, 6, (4, 3), generator=torch.Generator().manual_seed(0))
    with pytest.raises((ValueError, TypeError), match=message):
        RolloutEngine(g, 2).rewards(sequences, reward)


class GrowingCachePolicy:
    """A GPT-style policy whose KV cache grows one position per step, written the natural way
    (torch.cat): one attention head over embeddings of every token consumed so far. With
    `running_sum`, a third piece of fixed shape (the sum of the inputs' embeddings) joins the
    logits: a state of growing and fixed tensors together."""

    start_token = 0

    def __init__(self, vocab=3, dim=6, seed=0, running_sum=False):
        g = torch.Generator().manual_seed(seed)
        self.embed, self.wq, self.wk, self.wv = (torch.randn(*shape, generator=g) for shape in
                                                 [(vocab, dim), (dim, dim), (dim, dim), (dim, dim)])
        self.pos = torch.randn(16, dim, generator=g)
        self.head = torch.randn(dim, vocab, generator=g) * 2
        self.running_sum = running_sum

    def initial_state(self, batch_size):
        empty = torch.zeros(batch_size, 0, self.embed.shape[1])
        return (empty, empty.clone()) + ((torch.zeros(batch_size, self.embed.shape[1]),) if self.running_sum else ())

    def step(self, tokens, state):
        keys, values = state[:2]
        x = self.embed[tokens] + self.pos[keys.shape[1]]  # (B, d)
        keys = torch.cat([keys, (x @ self.wk).unsqueeze(1)], dim=1)  # (B, t+1, d): a new tensor, the input kept
        values = torch.cat([values, (x @ self.wv).unsqueeze(1)], dim=1)
        attention = torch.softmax((keys @ (x @ self.wq).unsqueeze(2)).squeeze(2) / keys.shape[2] ** 0.5, dim=1)
        hidden = (attention.unsqueeze(1) @ values).squeeze(1)
        if not self.running_sum:
            return hidden @ self.head, (keys, values)
        total = state[2] + x
        return (hidden + 0.3 * total) @ self.head, (keys, values, total)


@pytest.mark.parametrize("running_sum", [False, True])
def test_a_policy_whose_kv_cache_grows_gets_exact_rewards(running_sum):
    policy = GrowingCachePolicy(running_sum=running_sum)
    seqs = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1], [0, 1, 1, 2, 0]])
    mean, var = exact_rewards(policy, seqs, reward_fn, 3)
    n = 20000
    rewards = RolloutEngine(policy, n, block_rows=7000).rewards(seqs, reward_fn,
                                                                generator=torch.Generator().manual_seed(0))
    within_mc_error(rewards, mean, var, n)
    fixed = torch.tensor([[0, 0, 1, 0, 1], [0, 1, 0, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.bool)
    mean, var = exact_rewards(policy, seqs, reward_fn, 3, fixed)
    rewards = RolloutEngine(policy, n).rewards(seqs, reward_fn, fixed=fixed, generator=torch.Generator().manual_seed(1))
    within_mc_error(rewards, mean, var, n)
    # the same draws whatever the chunking
    small = RolloutEngine(policy, 8, max_batch_rows=40).rewards(seqs, reward_fn, generator=torch.Generator().manual_seed(2))
    whole = RolloutEngine(policy, 8).rewards(seqs, reward_fn, generator=torch.Generator().manual_seed(2))
    assert_close(small, whole)


class WrongInto(GrowingCachePolicy):
    """Offers `into` (append in place) but writes the new position wrong."""

    def step(self, tokens, state, into=None):
        logits, new = super().step(tokens, state)
        if into is None:
            return logits, new
        for buffer, piece in zip(into, new):
            buffer[:, -1:].copy_(piece[:, -1:] + 1.0)
        return logits, into


def test_a_step_into_the_engines_buffers_must_equal_the_plain_step():
    sequences = torch.tensor([[1, 2, 0, 1], [2, 1, 1, 0]])
    with pytest.raises(ValueError, match="policy.step gave other logits or another state on the rollout engine's "
                                         "buffers \\(.*into=\\) than the plain step"):
        RolloutEngine(WrongInto(), 2).rewards(sequences, reward_fn)


class BrokenState:
    """A policy breaking one rule of the state contract, chosen by `how`."""

    start_token = 0

    def __init__(self, how):
        self.how = how

    def initial_state(self, batch_size):
        if self.how == "none":
            return None
        if self.how == "dict":
            return {"h": torch.zeros(batch_size, 2)}
        return (torch.zeros(batch_size, 2),)

    def step(self, tokens, state):
        logits = torch.zeros(len(tokens), 3)
        if self.how == "gains a piece":
            return logits, state + (torch.zeros(len(tokens), 1),)
        if self.how == "in place":
            state[0].add_(1.0)
            return logits, state
        if self.how == "batch changes":
            return logits, (torch.zeros(len(tokens) + 1, 2),)
        grown = state[0].shape[1] - 2  # positions added so far (the state starts at 2 columns)
        if self.how == "grows unevenly":  # by 1, then 2
            return logits, (torch.zeros(len(tokens), state[0].shape[1] + grown + 1),)
        if self.how == "rewrites its past":
            return logits, (torch.cat([state[0] + 1.0, torch.zeros(len(tokens), 1)], dim=1),)
        if self.how == "grows by 2 at step 3":  # regular during the engine's two-step probe only
            return logits, (torch.zeros(len(tokens), state[0].shape[1] + (2 if grown == 2 else 1)),)
        return logits, state


@pytest.mark.parametrize("how, message", [
    ("none", "policy.initial_state\\(2\\) is NoneType"),
    ("dict", "policy.initial_state\\(2\\) is dict"),
    ("gains a piece", "changed its structure between steps \\(1 piece\\(s\\), then 2\\)"),
    ("in place", "changed the state it was given in place"),
    ("batch changes", "only one axis \\(not the batch\\) may change"),
    ("grows unevenly", "grew by 1 position\\(s\\) at its first step, then by 2: a growing piece must grow by the "
                       "same amount every step"),
    ("rewrites its past", "state piece 0 grew along axis 1 but its first 3 positions changed: a growing piece \\(a KV "
                          "cache\\) may only append"),
    ("grows by 2 at step 3", "state piece 0 had 4 positions before a step and 6 after it; it grew by 1 per step"),
])
def test_a_state_that_breaks_the_contract_is_one_clear_error(how, message):
    sequences = torch.tensor([[1, 2, 0, 1, 2], [2, 1, 1, 0, 0]])
    with pytest.raises((ValueError, TypeError), match=message):
        RolloutEngine(BrokenState(how), 2).rewards(sequences, lambda s: s.float().mean(dim=1))


def test_bad_sequences_devices_and_ids_are_one_clear_error():
    g = Generator(6, 4, 4)
    reward = lambda s: s.float().mean(dim=1)  # noqa: E731
    engine = RolloutEngine(g, 2)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 6\).*got 0 \.\. 9"):
        engine.rewards(torch.tensor([[0, 9, 1]]), reward)
    with pytest.raises(TypeError, match="integer token ids, got torch.float32"):
        engine.rewards(torch.tensor([[0.0, 1.0]]), reward)
    with pytest.raises(ValueError, match="initial_state must have 1 rows"):
        engine.rewards(torch.tensor([[0, 1]]), reward, initial_state=g.initial_state(2))
    with pytest.raises(TypeError, match="initial_state is dict"):
        engine.rewards(torch.tensor([[0, 1]]), reward, initial_state={"h": torch.zeros(1, 1)})
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="put the sequences, the policy and its state on one device"):
            engine.rewards(torch.tensor([[0, 1]], device="cuda"), reward)
        with pytest.raises(ValueError, match="seed the rollouts with torch.Generator\\(device='cpu'\\)"):
            engine.rewards(torch.tensor([[0, 1]]), reward, generator=torch.Generator(device="cuda"))


def test_a_conditional_reward_gets_each_rows_sequence_and_context_whatever_the_chunking(lstm):
    """reward = how often the completion holds the sequence's own target token (its context)."""
    seqs = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1], [0, 1, 1, 2, 0]])
    targets = torch.tensor([1, 2, 0])

    def reward(rows, index, context):
        assert torch.equal(rows[:, 0], seqs[index, 0])  # every completion keeps its own sequence's prefix
        return (rows == context.unsqueeze(1)).float().mean(dim=1)

    n = 20000
    rewards = RolloutEngine(lstm, n).rewards(seqs, reward, context=targets, generator=torch.Generator().manual_seed(0))
    for b in range(3):
        mean, var = exact_rewards(lstm, seqs[b : b + 1], lambda s: (s == targets[b]).float().mean(dim=1), 3)
        within_mc_error(rewards[b : b + 1], mean, var, n)
    chunked = RolloutEngine(lstm, 6, max_batch_rows=24).rewards(seqs, reward, context=targets,
                                                                generator=torch.Generator().manual_seed(3))
    whole = RolloutEngine(lstm, 6).rewards(seqs, reward, context=targets, generator=torch.Generator().manual_seed(3))
    assert torch.equal(chunked, whole)
    with pytest.raises(TypeError, match="takes no keyword `context`"):
        RolloutEngine(lstm, 2).rewards(seqs, reward_fn, context=targets)


@pytest.mark.parametrize("model", ["lstm", "lstm, float32 recurrence", "transformer"])
def test_rollouts_run_under_bfloat16_autocast(model, monkeypatch):
    """On any CPU: oneDNN's bf16 LSTM needs AVX-512; where this CPU lacks it the recurrence runs
    in float32 (`seqadv.models.lstm`). The float32-recurrence path is forced here on every machine, the
    native one runs where the machine has it."""
    import seqadv.models.lstm
    from seqadv.models.transformer import TransformerGenerator

    if model == "lstm" and not seqadv.models.lstm.cpu_lstm_supports(torch.bfloat16):
        pytest.skip(f"this CPU ({torch.backends.cpu.get_cpu_capability()}) runs no bf16 LSTM: "
                    f"the float32-recurrence case covers it")
    if model == "lstm, float32 recurrence":
        monkeypatch.setattr(seqadv.models.lstm, "cpu_lstm_supports", lambda dtype: False)
    torch.manual_seed(0)
    g = Generator(30, 16, 16) if model != "transformer" else TransformerGenerator(30, 16, 2, 2, max_length=8).eval()
    seqs = torch.randint(0, 30, (4, 6), generator=torch.Generator().manual_seed(0))
    reward = lambda s: (s < 10).float().mean(dim=1)  # noqa: E731
    plain = RolloutEngine(g, 400).rewards(seqs, reward, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = RolloutEngine(g, 400).rewards(seqs, reward, generator=torch.Generator().manual_seed(1))
        logits = g.target_logits(seqs)  # teacher forcing too
        assert logits.dtype == torch.bfloat16
    assert mixed.dtype == torch.float32 and torch.isfinite(mixed).all()
    # the same uniforms through bf16 logits: rewards as close as Monte Carlo error allows
    assert (mixed - plain).abs().max().item() < 5 * (0.25 / 400) ** 0.5 * 2
    assert_close(logits.float(), g.target_logits(seqs), atol=0.05, rtol=0.05)


def test_the_lstm_support_of_this_cpu_is_found_by_trying():
    """cpu_lstm_supports answers what running nn.LSTM under autocast answers on this machine."""
    import seqadv.models.lstm

    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(3, 3, batch_first=True)(torch.zeros(2, 4, 3))
        runs = True
    except RuntimeError:
        runs = False
    assert seqadv.models.lstm.cpu_lstm_supports(torch.bfloat16) == runs


class Diverged(MarkovPolicy):
    """A policy whose weights diverged: NaN logits after its first step."""

    def step(self, tokens, state):
        logits, new = super().step(tokens, state)
        return torch.full_like(logits, float("nan")) if bool((state != 0).any()) else logits, new


def test_nan_logits_are_one_clear_error_in_the_engine_and_in_sampling():
    from seqadv.core.errors import NumericalError
    from seqadv.core.sampling import generate

    policy = Diverged(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="the policy's logits were NaN or infinite at some rollout step"):
        RolloutEngine(policy, 2).rewards(torch.tensor([[1, 2, 0, 1]]), reward_fn)
    with pytest.raises(NumericalError, match="the policy's logits are NaN or infinite"):
        generate(policy, 4, 5)


# --- the probe's blind spots ---------------------------------------------------------------------------------

class NewestFirst:
    """Logits from the last two tokens, its state the embeddings of every token consumed,
    newest first (each step prepends): it grows, but not by appending. Fed the same token
    twice, it looks as if it appended."""

    start_token = 0

    def __init__(self, vocab=3):
        g = torch.Generator().manual_seed(0)
        self.embed, self.head = torch.randn(vocab, 4, generator=g), torch.randn(4, vocab, generator=g) * 2

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 0, 4)

    def step(self, tokens, state):
        state = torch.cat([self.embed[tokens].unsqueeze(1), state], dim=1)
        last_two = state[:, 0] + (0.5 * state[:, 1] if state.shape[1] > 1 else 0.0)
        return last_two @ self.head, state


def test_a_state_kept_newest_first_is_refused():
    with pytest.raises(ValueError, match="may only append, its newest position last \\(a state kept newest-first"):
        RolloutEngine(NewestFirst(), 4).rewards(torch.tensor([[1, 2, 0, 1, 1]]), reward_fn)


class Unigram:
    """Every row's logits are the same, returned as a view of its own table (a parameter);
    it takes `out` and ignores it. The engine must not softmax its table in place."""

    start_token = 0

    def __init__(self, vocab=3, rows=128):
        self.weights = torch.randn(vocab, generator=torch.Generator().manual_seed(0)) * 2
        self.table = self.weights.repeat(rows, 1)  # (rows, V): each row the same

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 1)

    def step(self, tokens, state, out=None):
        return self.table[: len(tokens)], state + 1


def test_logits_the_policy_owns_are_not_overwritten_and_rewards_stay_exact():
    policy = Unigram()
    table = policy.table.clone()
    seqs = torch.tensor([[1, 2, 0, 1], [2, 0, 2, 1]])
    mean, var = exact_rewards(policy, seqs, reward_fn, 3)
    n = 20000
    rewards = RolloutEngine(policy, n, block_rows=40).rewards(seqs, reward_fn,
                                                               generator=torch.Generator().manual_seed(0))
    assert torch.equal(policy.table, table)
    within_mc_error(rewards, mean, var, n)


class CountingSteps(MarkovPolicy):
    def __init__(self, logits):
        super().__init__(logits)
        self.steps = 0

    def step(self, tokens, state):
        self.steps += 1
        return super().step(tokens, state)


def test_length_one_calls_only_the_reward():
    from seqadv.models.transformer import TransformerGenerator

    g = TransformerGenerator(5, d_model=8, num_layers=1, num_heads=2, max_length=1)
    seqs = torch.tensor([[3], [1], [4]])
    reward = lambda s: s.float()[:, 0] / 4  # noqa: E731
    assert_close(RolloutEngine(g, 8).rewards(seqs, reward), reward(seqs).unsqueeze(1))
    counting = CountingSteps(torch.randn(5, 5))
    RolloutEngine(counting, 8).rewards(seqs, reward)
    assert counting.steps == 0
    # length 2 takes the model's two positions, no more
    g2 = TransformerGenerator(5, d_model=8, num_layers=1, num_heads=2, max_length=2)
    assert RolloutEngine(g2, 8).rewards(torch.tensor([[3, 1], [1, 1]]), lambda s: s.float().mean(1)).shape == (2, 2)


class ViewsItsState(GrowingCachePolicy):
    """A growing state read with `.view()`: fine on contiguous tensors, an error on the engine's views."""

    def step(self, tokens, state):
        keys = state[0]
        keys.view(-1, keys.shape[-1])  # merges rows and positions: needs them contiguous
        return super().step(tokens, state)


def test_a_policy_that_cannot_take_the_engines_views_is_refused_at_the_probe():
    policy = ViewsItsState()
    state = policy.initial_state(2)
    for token in (0, 1):  # the plain loop works: contiguous states
        _, state = policy.step(torch.tensor([token, token]), state)
    with pytest.raises(ValueError, match="policy.step failed on the state as the rollout engine hands it over "
                                         "\\(its state as views of the engine's buffers, not contiguous where it grows"
                                         "\\): RuntimeError: .*\\(.reshape, not .view\\)"):
        RolloutEngine(policy, 4).rewards(torch.tensor([[1, 2, 0, 1, 1]]), reward_fn)


# --- finished text costs no rollouts ---------------------------------------------------------------------------

EOS, PAD = 3, 0


class Recording:
    """Wraps a policy: records every token it is fed after the engine's probe (four calls for
    T >= 3: three steps, the third taken twice)."""

    def __init__(self, policy):
        self.policy, self.start_token, self.calls, self.fed = policy, policy.start_token, 0, []
        self.initial_state = policy.initial_state

    def step(self, tokens, state):
        self.calls += 1
        if self.calls > 4:
            self.fed.append(tokens.clone())
        return self.policy.step(tokens, state)


class PrefixChecking:
    """A prefix-aware reward that checks the grouping it is given against the sequences."""

    def __init__(self, reward):
        self.reward, self.calls = reward, 0

    def __call__(self, sequences):
        return self.reward(sequences)

    def score_rollouts(self, sequences, completions, num_rollouts, counts):
        self.calls += 1
        T = sequences.shape[1]
        assert len(counts) == T - 1 and list(counts) == sorted(counts, reverse=True)
        assert len(completions) == num_rollouts * sum(counts)
        row = 0
        for t, c in enumerate(counts, start=1):
            group = completions[row : row + c * num_rollouts].view(c, num_rollouts, T)
            assert torch.equal(group[:, :, :t], sequences[:c, None, :t].expand(c, num_rollouts, t))
            assert not (sequences[:c, :t] == EOS).any()  # only prefixes that are still text
            row += c * num_rollouts
        return self.reward(completions)


def ended_sequences():
    # ends at 2, at 0 (the first token), never, at 4; a 4th token of 4 (the end token 3)
    return torch.tensor([[1, 2, 3, 0, 0], [3, 0, 0, 0, 0], [2, 1, 2, 1, 2], [1, 1, 2, 2, 3]])


def ended_kept():
    """Positions of `ended_sequences` that rollouts keep, before and after their ends."""
    return torch.tensor([[0, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 1], [0, 0, 1, 0, 0]], dtype=torch.bool)


@pytest.mark.parametrize("policy_name, options", [
    ("lstm", {}),
    ("lstm", {"max_batch_rows": 1}),        # a sequence per chunk
    ("lstm", {"block_rows": 7}),            # steps in blocks that cut the rows anywhere
    ("lstm", {"prefix_aware": True}),
    ("cache", {"block_rows": 9}),           # a growing state: rows that end move up in its buffers
    ("cache", {"fixed": True}),
])
def test_finished_prefixes_are_not_rolled_out_and_rewards_stay_exact(policy_name, options):
    torch.manual_seed(0)
    if policy_name == "lstm":
        policy = Generator(vocab_size=4, embedding_dim=8, hidden_dim=8, start_token=0, eos_token=EOS, pad_token=PAD)
        with torch.no_grad():
            policy.head.weight.mul_(4)
            policy.head.bias[EOS] += 1.0  # end often
    else:
        policy = GrowingCachePolicy(vocab=4, seed=1)
    options = dict(options)
    fixed = None
    if options.pop("fixed", False):
        fixed = ended_kept()
    reward = PrefixChecking(reward_fn) if options.pop("prefix_aware", False) else reward_fn
    seqs = ended_sequences()
    mean, var = exact_rewards(policy, seqs, reward_fn, 4, fixed, eos=EOS, pad=PAD)
    recording = Recording(policy)
    n = 20000
    engine = RolloutEngine(recording, n, eos_token=EOS, pad_token=PAD, **options)
    rewards = engine.rewards(seqs, reward, fixed=fixed, generator=torch.Generator().manual_seed(0))
    within_mc_error(rewards, mean, var, n)
    # a prefix that holds the end token (or whose rest is kept) has its sequence's reward, exactly
    finished = torch.zeros(4, 5, dtype=torch.bool)
    for b, end in enumerate([2, 0, 5, 4]):
        finished[b, end:] = True
        for c in range(5):  # column c: prefix length c + 1, known too if every later position is kept
            finished[b, c] |= fixed is not None and bool(fixed[b, c + 1 :].all())
    assert torch.equal(rewards[finished], rewards[:, -1:].expand(4, 5)[finished])
    # no completion is stepped past its end: after the probe, the end token is never fed to the policy
    assert recording.calls > 4 and not (torch.cat(recording.fed) == EOS).any()
    # prefix lengths 1..T-1 still text (column t-1) whose next position is drawn; one whose next
    # position is kept takes the next prefix's value, with no rollouts of its own
    next_kept = torch.zeros(4, 4, dtype=torch.bool) if fixed is None else fixed[:, 1:]
    open_prefixes = int((~finished[:, :-1] & ~next_kept).sum())
    if fixed is not None:
        taken = ~finished[:, :-1] & next_kept
        assert taken.any() and torch.equal(rewards[:, :-1][taken], rewards[:, 1:][taken])
    assert engine.stats.rolled == n * open_prefixes and engine.stats.skipped == n * (16 - open_prefixes)
    if isinstance(reward, PrefixChecking):
        assert reward.calls == 1


def test_the_reward_scores_only_the_prefixes_that_are_still_text():
    """4 sequences of length 4, N = 8: 100 rows scored before, 4 + 8 * (open prefixes) now."""
    torch.manual_seed(0)
    g = Generator(vocab_size=5, embedding_dim=8, hidden_dim=8, start_token=1, eos_token=EOS, pad_token=PAD)
    seqs = torch.tensor([[2, 3, 0, 0], [3, 0, 0, 0], [2, 4, 2, 3], [4, 2, 3, 0]])
    seen, indices = [], []

    def record(rows, index):
        seen.append(rows.clone())
        indices.append(index.clone())
        return rows.float().mean(dim=1)

    engine = RolloutEngine(g, 8, eos_token=EOS, pad_token=PAD)
    engine.rewards(seqs, record)
    open_prefixes = 1 + 0 + 3 + 2  # prefix lengths 1..3 without the end token
    assert sum(len(s) for s in seen) == 4 + 8 * open_prefixes == 52
    # each row completes the sequence `index` names: it keeps a prefix of it
    rows, index = torch.cat(seen[1:]), torch.cat(indices[1:])
    assert torch.equal(rows[:, 0], seqs[index, 0])
    assert engine.stats.rolled == 48 and engine.stats.skipped == 8 * 12 - 48


class Masked:
    """A reward that pads after the end token itself: with an engine that has no end token, every
    prefix is rolled out to the full length (the behaviour before finished text was skipped)."""

    def __init__(self, reward):
        self.reward = reward

    def __call__(self, rows):
        return self.reward(mask_after_eos(rows, EOS, PAD))


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_skipping_finished_text_uses_the_same_draws_whatever_the_chunks_and_blocks(model):
    """The same seed gives bitwise the rewards of rolling every prefix out, for every prefix still
    text, and the finished ones their sequence's reward. The Transformer appends into the engine's
    buffers (`into`) while ended rows are dropped from them."""
    from seqadv.models.transformer import TransformerGenerator

    torch.manual_seed(1)
    if model == "lstm":
        policy = Generator(vocab_size=6, embedding_dim=8, hidden_dim=8, start_token=1, eos_token=EOS, pad_token=PAD)
        with torch.no_grad():
            policy.head.bias[EOS] += 1.5  # end often
    else:  # near-uniform logits: it ends at a sixth of its steps
        policy = TransformerGenerator(6, d_model=8, num_layers=2, num_heads=2, max_length=9).eval()
    seqs = torch.tensor([[1, 2, 3, 0, 0, 0, 0, 0, 0], [2, 4, 5, 1, 2, 4, 5, 1, 2], [3, 0, 0, 0, 0, 0, 0, 0, 0],
                         [5, 5, 4, 2, 1, 3, 0, 0, 0], [4, 1, 2, 5, 3, 0, 0, 0, 0]])
    reward = lambda s: torch.sin(s.float() * torch.arange(1, 10)).sum(1)  # noqa: E731
    seed = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    every = RolloutEngine(policy, 6).rewards(seqs, Masked(reward), generator=seed())
    skipping = RolloutEngine(policy, 6, eos_token=EOS, pad_token=PAD)
    skipped = skipping.rewards(seqs, reward, generator=seed())
    assert skipping.stats.skipped > 0 and skipping.stats.row_steps < 5 * 6 * 9 * 8 // 2
    first_end = [2, 9, 0, 5, 4]
    for b, end in enumerate(first_end):
        assert torch.equal(skipped[b, :end], every[b, :end])  # the prefixes still text: bitwise the same
        assert_close(skipped[b, end:], every[b, end:])  # finished: one score instead of the mean of N equal ones
    for options in ({"max_batch_rows": 8}, {"block_rows": 5}, {"max_batch_rows": 100, "block_rows": 3}):
        again = RolloutEngine(policy, 6, eos_token=EOS, pad_token=PAD, **options).rewards(seqs, reward, generator=seed())
        assert torch.equal(again, skipped), options


class ReshapeInto(GrowingCachePolicy):
    """Appends into the engine's buffers through `.reshape(...)`: a view of a contiguous buffer
    (the write lands), a copy of the engine's longer ones (the write is lost)."""

    def step(self, tokens, state, into=None):
        logits, new = super().step(tokens, state)
        if into is None:
            return logits, new
        for buffer, piece in zip(into, new):
            B, L, d = buffer.shape
            buffer.reshape(-1, d).view(B, L, d)[:, -1] = piece[:, -1]
        return logits, into


def test_a_step_into_buffers_that_only_works_on_contiguous_ones_is_refused():
    with pytest.raises(ValueError, match="gave other logits or another state on the rollout engine's buffers"):
        RolloutEngine(ReshapeInto(), 4).rewards(torch.tensor([[1, 2, 0, 1, 1]]), reward_fn)


def test_a_prefix_aware_reward_without_counts_is_one_clear_error():
    class Old:
        def __call__(self, rows):
            return rows.float().mean(dim=1)

        def score_rollouts(self, sequences, completions, num_rollouts, max_rows=1024):
            return self(completions)

    with pytest.raises(TypeError, match="score_rollouts takes no keyword `counts`"):
        RolloutEngine(Generator(5, 4, 4), 2).rewards(torch.tensor([[1, 2, 3]]), Old())


def completion_code(rows):
    """Each completion as a number (base 4 digits): a reward that says which completion it scored."""
    return (rows * 4 ** torch.arange(rows.shape[1] - 1, -1, -1)).sum(1).float()


@pytest.mark.parametrize("policy_name, options", [
    ("lstm", {}),
    ("lstm", {"max_batch_rows": 1, "block_rows": 7}),
    ("lstm", {"prefix_aware": True}),
    ("lstm", {"fixed": True}),
    ("cache", {"fixed": True}),
])
def test_per_completion_rewards_are_the_completions_scores_and_average_to_the_rewards(policy_name, options):
    """`per_completion=True`: [b, t, n] is the reward of one completion of y_0..y_t (it keeps that
    prefix, and the kept positions), the N of a rolled-out prefix are distinct draws, and their mean
    is bitwise the default result for the same seed."""
    torch.manual_seed(0)
    if policy_name == "lstm":
        policy = Generator(vocab_size=4, embedding_dim=8, hidden_dim=8, start_token=0, eos_token=EOS, pad_token=PAD)
        with torch.no_grad():
            policy.head.weight.mul_(2)
    else:
        policy = GrowingCachePolicy(vocab=4, seed=1)
    options = dict(options)
    fixed = None
    if options.pop("fixed", False):
        fixed = ended_kept()
    prefix_aware = options.pop("prefix_aware", False)
    reward = PrefixChecking(completion_code) if prefix_aware else completion_code
    seqs, N = ended_sequences(), 6
    engine = RolloutEngine(policy, N, eos_token=EOS, pad_token=PAD, **options)
    each = engine.rewards(seqs, reward, fixed=fixed, generator=torch.Generator().manual_seed(3), per_completion=True)
    means = engine.rewards(seqs, reward, fixed=fixed, generator=torch.Generator().manual_seed(3))
    assert each.shape == (4, 5, N)
    assert torch.equal(each.mean(dim=2), means)
    codes = each.long()
    digits = torch.stack([codes // 4 ** (4 - k) % 4 for k in range(5)], dim=-1)  # (B, T, N, T)
    finished = mask_after_eos(seqs, EOS, PAD)
    for b in range(4):
        for t in range(5):
            keep = torch.zeros(5, dtype=torch.bool)
            keep[: t + 1] = True
            if fixed is not None:
                keep |= fixed[b]
            # a kept position after an end token the completion drew is padding
            ended = torch.cumsum((digits[b, t] == EOS).long(), dim=1) - (digits[b, t] == EOS).long() > 0
            assert ((digits[b, t] == finished[b]) | ended)[:, keep].all(), (b, t)
    # a prefix still text with its next position drawn has N completions of its own (not one copy;
    # the cache policy is too peaky to show it)
    assert policy_name == "cache" or any(codes[b, t].unique().numel() > 1 for b in range(4) for t in range(4))
    assert torch.equal(codes[:, 4], completion_code(finished).long()[:, None].expand(4, N))


@pytest.mark.parametrize("reward_kind", ["plain", "prefix_aware"])
def test_rolling_out_only_some_prefix_lengths_gives_the_full_calls_columns(reward_kind):
    """`prefixes=[2, 4]` (LeakGAN's every c-th): those columns bitwise the full call's for the
    seed, the rest but the last NaN, and only their completions rolled out and scored."""
    from seqadv.models.discriminator import Discriminator
    from seqadv.rl.rewards import discriminator_reward

    torch.manual_seed(0)
    policy = Generator(vocab_size=6, embedding_dim=8, hidden_dim=8, start_token=0, eos_token=EOS, pad_token=PAD)
    seqs = torch.tensor([[1, 2, 4, 0, 5, 1], [2, 3, 0, 0, 0, 0], [5, 4, 1, 2, 1, 4]])
    reward = (discriminator_reward(Discriminator(6, 4, (1, 2, 3), (2, 2, 2), 0.0).eval())
              if reward_kind == "prefix_aware" else reward_fn)
    engine = RolloutEngine(policy, 5, eos_token=EOS, pad_token=PAD, max_batch_rows=40)
    full = engine.rewards(seqs, reward, generator=torch.Generator().manual_seed(1))
    some = engine.rewards(seqs, reward, generator=torch.Generator().manual_seed(1), prefixes=[2, 4])
    assert torch.equal(some[:, [1, 3, 5]], full[:, [1, 3, 5]])
    assert torch.isnan(some[:, [0, 2, 4]]).all()
    # prefix lengths 2 and 4 of rows 0 and 2 are text (row 1 has ended at position 1)
    assert engine.stats.rolled == 5 * 4
    with pytest.raises(ValueError, match="prefix lengths in 1..5"):
        engine.rewards(seqs, reward, prefixes=[0, 6])
    with pytest.raises(ValueError, match="prefixes and fixed do not go together"):
        engine.rewards(seqs, reward, prefixes=[2], fixed=torch.zeros_like(seqs, dtype=torch.bool))
