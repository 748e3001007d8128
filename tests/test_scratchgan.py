"""The ScratchGAN-style recipe and SeqGAN's options beyond the paper: the pieces against
hand computations, and training that does what the paper says it does."""
import math

import pytest
import torch
from torch.testing import assert_close

from seqadv import ScratchGANConfig, ScratchGANTrainer, SeqGANConfig, SeqGANTrainer
from seqadv.checkpoint import load_checkpoint
from seqadv.discriminator import PrefixDiscriminator
from seqadv.generator import Generator
from seqadv.losses import prefix_discriminator_loss, token_log_probs
from seqadv.rewards import discounted_returns, prefix_rewards
from seqadv.trainers.scratchgan import dense_policy_gradient_step
from seqadv.trainers.seqgan import baseline, policy_gradient_step
from test_resume import assert_same_tensors


def test_the_prefix_discriminator_reads_left_to_right_and_ignores_what_follows_the_end():
    torch.manual_seed(0)
    d = PrefixDiscriminator(12, 8, 16, eos_token=1, pad_token=0).eval()
    x = torch.tensor([[3, 4, 5, 6, 7, 8], [9, 10, 1, 0, 0, 0]])
    y = x.clone()
    y[0, 3] = 11  # a later token changes no earlier prefix's logit
    logits, changed = d(x), d(y)
    assert_close(changed[0, :3], logits[0, :3])
    assert not torch.allclose(changed[0, 3:], logits[0, 3:])
    assert_close(logits[1, 3:], torch.zeros(3))  # past the end token: not text
    assert (logits[1, :3] != 0).all()


def test_dense_rewards_returns_and_the_discriminator_loss_against_hand_computations():
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, 0.5, 3.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    r = prefix_rewards(logits, mask)
    expected = (2 * torch.sigmoid(logits) - 1) * mask
    assert_close(r, expected)
    returns = discounted_returns(r, 0.23, mask)
    assert_close(returns[1, 0], r[1, 0] + 0.23 * r[1, 1] + 0.23 ** 2 * r[1, 2])
    assert_close(returns[0, 2], torch.tensor(0.0))
    fake = torch.tensor([[-2.0, 0.0, 5.0]])
    fake_mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss = prefix_discriminator_loss(logits, fake, mask, fake_mask)
    real_terms = [math.log1p(math.exp(-v)) for v, m in zip(logits.flatten().tolist(), mask.flatten().tolist()) if m]
    fake_terms = [math.log1p(math.exp(v)) for v in (-2.0, 0.0)]
    assert loss.item() == pytest.approx(0.5 * sum(real_terms) / 5 + 0.5 * sum(fake_terms) / 2, rel=1e-6)


def test_the_baselines_of_the_rollout_rewards():
    rewards = torch.tensor([[1.0, 0.2], [0.0, 0.4], [0.5, 0.9]])
    assert_close(baseline(rewards, "none"), torch.zeros(3, 2))
    assert_close(baseline(rewards, "mean"), rewards.mean(0).expand(3, 2))
    loo = torch.stack([(rewards.sum(0) - rewards[i]) / 2 for i in range(3)])
    assert_close(baseline(rewards, "loo"), loo)


class TokenLover(torch.nn.Module):
    """A per-prefix "discriminator" that finds a prefix real when it ends in `token`."""

    def __init__(self, token):
        super().__init__()
        self.token = token
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        return torch.where(tokens == self.token, 4.0, -4.0)


def test_dense_rewards_teach_the_generator_what_the_discriminator_likes():
    torch.manual_seed(0)
    g = Generator(6, 8, 16, start_token=0)
    opt = torch.optim.Adam(g.parameters(), lr=0.02, betas=(0.5, 0.999))
    d = TokenLover(3)
    rng = torch.Generator().manual_seed(1)
    share = lambda: (g.sample(512, 5, generator=rng) == 3).float().mean().item()  # noqa: E731
    before, running = share(), 0.0
    for step in range(60):
        samples = g.sample(128, 5, generator=rng)
        _, mean_return, running = dense_policy_gradient_step(g, opt, d, samples, running, 0.23, 0.08, 5.0, "test")
    assert before < 0.3 and share() > 0.8, (before, share())
    # the baseline follows the returns: mostly this batch's mean (decay 0.08)
    assert running == pytest.approx(0.08 * running + 0.92 * mean_return, abs=0.1)


