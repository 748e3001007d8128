"""seqadv.token_rewards: per-token Monte Carlo values of a language model's text, for other
RL libraries: exact against enumeration on a tiny Hugging Face model, with left-padded
prompts, right-padded responses and an attention mask; advantages that sum to the reward
less the prompt's value."""
import itertools
import os

import pytest
import torch
from torch.testing import assert_close

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from test_hf import tiny_gpt2  # noqa: E402
from test_rollout import within_mc_error  # noqa: E402

import seqadv  # noqa: E402
from seqadv import token_advantages, token_rewards  # noqa: E402
from seqadv.models.generator import Generator  # noqa: E402

V = 3
# three rows of one batch: text (prompt + response) left-padded to the batch, padding = 0
#   row 0: 2 pads, prompt [1, 2], response [2, 1]
#   row 1: no pad, prompt [2, 1, 1], response [0, 2, 1]... of length 3
#   row 2: 1 pad, prompt [1, 1], response [0, 2, 1]
SEQUENCES = torch.tensor([[0, 0, 1, 2, 2, 1], [2, 1, 1, 0, 2, 1], [0, 1, 1, 0, 2, 1]])
MASK = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]])
PROMPTS = torch.tensor([2, 3, 2])
WEIGHT = torch.tensor([0.1, 1.0, 0.4])


def reward(rows, index):
    """Depends on every text token and on where the text is (the caller's layout, padding
    included): a weighted mean over the text positions of the row's mask."""
    mask = MASK[index].float()
    return (WEIGHT[rows] * mask * torch.linspace(0.5, 1.5, rows.shape[1])).sum(1) / mask.sum(1)


def exact(model, sequences, mask, prompts, reward_fn, bos=None):
    """Q_t at every response token and V(prompt) at the prompt's, by enumerating every
    completion under the model reading the row's text from its first token (or, given
    `bos`, from that token before it).
    Returns (mean (B, T), variance of one rollout's reward (B, T))."""
    B, T = sequences.shape
    mean, var = torch.zeros(B, T, dtype=torch.double), torch.zeros(B, T, dtype=torch.double)
    for b in range(B):
        where = mask[b].nonzero().flatten()
        left, length, p = int(where[0]), len(where), int(prompts[b])
        text = sequences[b, left:]
        for t in range(p - 1, length):  # the prefix: text[: t + 1]; t = p - 1 is the prompt itself
            free = length - t - 1
            completions = torch.tensor(list(itertools.product(range(V), repeat=free)), dtype=torch.long)
            completions = completions.view(len(completions), free)
            full = torch.cat([text[: t + 1].expand(len(completions), -1), completions], 1)
            inputs = full if bos is None else torch.cat([torch.full((len(full), 1), bos), full], 1)
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=inputs).logits.double(), -1)  # predicts inputs[1:]
            shift = 0 if bos is None else 1  # with bos, the logits at j predict full[j]
            drawn = logp[:, t + shift:length - 1 + shift].gather(2, full[:, t + 1:, None])[..., 0].sum(1)
            rows = torch.cat([sequences[b, :left].expand(len(full), -1), full], 1)
            r = reward_fn(rows, torch.full((len(rows),), b)).double()
            w = drawn.exp()
            m, v = (w * r).sum(), (w * r.square()).sum() - (w * r).sum() ** 2
            columns = range(left, left + p) if t == p - 1 else [left + t]
            for c in columns:
                mean[b, c], var[b, c] = m, v
    return mean, var


@pytest.fixture(scope="module")
def model():
    return tiny_gpt2(vocab=V, seed=3)


def test_values_are_exact_with_left_padded_prompts_and_an_attention_mask(model):
    n, scored = 6000, []

    def counting(rows, index):
        scored.append(len(rows))
        return reward(rows, index)

    values = token_rewards(model, SEQUENCES, counting, n, prompt_lengths=PROMPTS, attention_mask=MASK,
                           generator=torch.Generator().manual_seed(0))
    mean, var = exact(model, SEQUENCES, MASK, PROMPTS, reward)
    # no rollouts inside a prompt: the texts themselves, then n completions of each prefix that
    # ends at the prompt or in the response (its next token drawn): 2 + 3 + 3 of them
    assert sum(scored) == 3 + n * int((MASK.sum(1) - PROMPTS).sum()) == 3 + 8 * n
    assert values.shape == SEQUENCES.shape and (values[MASK == 0] == 0).all()
    within_mc_error(values[MASK == 1], mean[MASK == 1], var[MASK == 1], n)
    # the last text token's column is the reward of the row itself, exactly
    assert_close(values[:, -1], reward(SEQUENCES, torch.arange(3)))


