"""The trainers: one loop (`base.Trainer`) and the recipes on it.

    from seqadv import SeqGANConfig, SeqGANTrainer
    results = SeqGANTrainer(SeqGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()
"""
from .base import Phase, Trainer, TrainerConfig, preset_config
from .irgan import IRGANConfig, IRGANTrainer
from .maskgan import MaskGANConfig, MaskGANTrainer
from .mle import MLEConfig, MLETrainer
from .scratchgan import ScratchGANConfig, ScratchGANTrainer
from .seqgan import SeqGANConfig, SeqGANTrainer

__all__ = ["IRGANConfig", "IRGANTrainer", "MaskGANConfig", "MaskGANTrainer", "MLEConfig", "MLETrainer", "Phase", "ScratchGANConfig", "ScratchGANTrainer", "SeqGANConfig", "SeqGANTrainer", "Trainer", "TrainerConfig", "preset_config"]
