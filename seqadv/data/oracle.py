"""The synthetic experiment of SeqGAN: an oracle LSTM stands in for real data.

The oracle is a `Generator` (the same LSTM as ours) with fixed weights: either
N(0, 1) weights drawn from a seed, as the official code initialises its target
LSTM, or the paper's own oracle (`save/target_params_py3.pkl` of the official
repository). NLL-oracle, the paper's measure, is the oracle's mean per-token NLL
of the generator's samples.
"""
from __future__ import annotations

import pickle
from typing import Optional

import numpy as np
import torch

from seqadv.core.errors import DataError
from seqadv.data.corpus import Recipe, locate
from seqadv.models.generator import Generator


def oracle_from_params(params: list[np.ndarray], start_token: int = 0) -> Generator:
    """The official target LSTM's 15 arrays -> an equivalent `Generator`.

    The official cell uses row vectors, x W + h U + b, with gates i, f, o and
    candidate c; torch's LSTM computes W x + U h + b with rows stacked i, f, g, o.
    """
    emb, wi, ui, bi, wf, uf, bf, wo, uo, bo, wc, uc, bc, w_out, b_out = (torch.from_numpy(np.asarray(p, dtype=np.float32)) for p in params)
    vocab_size, embedding_dim = emb.shape
    hidden_dim = ui.shape[0]
    oracle = Generator(vocab_size, embedding_dim, hidden_dim, start_token=start_token)
    with torch.no_grad():
        oracle.embedding.weight.copy_(emb)
        oracle.lstm.weight_ih_l0.copy_(torch.cat([wi.T, wf.T, wc.T, wo.T]))
        oracle.lstm.weight_hh_l0.copy_(torch.cat([ui.T, uf.T, uc.T, uo.T]))
        oracle.lstm.bias_ih_l0.copy_(torch.cat([bi, bf, bc, bo]))
        oracle.lstm.bias_hh_l0.zero_()
        oracle.head.weight.copy_(w_out.T)
        oracle.head.bias.copy_(b_out)
    return oracle.requires_grad_(False).eval()


def load_paper_oracle(path) -> Generator:
    try:
        with open(path, "rb") as f:
            params = pickle.load(f, encoding="latin1")
    except Exception as exc:
        raise DataError(f"{path}: not a readable oracle pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(params, list) or len(params) != 15:
        raise DataError(f"{path}: expected a list of 15 arrays (the SeqGAN target LSTM), got {type(params).__name__}")
    return oracle_from_params(params)


def random_oracle(seed: int, vocab_size: int = 5000, embedding_dim: int = 32, hidden_dim: int = 32) -> Generator:
    """Every weight N(0, 1), as the official code's TargetLSTM.init_matrix draws them."""
    oracle = Generator(vocab_size, embedding_dim, hidden_dim, start_token=0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in oracle.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
        oracle.lstm.bias_hh_l0.zero_()  # the official cell has one bias per gate
    return oracle.requires_grad_(False).eval()


def oracle_corpus(
    recipe: Recipe,
    kind: str = "random",
    data_dir: Optional[str] = None,
    max_train: Optional[int] = None,
    max_test: Optional[int] = None,
):
    """Training and test sequences sampled from the oracle, with a fixed data seed
    (the recipe's), so every training seed sees the same data, as with a real corpus.
    Returns the keyword arguments of `seqadv.data.dataset.SequenceData` (which wraps them).

    Shape: train (num_train, max_length), test (num_test, max_length) int64
    """
    x = recipe.extra
    if kind == "paper":
        oracle = load_paper_oracle(locate(recipe, data_dir))
    elif kind == "random":
        oracle = random_oracle(recipe.split_seed, x["vocab_size"], x["embedding_dim"], x["hidden_dim"])
    else:
        raise DataError(f"unknown oracle {kind!r}: choose paper or random")
    gen = torch.Generator().manual_seed(recipe.split_seed)
    num_train = min(x["num_train"], max_train or x["num_train"])
    num_test = min(x["num_test"], max_test or x["num_test"])
    train = oracle.sample(num_train, recipe.max_length, generator=gen)
    test = oracle.sample(num_test, recipe.max_length, generator=gen)
    return dict(
        name=f"oracle-{kind}",
        train=train,
        test=test,
        vocab_size=x["vocab_size"],
        start_token=x["start_token"],
        oracle=oracle,
        info={"oracle": kind, "max_length": recipe.max_length, "split": f"{num_train} training and {num_test} test sequences sampled from the oracle (seed {recipe.split_seed})"},
    )
