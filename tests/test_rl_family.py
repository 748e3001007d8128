"""The RL text-GAN family on SeqGAN's loop (MaliGAN, RankGAN): each recipe's credit against
its formula, and training that moves G toward what its reward prefers."""
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from seqadv import MaliGANConfig, MaliGANTrainer
from seqadv.models.generator import Generator
from seqadv.rl.advantages import maligan_weights
from seqadv.rl.rollout import RolloutEngine
from seqadv.trainers.maligan import maligan_rewards


def test_maligan_weights_are_the_papers_and_texygens():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, 3, generator=gen, dtype=torch.float64) * 3
    d = torch.sigmoid(logits)
    r = d / (1 - d)  # the paper's D / (1 - D), normalised over the batch, less the mean weight 1/B
    assert_close(maligan_weights(logits, "paper"), r / r.sum(dim=0) - 1 / 16)
    assert_close(maligan_weights(logits, "texygen"), d / d.sum(dim=0) - (d / d.sum(dim=0)).mean(dim=0))
    # exact where D is 1 in float32 (logit 40): the weight is a softmax, no division by 1 - D
    w = maligan_weights(torch.tensor([40.0, 0.0, -3.0]))
    assert torch.isfinite(w).all() and w[0] > 0.66 - 1e-6 and abs(float(w.sum())) < 1e-6
    with pytest.raises(ValueError, match="choose one of paper, texygen"):
        maligan_weights(logits, "seqgan")


class FirstToken(nn.Module):
    """A discriminator that reads the first token only: every completion of a prefix scores
    as the sample itself."""

    def __init__(self, vocab):
        super().__init__()
        self.table = nn.Parameter(torch.randn(vocab, generator=torch.Generator().manual_seed(1)) * 2)

    def forward(self, sequences):
        return self.table[sequences[:, 0]]


def test_maligan_mc_credit_normalises_over_the_batch_for_each_prefix_length_and_rollout():
    """With a D of the first token alone, each completion's weight is its sample's: every
    column's credit is the last column's (the basic algorithm's), which holds only if the
    weights are normalised across the batch within each (prefix length, rollout) group; and
    it is not what normalising each prefix's own completions gives (all zero)."""
    torch.manual_seed(0)
    g = Generator(6, 8, 8, start_token=0)
    d = FirstToken(6)
    samples = g.sample(12, 5, generator=torch.Generator().manual_seed(2))
    engine = RolloutEngine(g, 7)
    with torch.no_grad():
        logits = engine.rewards(samples, d, generator=torch.Generator().manual_seed(3), per_completion=True)
    rewards, all_rewards = maligan_rewards(logits)
    assert rewards.shape == (12, 5) and torch.equal(rewards, all_rewards)
    basic = maligan_weights(d(samples).detach())
    assert_close(rewards, basic[:, None].expand(12, 5))
    assert basic.abs().max() > 0.01


class Favourite(nn.Module):
    """A fixed discriminator that prefers sequences holding more of one token (never trained:
    `d_rounds` 0); its parameter only gives D's optimiser something to hold."""

    def __init__(self, token: int, scale: float = 6.0):
        super().__init__()
        self.token, self.scale = token, scale
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, sequences):
        return self.scale * (sequences == self.token).float().mean(dim=1) + 0 * self.unused


@pytest.mark.parametrize("credit", ["mc", "sequence"])
def test_maligan_moves_g_toward_what_d_prefers(toy, tmp_path, credit):
    """Pretrained G, then MaliGAN's updates against a D that likes one token: G's samples hold
    more of it (a sign error or an unnormalised weight would not), and NLL stays finite."""
    config = MaliGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=4, d_pretrain_rounds=0,
                           d_rounds=0, adv_epochs=12, eval_every=12, credit=credit)
    favourite = {}

    def build_d(data):
        favourite["id"] = data.vocab.stoi["w3"]
        return Favourite(favourite["id"])

    trainer = MaliGANTrainer(config, discriminator=build_d)
    results = trainer.train()

    def share(g):
        samples = g.sample(2000, trainer.data.length, generator=torch.Generator().manual_seed(7))
        return (samples == favourite["id"]).float().mean().item()

    before, after = share(trainer.mle), share(trainer.g)  # the baseline moved by MLE only, as much
    assert after > before + 0.02, (before, after)
    assert math.isfinite(results["models"]["maligan"]["nll_test"])
