"""A Hugging Face causal LM as a rollout policy (`pip install -e ".[hf]"`: transformers).

    from transformers import AutoModelForCausalLM
    from seqadv import RolloutEngine
    from seqadv.hf import HFPolicy

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    rewards = RolloutEngine(HFPolicy(model), num_rollouts=8).rewards(input_ids, reward_fn)

The policy's state is the model's KV cache as the engine wants it: a tuple of every
layer's keys and values, each (batch, heads, positions, head_dim), batch first, growing
one position per step. On transformers >= 4.56 (caches that are lists of layers) the
policy builds one cache object when it is made and reuses it at every step: its layers
hold the state's tensors as they are (no copy) and, given the rollout engine's
preallocated buffers (`into`), write the step's keys and values there, so nothing of the
cache is copied or rebuilt per step. A step feeds one token per row at its position (one
position tensor for all rows) with no attention mask: one query attending to every cached
position needs none (`sdpa` then runs unmasked). Where the model's logits are its output
layer applied to the last hidden state (checked when the policy is made: GPT-2, Llama and
most causal LMs), the step runs the model's body and writes the logits into the engine's
logits buffer (`out`). Older transformers get the cache rebuilt each step (`DynamicCache`;
the tuples older models take) and the model's whole forward. Nothing is downloaded: the
model is whatever the caller built or loaded.
"""
from __future__ import annotations

import inspect
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from seqadv.core.registry import register_model
from seqadv.models.generator import LanguageModel


def _pairs(cache) -> list[tuple[Tensor, Tensor]]:
    """Every layer's (keys, values) of a model's cache, whatever its class."""
    if hasattr(cache, "layers"):  # transformers >= 4.56: DynamicCache of DynamicLayers
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):  # transformers 4.36 - 4.55
        return list(zip(cache.key_cache, cache.value_cache))
    return [(layer[0], layer[1]) for layer in cache]  # the legacy tuple of tuples


_ENGINE_LAYER = None


def _engine_layer():
    """A `DynamicLayer` that holds the policy's state as given and appends a step's keys and
    values into the engine's buffers (`into`) where it has them, else by concatenation (a new
    tensor: the state it was given is left as it was). Its class is made on first use, so that
    importing this module does not import transformers."""
    global _ENGINE_LAYER
    if _ENGINE_LAYER is None:
        from transformers.cache_utils import DynamicLayer

        class EngineLayer(DynamicLayer):
            into: Optional[tuple[Tensor, Tensor]] = None
            position = 0

            def hold(self, keys: Tensor, values: Tensor, into: Optional[tuple[Tensor, Tensor]], position: int) -> None:
                self.keys, self.values, self.into, self.position = keys, values, into, position
                self.device, self.is_initialized = keys.device, True

            def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
                if self.into is not None:
                    keys, values = self.into
                    end = self.position + key_states.shape[-2]
                    keys[:, :, self.position:end].copy_(key_states)
                    values[:, :, self.position:end].copy_(value_states)
                else:
                    keys = torch.cat([self.keys, key_states], dim=-2)
                    values = torch.cat([self.values, value_states], dim=-2)
                self.keys, self.values = keys, values
                return keys, values

            def release(self) -> tuple[Tensor, Tensor]:
                """The keys and values after the step; the layer then holds no tensors of the engine's."""
                pair = (self.keys, self.values)
                self.keys = self.values = self.into = None
                return pair

        _ENGINE_LAYER = EngineLayer
    return _ENGINE_LAYER


def _reusable_cache(num_layers: int):
    """One cache object of `num_layers` `_engine_layer`s the model takes as its own (a
    `DynamicCache`), or None where this transformers' caches are not lists of layers."""
    try:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer  # noqa: F401 -- transformers >= 4.56
    except ImportError:
        return None
    cache = DynamicCache()
    if not hasattr(cache, "layers"):
        return None
    cache.layers = [_engine_layer()() for _ in range(num_layers)]
    cache.layer_class_to_replicate = None
    return cache


def _output_layer(model: torch.nn.Module):
    """(body, weight, bias) where the model's logits are `hidden @ weight.T + bias` of its body's
    last hidden state (an `nn.Linear` output layer on `model.base_model`), else None."""
    body = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if body is None or body is model or type(head) is not torch.nn.Linear:
        return None
    return body, head.weight, head.bias


