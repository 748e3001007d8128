import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("SEQADV_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
if "SEQADV_DATA_DIR" not in os.environ and (REPO.parent / "shared").is_dir():
    os.environ["SEQADV_DATA_DIR"] = str(REPO.parent / "shared")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2`: a test process per core, each one thread, and so the scripts it runs (two
    # processes each spinning two OpenMP threads on two cores slow each other many times over)
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def shared_dir() -> Path:
    """The shared data folder. In CI it must be there: a missing one fails, never skips."""
    path = Path(os.environ.get("SEQADV_DATA_DIR", REPO.parent / "shared"))
    if not (path / "corpora" / "poems" / "shi.txt").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"shared data missing at {path}")
        pytest.skip(f"shared data not found at {path} (set SEQADV_DATA_DIR)")
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A small, learnable corpus of counting sequences of words (see test_resume.toy_text)."""
    from test_resume import toy_text

    return toy_text(tmp_path_factory.mktemp("toy") / "toy.txt")
