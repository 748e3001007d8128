"""Command-line pieces shared by the training scripts: a dataclass of arguments with
presets becomes an argument parser; the device and the seeds are set from it.

Each script keeps its own `Args` dataclass and `PRESETS`; this module only turns
them into options (`--pretrain-epochs 40`, `--d-filter-sizes 1,2,3`), so a script
reads as its configuration and its loop, and no configuration is global.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import typing
from typing import Optional, Sequence

import numpy as np
import torch


class OneLineParser(argparse.ArgumentParser):
    """A bad option gets one line, not the whole usage block above it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def parse_dataclass_args(cls, presets: dict[str, dict], argv: Optional[list[str]], description: str,
                         choices: Optional[dict[str, list[str]]] = None):
    """Dataclass defaults <- the preset (field `preset`) <- options given on the command line.

    Returns (args, given): the arguments and the options given explicitly (a resumed
    run checks those against its own).
    """
    hints = typing.get_type_hints(cls)
    choices = {"preset": list(presets), "device": ["auto", "cpu", "cuda"], **(choices or {})}
    parser = OneLineParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        if kind is bool:
            parser.add_argument(flag, action="store_true", default=None)
        elif kind == tuple[int, ...]:
            parser.add_argument(flag, type=int_tuple, default=None, metavar="N,N,...")
        else:
            base = typing.get_args(kind)[0] if typing.get_origin(kind) is typing.Union else kind
            parser.add_argument(flag, type=base, default=None, choices=choices.get(f.name), help=f"default {f.default}")
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    preset = given.get("preset", cls().preset)
    return dataclasses.replace(cls(), **{**presets[preset], **given}), given


def check_ranges(args, positive: Sequence[str] = (), non_negative: Sequence[str] = ()) -> None:
    """ValueError naming the first option out of its range (one line, as the scripts print it)."""
    for name in positive:
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in non_negative:
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must not be negative, got {getattr(args, name)}")


def resolve_device(name: str) -> torch.device:
    """auto | cpu | cuda -> a device; the one place a script chooses it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine (use --device cpu)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
