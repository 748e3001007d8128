"""The loop every recipe shares.

A run is a list of phases (pretrain G, pretrain D, the MLE baseline, adversarial, ...),
each a number of units (epochs, rounds, steps). The skeleton runs them in order and,
after every `checkpoint_every` units of a phase, writes `checkpoint.pt` (atomically,
the previous one kept) holding everything the run needs to go on: every module and
optimiser named in `self.modules`, where the run is, the recipe's own state, every
random stream of every process. So one mechanism gives every recipe:

  * exact resume (`config.resume = out`): bitwise equal, on CPU, to a run never stopped;
  * Ctrl-C / SIGTERM: stop at the next checkpoint (a second Ctrl-C stops at once);
  * the numerical guard: `self.update(...)` refuses a NaN/inf loss, gradient or step
    (`training.NumericalError`), so the last checkpoint stays a good one;
  * `torchrun` data parallelism (`seqadv.runtime.distributed`): per-process sampling streams,
    one shared data-order stream, gradients averaged before clipping, rank 0 writes;
  * tensorboard (`losses/`, `charts/`, `eval/`), progress bars, `results.json` and
    the printed table.

A recipe (`SeqGANTrainer`, `MaskGANTrainer`, `IRGANTrainer`) provides:
  `build()`              data, models, optimisers -> `self.modules`, `self.meta`
  `phases()`             its `Phase`s
  a method per phase     one unit of its work, `self.<phase name>(unit)`
  `end_phase(phase)`     after a phase (also when a resumed run skips it): snapshots
  `finish()`             the final evaluation -> the results dict (rank 0 only)
  `print_table(results)`
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import operator
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from seqadv.core.device import machine
from seqadv.core.errors import DataError, Interrupted
from seqadv.core.registry import RecipeEntry, register_recipe, same_model
from seqadv.rl.update import clip_and_step
from seqadv.runtime.checkpoint import CheckpointError, load_latest, save_checkpoint, write_text_atomic
from seqadv.runtime.cli import seed_everything, writable_dir
from seqadv.runtime.distributed import joined_group
from seqadv.runtime.faults import CrashPoint

# --- configuration ------------------------------------------------------------------------------


def preset_config(cls):
    """A dataclass of options whose `preset` fills in every option not given.

    `SeqGANConfig(preset="tiny", corpus="poems")` takes the tiny preset's values for
    every field except `corpus`; a field given explicitly always wins, even when it
    equals the dataclass default. The class says `PRESETS: ClassVar[dict]` and may
    define `validate()` (raise ValueError, one line, naming the option as on the
    command line). `config.given` is the set of options given explicitly: a resumed
    run checks them against its own.
    """
    cls = dataclass(cls)
    init = cls.__init__

    def __init__(self, **given):
        init(self, **given)
        if self.preset not in cls.PRESETS:
            raise ValueError(f"--preset {self.preset}: choose one of {', '.join(cls.PRESETS)}")
        for name, value in cls.PRESETS[self.preset].items():
            if name not in given:
                setattr(self, name, value)
        object.__setattr__(self, "given", frozenset(given))
        if not 0 <= self.seed < 2**32:  # numpy's range; every recipe seeds it
            raise ValueError(f"--seed must be in 0..{2**32 - 1}, got {self.seed}")
        self.validate()

    __init__.__signature__ = inspect.signature(init)
    __init__.__doc__ = init.__doc__
    cls.__init__ = __init__
    return cls


@preset_config
class TrainerConfig:
    """Options every recipe has."""

    preset: str = "cpu"  # tiny (seconds: the tests) | cpu (minutes on 2 cores) | paper (the paper's settings)
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 88  # every random stream (sampling, data order, evaluation) starts from it
    out: str = "runs/run"  # where checkpoint.pt, the models, results.json and tb/ go
    data_dir: Optional[str] = None  # looked in first for data files (then $SEQADV_DATA_DIR, the shipped copy, the cache)
    resume: Optional[str] = None  # a run's --out: go on from its checkpoint, with its own options
    debug: bool = False  # show full tracebacks instead of one line

    PRESETS: ClassVar[dict] = {"tiny": {}, "cpu": {}, "paper": {}}
    CHOICES: ClassVar[dict] = {"device": ["auto", "cpu", "cuda"]}
    # options a resumed run may change: they do not alter what it computes
    RESUME_MAY_CHANGE: ClassVar[tuple] = ("resume", "debug", "device", "data_dir")
    # options added since a recipe's first runs, with what those runs did: a checkpoint
    # written before an option existed resumes with this value, not the new default
    OLDER_RUNS: ClassVar[dict] = {}

    def validate(self) -> None:
        pass


def resumed_config(cls, saved: dict, given, directory: str):
    """The run's own options from its checkpoint; an option given again must agree."""
    known = {f.name for f in dataclasses.fields(cls)}
    # a tuple option comes back from a JSON file as a list
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known}
    saved = {**{k: v for k, v in cls.OLDER_RUNS.items() if k in known}, **saved}
    for key, value in given.items():
        if key in cls.RESUME_MAY_CHANGE:
            continue
        if key == "out":
            if Path(value).resolve() != Path(directory).resolve():
                raise ValueError(f"--out {value}: a resumed run goes on writing into its own directory {directory}")
            continue
        if saved.get(key) != value:
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"--resume {directory}: {flag} {value} differs from the run's {saved.get(key)}; "
                             f"leave it out to go on with the run's own")
    return cls(**{**saved, **{k: given[k] for k in cls.RESUME_MAY_CHANGE if k in given}, "out": directory})


