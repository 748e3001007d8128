"""Evaluation: BLEU and Self-BLEU equal to nltk's, NLL-test and NLL-oracle,
distinct n-grams, samples copied from the training set, and Caccia et al.'s LM
score and reverse-LM score.

BLEU-n here is nltk's `sentence_bleu(references, hypothesis, weights=(1/n,)*n,
smoothing_function=SmoothingFunction().method1)` averaged over hypotheses: the
convention of Texygen and most SeqGAN follow-ups. nltk rescans every reference
for every hypothesis; here the references' clipped n-gram maxima and lengths are
computed once, so thousands of references cost one pass (tests compare to nltk).
"""
from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Hashable, Optional, Sequence

import torch
from torch import Tensor

from seqadv.core.masks import tokens_mask
from seqadv.data.dataset import BatchStream
from seqadv.models.generator import Generator
from seqadv.rl.losses import mle_loss
from seqadv.rl.update import mle_step

Tokens = Sequence[Hashable]
_EPSILON = 0.1  # nltk SmoothingFunction().method1's epsilon


def ngram_counts(tokens: Tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _closest(lengths: list[int], hyp_len: int) -> int:
    """The reference length closest to hyp_len, the shorter one on a tie (nltk's rule)."""
    i = bisect.bisect_left(lengths, hyp_len)
    candidates = lengths[max(0, i - 1) : i + 1]
    return min(candidates, key=lambda r: (abs(r - hyp_len), r))


def _bleu(hyp_len: int, clipped: list[int], totals: list[int], ref_len: int) -> float:
    """nltk's sentence BLEU from per-order clipped matches and hypothesis n-gram totals."""
    if clipped[0] == 0:
        return 0.0
    n = len(clipped)
    log_p = []
    for num, total in zip(clipped, totals):
        den = max(1, total)
        log_p.append(math.log(num / den if num > 0 else _EPSILON / den))
    if hyp_len > ref_len:
        bp = 1.0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(math.fsum((1 / n) * lp for lp in log_p))


class BLEU:
    """Sentence BLEU of hypotheses against one fixed set of references.

    Args:
        references: token sequences (strings, ints, anything hashable).
        max_n: the highest order that `score` may be asked for.
    """

    def __init__(self, references: Sequence[Tokens], max_n: int = 5):
        if len(references) == 0:
            raise ValueError("BLEU needs at least one reference")
        self.max_n = max_n
        self.max_counts: list[dict] = []
        for n in range(1, max_n + 1):
            best: dict = {}
            for ref in references:
                for gram, count in ngram_counts(ref, n).items():
                    if count > best.get(gram, 0):
                        best[gram] = count
            self.max_counts.append(best)
        self.lengths = sorted({len(r) for r in references})

    def sentence(self, hypothesis: Tokens, n: int = 4) -> float:
        if not 1 <= n <= self.max_n:
            raise ValueError(f"BLEU order must be in 1..{self.max_n}, got {n}")
        clipped, totals = [], []
        for order in range(1, n + 1):
            counts = ngram_counts(hypothesis, order)
            best = self.max_counts[order - 1]
            clipped.append(sum(min(c, best.get(g, 0)) for g, c in counts.items()))
            totals.append(sum(counts.values()))
        return _bleu(len(hypothesis), clipped, totals, _closest(self.lengths, len(hypothesis)))

    def score(self, hypotheses: Sequence[Tokens], n: int = 4) -> float:
        """Mean sentence BLEU-n of the hypotheses."""
        if len(hypotheses) == 0:
            raise ValueError("BLEU needs at least one hypothesis")
        return sum(self.sentence(h, n) for h in hypotheses) / len(hypotheses)


def self_bleu(samples: Sequence[Tokens], n: int = 4) -> float:
    """Mean BLEU-n of each sample against all the other samples (Zhu et al., Texygen).

    Exact leave-one-out in one pass: for every n-gram keep the largest count, how
    many samples reach it, and the second largest, so the maximum over "all but
    sample i" is known without rescanning. High Self-BLEU means low diversity.
    """
    if len(samples) < 2:
        raise ValueError("Self-BLEU needs at least two samples")
    per_order = []
    for order in range(1, n + 1):
        counts = [ngram_counts(s, order) for s in samples]
        top: dict = {}  # gram -> [largest count, how many samples have it, second largest]
        for c in counts:
            for gram, k in c.items():
                entry = top.get(gram)
                if entry is None:
                    top[gram] = [k, 1, 0]
                elif k > entry[0]:
                    top[gram] = [k, 1, entry[0]]
                elif k == entry[0]:
                    entry[1] += 1
                elif k > entry[2]:
                    entry[2] = k
        per_order.append((counts, top))
    length_counts = Counter(len(s) for s in samples)
    total = 0.0
    for i, sample in enumerate(samples):
        clipped, totals = [], []
        for counts, top in per_order:
            matched = 0
            for gram, k in counts[i].items():
                best, holders, second = top[gram]
                other_best = second if (k == best and holders == 1) else best
                matched += min(k, other_best)
            clipped.append(matched)
            totals.append(sum(counts[i].values()))
        lengths = sorted(l for l, c in length_counts.items() if c - (l == len(sample)) > 0)
        total += _bleu(len(sample), clipped, totals, _closest(lengths, len(sample)))
    return total / len(samples)


def distinct_ngrams(samples: Sequence[Tokens], n: int) -> int:
    """How many different n-grams the samples hold together (a diversity count)."""
    return len({gram for s in samples for gram in ngram_counts(s, n)})


def infilled_ngram_uniqueness(samples: Sequence[Tokens], hidden: Sequence[Sequence[bool]], n: int) -> float:
    """The percentage of unique n-grams among the n-grams that contain a filled token.

    samples[i] is a filled text and hidden[i] marks which of its positions the
    model wrote (at least as long as the text). MaskGAN's diversity figure (unique
    quadgrams 88.2% for MaskGAN, 92.6% for MaskMLE on PTB): 100 * distinct / total
    over the n-grams of all samples together; n-grams of visible tokens alone are
    left out, as they are the same for every model.
    """
    grams = [tuple(s[i : i + n]) for s, h in zip(samples, hidden) for i in range(len(s) - n + 1) if any(h[i : i + n])]
    return 100.0 * len(set(grams)) / len(grams) if grams else float("nan")


def copied(samples: Sequence[Tokens], training: Sequence[Tokens]) -> int:
    """How many samples equal a training sequence whole (memorisation)."""
    seen = {tuple(t) for t in training}
    return sum(tuple(s) in seen for s in samples)


@torch.no_grad()
def nll(
    model,
    data: Tensor,
    batch_size: int = 1024,
    eos_token: Optional[int] = None,
    pad_token: Optional[int] = None,
    temperature: float = 1.0,
) -> float:
    """Mean per-token negative log-likelihood (nats) of `data` under `model`.

    Shape: data (num, T) int64. Positions after the first end token are not counted.
    `model` is a `Generator` (anything with `target_logits(targets) -> (B, T, V)`).
    """
    total, count = 0.0, 0.0
    for batch in data.split(batch_size):
        mask = tokens_mask(batch, eos_token, pad_token)
        logits = model.target_logits(batch)
        if temperature != 1.0:
            logits = logits / temperature
        total += mle_loss(logits, batch, mask).item() * mask.sum().item()
        count += mask.sum().item()
    return total / max(count, 1.0)


# The language models of the LM and reverse-LM scores: small and on a fixed budget, so
# that one trains in under 20 s on one CPU core (COCO 19 s, about 2.4 epochs of its
# training split; poems 17 s) and an evaluation can afford one per model and temperature.
# They are not trained to convergence (COCO NLL-test 4.08 nats here, 3.92 after 500
# steps): the scores rank models trained on one corpus under the same settings, and are
# not comparable with the paper's numbers.
LM_STEPS = 300
LM_BATCH_SIZE = 64
LM_LR = 0.01  # SeqGAN's generator Adam rate
LM_EMB_DIM = 32
LM_HIDDEN_DIM = 64
LM_GRAD_CLIP = 5.0


def train_language_model(
    sequences: Tensor,
    vocab_size: int,
    *,
    start_token: int,
    eos_token: Optional[int] = None,
    pad_token: Optional[int] = None,
    steps: int = LM_STEPS,
    batch_size: int = LM_BATCH_SIZE,
    lr: float = LM_LR,
    emb_dim: int = LM_EMB_DIM,
    hidden_dim: int = LM_HIDDEN_DIM,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Generator:
    """An LSTM language model trained by MLE on `sequences` for exactly `steps` Adam
    updates, returned in eval mode.

    Shape: sequences (num, T) int64, laid out as `SequenceData`'s (tokens, then the end
    token and padding, which the loss does not count after the first end token).

    A fixed budget rather than training to convergence: the language models of two
    models' samples then differ only in what they were trained on. `seed` draws the
    initial weights and the batches (shuffled epochs of `batch_size`), so equal seeds
    give bitwise equal models on CPU; the caller's global random state is left as it was.
    """
    if steps < 1 or len(sequences) == 0:
        raise ValueError(f"a language model needs at least one step and one sequence, got {steps} and {len(sequences)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # Generator draws its weights from the global generator
        lm = Generator(vocab_size, emb_dim, hidden_dim, start_token=start_token, eos_token=eos_token,
                       pad_token=pad_token)
    lm.to(device)
    opt = torch.optim.Adam(lm.parameters(), lr=lr)
    # batches drawn on CPU from their own generator: the same order on any device
    stream = BatchStream(sequences.to(device), min(batch_size, len(sequences)), torch.Generator().manual_seed(seed))
    lm.train()
    for step in range(1, steps + 1):
        batch = stream.next()
        # The columns after every row's end are masked out of the loss, and an LSTM
        # reads left to right, so cutting them changes nothing but the time (COCO:
        # a batch of 64 ends by position 22 of 37 on average, 2.6x faster).
        counted = tokens_mask(batch, eos_token, pad_token).any(dim=0).nonzero()
        length = int(counted[-1]) + 1 if len(counted) else 1
        mle_step(lm, opt, batch[:, :length], LM_GRAD_CLIP, f"language model step {step}")
    return lm.eval()


def lm_score(samples: Tensor, real_lm, eos_token: Optional[int] = None, pad_token: Optional[int] = None) -> float:
    """Caccia et al.'s LM score: the mean per-token NLL (nats) of the samples under a
    language model trained on the real training split. Lower: samples more like real
    text (quality).

    Shape: samples (num, T) int64. `real_lm`: from `train_language_model(data.train, ...)`.
    """
    return nll(real_lm, samples.to(real_lm.device), eos_token=eos_token, pad_token=pad_token)


def reverse_lm_score(samples: Tensor, test: Tensor, vocab_size: int, *, start_token: int,
                     eos_token: Optional[int] = None, pad_token: Optional[int] = None, **settings) -> float:
    """Caccia et al.'s reverse-LM score: the mean per-token NLL (nats) of the real test
    split under a language model trained on the samples. Lower: the samples cover more
    of the data (diversity); a model that says one good sentence scores badly here.

    Shape: samples (num, T) int64, test (num_test, T) int64. The language model is
    `train_language_model(samples, ...)`; `settings` are its keywords (steps, batch_size,
    lr, emb_dim, hidden_dim, seed, device), with its defaults.
    """
    lm = train_language_model(samples, vocab_size, start_token=start_token, eos_token=eos_token,
                              pad_token=pad_token, **settings)
    return nll(lm, test.to(lm.device), eos_token=eos_token, pad_token=pad_token)


@torch.no_grad()
def ranking_metrics(scores: Tensor, relevant: Tensor, exclude: Tensor, ks: Sequence[int] = (3, 5, 10)) -> dict:
    """Precision@k and NDCG@k of ranking every item by score, averaged over users.

    Shape: scores (U, I) float, relevant (U, I) bool, exclude (U, I) bool -> {name: float}

    Excluded items (a user's training positives, as IRGAN) are not ranked; users
    with no relevant item are left out. Relevance is binary, DCG@k is
    sum_{r < k} rel_r / log2(r + 2), and NDCG@k divides it by the ideal DCG, with
    min(k, |relevant|) relevant items at the top (as the official IRGAN code,
    which sorts the relevance of the whole ranking).
    """
    users = relevant.any(dim=1)
    scores, relevant, exclude = scores[users], relevant[users], exclude[users]
    top = max(ks)
    ranked = scores.float().masked_fill(exclude, float("-inf")).topk(top, dim=1).indices  # (U, top)
    hits = relevant.gather(1, ranked).float()  # (U, top)
    discount = 1.0 / torch.log2(torch.arange(top, dtype=torch.float, device=scores.device) + 2)  # (top,)
    num_relevant = (relevant & ~exclude).sum(dim=1, keepdim=True)  # (U, 1)
    out = {}
    for k in ks:
        dcg = (hits[:, :k] * discount[:k]).sum(dim=1)
        ideal = ((torch.arange(k, device=scores.device) < num_relevant).float() * discount[:k]).sum(dim=1)
        out[f"p@{k}"] = hits[:, :k].sum(dim=1).div(k).mean().item()
        out[f"ndcg@{k}"] = (dcg / ideal.clamp(min=1e-12)).mean().item()
    return out
