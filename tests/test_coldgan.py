"""ColdGANs' importance weights and SeqGAN's reward baselines, against hand computations;
what each importance-weighted update estimates, exactly, by enumerating every sequence."""
import copy
import itertools
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from seqadv import SeqGANConfig
from seqadv.core.masks import tokens_mask
from seqadv.rl.advantages import batch_baseline
from seqadv.rl.losses import importance_weights, token_log_probs
from seqadv.trainers.base import resumed_config
from seqadv.trainers.seqgan import policy_gradient_step

# --- the weights, by hand -----------------------------------------------------------------------

# three positions' distributions p over V = 3 tokens; at temperature 0.5, q is proportional to p^2
P = torch.tensor([[0.5, 0.25, 0.25],   # q = 2/3, 1/6, 1/6:  p/q = 0.75, 1.5, 1.5
                  [0.2, 0.4, 0.4],     # q = 1/9, 4/9, 4/9:  p/q = 1.8, 0.9, 0.9
                  [0.6, 0.2, 0.2]])    # q = 9/11, 1/11, 1/11: p/q = 11/15, 2.2, 2.2
EOS, PAD = 2, 0
TOKENS = torch.tensor([[1, 0, 1],      # no end token:           p/q = 1.5, 1.8, 2.2
                       [0, EOS, PAD]])  # ends at its 2nd token: p/q = 0.75, 0.9, (not text)


def hand_case():
    """log p and log q of TOKENS under P at temperature 0.5, and their mask. Shape: (2, 3) each"""
    logits = P.log().expand(2, 3, 3)
    mask = tokens_mask(TOKENS, EOS, PAD)
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    return token_log_probs(logits, TOKENS), token_log_probs(logits / 0.5, TOKENS), mask


def test_token_and_prefix_weights_equal_the_hand_computed_ratios_and_products():
    log_p, log_q, mask = hand_case()
    assert_close(importance_weights(log_p, log_q, mask, "token"), torch.tensor([[1.5, 1.8, 2.2], [0.75, 0.9, 0.0]]))
    # the product of the ratios over the prefix; the end token's row stops there
    assert_close(importance_weights(log_p, log_q, mask, "prefix"),
                 torch.tensor([[1.5, 1.5 * 1.8, 1.5 * 1.8 * 2.2], [0.75, 0.75 * 0.9, 0.0]]))
    # no mask: every position is text (the padding's own ratio, 11/15, enters the product)
    assert_close(importance_weights(log_p, log_q, kind="prefix")[1], torch.tensor([0.75, 0.675, 0.675 * 11 / 15]))


def test_clipping_takes_the_minimum_of_the_weight_and_the_clip_after_the_product():
    log_p, log_q, mask = hand_case()
    assert_close(importance_weights(log_p, log_q, mask, "token", clip=2.0),
                 torch.tensor([[1.5, 1.8, 2.0], [0.75, 0.9, 0.0]]))
    # min(1.5 * 1.8, 2) and min(1.5 * 1.8 * 2.2, 2): the clipped product, not a product of clipped ratios
    assert_close(importance_weights(log_p, log_q, mask, "prefix", clip=2.0),
                 torch.tensor([[1.5, 2.0, 2.0], [0.75, 0.675, 0.0]]))
    assert_close(importance_weights(log_p, log_q, mask, "prefix", clip=0.0),
                 importance_weights(log_p, log_q, mask, "prefix"))  # 0: no clipping


def test_self_normalised_weights_are_divided_by_their_mean_over_the_text_at_each_position():
    log_p, log_q, mask = hand_case()
    # token: means (1.5 + 0.75) / 2, (1.8 + 0.9) / 2, and 2.2 alone at the third position (row 1 has ended)
    assert_close(importance_weights(log_p, log_q, mask, "token", normalize=True),
                 torch.tensor([[1.5 / 1.125, 1.8 / 1.35, 1.0], [0.75 / 1.125, 0.9 / 1.35, 0.0]]))
    prefix = importance_weights(log_p, log_q, mask, "prefix", normalize=True)
    assert_close(prefix, torch.tensor([[1.5 / 1.125, 2.7 / 1.6875, 1.0], [0.75 / 1.125, 0.675 / 1.6875, 0.0]]))
    # clipped first, then normalised
    assert_close(importance_weights(log_p, log_q, mask, "prefix", clip=2.0, normalize=True),
                 torch.tensor([[1.5 / 1.125, 2.0 / 1.3375, 1.0], [0.75 / 1.125, 0.675 / 1.3375, 0.0]]))
    # one process's rows: the other's per-position sums (weights, then count of text) added by `batch_sum`
    other = torch.tensor([[0.75, 0.675, 0.0], [1.0, 1.0, 0.0]])
    assert_close(importance_weights(log_p[:1], log_q[:1], mask[:1], "prefix", normalize=True,
                                    batch_sum=lambda totals: totals + other), prefix[:1])
    # weights that underflow to 0 everywhere at a position are left as they are, not 0 / 0
    tiny = importance_weights(torch.full((2, 1), -200.0), torch.zeros(2, 1), normalize=True)
    assert torch.equal(tiny, torch.zeros(2, 1))