def own_model(given: Any, data: Any) -> Optional[torch.nn.Module]:
    """A model of one's own given to a trainer: a module, or a function of the loaded data
    that builds one (the vocabulary size is known only then). None: the recipe's own."""
    if given is None or isinstance(given, torch.nn.Module):
        return given
    return given(data)


# --- the pieces of a run ---------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    name: str  # e.g. "pretrain_g": the checkpoint's progress and the timing key `<name>_s`
    units: int  # how many units it runs
    desc: str  # the progress bar's label
    unit: str = "epoch"
    checkpoint_every: int = 1  # units between checkpoints; the phase's last unit always writes one


class StopAtCheckpoint:
    """Ctrl-C and SIGTERM ask the run to stop at its next checkpoint, so that what it
    leaves is consistent and resumes exactly; a second Ctrl-C stops it at once (the
    last checkpoint is still there). Only the main thread can own signal handlers:
    elsewhere (a notebook's worker thread) it does nothing."""

    def __init__(self, announce: bool = True):
        self.requested = False
        self.announce = announce  # under torchrun every process gets the signal; rank 0 says so
        self.previous: dict = {}

    def __enter__(self) -> "StopAtCheckpoint":
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            print("\nstopping at the next checkpoint (Ctrl-C again to stop now)", file=sys.stderr, flush=True)


def rng_states(rng: torch.Generator, order_rng: torch.Generator) -> dict:
    """Every random stream of this process, as tensors and numbers (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"sampling": rng.get_state(), "order": order_rng.get_state(), "torch": torch.get_rng_state(),
              "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "cached": float(cached)},
              "python": random.getstate()}
    if torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict, rng: torch.Generator, order_rng: torch.Generator) -> bool:
    """Restore `rng_states`. Returns False if the sampling stream was made on another kind
    of device (a CPU run resumed on a GPU): it cannot move, and is left as seeded."""
    same_device = states["sampling"].numel() == rng.get_state().numel()
    if same_device:
        rng.set_state(states["sampling"])
    order_rng.set_state(states["order"])
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in states and torch.cuda.is_available() and same_device:
        torch.cuda.set_rng_state_all(states["cuda"])
    return same_device


class NoWriter:
    """Where processes other than rank 0 send their logs: nowhere."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


# the random streams of process r > 0 start this far from the run's seed; process 0 keeps
# the run's own, so a single process draws exactly what a plain run draws
RANK_SEED_STRIDE = 1_000_003


# --- the trainer ---------------------------------------------------------------------------------


