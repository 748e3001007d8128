"""The installed package, not only the editable one, holds every module and data file."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a clean copy: a build/ folder left in the checkout would hand stale files to the wheel
    source = out / "source"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy(REPO / name, source / name)
    for name in ("seqadv", "corpora"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "--wheel-dir", str(out), str(source)], capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "No module named" in build.stderr and "setuptools" in build.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert build.returncode == 0, build.stderr[-2000:]
    return next(out.glob("seqadv-*.whl"))


def test_the_wheel_holds_every_module_of_every_layer(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "seqadv").rglob("*.py")}
    assert modules and not modules - names, sorted(modules - names)


def test_the_wheel_holds_the_shipped_corpora(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {"seqadv/corpora/" + p.relative_to(REPO / "corpora").as_posix()
               for p in (REPO / "corpora").rglob("*") if p.is_file() and p.suffix in (".toml", ".txt", ".md")}
    assert shipped and not shipped - names, sorted(shipped - names)
