import torch
from torch.testing import assert_close

from seqadv.core.masks import mask_after_eos, tokens_mask
from seqadv.core.sampling import sample_from_logits


def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    stat = ((counts - expected) ** 2 / expected).sum()
    dof = len(counts) - 1
    return torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.double), stat.double() / 2).item()


def test_sampled_frequencies_match_the_softmax():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(12, generator=gen, dtype=torch.double).float() * 2
    draws = sample_from_logits(logits.expand(200_000, 12).contiguous(), generator=gen)[:, 0]
    counts = torch.bincount(draws, minlength=12).double()
    assert chi_square_p_value(counts, torch.softmax(logits.double(), 0)) > 1e-3


def test_many_draws_per_row_and_temperature():
    gen = torch.Generator().manual_seed(1)
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0], [3.0, 0.0, 0.0, 0.0]])
    draws = sample_from_logits(logits, num_samples=100_000, temperature=0.5, generator=gen)
    assert draws.shape == (2, 100_000)
    for row in range(2):
        counts = torch.bincount(draws[row], minlength=4).double()
        assert chi_square_p_value(counts, torch.softmax(logits[row].double() / 0.5, 0)) > 1e-3


def test_a_wrong_distribution_is_detected():
    # the check above has power: frequencies from temperature 1 fail against temperature 0.8
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(12, generator=gen)
    draws = sample_from_logits(logits.expand(200_000, 12).contiguous(), generator=gen)[:, 0]
    counts = torch.bincount(draws, minlength=12).double()
    assert chi_square_p_value(counts, torch.softmax(logits.double() / 0.8, 0)) < 1e-6


def test_zero_probability_tokens_are_never_drawn():
    logits = torch.tensor([[-float("inf"), 0.0, -float("inf"), 0.0, -float("inf")]]).expand(50_000, 5)
    draws = sample_from_logits(logits, generator=torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) == {1, 3}
    edges = sample_from_logits(logits[:3], uniforms=torch.tensor([[0.0], [0.5], [1.0 - 1e-9]]))
    assert edges[:, 0].tolist() == [1, 3, 3]


def test_mask_after_eos():
    tokens = torch.tensor([[5, 2, 7, 2, 6], [5, 6, 7, 8, 9], [2, 4, 4, 4, 4]])
    assert mask_after_eos(tokens, 2, 0).tolist() == [[5, 2, 0, 0, 0], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0]]
    assert_close(tokens_mask(tokens, 2, 0), torch.tensor([[1.0, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]))
    assert torch.equal(mask_after_eos(tokens, None, None), tokens)


def test_two_level_cdf_matches_the_softmax():
    # 50 tokens in blocks of 7: a short last block, and one whole block of zero probability
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(50, generator=gen) * 1.5
    logits[14:21] = -float("inf")
    logits[3] = -float("inf")
    draws = sample_from_logits(logits.expand(4, 50).contiguous(), num_samples=100_000, block_size=7, generator=gen)
    assert not ((draws >= 14) & (draws < 21)).any() and not (draws == 3).any()
    probs = torch.softmax(logits.double(), 0)
    support = probs > 0
    for row in draws:
        counts = torch.bincount(row, minlength=50).double()
        assert chi_square_p_value(counts[support], probs[support]) > 1e-3


def test_two_level_and_one_level_cdfs_agree_draw_for_draw():
    # the same inverse CDF: the same token for the same uniform, but for float rounding at a boundary
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(64, 5000, generator=gen) * 3
    uniforms = torch.rand(64, 200, generator=gen)
    one = sample_from_logits(logits, uniforms, block_size=0)
    two = sample_from_logits(logits, uniforms)  # V = 5,000: two levels by default
    assert (one == two).double().mean() > 0.999


def test_overwrite_only_when_asked():
    logits = torch.randn(8, 2000, generator=torch.Generator().manual_seed(5))
    kept, uniforms = logits.clone(), torch.rand(8, 3, generator=torch.Generator().manual_seed(6))
    for temperature in (1.0, 0.7):
        draws = sample_from_logits(logits, uniforms, temperature=temperature)
        assert torch.equal(logits, kept)
        scratch = logits.clone()
        assert torch.equal(sample_from_logits(scratch, uniforms, temperature=temperature, overwrite=True), draws)
        assert not torch.equal(scratch, kept)
