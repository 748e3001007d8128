"""Ratings for item recommendation (IRGAN): who rated what, the split, the positives.

A ratings file has one `user item rating [more fields]` line per rating, fields
separated by tabs or spaces; a first line whose rating field is not a number is a
header (recbole's `user_id:token item_id:token rating:float ...`). Users and items
are numbered in the sorted order of their ids (MovieLens's 1-based ids become 0-based).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from seqadv.core.errors import DataError
from seqadv.data.corpus import load_recipe, locate_in_package


@dataclass
class RatingData:
    name: str
    num_users: int
    num_items: int
    train_positive: Tensor  # (num_users, num_items) bool: training ratings at or above the threshold
    test_positive: Tensor  # (num_users, num_items) bool
    info: dict = field(default_factory=dict)
    user_ids: list = field(default_factory=list)  # the file's id of each user index
    item_ids: list = field(default_factory=list)  # the file's id of each item index

    @property
    def train_pairs(self) -> Tensor:
        """(P, 2) int64 (user, item) of every training positive, user-major."""
        return self.train_positive.nonzero()

    @property
    def test_users(self) -> Tensor:
        """Users with at least one test positive: the ones evaluated."""
        return self.test_positive.any(dim=1).nonzero().flatten()


def read_ratings(path: str | os.PathLike) -> list[tuple[str, str, float]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows = []
    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            lines = f.read().splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 3:
            raise DataError(f"{path}: line {number} has {len(fields)} fields; expected `user item rating`")
        try:
            rating = float(fields[2])
        except ValueError:
            if number == 1:
                continue  # a header
            raise DataError(f"{path}: line {number}: rating {fields[2]!r} is not a number") from None
        rows.append((fields[0], fields[1], rating))
    if not rows:
        raise DataError(f"{path}: no ratings")
    return rows


def _index(ids: list[str]) -> dict[str, int]:
    unique = set(ids)
    key = (lambda x: (0, int(x), x)) if all(i.lstrip("-").isdigit() for i in unique) else (lambda x: (1, 0, x))
    return {i: n for n, i in enumerate(sorted(unique, key=key))}


def load_ratings(source: str = "ml-100k", *, data_dir: Optional[str] = None, test_rows: Optional[int] = None,
                 test_fraction: float = 0.2, positive_rating: Optional[float] = None, seed: int = 2017) -> RatingData:
    """`ml-100k` (IRGAN's split: the first 20,000 rows are the test set) or a ratings file.

    A file is split by `test_rows` (the first rows are the test set) if given, else by
    a seeded permutation holding out `test_fraction`. A rating >= `positive_rating`
    (default 4, IRGAN's) is a positive.
    """
    if Path(source).suffix or os.sep in source or Path(source).is_file():
        path, name, default_rows, threshold = Path(source), Path(source).stem, None, 4.0
    else:
        recipe = load_recipe(source)
        path, name = locate_in_package(recipe, data_dir), recipe.name
        default_rows, threshold = recipe.extra.get("test_rows"), float(recipe.extra.get("positive_rating", 4))
    threshold = positive_rating if positive_rating is not None else threshold
    rows = read_ratings(path)
    test_rows = test_rows if test_rows is not None else default_rows
    users, items = _index([r[0] for r in rows]), _index([r[1] for r in rows])
    if test_rows is not None:
        if not 0 < test_rows < len(rows):
            raise DataError(f"{path}: {len(rows)} ratings; cannot hold out the first {test_rows} as the test set")
        is_test = np.arange(len(rows)) < test_rows
        split = f"the first {test_rows} ratings are the test set"
    else:
        order = np.random.default_rng(seed).permutation(len(rows))
        is_test = np.zeros(len(rows), dtype=bool)
        is_test[order[: max(1, int(round(test_fraction * len(rows))))]] = True
        split = f"seeded permutation (seed {seed}), {test_fraction:.0%} of the ratings held out for test"
    shape = (len(users), len(items))
    train, test = torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=torch.bool)
    for (u, i, r), held_out in zip(rows, is_test):
        if r >= threshold:
            (test if held_out else train)[users[u], items[i]] = True
    if not train.any() or not test.any():
        raise DataError(f"{path}: no ratings >= {threshold} in the {'training' if not train.any() else 'test'} split")
    return RatingData(name=name, num_users=shape[0], num_items=shape[1], train_positive=train, test_positive=test,
                      info={"file": str(path), "ratings": len(rows), "positive_rating": threshold, "split": split,
                            "train_positives": int(train.sum()), "test_positives": int(test.sum())},
                      user_ids=list(users), item_ids=list(items))