class HFPolicy:
    """`seqadv.core.policy.Policy` of a causal LM with the `AutoModelForCausalLM` interface
    (`input_ids`, a KV cache, `.logits`). `start_token`: the input before position 0
    (default: the model's `bos_token_id`, else 0).

    Not thread-safe: the policy reuses one cache object across steps."""

    def __init__(self, model: torch.nn.Module, start_token: Optional[int] = None):
        from transformers import DynamicCache

        self.model = model
        bos = getattr(model.config, "bos_token_id", None)
        vocab = model.config.vocab_size
        self.start_token = start_token if start_token is not None else (bos if bos is not None and bos < vocab else 0)
        parameters = {**inspect.signature(model.forward).parameters,
                      **inspect.signature(getattr(model, "base_model", model).forward).parameters}
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"  # transformers 5 renamed it
        self._dynamic_cache = DynamicCache
        device = next(model.parameters()).device
        with torch.no_grad():  # one token, to learn the cache's layout
            out = model(input_ids=torch.full((1, 1), self.start_token, device=device), use_cache=True)
        self._empty = [(k[:, :, :0], v[:, :, :0]) for k, v in _pairs(self._cache_of(out))]
        self._cache = _reusable_cache(len(self._empty)) if all(k.dim() == 4 for k, _ in self._empty) else None
        self._head = None
        if self._cache is not None:
            self._head = self._checked_output_layer()

    def _cache_of(self, out):
        return out["cache"] if "cache" in out else out["past_key_values"]

    def _checked_output_layer(self):
        """`_output_layer` where its logits are the model's own, bit for bit: two rows stepped
        three times from the start token through the whole model and through the body and the
        output layer (with and without `out`), else None (each step then runs the whole model)."""
        found = _output_layer(self.model)
        if found is None:
            return None
        device = next(self.model.parameters()).device
        vocab = self.model.config.vocab_size
        inputs = torch.tensor([[self.start_token, 1 % vocab, 2 % vocab], [self.start_token, 3 % vocab, 0]],
                              device=device)
        state = self.initial_state(2)
        try:
            for t in range(inputs.shape[1]):
                self._head = None
                own, new = self.step(inputs[:, t], state)
                self._head = found
                logits, _ = self.step(inputs[:, t], state)
                written, _ = self.step(inputs[:, t], state, out=torch.empty_like(own))
                if not (torch.equal(logits, own) and torch.equal(written, own)):
                    return None
                state = new
        except Exception:  # noqa: BLE001 -- a body that does not take the step's arguments: the whole model
            return None
        finally:
            self._head = None
        return found

    def _model_cache(self, state: tuple[Tensor, ...]):
        pairs = [(state[i], state[i + 1]) for i in range(0, len(state), 2)]
        if hasattr(self._dynamic_cache, "from_legacy_cache"):
            return self._dynamic_cache.from_legacy_cache(tuple(pairs))
        return self._dynamic_cache(ddp_cache_data=pairs)

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        """An empty cache: (keys, values) of every layer, each (batch, heads, 0, head_dim)."""
        return tuple(t.expand(batch_size, *t.shape[1:]).clone() for pair in self._empty for t in pair)

    @torch.no_grad()
    def step(self, tokens: Tensor, state: tuple[Tensor, ...], into: Optional[tuple[Tensor, ...]] = None,
             out: Optional[Tensor] = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """tokens (B,) -> logits (B, V), the cache one position longer. `into`: the rollout
        engine's buffers, one position longer than `state`, whose leading positions are
        `state`: each layer writes its new keys and values there instead of concatenating
        (copying) its whole cache, as `TransformerGenerator` does. `out` (B, V): a buffer the
        logits are written into where the policy computes its logits itself (returned then)."""
        if self._cache is None:
            return self._step_rebuilt(tokens, state)
        position, layers = state[0].shape[2], self._cache.layers
        for i, layer in enumerate(layers):
            layer.hold(state[2 * i], state[2 * i + 1], None if into is None else (into[2 * i], into[2 * i + 1]),
                       position)
        kwargs = {"input_ids": tokens.unsqueeze(1), "use_cache": True, self._cache_arg: self._cache,
                  # one position for every row (broadcast), as exact as one per row
                  "position_ids": torch.full((1, 1), position, dtype=torch.long, device=tokens.device)}
        try:
            if self._head is None:
                logits = self.model(**kwargs)["logits"][:, -1]
            else:
                body, weight, bias = self._head
                hidden = body(**kwargs)[0][:, -1]
                if out is None:
                    logits = torch.nn.functional.linear(hidden, weight, bias)
                elif bias is None:
                    logits = torch.mm(hidden, weight.T, out=out)
                else:
                    logits = torch.addmm(bias, hidden, weight.T, out=out)
        finally:
            pairs = [layer.release() for layer in layers]
        if into is not None:
            return logits, into
        return logits, tuple(t for pair in pairs for t in pair)

    def _step_rebuilt(self, tokens: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The step on transformers before 4.56: the model's cache object built from the state,
        which the model concatenates (the engine's buffers unused)."""
        position = state[0].shape[2]
        kwargs = {"input_ids": tokens.unsqueeze(1), "use_cache": True,
                  "position_ids": torch.full((len(tokens), 1), position, device=tokens.device)}
        if position:
            kwargs[self._cache_arg] = self._model_cache(state)
        out = self.model(**kwargs)
        return out["logits"][:, -1], tuple(t for pair in _pairs(self._cache_of(out)) for t in pair)


# --- a local model directory as the trainers' generator ---------------------------------------------

@contextmanager
def quiet_transformers():
    """No progress bars from transformers while loading or saving (the run prints its own)."""
    from transformers.utils import logging

    enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            logging.enable_progress_bar()


def _causal_lm_mapping():
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    return MODEL_FOR_CAUSAL_LM_MAPPING


def load_causal_lm(path: str | Path):
    """(model, tokenizer) from a local Hugging Face causal-LM directory, safely: no code of the
    directory's is run (`trust_remote_code=False`), weights only from safetensors files,
    nothing downloaded. A `DataError` of one line for a directory that is not such a model,
    a tokenizer without an end token or one whose ids the model has no logits for."""
    from seqadv.core.errors import DataError

    try:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise DataError(f"hf:{path}: Hugging Face models need transformers: pip install -e \".[hf]\"") from None
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"hf:{path}: no such directory (give a local model directory: "
                        f"model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR))")
    if not (path / "config.json").is_file():
        raise DataError(f"hf:{path}: no config.json there: not a Hugging Face model directory")
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    except (ValueError, KeyError, OSError) as exc:
        raise DataError(f"hf:{path}/config.json: not a model transformers knows without running the "
                        f"directory's own code ({str(exc).splitlines()[0]})") from None
    if type(config) not in _causal_lm_mapping():
        raise DataError(f"hf:{path}: a {config.model_type} model, not a causal language model "
                        f"(AutoModelForCausalLM does not take it)")
    if not any(path.glob("*.safetensors")):
        found = ", ".join(sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth"))) or "none"
        raise DataError(f"hf:{path}: no .safetensors weights (found: {found}); pickled weights are not loaded: "
                        f"save the model again with model.save_pretrained(DIR) (safetensors by default)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise DataError(f"hf:{path}: no tokenizer there ({str(exc).splitlines()[0]}): save it beside the model "
                        f"with tokenizer.save_pretrained(DIR)") from None
    if tokenizer.eos_token_id is None:
        raise DataError(f"hf:{path}: its tokenizer has no end-of-sequence token: set tokenizer.eos_token and "
                        f"save it again (the generators end each text with it)")
    if len(tokenizer) > config.vocab_size:
        raise DataError(f"hf:{path}: its tokenizer has {len(tokenizer)} tokens but the model only "
                        f"{config.vocab_size} logits")
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=False, local_files_only=True,
                                                     use_safetensors=True)
    # float32 whatever the directory's dtype (transformers 5 keeps bf16 weights as bf16, 4 upcasts):
    # Adam steps of 1e-4 on bf16 weights mostly round away, and results would depend on the version
    return model.float(), tokenizer


def special_tokens(tokenizer) -> tuple[int, int, int]:
    """(start, end, padding) of a tokenizer as the generators use them: its BOS, else its end
    token (GPT-2's <|endoftext|> starts texts); its end token; its pad token, else the end token."""
    eos = tokenizer.eos_token_id
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return start, eos, pad


def model_positions(config) -> Optional[int]:
    """How many positions a model's config allows (None: no limit it states)."""
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def disable_dropout(model: torch.nn.Module) -> None:
    """No dropout anywhere in the model (TRL's RL trainers do the same): the policy that is
    sampled and rolled out is the function that is trained, and a resumed run repeats the
    same arithmetic. The saved config keeps its dropout for later fine-tuning."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):  # Llama-style attention reads a float
            module.attention_dropout = 0.0


UNCOMPARED = ("_name_or_path", "transformers_version", "dtype", "torch_dtype")  # of a config's dict


@register_model
class HFGenerator(LanguageModel, torch.nn.Module):
    """A Hugging Face causal LM as a generator of the text recipes (`--generator hf:DIR`):
    teacher forcing through the model's forward, the policy protocol through `HFPolicy`
    (its KV cache, written into the rollout engine's buffers), sampling as the built-in
    generators sample. `hf_config`: the model's config as a dict (what a saved run rebuilds
    it from); `lm`: the model itself (its weights), or None to build it from the config.

    Shape: forward(inputs (B, T)) -> logits (B, T, V), V the model's output size."""

    def __init__(self, hf_config: dict, start_token: int, eos_token: int, pad_token: int,
                 lm: Optional[torch.nn.Module] = None):
        super().__init__()
        if lm is None:
            from transformers import AutoConfig, AutoModelForCausalLM

            values = dict(hf_config)
            lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(values.pop("model_type"), **values)).float()
        disable_dropout(lm)
        lm.eval()  # and kept so (`train`): dropout a model keeps as a float of its own stays off too
        self.lm = lm
        self.vocab_size = lm.config.vocab_size
        self.start_token, self.eos_token, self.pad_token = start_token, eos_token, pad_token
        self._policy: Optional[HFPolicy] = None

    def train(self, mode: bool = True) -> "HFGenerator":
        """The wrapper's mode; the model itself stays in eval mode, so no dropout of any kind runs
        (some models keep their dropout as a float read with `self.training`)."""
        super().train(mode)
        self.lm.eval()
        return self

    def config_dict(self) -> dict:
        """The arguments that rebuild this model (its weights aside). What names where it came
        from (its path, the transformers version, its saved dtype) is left out, so the same
        model read from another path, or after an upgrade, is the same model to resume and
        `--init-from`."""
        hf_config = {k: v for k, v in self.lm.config.to_dict().items() if k not in UNCOMPARED}
        return {"hf_config": hf_config, "start_token": self.start_token,
                "eos_token": self.eos_token, "pad_token": self.pad_token}

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (B, T) -> logits (B, T, V); position t predicts the token after inputs[:, t]."""
        return self.lm(input_ids=inputs, use_cache=False)["logits"]

    # --- policy protocol, through HFPolicy (built again when the model moves) ------------------------
    def _stepper(self) -> HFPolicy:
        weight = next(self.lm.parameters())
        if self._policy is None or self._policy.key != (weight.device, weight.dtype) or self._policy.model is not self.lm:
            self._policy = HFPolicy(self.lm, self.start_token)
            self._policy.key = (weight.device, weight.dtype)
        return self._policy

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        return self._stepper().initial_state(batch_size)

    def step(self, tokens: Tensor, state: tuple[Tensor, ...], into: Optional[tuple[Tensor, ...]] = None,
             out: Optional[Tensor] = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """tokens (B,) -> logits (B, V), the cache one position longer (see `HFPolicy.step`)."""
        return self._stepper().step(tokens, state, into=into, out=out)

    def __getstate__(self):  # a copy or a pickle builds its own stepper
        state = self.__dict__.copy()
        state["_policy"] = None
        return state

    def save_pretrained(self, directory: str | Path, tokenizer=None, state_dict: Optional[dict] = None,
                        files: Optional[dict[str, str]] = None) -> Path:
        """The model (safetensors, float32) and its tokenizer as a directory `transformers` loads,
        written beside it first and renamed into place: never a half-written directory.
        `state_dict`: this wrapper's weights to save instead of its own (a snapshot: no copy of
        the model is made); `files`: more text files to put in the directory (name -> text)."""
        directory = Path(directory)
        staging = directory.with_name(f".{directory.name}.writing")
        if staging.exists():
            shutil.rmtree(staging)
        weights = None if state_dict is None else {k[len("lm."):]: v for k, v in state_dict.items()
                                                   if k.startswith("lm.")}
        with quiet_transformers():
            self.lm.save_pretrained(staging, safe_serialization=True, state_dict=weights)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        for name, text in (files or {}).items():
            (staging / name).write_text(text, encoding="utf-8")
        old = directory.with_name(f".{directory.name}.old")
        if directory.exists():
            if old.exists():
                shutil.rmtree(old)
            directory.rename(old)
        staging.rename(directory)
        if old.exists():
            shutil.rmtree(old)
        return directory

    @classmethod
    def from_pretrained(cls, path: str | Path) -> tuple["HFGenerator", object]:
        """(generator, tokenizer) from a local causal-LM directory, loaded safely
        (`load_causal_lm`): the start token is the tokenizer's BOS if it has one, else its
        end token (GPT-2's <|endoftext|> starts texts), padding its pad token or the end token."""
        lm, tokenizer = load_causal_lm(path)
        return cls.wrap(lm, tokenizer), tokenizer

    @classmethod
    def wrap(cls, lm: torch.nn.Module, tokenizer) -> "HFGenerator":
        return cls(lm.config.to_dict(), *special_tokens(tokenizer), lm=lm)
