"""DPGAN: its credit and its discriminator's loss against their formulas, the language-model
discriminator rewarding real text above G's after its rounds, and training that moves G toward
what the discriminator finds novel."""
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from seqadv import DPGANConfig, DPGANTrainer
from seqadv.core.modules import eval_mode
from seqadv.models.generator import Generator
from seqadv.rl.advantages import dpgan_rewards, dpgan_teacher_weights, sentence_rewards
from seqadv.rl.losses import dpgan_discriminator_loss, token_log_probs
from seqadv.runtime.checkpoint import load_checkpoint


def test_the_credit_is_the_sentence_reward_times_the_word_return_over_the_text():
    r = torch.tensor([[1.0, 2.0, 3.0, 4.0], [20.0, 0.5, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])  # the second text ends at its 2nd token
    r_s = torch.tensor([2.5, 10.25])
    assert_close(sentence_rewards(r, mask), r_s)
    expected = torch.tensor([[10.0, 9.0, 7.0, 4.0], [20.5, 0.5, 0.0, 0.0]]) * r_s[:, None]
    assert_close(dpgan_rewards(r, mask, "paper"), expected)
    # discounted: token t's return counts token s at discount^(s - t)
    g = 0.5
    returns = torch.tensor([[1 + g * 2 + g * g * 3 + g ** 3 * 4, 2 + g * 3 + g * g * 4, 3 + g * 4, 4.0],
                            [20 + g * 0.5, 0.5, 0.0, 0.0]])
    assert_close(dpgan_rewards(r, mask, "paper", discount=g), returns * r_s[:, None])
    # the official code's: each word's own reward, clipped at 12, nothing after the end
    assert_close(dpgan_rewards(r, mask, "word"), torch.tensor([[1.0, 2.0, 3.0, 4.0], [12.0, 0.5, 0.0, 0.0]]))
    # ... and at its scale, for its whole update
    assert_close(dpgan_rewards(r, mask, "official"), torch.tensor([[1e-4, 2e-4, 3e-4, 4e-4], [12e-4, 0.5e-4, 0.0, 0.0]]))
    # its teacher-forcing step's weights of real tokens: r / 10, and 1 above 12
    assert_close(dpgan_teacher_weights(r, mask), torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 0.05, 0.0, 0.0]]))
    assert_close(dpgan_teacher_weights(torch.tensor([[12.0, 12.5]]), torch.ones(1, 2)), torch.tensor([[1.2, 1.0]]))
    with pytest.raises(ValueError, match="choose one of paper, word, official"):
        dpgan_rewards(r, mask, "sentence")


def test_the_discriminators_loss_learns_gs_text_and_unlearns_the_real_text():
    nll = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    assert_close(dpgan_discriminator_loss(nll, labels, 1.0), torch.tensor((2 + 8 + 16) / 3 - (1 + 4) / 2))
    assert_close(dpgan_discriminator_loss(nll, labels), torch.tensor((2 + 8 + 16) / 3 - 1e-4 * (1 + 4) / 2))
    assert_close(dpgan_discriminator_loss(nll, labels, 0.0), torch.tensor((2 + 8 + 16) / 3))
    assert_close(dpgan_discriminator_loss(nll[labels == 1], labels[labels == 1], 1.0), torch.tensor(-2.5))


def test_the_rewards_are_ds_cross_entropy_of_each_token_up_to_the_end_and_carry_no_gradient(toy, tmp_path):
    config = DPGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=1, d_pretrain_rounds=0,
                         adv_epochs=0, reward="paper")
    trainer = DPGANTrainer(config)
    trainer.train()
    data = trainer.data
    samples = trainer.g.sample(16, data.length, generator=torch.Generator().manual_seed(3))
    ends = (samples == data.eos_token).any(dim=1)
    assert ends.any() and not ends.all()  # some texts end early: the masks matter here
    rewards, all_rewards = trainer.generator_rewards(samples, "test")
    assert not rewards.requires_grad
    assert_close(all_rewards, rewards)
    with torch.no_grad():
        nll = -token_log_probs(trainer.d.target_logits(samples), samples)
    ended = ((samples == data.eos_token).cumsum(dim=1) - (samples == data.eos_token).long()) > 0
    nll = nll.masked_fill(ended, 0.0)
    lengths = (~ended).sum(dim=1, keepdim=True)
    expected = nll.sum(dim=1, keepdim=True) / lengths * nll.flip(1).cumsum(1).flip(1)
    assert_close(rewards, expected)
    assert (rewards[ended] == 0).all() and (rewards[~ended] > 0).all()


