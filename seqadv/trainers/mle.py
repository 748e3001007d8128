"""MLE trained to its best validation NLL: the strongest plain baseline a GAN must beat.

The equal-budget MLE baselines of the GAN recipes continue from their pretrained G for
as many updates as the GAN makes; this one trains the same generator on the training
split less a held-out validation part (`validation_fraction`, drawn with the seed),
measures the validation NLL after every epoch and keeps the generator of the best
epoch, stopping once `patience` epochs in a row bring no improvement. Written as
mle_best.pt (`seqadv.load`, evaluate.py take it).

    from seqadv.trainers import MLEConfig, MLETrainer
    results = MLETrainer(MLEConfig(corpus="poems", out="runs/mle-best")).train()
"""
from __future__ import annotations

import copy
from typing import ClassVar, Optional

import torch

from seqadv.core.errors import DataError
from seqadv.data.dataset import batches
from seqadv.eval.metrics import nll
from seqadv.trainers.base import Phase, preset_config
from seqadv.trainers.text import TextGANConfig, TextGANTrainer, write_samples


@preset_config
class MLEConfig(TextGANConfig):
    out: str = "runs/mle-best"
    pretrain_epochs: int = 100  # the most MLE epochs (fewer if the validation NLL stops improving)
    validation_fraction: float = 0.05  # of the training split, held out to choose the best epoch
    patience: int = 5  # epochs without a better validation NLL before stopping

    PRESETS: ClassVar[dict] = {
        "tiny": dict(g_embedding_dim=16, g_hidden_dim=16, pretrain_epochs=4, max_train=1024, max_test=256,
                     patience=2, eval_samples=200, nll_oracle_samples=500),
        "cpu": dict(pretrain_epochs=60),  # SeqGAN's generator and batches
        "paper": dict(),
    }

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"--validation-fraction must be in (0, 1), got {self.validation_fraction}")
        if self.patience < 1:
            raise ValueError(f"--patience must be at least 1, got {self.patience}")


class MLETrainer(TextGANTrainer):
    """The generator by MLE alone, kept at its best validation NLL (single process)."""

    recipe, config_class, model_file, sweep_files = "mle", MLEConfig, "mle_best.pt", ("mle_best.pt",)
    adversarial_model = "mle_best"
    state_attributes = ("progress", "timings", "history", "best")
    best: Optional[dict] = None  # {"epoch", "nll", "generator"}: the best epoch so far

    def build(self) -> None:
        self.build_generators()
        self.hold_out_validation()

    def hold_out_validation(self) -> None:
        c = self.config
        if self.group.active:
            raise ValueError("the MLE-to-its-best run is single-process: leave out torchrun")
        # the validation part: drawn from its own stream, so the data order stream starts as SeqGAN's
        order = torch.randperm(len(self.train_data), generator=torch.Generator().manual_seed(c.seed + 3))
        held = max(1, int(len(order) * c.validation_fraction))
        self.validation = self.train_data[order[:held].to(self.train_data.device)]
        self.train_data = self.train_data[order[held:].to(self.train_data.device)]
        if len(self.train_data) < c.batch_size:
            raise DataError(f"{c.corpus}: {len(self.train_data)} training sequences once {held} are held out for "
                            f"validation (--validation-fraction {c.validation_fraction}), fewer than one batch of "
                            f"{c.batch_size}")
        self.modules = {"generator": self.g, "g_optimizer": self.g_opt}
        self.history = {"pretrain": []}
        self.say(f"MLE to its best validation NLL: {len(self.train_data)} training and {held} validation sequences")

    def phases(self) -> list[Phase]:
        return [Phase("pretrain_g", self.config.pretrain_epochs, "MLE")]

    def adversarial_updates(self) -> int:
        return 0

    def pretrain_g(self, epoch: int) -> None:
        c, data = self.config, self.data
        if self.best is not None and epoch - self.best["epoch"] > c.patience:
            return  # stopped early: the remaining epochs are skipped
        losses = [self.mle_step(self.g, self.g_opt, batch, f"MLE epoch {epoch}")
                  for batch in batches(self.train_data, c.batch_size, self.order_rng)]
        validation = nll(self.g, self.validation, eos_token=data.eos_token, pad_token=data.pad_token)
        self.writer.add_scalar("losses/g_mle", sum(losses) / len(losses), epoch)
        self.writer.add_scalar("eval/validation_nll", validation, epoch)
        self.history["pretrain"].append({"epoch": epoch, "validation_nll": validation})
        if self.best is None or validation < self.best["nll"]:
            self.best = {"epoch": epoch, "nll": validation, "generator": copy.deepcopy(self.g.state_dict())}

    def end_phase(self, phase: str) -> None:
        self.save_model("mle_best.pt", {"generator": self.best["generator"], "best_epoch": self.best["epoch"]})

    def final_models(self) -> list[tuple[str, torch.nn.Module]]:
        model = copy.deepcopy(self.g)
        model.load_state_dict(self.best["generator"])
        return [("mle_best", model)]

    def finish(self) -> dict:
        c, data = self.config, self.data
        (name, model), = self.final_models()
        metrics, samples = self.evaluate(model)
        write_samples(self.out / "samples_mle_best.txt", samples[: c.eval_samples], data)
        return {"corpus": data.name, "preset": c.preset, "seed": c.seed,
                "generator_updates": {"epochs": len(self.history["pretrain"]), "best_epoch": self.best["epoch"]},
                "best_validation_nll": self.best["nll"], "models": {name: metrics},
                "data": {**data.info, "num_train": len(self.train_data), "num_validation": len(self.validation),
                         "num_test": len(data.test), "vocab_size": data.vocab_size}}

    def print_table(self, results: dict) -> None:
        u = results["generator_updates"]
        print(f"\n{results['corpus']} ({results['preset']} preset, seed {results['seed']}): MLE, best validation NLL "
              f"{results['best_validation_nll']:.4f} at epoch {u['best_epoch']} of {u['epochs']}")
        for metric, value in results["models"]["mle_best"].items():
            print(f"{metric:<14}{value:>12.4f}")
        print(f"wall time {results['timings']['total_s']:.0f} s")