def test_bad_weight_arguments_are_refused():
    log_p, log_q, mask = hand_case()
    with pytest.raises(ValueError, match="unknown importance weight 'sequence'"):
        importance_weights(log_p, log_q, mask, "sequence")
    with pytest.raises(ValueError, match="must not be negative"):
        importance_weights(log_p, log_q, mask, clip=-1.0)


# --- what the weighted update estimates, by enumeration -----------------------------------------

V, TEMPERATURE = 3, 0.5


class TablePolicy(nn.Module):
    """Two tokens: p(y_1) = softmax(first), p(y_2 | y_1) = softmax(second[y_1])."""

    eos_token = pad_token = None

    def __init__(self, first, second):
        super().__init__()
        self.first, self.second = nn.Parameter(first.clone()), nn.Parameter(second.clone())

    def target_logits(self, y):
        """Shape: y (B, 2) -> (B, 2, V)"""
        return torch.stack([self.first.expand(len(y), V), self.second[y[:, 0]]], dim=1)


def expected_update(g, every, Q, sample_temperature, **weights):
    """The update policy_gradient_step takes, in expectation over sequences drawn at
    `sample_temperature`: every sequence once, its rewards scaled by its probability
    (and by the loss's count of tokens, 2 per row). Shape: every (9, 2), Q (9, 2) -> grads"""
    with torch.no_grad():
        drawn = token_log_probs(g.target_logits(every) / sample_temperature, every).sum(1).exp()
    assert_close(drawn.sum(), torch.tensor(1.0))
    policy_gradient_step(g, torch.optim.SGD(g.parameters(), lr=0.0), copy.deepcopy(g), every,
                         Q * drawn[:, None] * every.numel(), 0.0, 0.8, "test", sample_temperature=sample_temperature,
                         **weights)
    return [-p.grad.clone() for p in (g.first, g.second)]  # the loss is minus the weighted sum


def far(grads, truth) -> bool:
    """Some gradient differs from the truth's by more than a fifth of the truth's largest."""
    return any((a - b).abs().max() > 0.2 * b.abs().max() for a, b in zip(grads, truth))


