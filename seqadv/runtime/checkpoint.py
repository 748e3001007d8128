"""Checkpoints that are never half-written and never silently damaged.

`save_checkpoint` writes to a temporary file beside the target, flushes and
fsyncs it, moves the current checkpoint to `<name>.prev` and renames the new
one into place: a crash at any moment leaves either the new file or the
previous one (`load_latest` falls back to it). The file is `torch.save` of
{"format_version", "sha256", "payload"}, where the payload is the torch.save
bytes of the object: torch.load alone does not notice a damaged byte inside a
tensor (it loads it silently), the digest does.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from seqadv.core.registry import RECIPES, model_class


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, damaged or not one of ours."""


FORMAT_VERSION = 2


def previous_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".prev")


def write_text_atomic(path: str | os.PathLike, text: str, newline: Optional[str] = None) -> Path:
    """Write a text file (results, samples) by writing a temporary file beside it and
    renaming it into place, so a reader never sees it half-written. `newline` as for
    `open` ("" for a CSV, whose writer ends its lines itself). Returns the path."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8", newline=newline)
    tmp.replace(path)
    return path


def save_checkpoint(obj: dict, path: str | os.PathLike, keep_previous: bool = False,
                    _before_rename: Optional[Callable[[], None]] = None) -> Path:
    """Write `obj` atomically to `path`; with `keep_previous` the file it replaces
    becomes `<path>.prev`. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, "sha256": hashlib.sha256(payload).hexdigest(),
                        "payload": payload}, f)
            f.flush()
            os.fsync(f.fileno())
        if _before_rename is not None:  # tests: a crash between the write and the rename
            _before_rename()
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    # a writer killed between its write and its rename (SIGKILL runs no `finally`)
    # leaves its temporary file; the complete checkpoint now in place supersedes it
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        stale.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The object saved at `path`; CheckpointError naming the file if it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a truncated file
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(outer, dict) or outer.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a seqadv checkpoint of format {FORMAT_VERSION}")
    payload = outer.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != outer.get("sha256"):
        raise CheckpointError(f"{path}: damaged checkpoint (its sha256 does not match its contents)")
    try:
        # tensors, numbers, strings and containers only: a shared file cannot run code
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: holds objects other than tensors and plain data, which seqadv does not "
                              f"load ({str(exc).splitlines()[0][:100]})") from None


def load_latest(path: str | os.PathLike, map_location: Any = "cpu", warn: Callable[[str], None] = print) -> dict:
    """`load_checkpoint(path)`, or, if that fails, the previous checkpoint `<path>.prev`
    (calling `warn` with one line that says so)."""
    try:
        return load_checkpoint(path, map_location)
    except CheckpointError as exc:
        previous = previous_path(path)
        if not previous.is_file():
            raise
        obj = load_checkpoint(previous, map_location)
        warn(f"{exc}; resuming from the previous checkpoint {previous}")
        return obj


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


# --- saved models ----------------------------------------------------------------------------

def run_models() -> tuple[str, ...]:
    """The files a run directory may stand for, one per registered recipe (`seqgan.pt`, ...)."""
    return tuple(entry.model_file for entry in RECIPES.values())


class LoadedModel:
    """What `load` gives back: `model` (in eval mode) and `tokenizer` (a `TextCodec` for
    text models; for IRGAN the file's user and item ids, `{"users": [...], "items": [...]}`),
    the `recipe` that trained it, its `config`, `length` (tokens per sequence) and the
    whole saved `state`. Unpacks as `model, tokenizer = seqadv.load(path)`."""

    def __init__(self, model, tokenizer, state: dict, path: Path):
        self.model, self.tokenizer, self.state, self.path = model, tokenizer, state, path
        self.recipe = state.get("recipe")
        self.config = state.get("config", {})
        self.length = state.get("length")

    def __iter__(self):
        return iter((self.model, self.tokenizer))