class Trainer:
    """The shared loop; see the module's docstring for what a recipe provides."""

    recipe: ClassVar[str] = ""
    # what the recipe registry records (`seqadv.core.registry.RecipeEntry`); a subclass that
    # names a `recipe` registers itself, so the scripts and `seqadv.load` find it unedited
    config_class: ClassVar[type] = TrainerConfig
    kind: ClassVar[str] = "text"
    model_file: ClassVar[str] = ""
    sweep_files: ClassVar[tuple[str, ...]] = ()
    # attributes of the trainer that a checkpoint holds beside the modules (a recipe adds its own)
    state_attributes: ClassVar[tuple[str, ...]] = ("progress", "timings", "history")
    # what must be the same when a run resumes: the key in `self.meta`, and its name in the message
    resume_checks: ClassVar[dict[str, str]] = {"vocab": "vocabulary", "tokenizer": "tokenizer", "model": "model"}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "recipe" in cls.__dict__ and cls.recipe:
            register_recipe(RecipeEntry(cls.recipe, cls.config_class, cls, cls.kind, cls.model_file or f"{cls.recipe}.pt",
                                        cls.sweep_files))

    def __init__(self, config: TrainerConfig, crash_at: Optional[CrashPoint] = None):
        """`crash_at`: a test hook, the point where the run kills itself (`runtime.faults`)."""
        self.config = config
        self.crash_at = crash_at
        self.results: Optional[dict] = None

    # --- what a recipe provides ------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def run_unit(self, phase: str, unit: int) -> None:
        """One unit of a phase: by default the recipe's method named as the phase."""
        getattr(self, phase)(unit)

    def end_phase(self, phase: str) -> None:
        pass

    def finish(self) -> dict:
        raise NotImplementedError

    def print_table(self, results: dict) -> None:
        pass

    # --- helpers for recipes -------------------------------------------------------------------
    def say(self, line: str) -> None:
        """Print on rank 0 only."""
        if self.group.is_main:
            print(line, flush=True)

    def update(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float,
               where: str, what: str) -> float:
        """backward, average the gradients over processes, check, clip, step: the one
        update every recipe makes (NumericalError if anything is not finite)."""
        return clip_and_step(model, optimizer, loss, clip, where, what, self.group.average_gradients)

    def save_model(self, name: str, obj: dict) -> None:
        """A model file beside the checkpoint (rank 0 writes; atomic)."""
        if self.group.is_main:
            save_checkpoint({**self.meta, **obj}, self.out / name)

    def log_metrics(self, model: str, metrics: dict, step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"eval/{model}/{name}", value, step)

    def record(self, model: str, metrics: dict, **step: int) -> None:
        """An evaluation made during training: into `history[model]` (with its step, e.g.
        `epoch=3` or `g_updates=20`) and tensorboard's `eval/<model>/`."""
        (key, value), = step.items()
        self.history[model].append({key: value, **metrics})
        self.log_metrics(model, metrics, value)

    def add_time(self, key: str, since: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.time() - since

    # --- the run -----------------------------------------------------------------------------------
    def train(self) -> Optional[dict]:
        """Run (or resume) the whole training. Returns the results dict that results.json
        holds (None on processes other than rank 0 under torchrun).

        Raises `Interrupted` after a Ctrl-C honoured at a checkpoint, `NumericalError`
        for a NaN/inf, ValueError / DataError / CheckpointError for bad input.
        """
        resume = None
        if self.config.resume is not None:
            quiet = int(os.environ.get("RANK", "0")) != 0
            resume = load_latest(Path(self.config.resume) / "checkpoint.pt",
                                 warn=lambda line: quiet or print(f"warning: {line}", file=sys.stderr))
            self.check_recipe(resume, self.config.resume)
            given = {k: getattr(self.config, k) for k in self.config.given}
            self.config = resumed_config(type(self.config), resume["config"], given, self.config.resume)
        # every process waits for rank 0's evaluation, and they leave the group together
        with joined_group(self.config.device) as self.group:
            with StopAtCheckpoint(announce=self.group.is_main) as self.stop:
                self.results = self._run(resume)
        return self.results

    def check_recipe(self, state: dict, where: str) -> None:
        if state.get("recipe") != self.recipe:
            raise CheckpointError(f"{where}: a checkpoint of {state.get('recipe') or 'another program'}, "
                                  f"not of a {self.recipe} run")

    def _run(self, resume: Optional[dict]) -> Optional[dict]:
        self._check_processes(resume)
        self._start()
        phases = self._build()
        if resume is not None:
            self._load(resume)
        self._run_phases(phases)
        if not self.group.is_main:
            return None  # rank 0 evaluates and writes what is left
        return self._results([p.name for p in phases])

    def _check_processes(self, resume: Optional[dict]) -> None:
        """A run resumes with as many processes as made it (each holds its own streams)."""
        made_by = resume.get("world_size", 1) if resume is not None else self.group.world_size
        if made_by != self.group.world_size:
            raise ValueError(f"--resume {self.config.resume}: the run was made by {made_by} process(es), this one has "
                             f"{self.group.world_size}; resume it with "
                             + ("python (no torchrun)" if made_by == 1 else f"torchrun --nproc-per-node {made_by}"))

    def _start(self) -> None:
        """The run's seeds, streams, device, output directory and empty state."""
        config, group = self.config, self.group
        seed_everything(config.seed)
        self.device = group.device
        self.out = Path(config.out)
        if group.is_main:
            writable_dir(self.out, "--resume" if config.resume is not None else "--out")
        # sampling: each process its own stream; the data order: one stream shared by all
        self.rng = torch.Generator(device=self.device).manual_seed(config.seed + RANK_SEED_STRIDE * group.rank)
        self.order_rng = torch.Generator().manual_seed(config.seed + 1)
        self.eval_seed = config.seed + 2  # every evaluation draws from the same seed: comparable across models
        self.progress: dict[str, Any] = {"phase": None, "done": 0}
        self.timings: dict[str, float] = {}
        self.history: dict[str, list] = {}
        self.modules: dict[str, Any] = {}  # what has a state_dict: models, optimisers
        self.streams: dict[str, Any] = {}  # batch streams (`dataset.BatchStream`): their place
        self.meta: dict[str, Any] = {"recipe": self.recipe, "config": dataclasses.asdict(config)}

    def _build(self) -> list[Phase]:
        """The recipe's models and data (`build`), the same on every process; the log writer.
        Returns the phases."""
        config, group = self.config, self.group
        # rank 0 builds first (reads the corpus, fills the caches), so the others do not race it
        if not group.is_main:
            group.barrier()
        self.build()
        if group.is_main:
            group.barrier()
        phases = self.phases()
        self.progress["phase"] = phases[0].name
        # here, not at import: `import seqadv` stays light
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.out / "tb")) if group.is_main else NoWriter()
        self.writer.add_text("config", "```\n" + json.dumps(dataclasses.asdict(config), indent=1) + "\n```")
        for module in self.modules.values():
            if isinstance(module, torch.nn.Module):
                group.broadcast_(module)  # equal already (one seed); this makes sure
        if group.rank > 0:
            torch.manual_seed(config.seed + RANK_SEED_STRIDE * group.rank)  # dropout: a different mask per process
        return phases

    def _run_phases(self, phases: list[Phase]) -> None:
        """Each phase's units from where the run stands, a checkpoint every `checkpoint_every`."""
        names = [p.name for p in phases]
        for phase in phases:
            done_before = names.index(self.progress["phase"]) > names.index(phase.name)
            first = None if done_before else (self.progress["done"] + 1 if self.progress["phase"] == phase.name else 1)
            if first is not None and first <= phase.units:
                t0 = time.time()
                for unit in tqdm(range(first, phase.units + 1), desc=phase.desc, unit=phase.unit,
                                 disable=not self.group.is_main):
                    self.run_unit(phase.name, unit)
                    if unit % phase.checkpoint_every == 0 or unit == phase.units:
                        # the phase's time so far goes into the checkpoint: a resumed run's
                        # timings count the work it kept from before the stop
                        self.add_time(f"{phase.name}_s", t0)
                        t0 = time.time()
                        self._checkpoint(phase.name, unit)
                self.add_time(f"{phase.name}_s", t0)
            self.end_phase(phase.name)

    def _results(self, names: list[str]) -> dict:
        """The final evaluation (`finish`), written to results.json and printed (rank 0)."""
        t0 = time.time()
        results = self.finish()
        self.timings["final_eval_s"] = time.time() - t0
        self.timings["total_s"] = sum(self.timings.get(f"{n}_s", 0.0) for n in names) + self.timings["final_eval_s"]
        self.writer.close()
        results = {"recipe": self.recipe, **results, "history": self.history, "timings": self.timings,
                   "processes": self.group.world_size, "device": str(self.device),
                   "machine": machine(self.device), "config": dataclasses.asdict(self.config)}
        write_text_atomic(self.out / "results.json", json.dumps(results, indent=2))
        self.print_table(results)
        return results

    def _checkpoint(self, phase: str, unit: int) -> None:
        """Everything the run needs to go on exactly as if it had not stopped: rank 0
        writes it, with every process's random streams."""
        crash_in_write = self.crash_at.at_checkpoint(phase, unit) if self.crash_at is not None else None
        self.progress.update(phase=phase, done=unit)
        states = self.group.gather_objects(rng_states(self.rng, self.order_rng))
        if self.group.is_main:
            save_checkpoint({**self.meta, **{name: m.state_dict() for name, m in self.modules.items()},
                             **{name: getattr(self, name) for name in self.state_attributes},
                             "streams": {name: s.state_dict() for name, s in self.streams.items()},
                             "rng": states, "world_size": self.group.world_size},
                            self.out / "checkpoint.pt", keep_previous=True, _before_rename=crash_in_write)
        # a stop asked of any process stops them all, at the same checkpoint
        if self.group.any(self.stop is not None and self.stop.requested):
            raise Interrupted(f"stopped after {phase} {unit}; go on with --resume {self.out}")

    def differs_from(self, state: dict) -> Optional[str]:
        """The first of `resume_checks` (vocabulary, tokenizer, model) in which a saved run's
        state differs from this run's, by its name; None where they agree."""
        differs = lambda key: not (same_model if key == "model" else operator.eq)(state.get(key), self.meta[key])  # noqa: E731
        return next((what for key, what in self.resume_checks.items() if key in self.meta and differs(key)), None)

    def _load(self, state: dict) -> None:
        what = self.differs_from(state)
        if what is not None:
            raise DataError(f"--resume {self.config.resume}: the checkpoint's {what} does not match this "
                            f"run's (the data, its options or the model changed since the run began)")
        for name, module in self.modules.items():
            if name not in state:
                raise CheckpointError(f"--resume {self.config.resume}: the checkpoint has no {name}")
            module.load_state_dict(state[name])
        for name in self.state_attributes:
            setattr(self, name, state[name])
        for name, stream in self.streams.items():
            stream.load_state_dict(state["streams"][name])
        if not set_rng_states(state["rng"][self.group.rank], self.rng, self.order_rng) and self.group.is_main:
            print(f"warning: --resume {self.config.resume}: the run's sampling stream was made on another kind of "
                  f"device than {self.device}; it goes on with a fresh one (not bit for bit the uninterrupted run)",
                  file=sys.stderr)
        self.say(f"resumed from {self.config.resume}: {self.progress['phase']}, {self.progress['done']} done")


