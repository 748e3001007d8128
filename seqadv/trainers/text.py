"""What the text recipes (SeqGAN, MaskGAN) share beyond the loop: the line that
describes the corpus, what a saved model says of its data, decoded samples."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import Tensor, nn

from ..checkpoint import write_text_atomic
from ..dataset import SequenceData
from ..distributed import Group


def describe_corpus(data: SequenceData, config, group: Group, device: torch.device, extra: str = "") -> str:
    truncated = data.info.get("truncated_train_lines", 0) + data.info.get("truncated_test_lines", 0)
    return (f"corpus {data.name}: {len(data.train)} train / {len(data.test)} test sequences, length {data.length}"
            + (f" ({truncated} longer lines cut to it)" if truncated else "")
            + f", vocabulary {data.vocab_size}; {extra}device {device}"
            + (f" x {group.world_size} processes" if group.active else "") + f"; preset {config.preset}")


def text_meta(data: SequenceData) -> dict:
    """What a checkpoint or saved model holds of its data: the vocabulary and the
    tokenizer (a sentencepiece model's bytes included), so `seqadv.load` can decode."""
    return {"vocab": data.vocab.itos if data.vocab else None,
            "tokenizer": data.tokenizer.state() if data.tokenizer else None,
            "special_tokens": {"start": data.start_token, "eos": data.eos_token, "pad": data.pad_token},
            "length": data.length,
            "data_info": data.info}


def describe_model(module: nn.Module, config: Optional[dict]) -> dict:
    """The model's class and the arguments that rebuild it. A model of one's own is
    named but not rebuilt by `seqadv.load` (its class is not imported from a file)."""
    cls = type(module)
    return {"class": f"{cls.__module__}.{cls.__qualname__}",
            "config": config if cls.__module__.startswith("seqadv.") else None}


def write_samples(path: Path, samples: Tensor, data: SequenceData) -> None:
    write_text_atomic(path, "".join(data.text(s) + "\n" for s in samples.cpu()))
