"""The package's layers: each imports only itself and the layers below it, and no module
imports another in a circle. The scripts import the library, never each other."""
import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# bottom up; `seqadv.hf` (the optional extra's adapter) sits with the models
LAYERS = ["core", "models", "data", "runtime", "rl", "eval", "trainers"]
LAYER_OF_TOP_MODULE = {"hf": "models"}


def imports(path: Path, package: str) -> set[str]:
    """The seqadv modules a file imports, anywhere in it (lazy imports in functions count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "seqadv"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == "seqadv":
                # `from seqadv.core import policy` imports the module seqadv.core.policy
                subs = [f"{name}.{a.name}" for a in node.names]
                found |= {s for s in subs if _is_module(s)} or {name}
    return found


def _is_module(name: str) -> bool:
    path = REPO / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out[".".join(parts)] = path
    return out


def layer(module: str) -> int | None:
    """The layer's rank, or None for the package's top (`seqadv/__init__`)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    name = LAYER_OF_TOP_MODULE.get(parts[1], parts[1])
    return LAYERS.index(name)


def upward_imports(root: Path) -> list[str]:
    found = []
    for module, path in modules(root).items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        mine = layer(module)
        for target in imports(path, package):
            theirs = layer(target)
            if mine is not None and (theirs is None or theirs > mine):
                found.append(f"{module} ({LAYERS[mine]}) imports {target} "
                             f"({'the package top' if theirs is None else LAYERS[theirs]})")
    return found


def circles(root: Path) -> list[list[str]]:
    """Every import circle among the package's modules (a package imports its __init__'s imports)."""
    mods = modules(root)
    graph = {}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        graph[module] = {t for t in imports(path, package) if t in mods and t != module}
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state and node != "seqadv":  # the top imports everything by design
            visit(node, [])
    return found


def test_every_layer_imports_only_itself_and_the_layers_below():
    assert upward_imports(REPO / "seqadv") == []


def test_no_module_imports_another_in_a_circle():
    assert circles(REPO / "seqadv") == []


def test_the_checks_find_an_upward_import_and_a_circle(tmp_path):
    root = tmp_path / "seqadv"
    for layer_name in ["core", "models", "trainers"]:
        (root / layer_name).mkdir(parents=True)
        (root / layer_name / "__init__.py").write_text("")
    (root / "__init__.py").write_text("from seqadv.trainers import loop\n")
    (root / "core" / "policy.py").write_text("def f():\n    from seqadv.models.net import Net\n")
    (root / "models" / "net.py").write_text("from seqadv.core.policy import f\n")
    (root / "trainers" / "loop.py").write_text("from ..models import net\n")
    sys.path.insert(0, str(tmp_path))
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert upward_imports(root) == ["seqadv.core.policy (core) imports seqadv.models.net (models)"]
        assert circles(root) == [["seqadv.core.policy", "seqadv.models.net", "seqadv.core.policy"]]
    finally:
        REPO = saved
        sys.path.remove(str(tmp_path))


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "scripts").glob("*.py")))
def test_scripts_import_the_library_not_each_other(script):
    others = {p.stem for p in (REPO / "scripts").glob("*.py")}
    tree = ast.parse((REPO / "scripts" / script).read_text())
    named = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    named |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not named & others, f"{script} imports {sorted(named & others)}: move what they share into seqadv"


def test_the_top_level_keeps_every_public_name():
    import seqadv
    import seqadv.trainers

    before = {"Discriminator", "Generator", "IRGANConfig", "IRGANTrainer", "MaskGANConfig", "MaskGANTrainer", "Policy",
              "ScratchGANConfig", "ScratchGANTrainer", "RolloutEngine", "SeqGANConfig", "SeqGANTrainer",
              "TransformerGenerator", "ema_update", "load", "sample_from_logits"}
    assert before <= set(seqadv.__all__) and all(hasattr(seqadv, name) for name in before)
    assert {"MLEConfig", "MLETrainer", "Phase", "Trainer", "TrainerConfig", "preset_config"} <= set(
        dir(seqadv.trainers))
    assert (REPO / "seqadv" / "hf.py").is_file()  # the optional extra's module stays where it was


FILE_SUFFIXES = {"json", "pt", "txt", "toml", "md"}


def test_every_name_the_readme_and_docs_give_under_seqadv_exists():
    """`seqadv.a.b.name` written in README.md or docs/*.md imports (the documented module
    paths stay true as files move)."""
    import importlib
    import re

    missing = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for ref in sorted(set(re.findall(r"\bseqadv(?:\.[A-Za-z_]\w*)+", page.read_text()))):
            parts = ref.split(".")
            if parts[-1] in FILE_SUFFIXES:  # a file's name (seqadv.json), not a module path
                continue
            for i in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:i]))
                    break
                except ImportError:
                    continue
            for name in parts[i:]:
                obj = getattr(obj, name, None)
            if obj is None:
                missing.append(f"{page.name}: {ref}")
    assert missing == []