def resolve_model_path(path: str | os.PathLike) -> Path:
    """A model file, or a run directory's adversarial model (the file its recipe names:
    seqgan.pt, scratchgan.pt, maskgan.pt, irgan.pt, mle_best.pt)."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        return path  # a Hugging Face model directory
    if path.is_dir():
        found = [path / name for name in run_models() if (path / name).is_file()]
        if not found:
            raise CheckpointError(f"{path}: a directory without {', '.join(run_models())} (give a run's --out or a .pt)")
        return found[0]
    if not path.exists():
        raise CheckpointError(f"{path}: no such run directory or model file")
    return path


def load(path: str | os.PathLike, device: Any = "cpu") -> LoadedModel:
    """A trained model from a file a trainer wrote (pretrained.pt, mle.pt, seqgan.pt,
    scratchgan.pt, maskmle.pt, maskgan.pt, bpr.pt, irgan.pt, checkpoint.pt), a run directory or
    a Hugging Face model directory (one a trainer handed back, `runs/x/seqgan-hf/`, or any local
    causal LM with its tokenizer), ready to sample, with its tokenizer. Loads with
    `weights_only=True` (safetensors for a Hugging Face directory): tensors and plain data."""
    from seqadv.data.tokenizer import TextCodec, Vocab, tokenizer_from_state

    path = resolve_model_path(path)
    if path.is_dir():
        return load_hf_directory(path, device)
    state = load_checkpoint(path)
    description = state.get("model")
    if "generator" not in state or not isinstance(description, dict):
        raise CheckpointError(f"{path}: not a model saved by a seqadv trainer")
    cls = model_class(description.get("class"))
    if cls is None or description.get("config") is None:
        raise CheckpointError(f"{path}: holds a {description.get('class')} of one's own, which seqadv does not "
                              f"rebuild; build it and load_state_dict(seqadv.runtime.checkpoint.load_checkpoint(path)"
                              f"['generator'])")
    model = cls(**description["config"])
    model.load_state_dict(state["generator"])
    model.to(device).eval()
    if "id_maps" in state:
        tokenizer = state["id_maps"]
    else:
        tok = tokenizer_from_state(state["tokenizer"]) if state.get("tokenizer") else None
        # a Hugging Face tokenizer is its own vocabulary
        vocab = Vocab(state["vocab"]) if state.get("vocab") else getattr(tok, "vocab", None)
        tokenizer = TextCodec(vocab, tok, (state.get("special_tokens") or {}).get("eos"))
    return LoadedModel(model, tokenizer, state, path)


HF_RUN_FILE = "seqadv.json"  # beside a handed-back Hugging Face directory: its run's recipe, config and length


def load_hf_directory(path: Path, device: Any = "cpu") -> LoadedModel:
    """A Hugging Face causal-LM directory as `load` gives models back. One a trainer handed back
    carries its run (`seqadv.json`: recipe, config, sequence length), so `evaluate.py` finds its
    corpus; any other is sampled for up to 64 tokens (fewer if its positions are fewer)."""
    from seqadv.data.tokenizer import HFTokenizer, TextCodec
    from seqadv.hf import HFGenerator, model_positions

    model, tokenizer = HFGenerator.from_pretrained(path)
    model.to(device).eval()
    hf = HFTokenizer(tokenizer)
    run = json.loads((path / HF_RUN_FILE).read_text(encoding="utf-8")) if (path / HF_RUN_FILE).is_file() else {}
    positions = model_positions(model.lm.config)
    state = {"recipe": run.get("recipe"), "config": run.get("config", {}),
             "length": run.get("length") or min(64, positions or 64), "tokenizer": hf.state(), "vocab": None,
             "model": {"class": "HFGenerator", "config": model.config_dict()},
             "special_tokens": {"start": model.start_token, "eos": model.eos_token, "pad": model.pad_token}}
    return LoadedModel(model, TextCodec(hf.vocab, hf, model.eos_token), state, path)


def hf_run_file(meta: dict) -> dict[str, str]:
    """`seqadv.json` of a handed-back directory (name -> text): what `load` needs of the run beyond the model."""
    return {HF_RUN_FILE: json.dumps({"recipe": meta.get("recipe"), "config": meta.get("config", {}),
                                     "length": meta.get("length")}, indent=1)}
