"""Tiny Hugging Face causal LMs for the tests, built from a config (random weights) and saved
with a word-level tokenizer trained here on the given lines: nothing is downloaded."""
from __future__ import annotations

import os
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "bos_token": "[BOS]", "eos_token": "[EOS]"}


def word_tokenizer(lines: list[str], eos: bool = True):
    """A word-level `PreTrainedTokenizerFast` trained on `lines` (the `tokenizers` library)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = dict(SPECIALS) if eos else {k: v for k, v in SPECIALS.items() if k != "eos_token"}
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(lines, trainers.WordLevelTrainer(special_tokens=list(specials.values())))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials)


def tiny_lm(kind: str, vocab_size: int, positions: int = 64, seed: int = 0, bos: int = 2, eos: int = 3):
    """A 2-layer GPT-2 or Llama-style model of width 32."""
    import transformers

    torch.manual_seed(seed)
    if kind == "gpt2":
        config = transformers.GPT2Config(vocab_size=vocab_size, n_positions=positions, n_embd=32, n_layer=2, n_head=2,
                                         bos_token_id=bos, eos_token_id=eos)
        return transformers.GPT2LMHeadModel(config)
    config = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=positions,
                                      bos_token_id=bos, eos_token_id=eos)
    return transformers.LlamaForCausalLM(config)


def write_tiny_model(directory: Path, lines: list[str], kind: str = "gpt2", positions: int = 64, eos: bool = True,
                     seed: int = 0) -> Path:
    """A model directory as `save_pretrained` writes it: config, safetensors weights, tokenizer."""
    tokenizer = word_tokenizer(lines, eos)
    model = tiny_lm(kind, len(tokenizer), positions, seed, tokenizer.bos_token_id,
                    tokenizer.eos_token_id if eos else None)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)
