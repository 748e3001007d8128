"""A Hugging Face causal LM as a rollout policy (`pip install -e ".[hf]"`: transformers).

    from transformers import AutoModelForCausalLM
    from seqadv import RolloutEngine
    from seqadv.hf import HFPolicy

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    rewards = RolloutEngine(HFPolicy(model), num_rollouts=8).rewards(input_ids, reward_fn)

The policy's state is the model's KV cache as the engine wants it: a tuple of every
layer's keys and values, each (batch, heads, positions, head_dim), batch first, growing
one position per step. Each step rebuilds the model's own cache object from it
(`DynamicCache`; the tuples older models take), feeds one token per row at its position
and returns the last logits and the longer cache. Given the engine's buffers (`into`),
each layer writes its new keys and values there instead of concatenating its whole cache
(transformers >= 4.56, whose caches are lists of layers; older ones concatenate). Nothing is downloaded: the model is
whatever the caller built or loaded.
"""
from __future__ import annotations

import inspect
from typing import Optional

import torch
from torch import Tensor


def _pairs(cache) -> list[tuple[Tensor, Tensor]]:
    """Every layer's (keys, values) of a model's cache, whatever its class."""
    if hasattr(cache, "layers"):  # transformers >= 4.56: DynamicCache of DynamicLayers
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):  # transformers 4.36 - 4.55
        return list(zip(cache.key_cache, cache.value_cache))
    return [(layer[0], layer[1]) for layer in cache]  # the legacy tuple of tuples


def _write_into(cache, into: tuple[Tensor, ...], position: int) -> bool:
    """Make each layer of `cache` (transformers >= 4.56: a DynamicCache of layers) write the
    step's keys and values into `into` at `position` and attend over `into`. False, and
    nothing changed, for a cache of another layout."""
    layers = getattr(cache, "layers", None)
    if layers is None or len(layers) * 2 != len(into) or not all(hasattr(layer, "keys") for layer in layers):
        return False
    for i, layer in enumerate(layers):
        keys, values = into[2 * i], into[2 * i + 1]

        def update(key_states, value_states, *args, layer=layer, keys=keys, values=values, **kwargs):
            keys[:, :, position : position + 1].copy_(key_states)
            values[:, :, position : position + 1].copy_(value_states)
            layer.keys, layer.values = keys, values
            return keys, values

        layer.update = update
    return True


class HFPolicy:
    """`seqadv.core.policy.Policy` of a causal LM with the `AutoModelForCausalLM` interface
    (`input_ids`, a KV cache, `.logits`). `start_token`: the input before position 0
    (default: the model's `bos_token_id`, else 0)."""

    def __init__(self, model: torch.nn.Module, start_token: Optional[int] = None):
        from transformers import DynamicCache

        self.model = model
        bos = getattr(model.config, "bos_token_id", None)
        vocab = model.config.vocab_size
        self.start_token = start_token if start_token is not None else (bos if bos is not None and bos < vocab else 0)
        parameters = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"  # transformers 5 renamed it
        self._dynamic_cache = DynamicCache
        device = next(model.parameters()).device
        with torch.no_grad():  # one token, to learn the cache's layout
            out = model(input_ids=torch.full((1, 1), self.start_token, device=device), use_cache=True)
        self._empty = [(k[:, :, :0], v[:, :, :0]) for k, v in _pairs(self._cache_of(out))]

    def _cache_of(self, out):
        return out["cache"] if "cache" in out else out["past_key_values"]

    def _model_cache(self, state: tuple[Tensor, ...]):
        pairs = [(state[i], state[i + 1]) for i in range(0, len(state), 2)]
        if hasattr(self._dynamic_cache, "from_legacy_cache"):
            return self._dynamic_cache.from_legacy_cache(tuple(pairs))
        return self._dynamic_cache(ddp_cache_data=pairs)

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        """An empty cache: (keys, values) of every layer, each (batch, heads, 0, head_dim)."""
        return tuple(t.expand(batch_size, *t.shape[1:]).clone() for pair in self._empty for t in pair)

    @torch.no_grad()
    def step(self, tokens: Tensor, state: tuple[Tensor, ...], into: Optional[tuple[Tensor, ...]] = None
             ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """tokens (B,) -> logits (B, V), the cache one position longer. `into`: the rollout
        engine's buffers, one position longer than `state`, whose leading positions are
        `state`: each layer writes its new keys and values there instead of concatenating
        (copying) its whole cache, as `TransformerGenerator` does."""
        position = state[0].shape[2]
        kwargs = {"input_ids": tokens.unsqueeze(1), "use_cache": True,
                  "position_ids": torch.full((len(tokens), 1), position, device=tokens.device)}
        cache = None
        if position:
            cache = self._model_cache(state)
            if into is not None and not _write_into(cache, into, position):
                into = None  # a cache of another layout: the model concatenates, as without buffers
            kwargs[self._cache_arg] = cache
        out = self.model(**kwargs)
        if into is not None and position:
            return out["logits"][:, -1], into
        new = tuple(t for pair in _pairs(self._cache_of(out)) for t in pair)
        return out["logits"][:, -1], new
