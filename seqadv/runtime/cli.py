"""The command line of the training scripts: a config dataclass with presets becomes
an argument parser, and a script's body runs under one guard that turns bad input
into one line on stderr.

Each recipe's config (`SeqGANConfig`, ...) is the single description of its options:
the field's type gives the option's type, the comment after it its help, and `--help`
shows the value it takes under the default preset (and under the others where they
differ). No configuration is global.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import random
import re
import sys
import typing
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from seqadv.runtime.faults import CrashPoint


class OneLineParser(argparse.ArgumentParser):
    """A bad option gets one line, not the whole usage block above it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _tuple_of(kind):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x) for x in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None
    parse.__name__ = f"{kind.__name__}s"
    return parse


int_tuple = _tuple_of(int)
float_tuple = _tuple_of(float)


def field_comments(cls) -> dict[str, str]:
    """The comment after each field of a dataclass (and of its bases): the option's help."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for match in re.finditer(r"^    (\w+): [^=\n]+= .+?  #\s*(.+)$", source, re.MULTILINE):
            comments[match.group(1)] = match.group(2).strip()
    return comments


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def build_parser(cls, description: str, positional: Sequence[str] = ()) -> OneLineParser:
    """An option per field of the config class `cls` (`preset_config`); booleans as
    --name / --no-name; `positional` fields are positional arguments; fields the recipe does
    not use (`cls.UNUSED`, inherited from a family's shared options) get none."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    default = cls()
    presets = {name: cls(preset=name) for name in cls.PRESETS}
    parser = OneLineParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(cls):
        if f.name in getattr(cls, "UNUSED", ()):
            continue
        kind = hints[f.name]
        if typing.get_origin(kind) is typing.Union:
            kind = typing.get_args(kind)[0]
        value = getattr(default, f.name)
        help_text = comments.get(f.name, "")
        others = [f"{p}: {_show(getattr(c, f.name))}" for p, c in presets.items()
                  if p != default.preset and getattr(c, f.name) != value and f.name != "preset"]
        help_text += f" (default: {_show(value)}" + (f"; {', '.join(others)}" if others else "") + ")"
        help_text = help_text.replace("%", "%%")
        if f.name in positional:
            parser.add_argument(f.name, nargs="+", help=help_text)
            continue
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            parser.add_argument(flag, type=_tuple_of(item), default=None, metavar=f"{item.__name__.upper()},...",
                                help=help_text)
        else:
            choices = list(cls.PRESETS) if f.name == "preset" else cls.CHOICES.get(f.name)
            parser.add_argument(flag, type=kind, default=None, choices=choices, help=help_text,
                                metavar=None if choices else kind.__name__.upper())
    return parser


def parse_config(cls, argv: Optional[list[str]], description: str, positional: Sequence[str] = ()):
    """The config the command line asks for: dataclass defaults <- the preset <- the options
    given (ValueError, one line, for a value out of range)."""
    parser = build_parser(cls, description, positional)
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    given = {k: tuple(v) if k in positional else v for k, v in given.items()}
    return cls(**given)


def check_ranges(args, positive: Sequence[str] = (), non_negative: Sequence[str] = (),
                 unit: Sequence[str] = ()) -> None:
    """ValueError naming the first option out of its range (one line, as the scripts print it)."""
    for names, ok, what in ((positive, lambda v: v > 0, "must be positive"),
                            (non_negative, lambda v: v >= 0, "must not be negative"),
                            (unit, lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]")):
        for name in names:
            if not ok(getattr(args, name)):
                raise ValueError(f"--{name.replace('_', '-')} {what}, got {getattr(args, name)}")


def below_minimum(args, minimum: int, names: Sequence[str]) -> Optional[str]:
    """The one-line message for the first of the options `names` (attribute names of
    `args`) whose value is below `minimum`, or None; an option left unset (None) passes."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < minimum:
            return f"--{name.replace('_', '-')} must be at least {minimum}, got {value}"
    return None


def writable_dir(path, option: str = "--out") -> Path:
    """The directory `path`, made (with its parents) if it is not there: the one check of
    every script's output directory, made before any work. ValueError, one line naming
    `option` and the path, if it cannot be made or written into."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"{option} {path}: a file, not a directory") from None
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot be created ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: the directory is not writable")
    return path


def writable_file(path, option: str) -> Path:
    """A file a script will write at the end (`--json PATH`): its directory must exist (or
    be made) and be writable, and the path must not be a directory; checked before any work."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: a directory, not a file")
    try:
        writable_dir(path.parent, option)
    except ValueError:
        raise ValueError(f"{option} {path}: its directory {path.parent} cannot be created or written into") from None
    return path


def one_line(text: str) -> str:
    """A message as the one line a script prints."""
    return " ".join(str(text).split("\n")).strip()


def guarded(prog: str, body: Callable[[], object], argv: Optional[list[str]] = None) -> int:
    """Run a script's body and return its exit code (`_guarded`). Under torchrun with more
    than one process the process ends here, with os._exit once stdout and stderr are flushed:
    the group is left by then (`teardown`), and skipping the interpreter's finalisation keeps
    the window shut in which a peer that already exited closes its sockets under this
    process's gloo threads (SIGABRT, "terminate called without an active exception": once
    in a CI run of the tests two at a time)."""
    from seqadv.runtime.distributed import launched_by_torchrun

    code = _guarded(prog, body, argv)
    if launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _guarded(prog: str, body: Callable[[], object], argv: Optional[list[str]] = None) -> int:
    """Run a script's body; bad input (DataError, CheckpointError, ValueError, an OSError
    on a file: one that cannot be read or written) is one line on stderr and exit code 2,
    a NaN/inf exit code 3, a stop at a checkpoint or Ctrl-C 130, a reader that closed the
    pipe (`| head`) 141, silently, as a shell tool. `--debug` shows the traceback instead.
    Under torchrun rank 0 alone says it."""
    from seqadv.core.errors import DataError, Interrupted, NumericalError
    from seqadv.runtime.checkpoint import CheckpointError

    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    quiet = int(os.environ.get("RANK", "0")) != 0
    say = lambda line: quiet or print(f"{prog}: {one_line(line)}", file=sys.stderr)  # noqa: E731
    try:
        body()
    except BrokenPipeError:
        if debug:
            raise
        # Python flushes stdout again at exit, into the closed pipe: point it at nothing first
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (DataError, CheckpointError, ValueError, NumericalError) as exc:
        if debug:
            raise
        say(f"error: {exc}")
        return 3 if isinstance(exc, NumericalError) else 2
    except OSError as exc:
        if debug or exc.filename is None:
            raise
        say(f"error: {exc.filename}: {exc.strerror or exc}")
        return 2
    except Interrupted as exc:
        say(str(exc))
        return 130
    except KeyboardInterrupt:
        say("interrupted; the last checkpoint is in --out (go on with --resume)")
        return 130
    return 0


def train_main(prog: str, trainer_class: type, config_class: type, argv: Optional[list[str]], doc: str) -> int:
    """A train_<recipe>.py script: the command line becomes the recipe's config, its trainer
    runs it, the outcome is an exit code (`guarded`). The resume tests' crash point is read
    here, at the command line (`runtime.faults`), and handed to the trainer."""
    def body():
        config = parse_config(config_class, argv, doc)
        return trainer_class(config, crash_at=CrashPoint.from_environment()).train()
    return guarded(prog, body, argv)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
