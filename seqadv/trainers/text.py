"""What the text recipes share beyond the loop: the line that describes the corpus,
what a saved model says of its data, decoded samples (SeqGAN, MaskGAN, ScratchGAN);
and for the recipes that train a generator of text from a corpus (SeqGAN and the
ScratchGAN-style recipe), their common options (`TextGANConfig`) and trainer
(`TextGANTrainer`: the data, the generator, MLE pretraining, the equal-budget MLE
baseline, the evaluation and the results)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np
import torch
from torch import Tensor, nn

from seqadv.core.errors import DataError
from seqadv.core.registry import model_name
from seqadv.data.dataset import BatchStream, SequenceData, batches, load_corpus
from seqadv.data.tokenizer import TOKENIZERS
from seqadv.data.word_vectors import start_embedding_
from seqadv.eval.metrics import BLEU, nll, self_bleu
from seqadv.eval.report import lower_is_better
from seqadv.models.generator import Generator, ScratchGANGenerator
from seqadv.models.transformer import TransformerGenerator
from seqadv.rl.update import mle_step
from seqadv.runtime.checkpoint import hf_run_file, load_checkpoint, write_text_atomic
from seqadv.runtime.cli import check_ranges
from seqadv.runtime.distributed import Group
from seqadv.trainers.base import GANTrainer, TrainerConfig, own_model, preset_config


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
    cls, name = type(module), model_name(type(module))
    return {"class": name or f"{cls.__module__}.{cls.__qualname__}", "config": config if name else None}


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


HF_G_LR = 1e-4  # --g-lr of a Hugging Face generator unless given (fine-tuning, not the LSTM's 0.01)


@preset_config
class TextGANConfig(TrainerConfig):
    """What the recipes that train a generator of text from a corpus share (SeqGAN and the
    ScratchGAN-style recipe): the data, the generator and its MLE pretraining, the batch,
    the evaluation. Each recipe adds its adversary and its presets."""

    corpus: str = "poems"  # poems | coco | coco-texygen | oracle | ptb | path/to/file.txt
    oracle: str = "random"  # oracle corpus: random (seeded N(0,1)) | paper (the paper's oracle file)
    tokenizer: Optional[str] = None  # char | word | texygen (nltk, as Texygen) | sentencepiece (default: the recipe's, word for files)
    vocab_size: Optional[int] = None  # the largest vocabulary (sentencepiece: its size)
    max_length: Optional[int] = None  # tokens per sequence (longer lines are cut and counted)
    max_train: Optional[int] = None  # keep only this many training sequences
    max_test: Optional[int] = None  # keep only this many test sequences
    # generator (official SeqGAN: an LSTM, embedding 32, hidden 32, Adam 0.01, clip 5.0, batch 64)
    generator: str = "lstm"  # lstm (SeqGAN's) | transformer (causal, KV cache) | scratchgan (LSTMs, tied embedding) | hf:DIR (a local Hugging Face causal LM and its tokenizer)
    g_embedding_dim: int = 32  # generator embedding size (lstm, scratchgan: its trained part)
    g_hidden_dim: int = 32  # generator LSTM size, or the Transformer's width
    g_layers: int = 2  # Transformer blocks (transformer), LSTM layers (scratchgan)
    g_heads: int = 4  # attention heads (transformer)
    g_lr: float = 0.01  # generator Adam learning rate (MLE and policy gradient)
    grad_clip: float = 5.0  # generator gradient-norm clip (0: none)
    batch_size: int = 64  # sequences per batch (the global batch under torchrun)
    pretrain_epochs: int = 120  # MLE epochs over the training split
    init_from: Optional[str] = None  # another run's --out: start from its pretrained G and optimiser (no pretraining here)
    kl_coef: float = 0.0  # weight of KL(G || G at the adversarial phase's start) in G's adversarial loss (RL fine-tuning's reference policy; 0: none, the papers')
    # evaluation
    eval_every: int = 10  # adversarial epochs (and MLE-baseline steps / g_steps) between evaluations
    pretrain_eval_every: int = 10  # pretraining epochs between evaluations
    eval_samples: int = 2000  # samples scored by BLEU / Self-BLEU
    nll_oracle_samples: int = 10000  # samples scored by the oracle (the paper's count)
    bleu_max_n: int = 4  # BLEU and Self-BLEU orders 2..n

    GENERATORS: ClassVar[tuple] = ("lstm", "transformer", "scratchgan")  # or hf:DIR
    CHOICES: ClassVar[dict] = {**TrainerConfig.CHOICES, "oracle": ["random", "paper"],
                               "tokenizer": list(TOKENIZERS)}

    def validate(self) -> None:
        check_ranges(self, positive=["batch_size", "g_embedding_dim", "g_hidden_dim", "eval_samples",
                                     "nll_oracle_samples", "eval_every", "pretrain_eval_every", "g_lr", "bleu_max_n"],
                     non_negative=["pretrain_epochs", "grad_clip"])
        for name in ("vocab_size", "max_length", "max_train", "max_test"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.hf_directory is not None:
            if not self.hf_directory:
                raise ValueError("--generator hf:DIR: give the model's directory after hf:")
            # absolute, so that a run resumes (and --init-from compares) from any working directory
            object.__setattr__(self, "generator", f"hf:{Path(self.hf_directory).expanduser().resolve()}")
            for name in ("tokenizer", "vocab_size"):
                if getattr(self, name) is not None:
                    raise ValueError(f"--{name.replace('_', '-')} does not apply to --generator {self.generator}: "
                                     f"the model's own tokenizer encodes the corpus")
        elif self.generator not in self.GENERATORS:
            raise ValueError(f"--generator {self.generator}: choose one of {', '.join(self.GENERATORS)} "
                             f"or hf:DIR")
        if self.hf_directory is not None and "g_lr" not in self.given:
            # the presets' rate is for a small LSTM from scratch; a pretrained model takes a fine-tuning rate
            object.__setattr__(self, "g_lr", HF_G_LR)
        if self.kl_coef < 0:
            raise ValueError(f"--kl-coef must be non-negative, got {self.kl_coef}")
        if self.generator == "scratchgan" and self.g_layers < 1:
            raise ValueError(f"--g-layers must be positive, got {self.g_layers}")
        if self.generator == "transformer" and (self.g_layers < 1 or self.g_heads < 1 or self.g_hidden_dim % self.g_heads):
            raise ValueError(f"--g-hidden-dim {self.g_hidden_dim} must split into --g-heads {self.g_heads} "
                             f"(and --g-layers be positive) for --generator transformer")
        if not 1 <= self.bleu_max_n <= 5:
            raise ValueError("--bleu-max-n must be in 1..5")
        if self.init_from is not None:
            if "pretrain_epochs" in self.given and self.pretrain_epochs:
                raise ValueError(f"--init-from {self.init_from} brings its pretrained G: drop --pretrain-epochs")
            object.__setattr__(self, "pretrain_epochs", 0)  # the phase is the other run's

    @property
    def hf_directory(self) -> Optional[str]:
        """DIR of `--generator hf:DIR`, else None."""
        return self.generator[3:] if self.generator.startswith("hf:") else None


class TextGANTrainer(GANTrainer):
    """The part of SeqGAN's run that any adversarial trainer of a text generator shares:
    the corpus, the generator (LSTM, Transformer, or one's own), its MLE pretraining, the
    MLE baseline of equal budget from the pretrained G, the evaluation, the results and
    the table. A recipe adds its adversary in `build_adversary()` (or replaces `build()`),
    its phases and its adversarial unit, and says how many G updates its adversarial phase
    makes (`adversarial_updates()`), which the MLE baseline makes too.
    """

    adversarial_label: ClassVar[str] = ""  # the adversarial model's name in the printed table

    def build(self) -> None:
        self.build_generators()
        self.build_adversary()

    def build_generators(self) -> None:
        c, group = self.config, self.group
        group.local_size(c.batch_size, "--batch-size")
        group.local_size(self.mle_batch_size(), "the MLE batch size")
        hf_model = self.hf_tokenizer = None
        if c.hf_directory is not None:
            if self.user_generator is not None:
                raise ValueError(f"--generator {c.generator} and a generator of one's own: give one of them")
            from seqadv.data.tokenizer import HFTokenizer
            from seqadv.hf import load_causal_lm

            hf_model, tokenizer = load_causal_lm(c.hf_directory)
            self.hf_tokenizer = HFTokenizer(tokenizer)
        data = self.data = load_corpus(c.corpus, data_dir=c.data_dir, tokenizer=c.tokenizer, vocab_size=c.vocab_size,
                                       max_length=c.max_length, oracle=c.oracle, max_train=c.max_train,
                                       max_test=c.max_test, hf_tokenizer=self.hf_tokenizer)
        if hf_model is not None:
            check_positions(hf_model, data.length, c.generator)
            data.vocab_size = hf_model.config.vocab_size  # the model's logits (may pad the tokenizer's ids)
        if data.oracle is not None:
            data.oracle.to(self.device)
        batch = max(c.batch_size, self.mle_batch_size())
        if len(data.train) < batch:
            raise DataError(f"{c.corpus}: {len(data.train)} training sequences, fewer than one batch of {batch}")
        self.say(describe_corpus(data, c, group, self.device))
        self.bleu = None
        if group.is_main and data.oracle is None:
            self.bleu = BLEU(data.references(), max_n=c.bleu_max_n)

        tokens = dict(vocab_size=data.vocab_size, start_token=data.start_token, eos_token=data.eos_token,
                      pad_token=data.pad_token)
        vectors = self.word_vectors(data)  # (V, d) or None
        own_spec = self.generator_spec(data)
        if own_spec is not None:  # a recipe's own generator (LeakGAN's manager and worker)
            model_class, generator_config = own_spec
        elif hf_model is not None:
            from seqadv.hf import HFGenerator

            hf_generator = HFGenerator.wrap(hf_model, self.hf_tokenizer.hf)  # the directory's weights
            model_class, generator_config = HFGenerator, hf_generator.config_dict()
        elif c.generator == "transformer":
            model_class, generator_config = TransformerGenerator, dict(
                **tokens, d_model=c.g_hidden_dim, num_layers=c.g_layers, num_heads=c.g_heads, max_length=data.length)
        elif c.generator == "scratchgan":
            model_class, generator_config = ScratchGANGenerator, dict(
                **tokens, embedding_dim=c.g_embedding_dim + (0 if vectors is None else vectors.shape[1]),
                hidden_dim=c.g_hidden_dim, num_layers=c.g_layers)
        else:
            model_class = Generator
            generator_config = dict(vocab_size=data.vocab_size, embedding_dim=c.g_embedding_dim,
                                    hidden_dim=c.g_hidden_dim, start_token=data.start_token,
                                    eos_token=data.eos_token, pad_token=data.pad_token)

        def build() -> nn.Module:
            model = model_class(**generator_config)
            if vectors is not None:
                start_embedding_(model.embedding.weight, vectors)
            return model.to(self.device)

        g = own_model(self.user_generator, data)
        if g is not None and hasattr(g, "config") and not hasattr(g, "target_logits"):
            raise ValueError(f"generator=: a {type(g).__name__} needs its tokenizer to encode the corpus: give "
                             f"generator='hf:DIR' in the config (a directory with both)")
        if hf_model is not None:
            g = hf_generator
        self.g = g.to(self.device) if g is not None else build()
        self.meta.update(text_meta(data), model=describe_model(self.g, generator_config))
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=c.g_lr)
        if c.init_from is not None:
            self.load_pretrained(c.init_from)
        copies = self.user_generator is not None or hf_model is not None
        self.new_generator = lambda: copy.deepcopy(self.g) if copies else build()
        self.train_data = data.train.to(self.device)
        self.history = {"pretrain": [], self.baseline: [], self.adversarial_model: []}

    def load_pretrained(self, run: str) -> None:
        """G and its optimiser as another run left them after its MLE pretraining (its
        checkpoint's `pretrained`): recipes compared from one pretrained G need not pretrain
        it again. The run must have the same vocabulary, tokenizer and model."""
        path = Path(run) / "checkpoint.pt" if Path(run).is_dir() else Path(run)
        if not path.is_file():
            raise DataError(f"--init-from {run}: no checkpoint.pt there (give a run's --out)")
        state = load_checkpoint(path)
        pretrained = state.get("pretrained")
        progress, epochs = state.get("progress", {}), state.get("config", {}).get("pretrain_epochs")
        if pretrained is None and progress.get("phase") == "pretrain_g" and progress.get("done") == epochs:
            # its last checkpoint came at the end of pretraining, before the snapshot was taken
            pretrained = {"generator": state["generator"], "optimizer": state["g_optimizer"]}
        if pretrained is None:
            raise DataError(f"--init-from {path}: the run has not finished pretraining G")
        what = self.differs_from(state)
        if what is not None:
            raise DataError(f"--init-from {path}: its {what} differs from this run's (same corpus, options "
                            f"and model needed)")
        self.g.load_state_dict(pretrained["generator"])
        self.g_opt.load_state_dict(copy.deepcopy(pretrained["optimizer"]))

    def build_mle_baseline(self) -> None:
        """The MLE baseline's model and optimiser (built after the recipe's D: the order in which
        models draw their initial weights is part of a seed's run)."""
        c = self.config
        self.mle = self.new_generator()
        self.mle_opt = torch.optim.Adam(self.mle.parameters(), lr=c.g_lr)
        self.mle_stream = BatchStream(self.train_data, self.mle_batch_size(), self.order_rng)
        self.streams = {"mle": self.mle_stream}

    def build_adversary(self) -> None:
        raise NotImplementedError

    def build_step_adversary(self, g_adv_lr: float, g_betas: tuple[float, float] = (0.9, 0.999)) -> None:
        """What the recipes that alternate G and D updates step by step build once their D
        (`self.d`) and its optimiser (`self.d_opt`) are: the MLE baseline, G's adversarial
        Adam, a stream of real batches (checkpointed with the others) and the modules a
        checkpoint holds."""
        c = self.config
        self.build_mle_baseline()
        self.g_adv_opt = torch.optim.Adam(self.g.parameters(), lr=g_adv_lr, betas=g_betas)
        self.real_stream = BatchStream(self.train_data, c.batch_size, self.order_rng)
        self.streams = {**self.streams, "real": self.real_stream}
        self.modules = {"generator": self.g, "g_optimizer": self.g_opt, "discriminator": self.d,
                        "d_optimizer": self.d_opt, "mle_generator": self.mle, "mle_optimizer": self.mle_opt,
                        "g_adv_optimizer": self.g_adv_opt}

    def save_model(self, name: str, obj: dict) -> None:
        """A model file beside the checkpoint; for a Hugging Face generator also its directory
        (`<name>-hf/`: `save_pretrained` of the model and its tokenizer) that `transformers` loads."""
        super().save_model(name, obj)
        if self.hf_tokenizer is not None and "generator" in obj and self.group.is_main:
            self.g.save_pretrained(self.out / f"{Path(name).stem}-hf", self.hf_tokenizer.hf, obj["generator"],
                                   hf_run_file(self.meta))

    def kl_reference(self) -> Optional[nn.Module]:
        """G as the adversarial phase starts (the pretrained snapshot, which checkpoints
        carry), frozen: the reference policy of `--kl-coef`; None without a KL penalty."""
        if not self.config.kl_coef:
            return None
        if getattr(self, "_kl_reference", None) is None:
            reference = copy.deepcopy(self.g).requires_grad_(False)
            reference.load_state_dict(self.pretrained["generator"])
            self._kl_reference = reference.eval()
        return self._kl_reference

    def generator_spec(self, data: SequenceData) -> Optional[tuple[type, dict]]:
        """The class and arguments of a generator that the recipe itself needs (LeakGAN's), or
        None for `--generator`'s."""
        return None

    def word_vectors(self, data: SequenceData) -> Optional[Tensor]:
        """Pretrained vectors (V, d) of the vocabulary's tokens that the recipe's embeddings start
        from (ScratchGAN's `--embeddings`), or None."""
        return None

    def mle_batch_size(self) -> int:
        """Sequences per MLE batch (pretraining and the baseline)."""
        return self.config.batch_size

    def adversarial_updates(self) -> int:
        """G updates in the adversarial phase: the MLE baseline's budget."""
        raise NotImplementedError

    def eval_every_updates(self) -> int:
        """G updates between evaluations of the MLE baseline (as of the adversarial G)."""
        raise NotImplementedError

    # --- the phases every recipe of this family has -------------------------------------------------
    def mle_epoch(self, where: str) -> list[float]:
        """One shuffled epoch of MLE updates of G with its pretraining optimiser; the losses."""
        return [self.mle_step(self.g, self.g_opt, self.group.shard(batch), where)
                for batch in batches(self.train_data, self.mle_batch_size(), self.order_rng)]

    def pretrain_g(self, epoch: int) -> None:
        c = self.config
        losses = self.mle_epoch(f"pretrain G epoch {epoch}")
        self.progress["g_step"] = self.progress.get("g_step", 0) + len(losses)
        self.writer.add_scalar("losses/g_mle", float(np.mean(losses)), self.progress["g_step"])
        if self.group.is_main and (epoch % c.pretrain_eval_every == 0 or epoch == c.pretrain_epochs):
            metrics, _ = self.evaluate(self.g)
            self.record("pretrain", metrics, epoch=epoch)

    def mle_baseline(self, step: int) -> None:
        if step == 1:
            self.start_baseline()
        # shuffled epochs of full batches, as in pretraining; the place in it is checkpointed
        batch = self.mle_stream.next()
        loss = self.mle_step(self.mle, self.mle_opt, self.group.shard(batch), f"MLE baseline step {step}")
        self.writer.add_scalar("losses/mle_baseline", loss, step)
        if self.group.is_main and (step % self.eval_every_updates() == 0 or step == self.adversarial_updates()):
            metrics, _ = self.evaluate(self.mle)
            self.record(self.baseline, metrics, g_updates=step)

    def mle_step(self, g: nn.Module, opt: torch.optim.Optimizer, batch: Tensor, where: str) -> float:
        return mle_step(g, opt, batch, self.config.grad_clip, where, self.group)

    # --- evaluation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, g: nn.Module) -> tuple[dict, Tensor]:
        """Metrics of one generator, on samples drawn with the run's evaluation seed."""
        return evaluate_generator(g, self.data, self.config, self.bleu, self.eval_seed)

    def finish(self) -> dict:
        c = self.config
        results_by_model = {}
        for name, model in self.final_models():
            metrics, samples = self.evaluate(model)
            results_by_model[name] = metrics
            write_samples(self.out / f"samples_{name}.txt", samples[: c.eval_samples], self.data)
            self.writer.add_text(f"samples/final_{name}", "\n\n".join(self.data.text(s) for s in samples[:10].cpu()))
        budget = self.adversarial_updates()
        data = self.data
        return {"corpus": data.name, "preset": c.preset, "seed": c.seed,
                "generator_updates": {"pretrain_epochs": c.pretrain_epochs, "mle_baseline": budget,
                                      self.adversarial_model: budget},
                "models": results_by_model,
                "data": {**data.info, "num_train": len(data.train), "num_test": len(data.test),
                         "vocab_size": data.vocab_size}}

    def print_table(self, results: dict) -> None:
        models = results["models"]
        print(f"\n{results['corpus']} ({results['preset']} preset, seed {results['seed']}): "
              f"pretrained G, then {results['generator_updates'][self.adversarial_model]} more G updates each")
        print("\n".join(comparison_rows(models, ["pretrained", self.baseline, self.adversarial_model],
                                         ["pretrained", "MLE", self.adversarial_label],
                                         lower_is_better)))
        t = results["timings"]
        phases = ", ".join(f"{PHASE_LABELS.get(p.name, p.name)} {t.get(p.name + '_s', 0):.0f} s" for p in self.phases())
        print(f"wall time {t['total_s']:.0f} s ({phases}, eval {t['final_eval_s']:.0f} s)")


def check_positions(model: nn.Module, length: int, generator: str) -> None:
    """DataError unless the model has a position for each of a sequence's `length` tokens."""
    from seqadv.hf import model_positions

    positions = model_positions(model.config)
    if positions is not None and length > positions:
        raise DataError(f"--generator {generator}: sequences of {length} tokens (the end token included) but the "
                        f"model has {positions} positions: give --max-length {positions - 1} or less")


PHASE_LABELS = {"pretrain_g": "pretrain G", "pretrain_d": "pretrain D", "mle_baseline": "MLE baseline",
                "adversarial": "adversarial"}


@torch.no_grad()
def evaluate_generator(g: nn.Module, data: SequenceData, config: TextGANConfig, bleu: Optional[BLEU],
                       seed: int) -> tuple[dict, Tensor]:
    """NLL-test, and NLL-oracle (oracle corpus) or BLEU / Self-BLEU, on samples from `seed`."""
    device = next(g.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    metrics = {"nll_test": nll(g, data.test.to(device), eos_token=data.eos_token, pad_token=data.pad_token)}
    if data.oracle is not None:
        samples = g.sample(config.nll_oracle_samples, data.length, generator=rng)
        metrics["nll_oracle"] = nll(data.oracle, samples)
    else:
        samples = g.sample(config.eval_samples, data.length, generator=rng)
        tokens = [data.tokens(s) for s in samples.cpu()]
        for n in range(2, config.bleu_max_n + 1):
            metrics[f"bleu{n}"] = bleu.score(tokens, n)
        for n in range(2, config.bleu_max_n + 1):
            metrics[f"self_bleu{n}"] = self_bleu(tokens, n)
    return metrics, samples
