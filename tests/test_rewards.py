"""The discriminator reward: the prefix-sharing path gives the dense path's rewards."""
import pytest
import torch
from torch.testing import assert_close

from seqadv.models.discriminator import Discriminator
from seqadv.models.generator import Generator
from seqadv.rl.rewards import discriminator_reward
from seqadv.rl.rollout import PrefixAwareReward, RolloutEngine


def completions_of_prefixes(sequences, num_rollouts, vocab, seed=0):
    """Random completions that keep each prefix: ((T-1) * b * N, T) ordered (t, sequence, rollout)."""
    b, T = sequences.shape
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(vocab, (T - 1, b, num_rollouts, T), generator=gen)
    for t in range(1, T):
        rows[t - 1, :, :, :t] = sequences[:, None, :t]
    return rows.view(-1, T)


@pytest.mark.parametrize("length, widths", [(9, (1, 2, 3, 5)), (7, (2, 4, 10))])  # 10 > 7: padded
def test_shared_prefix_windows_give_the_dense_logits(length, widths):
    torch.manual_seed(0)
    d = Discriminator(30, embedding_dim=8, filter_sizes=widths, num_filters=(6,) * len(widths)).eval()
    sequences = torch.randint(30, (5, length))
    completions = completions_of_prefixes(sequences, 4, 30)
    dense = d(completions)
    for max_rows in (4, 9, 10**4):  # whole sequences per piece, or one sequence's rollouts split
        assert_close(d.rollout_logits(sequences, completions, 4, max_rows=max_rows), dense)
    # and the windows inside the prefix matter: a different prefix gives different logits
    other = completions_of_prefixes(torch.randint(30, (5, length)), 4, 30)
    assert not torch.allclose(d.rollout_logits(sequences, other, 4), d(other))


def test_shared_prefix_windows_give_the_dense_logits_when_fewer_prefixes_are_rolled_out():
    """counts[t - 1]: only the first counts of the sequences have completions of prefix length t."""
    torch.manual_seed(0)
    d = Discriminator(30, embedding_dim=8, filter_sizes=(1, 2, 4), num_filters=(6, 6, 6)).eval()
    sequences = torch.randint(30, (5, 7))
    counts = [5, 5, 3, 3, 1, 0]
    grouped = completions_of_prefixes(sequences, 4, 30).view(6, 5, 4, 7)
    completions = torch.cat([grouped[t - 1, :c].reshape(-1, 7) for t, c in enumerate(counts, start=1)])
    for max_rows in (4, 9, 10**4):
        assert_close(d.rollout_logits(sequences, completions, 4, max_rows=max_rows, counts=counts), d(completions))


@pytest.mark.parametrize("fixed, eos", [(False, False), (True, False), (False, True)])
def test_engine_rewards_with_and_without_prefix_sharing_are_equal(fixed, eos):
    torch.manual_seed(0)
    kw = dict(eos_token=2, pad_token=0) if eos else {}
    g = Generator(vocab_size=25, embedding_dim=8, hidden_dim=8, start_token=1, **kw).eval()
    d = Discriminator(25, embedding_dim=8, filter_sizes=(1, 3, 4), num_filters=(5, 5, 5)).train()
    seqs = g.sample(6, 8, generator=torch.Generator().manual_seed(0))
    mask = torch.rand(6, 8, generator=torch.Generator().manual_seed(1)) < 0.3 if fixed else None
    shared, dense = discriminator_reward(d), discriminator_reward(d, share_prefix=False)
    assert isinstance(shared, PrefixAwareReward)
    engine = RolloutEngine(g, 5, **kw)
    run = lambda reward: engine.rewards(seqs, reward, fixed=mask, generator=torch.Generator().manual_seed(2))  # noqa: E731
    assert_close(run(shared), run(dense))
    assert d.training  # scored in eval mode (no dropout), and the mode restored
    d.eval()
    assert_close(run(shared), run(lambda s: torch.sigmoid(d(s))))  # a plain callable: the same
