"""The Hugging Face adapter: a tiny causal LM built from a config (random weights, nothing
downloaded) gets the engine's exact rewards, and matches the naive per-prefix loop."""
import math
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from test_rollout import exact_rewards, reward_fn, within_mc_error  # noqa: E402

from seqadv.hf import HFPolicy
from seqadv.rl.rollout import RolloutEngine
from seqadv.rl.rollout_reference import naive_rollout_rewards


def tiny_gpt2(vocab=3, seed=0):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=vocab, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                     bos_token_id=0, eos_token_id=vocab - 1, initializer_range=0.5)
    return transformers.GPT2LMHeadModel(config).eval()


def tiny_llama(vocab=3, seed=0):
    """Llama-style: rotary positions, RMSNorm, SwiGLU, grouped-query attention (2 heads, 1 key/value head)."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16,
                                      bos_token_id=0, eos_token_id=vocab - 1, initializer_range=0.5)
    return transformers.LlamaForCausalLM(config).eval()


MODELS = {"gpt2": tiny_gpt2, "llama": tiny_llama}


@pytest.mark.parametrize("arch", MODELS)
def test_stepping_the_adapter_equals_the_models_own_forward(arch):
    model = MODELS[arch](vocab=11)
    policy = HFPolicy(model)
    heads = model.config.num_key_value_heads if arch == "llama" else model.config.n_head
    inputs = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(input_ids=torch.cat([torch.zeros(3, 1, dtype=torch.long), inputs[:, :-1]], 1)).logits
    state, tokens = policy.initial_state(3), torch.zeros(3, dtype=torch.long)
    for t in range(6):
        logits, state = policy.step(tokens, state)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-5)
        tokens = inputs[:, t]
    assert state[0].shape[:3] == (3, heads, 6)


@pytest.mark.parametrize("arch", MODELS)
def test_a_tiny_hf_model_gets_exact_rollout_rewards(arch):
    policy = HFPolicy(MODELS[arch]())
    seqs = torch.tensor([[1, 2, 0, 1], [2, 2, 1, 0]])
    mean, var = exact_rewards(policy, seqs, reward_fn, 3)
    n = 4000
    rewards = RolloutEngine(policy, n).rewards(seqs, reward_fn, generator=torch.Generator().manual_seed(0))
    within_mc_error(rewards, mean, var, n)


def test_the_adapter_matches_the_naive_per_prefix_loop():
    policy = HFPolicy(tiny_gpt2(vocab=20, seed=1))
    seqs = torch.randint(0, 20, (3, 5), generator=torch.Generator().manual_seed(1))
    reward = lambda s: (s < 7).float().mean(1)  # noqa: E731
    fast = RolloutEngine(policy, 2000).rewards(seqs, reward, generator=torch.Generator().manual_seed(1))
    slow = naive_rollout_rewards(policy, seqs, reward, 100, generator=torch.Generator().manual_seed(2))
    assert (fast - slow).abs().max().item() < 5 * math.sqrt(0.25 / 2000 + 0.25 / 100)


@pytest.mark.parametrize("arch", MODELS)
def test_a_step_into_the_engines_buffers_equals_the_plain_step(arch):
    """With `into`, each layer writes its new keys and values into the engine's buffers
    (no concatenation), with `out` the logits go into the engine's buffer; the logits and the
    cache are those of the plain step, and the state given is left as it was."""
    policy = HFPolicy(MODELS[arch](vocab=11))
    assert policy._cache is not None and policy._head is not None  # the reused cache, the output layer run here
    state, tokens = policy.initial_state(3), torch.zeros(3, dtype=torch.long)
    for t in range(5):
        kept = tuple(s.clone() for s in state)
        logits, new = policy.step(tokens, state)
        if t:
            into = tuple(torch.cat([s, torch.full_like(s[:, :, :1], float("nan"))], 2) for s in state)
            out = torch.full_like(logits, float("nan"))
            into_logits, written = policy.step(tokens, state, into=into, out=out)
            assert written is into and into_logits is out and torch.equal(into_logits, logits)
            assert all(torch.equal(a, b) for a, b in zip(written, new))
        assert all(torch.equal(a, b) for a, b in zip(state, kept))
        state, tokens = new, torch.randint(0, 11, (3,), generator=torch.Generator().manual_seed(t))
    engine = RolloutEngine(policy, 2)
    assert engine._step_takes_into and engine._step_takes_out


def test_a_model_whose_logits_are_not_its_output_layer_runs_its_whole_forward():
    """Logits scaled after the output layer (as some models do): the policy finds that the body
    and output layer alone do not give them and steps through the model's own forward."""
    class Scaled(transformers.GPT2LMHeadModel):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out["logits"] = out["logits"] * 0.5
            return out

    model = tiny_gpt2(vocab=11)
    scaled = Scaled(model.config).eval()
    scaled.load_state_dict(model.state_dict())
    policy = HFPolicy(scaled)
    assert policy._head is None
    state, tokens = policy.initial_state(2), torch.tensor([0, 3])
    with torch.no_grad():
        full = scaled(input_ids=tokens[:, None]).logits[:, -1]
    logits, _ = policy.step(tokens, state, out=torch.empty(2, 11))
    torch.testing.assert_close(logits, full, atol=1e-6, rtol=1e-6)