def test_prefix_weights_make_the_cold_update_exact_and_token_weights_do_not():
    """On V = 3, T = 2, every sequence weighted by its probability under q = G at temperature
    0.5: the prefix-weighted update's expectation is exactly the update on G's own samples,
    and, with Q from G itself, the gradient of G's expected reward (autograd); the
    per-token weight is exact at the first token only, and clipping biases the prefix weight."""
    gen = torch.Generator().manual_seed(3)
    first, second = torch.randn(V, generator=gen), torch.randn(V, V, generator=gen)
    R = torch.rand(V, V, generator=gen)  # the reward of each whole text (y_1, y_2)
    every = torch.tensor(list(itertools.product(range(V), repeat=2)))  # (9, 2)
    g = TablePolicy(first, second)

    p_first, p_second = first.softmax(0), second.softmax(1)
    # the gradient of G's expected reward E_p[R] = sum_y p(y_1) p(y_2 | y_1) R(y), by autograd
    theta = [first.clone().requires_grad_(), second.clone().requires_grad_()]
    truth = torch.autograd.grad((theta[0].softmax(0)[:, None] * theta[1].softmax(1) * R).sum(), theta)

    def rewards(second_step):  # Q_1 = E[R | y_1] with the completion from `second_step`, Q_2 = R
        return torch.stack([(second_step * R).sum(1)[every[:, 0]], R[every[:, 0], every[:, 1]]], dim=1)

    # Q from G itself (rollout rate 0, temperature 1): the cold prefix-weighted update is G's gradient
    on_policy = expected_update(g, every, rewards(p_second), 1.0)
    assert_close(on_policy, list(truth))
    prefix = expected_update(g, every, rewards(p_second), TEMPERATURE, importance_weight="prefix", importance_clip=0.0)
    assert_close(prefix, list(truth))
    # the per-token weight: exact for the first token (no prefix); the second token's term takes
    # its prefix y_1 at q's frequency, not p's: each row y_1 of its gradient scaled by q(y_1) / p(y_1)
    token = expected_update(g, every, rewards(p_second), TEMPERATURE, importance_weight="token", importance_clip=0.0)
    assert_close(token[0], truth[0])
    q_first = (first / TEMPERATURE).softmax(0)
    assert_close(token[1], truth[1] * (q_first / p_first)[:, None])
    assert far(token, truth)
    # clipping the prefix weight below its largest value biases it
    largest = (p_first[every[:, 0]] * p_second[every[:, 0], every[:, 1]]
               / ((first / TEMPERATURE).softmax(0)[every[:, 0]]
                  * (second / TEMPERATURE).softmax(1)[every[:, 0], every[:, 1]])).max().item()
    assert largest > 1.5
    clipped = expected_update(g, every, rewards(p_second), TEMPERATURE, importance_weight="prefix", importance_clip=1.5)
    assert far(clipped, truth)

    # Q from another rollout policy beta: the prefix-weighted update still equals the update on
    # G's own samples with the same Q (SeqGAN's), which is no longer G's gradient
    beta_second = torch.randn(V, V, generator=gen).softmax(1)
    seqgan = expected_update(g, every, rewards(beta_second), 1.0)
    assert_close(expected_update(g, every, rewards(beta_second), TEMPERATURE, importance_weight="prefix",
                                 importance_clip=0.0), seqgan)
    assert far(seqgan, truth)


# --- the baselines, by hand -----------------------------------------------------------------------

def test_the_baselines_by_hand_and_mean_is_loo_scaled_by_b_minus_1_over_b():
    rewards = torch.tensor([[1.0, 4.0], [2.0, 0.0], [6.0, 2.0]])
    assert torch.equal(batch_baseline(rewards, "none"), torch.zeros(3, 2))
    loo = batch_baseline(rewards, "loo")
    assert_close(loo, torch.tensor([[(2 + 6) / 2, (0 + 2) / 2],  # each row: the other two rows' mean
                                    [(1 + 6) / 2, (4 + 2) / 2],
                                    [(1 + 2) / 2, (4 + 0) / 2]]))
    mean = batch_baseline(rewards, "mean")
    assert_close(mean, torch.tensor([[3.0, 2.0]] * 3))  # the sequence's own reward included
    # row by row: reward - mean = (B - 1) / B * (reward - loo)
    assert_close(rewards - mean, (3 - 1) / 3 * (rewards - loo))
    with pytest.raises(ValueError, match="at least 2 sequences"):
        batch_baseline(rewards[:1], "loo")


# --- the options ----------------------------------------------------------------------------------

@pytest.mark.parametrize("given, fragment", [
    (dict(importance_weight="sequence"), "--importance-weight sequence: choose one of token, prefix"),
    (dict(importance_clip=-1.0), "--importance-clip must not be negative"),
    (dict(importance_clip=math.inf), "--importance-clip must be finite (0: no clipping)"),
    (dict(pg_baseline="mean", batch_size=1), "--pg-baseline mean needs a --batch-size of at least 2"),
])
def test_bad_importance_and_baseline_options_are_one_line(given, fragment):
    with pytest.raises(ValueError) as caught:
        SeqGANConfig(**given)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_run_saved_before_the_weight_options_resumes_with_the_weights_it_used(tmp_path):
    import dataclasses

    saved = dataclasses.asdict(SeqGANConfig(preset="tiny", sample_temperature=0.8))
    for name in ("importance_weight", "importance_normalize"):
        del saved[name]
    config = resumed_config(SeqGANConfig, saved, {}, str(tmp_path))
    assert (config.importance_weight, config.importance_clip, config.importance_normalize) == ("token", 5.0, False)
    changed = dataclasses.asdict(SeqGANConfig(preset="tiny", importance_weight="prefix", importance_normalize=True))
    config = resumed_config(SeqGANConfig, changed, {}, str(tmp_path))
    assert (config.importance_weight, config.importance_normalize) == ("prefix", True)
    with pytest.raises(ValueError, match="--importance-weight token differs from the run's prefix"):
        resumed_config(SeqGANConfig, changed, {"importance_weight": "token"}, str(tmp_path))
