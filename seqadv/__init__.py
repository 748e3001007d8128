"""seqadv: sequence generation with adversarial reinforcement learning.

The data path, one module per step:
corpus -> tokenizer -> dataset -> generator -> discriminator -> rollout -> rewards
-> losses -> trainers -> metrics -> checkpoint.

    from seqadv import SeqGANConfig, SeqGANTrainer
    results = SeqGANTrainer(SeqGANConfig(corpus="poems", preset="tiny", out="runs/x")).train()
"""
from seqadv.core.modules import ema_update
from seqadv.core.policy import Policy
from seqadv.core.sampling import sample_from_logits
from seqadv.hf import HFGenerator
from seqadv.models.discriminator import Discriminator
from seqadv.models.generator import Generator
from seqadv.models.transformer import TransformerGenerator
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.token_rewards import token_advantages, token_rewards
from seqadv.runtime.checkpoint import load
from seqadv.trainers import (CoTConfig, CoTTrainer, DPGANConfig, DPGANTrainer, IRGANConfig, IRGANTrainer, LeakGANConfig, LeakGANTrainer, MaliGANConfig, MaliGANTrainer, MaskGANConfig, MaskGANTrainer, RankGANConfig, RankGANTrainer, RelGANConfig, RelGANTrainer, ScratchGANConfig,
                             ScratchGANTrainer, SeqGANConfig, SeqGANTrainer)

__all__ = ["Discriminator", "Generator", "HFGenerator", "CoTConfig", "CoTTrainer", "DPGANConfig", "DPGANTrainer", "IRGANConfig", "IRGANTrainer", "LeakGANConfig", "LeakGANTrainer", "MaliGANConfig", "MaliGANTrainer", "MaskGANConfig", "MaskGANTrainer", "Policy", "RankGANConfig", "RankGANTrainer", "RelGANConfig", "RelGANTrainer", "ScratchGANConfig", "ScratchGANTrainer", "RolloutEngine", "SeqGANConfig", "SeqGANTrainer", "TransformerGenerator", "ema_update", "load",
           "sample_from_logits", "token_advantages", "token_rewards"]
__version__ = "0.1.0"