def test_prompts_of_one_token_are_read_after_the_models_start_token(model):
    """A one-token prompt gives no value of the prompt before the first drawn token unless the
    model reads a token before it: its BOS (the policy's start token)."""
    n, prompts = 6000, torch.tensor([1, 1, 1])
    values = token_rewards(model, SEQUENCES, reward, n, prompt_lengths=prompts, attention_mask=MASK,
                           generator=torch.Generator().manual_seed(4))
    mean, var = exact(model, SEQUENCES, MASK, prompts, reward, bos=model.config.bos_token_id)
    within_mc_error(values[MASK == 1], mean[MASK == 1], var[MASK == 1], n)


def test_a_prompt_mask_is_the_same_as_prompt_lengths(model):
    positions = torch.arange(SEQUENCES.shape[1])
    left = (MASK == 0).sum(1)
    prompt_mask = (positions >= left[:, None]) & (positions < (left + PROMPTS)[:, None])
    a = token_rewards(model, SEQUENCES, reward, 8, prompt_lengths=PROMPTS, attention_mask=MASK,
                      generator=torch.Generator().manual_seed(1))
    b = token_rewards(model, SEQUENCES, reward, 8, prompt_mask=prompt_mask, attention_mask=MASK,
                      generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_any_policy_and_no_prompt(model):
    """A seqadv policy (an LSTM generator) without prompts: every token drawn from the start
    token; exact against enumeration of the whole text."""
    torch.manual_seed(0)
    g = Generator(V, 8, 8, start_token=0)
    seqs = torch.tensor([[1, 2, 0, 1], [2, 0, 1, 1]])

    def r(rows):
        return (rows == 1).float().mean(1)

    from test_rollout import exact_rewards

    n = 6000
    values = token_rewards(g, seqs, r, n, generator=torch.Generator().manual_seed(2))
    mean, var = exact_rewards(g, seqs, r, V)
    within_mc_error(values, mean, var, n)


def test_advantages_sum_to_the_reward_less_the_prompts_value(model):
    values = token_rewards(model, SEQUENCES, reward, 16, prompt_lengths=PROMPTS, attention_mask=MASK,
                           generator=torch.Generator().manual_seed(3))
    advantages = token_advantages(values, prompt_lengths=PROMPTS, attention_mask=MASK)
    left = (MASK == 0).sum(1)
    prompt_value = values[torch.arange(3), left + PROMPTS - 1]
    assert_close(advantages.sum(1), reward(SEQUENCES, torch.arange(3)) - prompt_value)
    positions = torch.arange(SEQUENCES.shape[1])
    response = (positions >= (left + PROMPTS)[:, None]) & (MASK == 1)
    assert (advantages[~response] == 0).all() and (advantages[response] != 0).any()


def test_a_policy_gradient_step_on_the_advantages_raises_their_surrogate(model):
    """The module docstring's update: the advantages are constants, and one small step of
    -(A * log p).sum() / n raises sum_t A_t log p(y_t) of the response tokens."""
    import copy

    policy = copy.deepcopy(model)
    values = token_rewards(policy, SEQUENCES, reward, 64, prompt_lengths=PROMPTS, attention_mask=MASK,
                           generator=torch.Generator().manual_seed(10))
    advantages = token_advantages(values, prompt_lengths=PROMPTS, attention_mask=MASK)

    def surrogate():
        logits = policy(input_ids=SEQUENCES, attention_mask=MASK).logits[:, :-1]  # predicts tokens 1..T-1
        logp = torch.log_softmax(logits, -1).gather(2, SEQUENCES[:, 1:, None])[..., 0]
        return (advantages[:, 1:] * logp).sum()

    opt = torch.optim.SGD(policy.parameters(), lr=1e-2)
    before = surrogate()
    opt.zero_grad()
    (-before / (advantages != 0).sum()).backward()
    opt.step()
    with torch.no_grad():
        assert surrogate() > before


def test_bad_input_is_one_clear_error(model):
    with pytest.raises(ValueError, match="one block of 1s"):
        token_rewards(model, SEQUENCES, reward, 2, attention_mask=torch.tensor([[1, 0, 1, 1, 1, 1]] * 3))
    with pytest.raises(ValueError, match="prompt_lengths must be in"):
        token_rewards(model, SEQUENCES, reward, 2, prompt_lengths=7, attention_mask=MASK)
    with pytest.raises(ValueError, match="a prompt holds the end token"):
        token_rewards(model, SEQUENCES, reward, 2, prompt_lengths=PROMPTS, attention_mask=MASK, eos_token=2,
                      pad_token=0)
    with pytest.raises(TypeError, match="Hugging Face causal LM or a seqadv"):
        token_rewards(object(), SEQUENCES, reward, 2)
    assert seqadv.token_rewards is token_rewards