def test_cold_samples_are_importance_weighted_in_the_policy_gradient():
    torch.manual_seed(0)
    g = Generator(5, 4, 8, start_token=0)
    rollout_policy = Generator(5, 4, 8, start_token=0)
    samples = g.sample(16, 4, temperature=0.5, generator=torch.Generator().manual_seed(0))
    rewards = torch.rand(16, 4, generator=torch.Generator().manual_seed(1))
    logits = g.target_logits(samples).detach()
    weight = (token_log_probs(logits, samples) - token_log_probs(logits / 0.5, samples)).exp().clamp(max=5.0)
    expected = -(token_log_probs(logits, samples) * rewards * weight).mean()
    loss = policy_gradient_step(g, torch.optim.SGD(g.parameters(), lr=0.0), rollout_policy, samples, rewards, 0.0,
                                0.8, "test", sample_temperature=0.5, importance_clip=5.0)
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    plain = policy_gradient_step(g, torch.optim.SGD(g.parameters(), lr=0.0), rollout_policy, samples, rewards, 0.0,
                                 0.8, "test")
    assert plain == pytest.approx(-(token_log_probs(logits, samples) * rewards).mean().item(), rel=1e-5)
    assert abs(plain - loss) > 1e-3


@pytest.fixture(scope="module")
def scratchgan_run(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("scratchgan")
    trainer = ScratchGANTrainer(ScratchGANConfig(corpus=str(toy), preset="tiny", out=str(out), adv_steps=40,
                                                 eval_every=20, d_lr=3e-3))
    return trainer, trainer.train(), out


def test_scratchgan_trains_a_discriminator_of_prefixes_and_writes_its_models(scratchgan_run):
    trainer, results, out = scratchgan_run
    data = trainer.data
    assert set(results["models"]) == {"pretrained", "mle", "scratchgan"}
    assert results["generator_updates"] == {"pretrain_epochs": 2, "mle_baseline": 40, "scratchgan": 40}
    for name in ("pretrained.pt", "mle.pt", "scratchgan.pt"):
        assert (out / name).is_file()
    # D on held-out real text against fresh samples of the final G: real prefixes score higher
    fake = trainer.g.sample(len(data.test), data.length, generator=torch.Generator().manual_seed(5))
    d = trainer.d.eval()
    with torch.no_grad():
        real_p = torch.sigmoid(d(data.test))[:, :3].mean().item()
        fake_p = torch.sigmoid(d(fake))[:, :3].mean().item()
    assert real_p > fake_p + 0.05, (real_p, fake_p)
    # the adversarial phase moved G away from the pretrained one
    pretrained = load_checkpoint(out / "pretrained.pt")["generator"]
    assert any(not torch.equal(pretrained[k], v) for k, v in trainer.g.state_dict().items())


def test_scratchgan_and_seqgan_start_from_the_same_pretrained_generator(toy, tmp_path):
    common = dict(corpus=str(toy), preset="tiny", adv_steps=0, d_pretrain_steps=0)
    ScratchGANTrainer(ScratchGANConfig(**common, out=str(tmp_path / "scratch"))).train()
    SeqGANTrainer(SeqGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path / "seqgan"), adv_epochs=0,
                               d_pretrain_rounds=0)).train()
    assert_same_tensors(load_checkpoint(tmp_path / "scratch" / "pretrained.pt")["generator"],
                        load_checkpoint(tmp_path / "seqgan" / "pretrained.pt")["generator"])


