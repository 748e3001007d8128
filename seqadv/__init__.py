"""seqadv: sequence generation with adversarial reinforcement learning.

The data path, one module per step:
corpus -> tokenizer -> dataset -> generator -> discriminator -> rollout -> rewards
-> losses -> trainers -> metrics -> checkpoint.

    from seqadv import SeqGANConfig, SeqGANTrainer
    results = SeqGANTrainer(SeqGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()
"""
from .checkpoint import load
from .discriminator import Discriminator
from .generator import Generator
from .policy import Policy, ema_update
from .rollout import RolloutEngine
from .sampling import sample_from_logits
from .transformer import TransformerGenerator
from .trainers import (IRGANConfig, IRGANTrainer, MaskGANConfig, MaskGANTrainer, ScratchGANConfig,
                       ScratchGANTrainer, SeqGANConfig, SeqGANTrainer)

__all__ = ["Discriminator", "Generator", "IRGANConfig", "IRGANTrainer", "MaskGANConfig", "MaskGANTrainer", "Policy", "ScratchGANConfig", "ScratchGANTrainer", "RolloutEngine", "SeqGANConfig", "SeqGANTrainer", "TransformerGenerator", "ema_update", "load",
           "sample_from_logits"]
__version__ = "0.1.0"
