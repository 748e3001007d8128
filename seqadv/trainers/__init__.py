"""The trainers: one loop (`base.Trainer`) and the recipes on it.

    from seqadv import SeqGANConfig, SeqGANTrainer
    results = SeqGANTrainer(SeqGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()
"""
from seqadv.trainers.base import Phase, Trainer, TrainerConfig, preset_config
from seqadv.trainers.cot import CoTConfig, CoTTrainer
from seqadv.trainers.dpgan import DPGANConfig, DPGANTrainer
from seqadv.trainers.irgan import IRGANConfig, IRGANTrainer
from seqadv.trainers.leakgan import LeakGANConfig, LeakGANTrainer
from seqadv.trainers.maligan import MaliGANConfig, MaliGANTrainer
from seqadv.trainers.maskgan import MaskGANConfig, MaskGANTrainer
from seqadv.trainers.mle import MLEConfig, MLETrainer
from seqadv.trainers.rankgan import RankGANConfig, RankGANTrainer
from seqadv.trainers.relgan import RelGANConfig, RelGANTrainer
from seqadv.trainers.scratchgan import ScratchGANConfig, ScratchGANTrainer
from seqadv.trainers.seqgan import SeqGANConfig, SeqGANTrainer

__all__ = ["CoTConfig", "CoTTrainer", "DPGANConfig", "DPGANTrainer", "IRGANConfig", "IRGANTrainer", "LeakGANConfig", "LeakGANTrainer", "MaliGANConfig", "MaliGANTrainer", "MaskGANConfig", "MaskGANTrainer", "MLEConfig", "MLETrainer", "Phase", "RankGANConfig", "RankGANTrainer", "RelGANConfig", "RelGANTrainer", "ScratchGANConfig", "ScratchGANTrainer", "SeqGANConfig", "SeqGANTrainer", "Trainer", "TrainerConfig", "preset_config"]
