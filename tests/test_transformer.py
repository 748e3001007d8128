"""The causal Transformer policy: stepping its KV cache equals teacher forcing, it learns,
and the rollout engine gets exact rewards from it."""
import pytest
import torch
from test_rollout import exact_rewards, reward_fn, within_mc_error
from torch.testing import assert_close

from seqadv.models.transformer import TransformerGenerator
from seqadv.rl.losses import mle_loss
from seqadv.rl.rollout import RolloutEngine


@pytest.mark.parametrize("positions, tie", [("learned", True), ("rotary", False)])
def test_stepping_the_cache_equals_teacher_forcing(positions, tie):
    torch.manual_seed(0)
    g = TransformerGenerator(11, d_model=16, num_layers=2, num_heads=2, max_length=8, positions=positions,
                             tie_embeddings=tie, init_std=0.2).eval()
    targets = torch.randint(0, 11, (3, 7))
    forced = g.target_logits(targets)  # (3, 7, 11)
    state, tokens, stepped = g.initial_state(3), torch.full((3,), g.start_token), []
    for t in range(7):
        logits, state = g.step(tokens, state)
        stepped.append(logits)
        tokens = targets[:, t]
    assert_close(torch.stack(stepped, 1), forced, atol=1e-5, rtol=1e-5)
    assert state[0].shape == (3, 2, 7, 8)  # the cache grew one position per step
    with torch.no_grad():
        buffer = torch.empty(3, 11)
        logits, _ = g.step(torch.zeros(3, dtype=torch.long), g.initial_state(3), out=buffer)
        assert logits.data_ptr() == buffer.data_ptr() and torch.equal(logits, g.step(torch.zeros(3, dtype=torch.long),
                                                                                       g.initial_state(3))[0])


def test_mle_training_lowers_the_loss():
    torch.manual_seed(1)
    g = TransformerGenerator(8, d_model=16, num_layers=1, num_heads=2, max_length=6)
    data = torch.arange(6).repeat(32, 1) % 8  # 0 1 2 3 4 5: learnable
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = mle_loss(g.target_logits(data), data)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_the_engine_gets_exact_rewards_from_the_transformer():
    torch.manual_seed(2)
    g = TransformerGenerator(3, d_model=8, num_layers=2, num_heads=2, max_length=8, positions="rotary",
                             init_std=0.5).eval()
    seqs = torch.tensor([[1, 2, 0, 1, 1], [2, 2, 2, 0, 1]])
    with torch.no_grad():
        mean, var = exact_rewards(g, seqs, reward_fn, 3)
    n = 20000
    rewards = RolloutEngine(g, n).rewards(seqs, reward_fn, generator=torch.Generator().manual_seed(0))
    within_mc_error(rewards, mean, var, n)


class Concatenating:
    """The same Transformer without `into`: its steps concatenate the cache, and the engine
    stores what they appended."""

    def __init__(self, g):
        self.g, self.start_token, self.initial_state = g, g.start_token, g.initial_state

    def step(self, tokens, state):
        return self.g.step(tokens, state)


def test_steps_written_into_the_engines_cache_give_the_rewards_of_concatenating_steps():
    torch.manual_seed(3)
    g = TransformerGenerator(7, d_model=16, num_layers=2, num_heads=2, max_length=12).eval()
    seqs = g.sample(5, 11, generator=torch.Generator().manual_seed(1))
    reward = lambda s: (s % 3).float().mean(1)  # noqa: E731
    into = RolloutEngine(g, 6, block_rows=13).rewards(seqs, reward, generator=torch.Generator().manual_seed(2))
    plain = RolloutEngine(Concatenating(g), 6, block_rows=13).rewards(seqs, reward,
                                                                       generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(into, plain, rtol=0, atol=0)


def test_a_position_past_the_maximum_is_refused():
    g = TransformerGenerator(5, d_model=8, num_layers=1, num_heads=2, max_length=4)
    with pytest.raises(ValueError, match="past this model's max_length 4"):
        g.sample(2, 5)


def test_seqgan_trains_with_the_transformer_generator_and_resumes(tmp_path):
    from test_resume import toy_text

    from seqadv import SeqGANConfig, SeqGANTrainer, load

    corpus = toy_text(tmp_path / "toy.txt")
    config = dict(corpus=str(corpus), preset="tiny", generator="transformer", g_hidden_dim=16, g_heads=2,
                  g_layers=1, g_lr=3e-3, pretrain_epochs=10)
    trainer = SeqGANTrainer(SeqGANConfig(**config, out=str(tmp_path / "run")))
    results = trainer.train()
    assert isinstance(trainer.g, TransformerGenerator)
    assert results["models"]["pretrained"]["nll_test"] < 0.8 * results["history"]["pretrain"][0]["nll_test"]
    model, tokenizer = load(tmp_path / "run")
    assert isinstance(model, TransformerGenerator) and tokenizer.decode(model.sample(1, 7)[0]).startswith("w")
    # killed after the adversarial phase's second epoch, then resumed: the same end, bit for bit
    import os
    import subprocess
    import sys

    from test_resume import MODELS, SCRIPT, assert_same_tensors

    from seqadv.runtime.checkpoint import load_checkpoint

    options = [f"--{k.replace('_', '-')}={v}" for k, v in config.items()]
    env = {**os.environ, "SEQADV_CRASH_AT": "adversarial:2"}
    killed = subprocess.run([sys.executable, str(SCRIPT), *options, "--out", str(tmp_path / "again")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode < 0, killed.stderr[-2000:]
    env.pop("SEQADV_CRASH_AT")
    resumed = subprocess.run([sys.executable, str(SCRIPT), "--resume", str(tmp_path / "again")], env=env,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("run", "again"))
    for name in MODELS:
        assert_same_tensors(a[name], b[name], name)
