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


def comparison_rows(models: dict, names: list[str], labels: list[str], lower_is_better) -> list[str]:
    """The printed table's rows: every metric of the three models, and which of the last two
    (the baseline and the adversarial model) is better on it."""
    lines = [f"{'metric':<14}" + "".join(f"{label:>12}" for label in labels) + "   better"]
    for metric in models[names[-1]]:
        lower = lower_is_better(metric)
        baseline, adversarial = models[names[1]][metric], models[names[2]][metric]
        winner = "tie" if baseline == adversarial else (labels[2] if (adversarial < baseline) == lower else labels[1])
        row = "".join(f"{models[m][metric]:>12.4f}" for m in names)
        lines.append(f"{metric:<14}{row}   {winner}{' (lower is better)' if lower else ''}")
    return lines
