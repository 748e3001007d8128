"""Tokenizers (char, word, sentencepiece) and the vocabulary they feed.

Every tokenizer turns a line into string tokens; one `Vocab` maps them to ids, so
the rest of the package never sees which tokenizer made them.
"""
from __future__ import annotations

import io
from collections import Counter
from typing import Iterable, Optional, Sequence

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


class Vocab:
    """Token <-> id. Ids 0-3 are <pad>, <bos>, <eos>, <unk>; the rest by falling frequency."""

    def __init__(self, tokens: Sequence[str]):
        self.itos = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad, self.bos, self.eos, self.unk = (self.stoi[s] for s in SPECIALS)

    @classmethod
    def build(cls, tokenized_lines: Iterable[Sequence[str]], max_size: Optional[int] = None) -> "Vocab":
        counts = Counter(t for line in tokenized_lines for t in line)
        ordered = sorted(counts, key=lambda t: (-counts[t], t))
        if max_size is not None:
            ordered = ordered[: max(0, max_size - len(SPECIALS))]
        return cls(ordered)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(t, self.unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> tokens, up to (not including) the first <eos>; <pad> and <bos> dropped."""
        out = []
        for i in ids:
            if i == self.eos:
                break
            if i not in (self.pad, self.bos):
                out.append(self.itos[i])
        return out


class CharTokenizer:
    kind = "char"

    def tokenize(self, line: str) -> list[str]:
        return list(line)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def state(self) -> dict:
        return {"kind": self.kind}


class WordTokenizer:
    kind = "word"

    def tokenize(self, line: str) -> list[str]:
        return line.split()

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)

    def state(self) -> dict:
        return {"kind": self.kind}


class TexygenTokenizer:
    """Texygen's tokenizer (`utils/text_process.py`): nltk's word_tokenize of the lower-cased
    line, which splits punctuation off words ("wheel." -> "wheel", "."). Run with
    `preserve_line=True`: Texygen's call first splits sentences with nltk's punkt model, which
    is data that nltk downloads, so a period inside a line stays on its word here (12 tokens
    in COCO's 20,000 captions)."""

    kind = "texygen"

    def tokenize(self, line: str) -> list[str]:
        from nltk.tokenize import word_tokenize

        return word_tokenize(line.lower(), preserve_line=True)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)

    def state(self) -> dict:
        return {"kind": self.kind}


class SentencePieceTokenizer:
    """A unigram sentencepiece model trained on the training split (never on test)."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = model_proto
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, lines: Sequence[str], vocab_size: int, seed: int = 0) -> "SentencePieceTokenizer":
        import sentencepiece as spm

        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            hard_vocab_limit=False,  # a small corpus may not support the full size
            num_threads=1,  # one thread: the same pieces on every run
            minloglevel=2,
        )
        return cls(model.getvalue())

    def tokenize(self, line: str) -> list[str]:
        return self.processor.encode(line, out_type=str)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self.processor.decode_pieces(list(tokens))

    def state(self) -> dict:
        return {"kind": self.kind, "model_proto": self.model_proto}


class HFTokenizer:
    """A Hugging Face tokenizer (a model directory's, `--generator hf:DIR`): its ids are the
    model's, so the corpus is encoded by it directly (`encode_lines`), and `vocab` stands in
    for a `Vocab`: ids -> the decoded text's words (what BLEU compares), words -> ids. Saved
    runs carry its files, so `seqadv.load` decodes without the directory."""

    kind = "hf"

    def __init__(self, tokenizer):
        self.hf = tokenizer
        self.vocab = HFVocab(tokenizer)

    @classmethod
    def from_files(cls, files: dict) -> "HFTokenizer":
        import tempfile
        from pathlib import Path

        from transformers import AutoTokenizer

        with tempfile.TemporaryDirectory() as directory:
            for name, data in files.items():
                (Path(directory) / name).write_bytes(data)
            return cls(AutoTokenizer.from_pretrained(directory, local_files_only=True, trust_remote_code=False))

    def encode_lines(self, lines: Sequence[str]) -> list[list[int]]:
        """Each line's ids, without the special tokens the tokenizer may add (the start token
        is the generator's input before position 0; the end token is added by the dataset)."""
        return self.hf(list(lines), add_special_tokens=False)["input_ids"] if lines else []

    def tokenize(self, line: str) -> list[str]:
        return line.split()

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)

    def state(self) -> dict:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as directory:
            self.hf.save_pretrained(directory)
            return {"kind": self.kind, "files": {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir())}}


class HFVocab:
    """A Hugging Face tokenizer seen as a `Vocab` (ids are its ids): `decode` gives the words of
    the decoded text up to the first end token, `encode` the ids of words joined by spaces."""

    itos = None  # nothing to save: the tokenizer's files are

    def __init__(self, tokenizer):
        from seqadv.hf import special_tokens

        self.hf = tokenizer
        self.bos, self.eos, self.pad = special_tokens(tokenizer)
        self.unk = tokenizer.unk_token_id

    def __len__(self) -> int:
        return len(self.hf)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return self.hf(" ".join(tokens), add_special_tokens=False)["input_ids"]

    def decode(self, ids: Iterable[int]) -> list[str]:
        ids = [int(i) for i in ids]
        if self.eos in ids:
            ids = ids[: ids.index(self.eos)]
        return self.hf.decode(ids, skip_special_tokens=True).split()


TOKENIZERS = ("char", "word", "texygen", "sentencepiece")


def make_tokenizer(kind: str, train_lines: Sequence[str] = (), vocab_size: int = 8000, seed: int = 0):
    if kind == "char":
        return CharTokenizer()
    if kind == "word":
        return WordTokenizer()
    if kind == "texygen":
        return TexygenTokenizer()
    if kind == "sentencepiece":
        return SentencePieceTokenizer.train(train_lines, vocab_size, seed)
    raise ValueError(f"unknown tokenizer {kind!r}: choose one of {', '.join(TOKENIZERS)}")


def tokenizer_from_state(state: dict):
    if state["kind"] == "hf":
        return HFTokenizer.from_files(state["files"])
    if state["kind"] == "sentencepiece":
        return SentencePieceTokenizer(state["model_proto"])
    return make_tokenizer(state["kind"])


class TextCodec:
    """Text <-> token ids for a trained model: its tokenizer and vocabulary together
    (what `seqadv.load` gives back beside the model). Without a vocabulary (the oracle)
    ids are the tokens and text is their numbers."""

    def __init__(self, vocab: Optional[Vocab], tokenizer=None, eos: Optional[int] = None):
        self.vocab, self.tokenizer, self.eos = vocab, tokenizer, eos

    def tokens(self, ids: Iterable[int]) -> list:
        """Ids -> tokens, up to the first end token."""
        ids = [int(i) for i in ids]
        if self.vocab is not None:
            return self.vocab.decode(ids)
        return ids[: ids.index(self.eos)] if self.eos in ids else ids

    def decode(self, ids: Iterable[int]) -> str:
        tokens = self.tokens(ids)
        if self.tokenizer is None:
            return " ".join(str(t) for t in tokens)
        return self.tokenizer.detokenize(tokens)

    def encode(self, text: str) -> list[int]:
        if self.vocab is None:
            return [int(t) for t in text.split()]
        return self.vocab.encode(self.tokenizer.tokenize(text))