class GANTrainer(Trainer):
    """What SeqGAN and MaskGAN share beyond the loop: pretrain G by MLE, pretrain D, an MLE
    baseline of equal budget continued from the pretrained G and its optimiser, the
    adversarial phase from the same pretrained G, and the three models compared at the
    end. A recipe sets `self.g`, `self.g_opt`, `self.mle`, `self.mle_opt` in `build()`
    and names its two trained models (the history keys and the `.pt` files)."""

    baseline: ClassVar[str] = "mle"  # the MLE baseline's name
    adversarial_model: ClassVar[str] = ""  # the adversarial model's name
    state_attributes = ("progress", "timings", "history", "pretrained")
    pretrained: Optional[dict] = None  # G and its optimiser after MLE pretraining

    def __init__(self, config: TrainerConfig, generator: Any = None, discriminator: Any = None,
                 crash_at: Optional[CrashPoint] = None):
        """`generator`, `discriminator`: models of one's own (see the recipe's docstring), or
        functions of the loaded data that build them; None for the recipe's own."""
        super().__init__(config, crash_at)
        self.user_generator, self.user_discriminator = generator, discriminator

    def start_baseline(self) -> None:
        """At the baseline's first step: the pretrained G and its optimiser state."""
        self.mle.load_state_dict(self.pretrained["generator"])
        # a copy: Optimizer.load_state_dict keeps the tensors it is given (a CPU tensor of the
        # right dtype is not copied), and the baseline's steps would then change the snapshot
        self.mle_opt.load_state_dict(copy.deepcopy(self.pretrained["optimizer"]))

    def end_phase(self, phase: str) -> None:
        if phase == "pretrain_g" and self.pretrained is None:
            self.pretrained = {"generator": copy.deepcopy(self.g.state_dict()),
                               "optimizer": copy.deepcopy(self.g_opt.state_dict())}
            self.save_model("pretrained.pt", {"generator": self.pretrained["generator"]})
        elif phase == "mle_baseline":
            self.save_model(f"{self.baseline}.pt", {"generator": self.mle.state_dict()})
        elif phase == "adversarial":
            self.save_model(f"{self.adversarial_model}.pt", {"generator": self.g.state_dict()})

    def final_models(self) -> list[tuple[str, torch.nn.Module]]:
        """(name, model) of the pretrained G, the baseline and the adversarial G, each a
        copy of G's architecture holding those weights."""
        models = []
        for name, state in [("pretrained", self.pretrained["generator"]), (self.baseline, self.mle.state_dict()),
                            (self.adversarial_model, self.g.state_dict())]:
            model = copy.deepcopy(self.g)
            model.load_state_dict(state)
            models.append((name, model))
        return models
