"""Where `seqadv.load`, the scripts and the comparison find models and recipes by name.

A model class registers itself (`@register_model`) where it is defined; a recipe registers
itself by subclassing `seqadv.trainers.Trainer` with a `recipe` name. The layers below
(saving and loading, the sweep, the comparison) read these tables and import no model or
trainer, so adding a recipe or a model edits none of them.

Only registered classes are rebuilt from a file: the name a file holds selects among them,
it never imports code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

MODELS: dict[str, type] = {}
RECIPES: dict[str, "RecipeEntry"] = {}


def register_model(cls: type) -> type:
    """Class decorator: `seqadv.load` may rebuild this class from its saved config."""
    if MODELS.get(cls.__name__, cls) is not cls:
        raise ValueError(f"a model named {cls.__name__} is registered already ({MODELS[cls.__name__]})")
    MODELS[cls.__name__] = cls
    return cls


def model_name(cls: type) -> Optional[str]:
    """The name a file records for a registered class, or None for a class of one's own."""
    return cls.__name__ if MODELS.get(cls.__name__) is cls else None


def model_class(name: Any) -> Optional[type]:
    """The registered class a file names. Files written before the layered package name
    the class by its old dotted path (`seqadv.generator.Generator`): its last part counts."""
    if not isinstance(name, str) or (name.count(".") and not name.startswith("seqadv.")):
        return None
    return MODELS.get(name.rsplit(".", 1)[-1])


def same_model(a: Any, b: Any) -> bool:
    """Two saved model descriptions ({"class", "config"}) describe the same model, whichever
    way each names its class."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return a == b
    name = lambda d: getattr(model_class(d.get("class")), "__name__", d.get("class"))  # noqa: E731
    return name(a) == name(b) and {k: v for k, v in a.items() if k != "class"} == {
        k: v for k, v in b.items() if k != "class"}


@dataclass(frozen=True)
class RecipeEntry:
    """What the library needs to know of a recipe without importing it.

    name: the recipe's name (`seqgan`), as results.json and saved models record it
    config, trainer: its config dataclass and its trainer class
    kind: "text" (a left-to-right text generator: the sweep and the comparison take it),
        "infilling" or "items"
    model_file: the file a run directory stands for (`seqadv.load(run_dir)`)
    sweep_files: the files of a run that the temperature sweep compares, in order (its MLE
        baseline and its adversarial model)
    """

    name: str
    config: type
    trainer: type
    kind: str
    model_file: str
    sweep_files: tuple[str, ...]


def register_recipe(entry: RecipeEntry) -> None:
    if entry.name in RECIPES and RECIPES[entry.name].trainer is not entry.trainer:
        raise ValueError(f"a recipe named {entry.name} is registered already ({RECIPES[entry.name].trainer})")
    RECIPES[entry.name] = entry


def recipe(name: str) -> RecipeEntry:
    if name not in RECIPES:
        raise KeyError(f"no recipe named {name!r} (registered: {', '.join(sorted(RECIPES))})")
    return RECIPES[name]