def test_a_run_can_start_from_another_runs_pretrained_generator_and_optimiser(toy, tmp_path):
    from seqadv.corpus import DataError

    SeqGANTrainer(SeqGANConfig(corpus=str(toy), preset="tiny", out=str(tmp_path / "seqgan"), adv_epochs=0,
                               d_pretrain_rounds=0)).train()
    state = load_checkpoint(tmp_path / "seqgan" / "checkpoint.pt")
    # the run's last checkpoint came at its last pretraining epoch: G and its optimiser there are the pretrained ones
    assert (state["progress"]["phase"], state["progress"]["done"], state["pretrained"]) == ("pretrain_g", 2, None)
    source = {"generator": state["generator"], "optimizer": state["g_optimizer"]}
    common = dict(corpus=str(toy), preset="tiny", adv_steps=2, d_pretrain_steps=0, init_from=str(tmp_path / "seqgan"))
    trainer = ScratchGANTrainer(ScratchGANConfig(**common, out=str(tmp_path / "scratch")))
    results = trainer.train()
    # no pretraining here: the other run's G and its Adam state, bit for bit, are this run's pretrained ones
    assert results["generator_updates"]["pretrain_epochs"] == 0 and results["config"]["pretrain_epochs"] == 0
    assert_same_tensors(load_checkpoint(tmp_path / "scratch" / "pretrained.pt")["generator"], source["generator"])
    assert_same_tensors(trainer.pretrained["optimizer"]["state"], source["optimizer"]["state"])
    with pytest.raises(ValueError, match="--init-from .* drop --pretrain-epochs"):
        ScratchGANConfig(**common, pretrain_epochs=3)
    with pytest.raises(DataError, match="its model differs"):
        ScratchGANTrainer(ScratchGANConfig(**common, g_hidden_dim=8, out=str(tmp_path / "other"))).train()
    with pytest.raises(DataError, match="no checkpoint.pt there"):
        ScratchGANTrainer(ScratchGANConfig(**{**common, "init_from": str(tmp_path)}, out=str(tmp_path / "none"))).train()


def test_seqgan_with_its_options_trains_and_differs_from_the_paper_recipe(toy, tmp_path):
    common = dict(corpus=str(toy), preset="tiny", adv_epochs=2)
    plain = SeqGANTrainer(SeqGANConfig(**common, out=str(tmp_path / "plain")))
    plain.train()
    options = SeqGANTrainer(SeqGANConfig(**common, out=str(tmp_path / "options"), pg_baseline="loo",
                                         sample_temperature=0.8, rollout_temperature=0.9, importance_weight="prefix",
                                         importance_clip=0.0, importance_normalize=True))
    results = options.train()
    assert results["generator_updates"]["seqgan"] == 2
    assert options.engine.temperature == 0.9
    assert results["config"]["importance_weight"] == "prefix" and results["config"]["importance_normalize"] is True
    # the same pretrained G, then other updates
    assert_same_tensors(load_checkpoint(tmp_path / "plain" / "pretrained.pt")["generator"],
                        load_checkpoint(tmp_path / "options" / "pretrained.pt")["generator"])
    assert any(not torch.equal(a, b) for a, b in zip(plain.g.state_dict().values(), options.g.state_dict().values()))


def test_bad_options_of_the_new_recipes_are_one_line():
    with pytest.raises(ValueError, match="--discount"):
        ScratchGANConfig(discount=1.5)
    with pytest.raises(ValueError, match="--sample-temperature"):
        SeqGANConfig(sample_temperature=0.0)


def test_mle_to_its_best_validation_nll_keeps_the_best_epoch_and_stops_when_it_stops_improving(toy, tmp_path):
    from seqadv.trainers import MLEConfig, MLETrainer

    trainer = MLETrainer(MLEConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), pretrain_epochs=40, patience=2,
                                   g_lr=0.05))
    results = trainer.train()
    curve = [h["validation_nll"] for h in results["history"]["pretrain"]]
    best = results["generator_updates"]["best_epoch"]
    assert results["best_validation_nll"] == min(curve) == curve[best - 1]
    # stopped `patience` epochs after the best one, well before 40 (this learning rate overfits the toy corpus)
    assert len(curve) == best + 2 < 40, curve
    saved = load_checkpoint(tmp_path / "mle_best.pt")
    assert saved["best_epoch"] == best
    model = trainer.final_models()[0][1]
    data = trainer.data
    from seqadv.metrics import nll
    assert nll(model, trainer.validation, eos_token=data.eos_token, pad_token=data.pad_token) == pytest.approx(min(curve))
    assert len(trainer.validation) + len(trainer.train_data) == len(data.train)
