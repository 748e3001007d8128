"""Pretrained word vectors for an embedding table, as ScratchGAN uses GloVe.

ScratchGAN's code (`utils.make_partially_trainable_embeddings`) gives its generator and its
discriminator an embedding table of two parts side by side: 300 dimensions of GloVe, a word
missing from the file drawn from N(0, 0.3836) (the spread of GloVe's values), and 64 more
dimensions drawn from the same normal. Its comments call the GloVe part frozen, but it is
created trainable and is in each optimiser's list of variables: both parts are trained.
So here a file only starts the first columns of an ordinary trained table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from seqadv.core.errors import DataError

GLOVE_STD = 0.3836  # ScratchGAN's: the standard deviation of GloVe's values


def load_word_vectors(path: str | Path, tokens: Sequence[str]) -> Tensor:
    """The vectors of `tokens` in a text file of word vectors: a line per word, the word then
    its values (GloVe's format; a first line of two integers, word2vec's count and size, is
    skipped). Rows of tokens the file lacks are NaN (`start_embedding_` draws them).

    Shape: -> (len(tokens), d) float32. DataError (one line) for a malformed file.
    """
    path = Path(path)
    wanted = {t: i for i, t in enumerate(tokens)}
    out, size = None, None
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.rstrip("\n").rstrip().split(" ")
            if number == 1 and len(fields) == 2 and all(x.isdigit() for x in fields):
                continue  # word2vec's header: count and size
            if len(fields) < 2:
                if line.strip():
                    raise DataError(f"{path}:{number}: not a word and its vector")
                continue
            if size is None:
                size = len(fields) - 1
                out = torch.full((len(tokens), size), float("nan"))
            if len(fields) - 1 != size:
                raise DataError(f"{path}:{number}: {len(fields) - 1} values, the lines before have {size}")
            row = wanted.get(fields[0])
            if row is not None and out[row].isnan().all():  # the first vector of a word wins
                try:
                    out[row] = torch.tensor([float(x) for x in fields[1:]])
                except ValueError:
                    raise DataError(f"{path}:{number}: not a word and its vector") from None
    if out is None:
        raise DataError(f"{path}: no word vectors in it")
    if out.isnan().all():
        raise DataError(f"{path}: none of the vocabulary's tokens has a vector in it")
    return out


@torch.no_grad()
def start_embedding_(weight: Tensor, vectors: Tensor, std: float = GLOVE_STD) -> None:
    """An embedding table (V, d + e) started as ScratchGAN's: its first d columns the
    pretrained vectors (V, d), N(0, std) for a token without one (a NaN row), the other e
    columns N(0, std). Draws from torch's global stream."""
    d = vectors.shape[1]
    if weight.shape[0] != vectors.shape[0] or weight.shape[1] < d:
        raise ValueError(f"a ({weight.shape[0]}, {weight.shape[1]}) table cannot start from {tuple(vectors.shape)} vectors")
    weight.normal_(0.0, std)
    known = ~vectors.isnan().any(dim=1)
    weight[known, :d] = vectors[known].to(weight)


def known_words(vectors: Tensor) -> int:
    """How many rows of `load_word_vectors`'s result came from the file."""
    return int((~vectors.isnan().any(dim=1)).sum())
