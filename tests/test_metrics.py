import random

import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from seqadv.eval.metrics import BLEU, nll, self_bleu
from seqadv.models.generator import Generator

SMOOTH = SmoothingFunction().method1


def nltk_bleu(refs, hyp, n):
    return sentence_bleu(refs, hyp, weights=(1.0 / n,) * n, smoothing_function=SMOOTH)


def random_sentences(rng, count, vocab="abcdef", lengths=(0, 12)):
    return [[rng.choice(vocab) for _ in range(rng.randint(*lengths))] for _ in range(count)]


@pytest.mark.parametrize("seed", range(4))
def test_bleu_equals_nltk_on_random_cases(seed):
    rng = random.Random(seed)
    refs = random_sentences(rng, rng.randint(1, 30), lengths=(1, 14))
    hyps = random_sentences(rng, 60, vocab="abcdefg")  # short, empty, repeated n-grams, unseen tokens
    bleu = BLEU(refs, max_n=5)
    for n in range(1, 6):
        for hyp in hyps:
            assert bleu.sentence(hyp, n) == pytest.approx(nltk_bleu(refs, hyp, n), abs=1e-9)
        mean = sum(nltk_bleu(refs, h, n) for h in hyps) / len(hyps)
        assert bleu.score(hyps, n) == pytest.approx(mean, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_self_bleu_equals_nltk_leave_one_out(seed):
    rng = random.Random(seed)
    samples = random_sentences(rng, 25, vocab="abcd", lengths=(1, 9))
    samples += [list(samples[0]), list(samples[1])]  # duplicates: the second-largest counts matter
    for n in (2, 3, 4):
        expected = sum(nltk_bleu(samples[:i] + samples[i + 1 :], s, n) for i, s in enumerate(samples)) / len(samples)
        assert self_bleu(samples, n) == pytest.approx(expected, abs=1e-9)


def test_bleu_of_a_reference_is_one_and_self_bleu_extremes():
    refs = [list("the cat sat on the mat".split()), list("a dog ran in the park".split())]
    assert BLEU(refs).score([refs[0]], 4) == pytest.approx(1.0)
    assert self_bleu([refs[0]] * 5, 4) == pytest.approx(1.0)
    disjoint = [[f"w{i}_{j}" for j in range(8)] for i in range(5)]
    assert self_bleu(disjoint, 2) < 0.05


def test_nll_equals_the_mean_token_log_loss():
    torch.manual_seed(0)
    g = Generator(vocab_size=7, embedding_dim=4, hidden_dim=4, start_token=1, eos_token=2, pad_token=0)
    data = torch.tensor([[3, 4, 2, 0, 0], [5, 6, 4, 3, 2]])
    logp = torch.log_softmax(g.target_logits(data), -1).gather(-1, data.unsqueeze(-1))[..., 0]
    counted = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert nll(g, data, eos_token=2, pad_token=0) == pytest.approx(-logp[counted].mean().item(), rel=1e-5)