class Surprised(nn.Module):
    """A fixed language-model discriminator that finds one token improbable (probability about
    e^-scale / V), every other token uniform: the token's cross-entropy, its reward, is high.
    Never trained (`d_rounds` 0); its parameter only gives D's optimiser something to hold."""

    def __init__(self, vocab: int, token: int, scale: float = 6.0):
        super().__init__()
        self.vocab, self.token, self.scale = vocab, token, scale
        self.unused = nn.Parameter(torch.zeros(1))

    def target_logits(self, tokens):
        logits = torch.zeros(*tokens.shape, self.vocab) + 0 * self.unused
        logits[..., self.token] = -self.scale
        return logits


@pytest.mark.parametrize("reward", ["paper", "word", "official"])
def test_g_moves_toward_what_the_discriminator_finds_novel(toy, tmp_path, reward):
    """Pretrained G, then DPGAN's updates against a language model that finds one token
    surprising (never trained): G's samples hold more of it than the MLE baseline's of the same
    number of updates (a sign error, or credit that ignored D, would not), and NLL stays finite.
    With the official update the move comes from its teacher-forcing step, which weighs the real
    text's surprising token most (its policy-gradient step is 1e-4 of that)."""
    config = DPGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=4, d_pretrain_rounds=0,
                         d_rounds=0, adv_epochs=12, eval_every=12, reward=reward)
    favourite = {}

    def build_d(data):
        favourite["id"] = data.vocab.stoi["w3"]
        return Surprised(data.vocab_size, favourite["id"])

    trainer = DPGANTrainer(config, discriminator=build_d)
    results = trainer.train()

    def share(g):
        samples = g.sample(2000, trainer.data.length, generator=torch.Generator().manual_seed(7))
        return (samples == favourite["id"]).float().mean().item()

    before, after = share(trainer.mle), share(trainer.g)
    assert after > before + 0.02, (before, after)
    assert math.isfinite(results["models"]["dpgan"]["nll_test"])
    assert results["history"]["dpgan"][-1]["sentence_reward"] > 0


def trained_dpgan(toy, tmp_path, **options):
    config = DPGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), d_epochs=2, adv_epochs=0, **options)
    trainer = DPGANTrainer(config)
    trainer.train()
    return trainer


def sentence_nll(trainer, d, tokens):
    """D's mean sentence-level cross-entropy R(y) of the rows of `tokens`."""
    trainer.d = d
    with torch.no_grad(), eval_mode(d):
        return float(sentence_rewards(*trainer.word_rewards(tokens)).mean())


def untrained_d(data):
    return Generator(data.vocab_size, 16, 16, start_token=data.start_token, eos_token=data.eos_token,
                     pad_token=data.pad_token)


@pytest.mark.parametrize("real_weight", [1e-4, 1.0])
def test_the_discriminators_rounds_make_it_reward_real_text_above_gs(toy, tmp_path, real_weight):
    """DPGAN's language model after its pretraining rounds against a pretrained G, with the
    official code's weights and TextGAN-PyTorch's: its sentence-level reward (cross-entropy)
    of held-out real sentences is above that of fresh samples from G (which it has learnt), by
    far more than an untrained one's."""
    trainer = trained_dpgan(toy, tmp_path, pretrain_epochs=4, d_pretrain_rounds=6, d_real_weight=real_weight)
    data, trained = trainer.data, trainer.d
    fake = trainer.g.sample(len(data.test), data.length, generator=torch.Generator().manual_seed(5))

    def gap(d):
        return sentence_nll(trainer, d, data.test) - sentence_nll(trainer, d, fake)

    before, after = gap(untrained_d(data)), gap(trained)
    assert after > 0.1 and after > 5 * abs(before), (before, after)


def test_the_official_codes_discriminator_becomes_a_model_of_gs_text(toy, tmp_path):
    """With `d_real_weight` 0 (the official code in effect: MLE on G's text alone), D's cross-entropy
    of fresh samples from G falls from an untrained D's to near G's own (D has G's sizes): it
    rewards what G does not usually write, real or not."""
    trainer = trained_dpgan(toy, tmp_path, pretrain_epochs=4, d_pretrain_rounds=6, d_real_weight=0.0)
    data, trained = trainer.data, trainer.d
    fake = trainer.g.sample(len(data.test) * 10, data.length, generator=torch.Generator().manual_seed(5))
    before, after = sentence_nll(trainer, untrained_d(data), fake), sentence_nll(trainer, trained, fake)
    with torch.no_grad():
        own = float(sentence_rewards(-token_log_probs(trainer.g.target_logits(fake), fake),
                                     trainer.word_rewards(fake)[1]).mean())
    assert after < before - 0.2 and abs(after - own) < 0.15, (before, after, own)


def test_textgan_pytorchs_weight_has_no_minimum_and_the_official_one_keeps_d_near_gs_text(toy, tmp_path):
    """With `d_real_weight` 1 D's loss has no minimum: its NLL of real text keeps growing, round
    after round (why it is not the default). With the official code's 1e-4, D's NLL of real
    text stays near G's own NLL of it (D is a model of G's text)."""
    nll = {}
    for weight in (1.0, 1e-4):
        for rounds in (4, 12):
            trainer = trained_dpgan(toy, tmp_path / f"{weight}-{rounds}", pretrain_epochs=4, d_pretrain_rounds=rounds,
                                    d_real_weight=weight)
            nll[weight, rounds] = sentence_nll(trainer, trainer.d, trainer.data.test)
    with torch.no_grad():
        data = trainer.data
        own = float(sentence_rewards(-token_log_probs(trainer.g.target_logits(data.test), data.test),
                                     trainer.word_rewards(data.test)[1]).mean())
    assert nll[1.0, 12] > 2 * nll[1.0, 4] > 4 * own, (nll, own)
    assert abs(nll[1e-4, 4] - own) < 0.3 and abs(nll[1e-4, 12] - own) < 0.3, (nll, own)


def test_options_that_do_not_apply_are_refused_from_python_too(tmp_path):
    with pytest.raises(ValueError, match="--num-rollouts: does not apply to DPGAN"):
        DPGANConfig(preset="tiny", out=str(tmp_path), num_rollouts=8)
    with pytest.raises(ValueError, match="--reward sentence: choose one of paper, word, official"):
        DPGANConfig(preset="tiny", out=str(tmp_path), reward="sentence")


def test_the_official_update_takes_two_g_steps_and_the_baseline_as_many(toy, tmp_path):
    """The official code's G step is a policy-gradient update and a teacher-forcing update on
    real text, both with G's adversarial optimiser: the MLE baseline's budget counts both, and
    the teacher-forcing loss is G's weighted NLL of real text (finite, positive, recorded)."""
    config = DPGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=2, d_pretrain_rounds=1,
                         adv_epochs=3, eval_every=3)  # the default: the official code's step
    trainer = DPGANTrainer(config)
    results = trainer.train()
    assert trainer.g_adv_opt.state[next(trainer.g.parameters())]["step"] == 2 * 3 * config.g_steps
    assert results["history"]["mle"][-1]["g_updates"] == results["history"]["dpgan"][-1]["g_updates"] == 6 * config.g_steps
    assert 0 < results["history"]["dpgan"][-1]["g_teacher_forcing"] < 10


def test_no_rollout_machinery_is_built_or_checkpointed(toy, tmp_path, capsys):
    """DPGAN's language model scores every prefix itself: the trainer holds no rollout engine
    or rollout policy, its checkpoint none, and the printed split names rewards, not rollouts."""
    config = DPGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=1, d_pretrain_rounds=1,
                         adv_epochs=1, eval_every=1)
    trainer = DPGANTrainer(config)
    trainer.train()
    assert trainer.rollout_policy is None and not hasattr(trainer, "engine")
    assert "rollout_policy" not in load_checkpoint(tmp_path / "checkpoint.pt")
    split = [line for line in capsys.readouterr().out.splitlines() if line.startswith("one adversarial epoch")]
    assert len(split) == 1 and ": rewards " in split[0] and "rollout" not in split[0], split
