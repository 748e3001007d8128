"""Per-token Monte Carlo credit for a language model's text, as one call, for any RL library.

RL fine-tuning libraries give one reward per sequence and spread it over the tokens. This
gives each response token t the value Q_t = E[reward | the text up to t, the rest drawn from
the model], estimated by `num_rollouts` completions from every prefix on the rollout engine
(`seqadv.rl.rollout`): exact in expectation, one cached pass per prefix, memory-bounded.

    from transformers import AutoModelForCausalLM
    import seqadv

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    values = seqadv.token_rewards(model, input_ids, reward_fn, num_rollouts=16,
                                  prompt_lengths=prompt_lengths, attention_mask=attention_mask)
    advantages = seqadv.token_advantages(values, prompt_lengths=prompt_lengths,
                                         attention_mask=attention_mask)

`token_advantages` turns the values into the dense per-token form a policy-gradient update
takes (`loss = -(advantages * log_probs).sum() / response_tokens`): A_t = Q_t - Q_{t-1}, the
first response token's baseline being the prompt's value V(prompt) (VinePPO's Monte Carlo
advantages, per token); summed over a response they give reward - V(prompt).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from seqadv.core.policy import Policy, State, state_tensors
from seqadv.rl.rollout import RolloutEngine, _accepts


class _FirstTokenStart:
    """`policy`, reading each row's own first token before position 0 instead of one start
    token: the engine then scores the rest of the text given that token, as the model reads
    the text it was given, with no start token the caller's model never saw (GPT-2 has none).
    The state is (the policy's state, the first tokens (B, 1), started (B, 1) bool)."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.start_token = policy.start_token

    def state_for(self, first: Tensor) -> State:
        B = len(first)
        return (self.policy.initial_state(B), first.view(B, 1).clone(),
                torch.zeros(B, 1, dtype=torch.bool, device=first.device))

    def initial_state(self, batch_size: int) -> State:
        device = next(state_tensors(self.policy.initial_state(1))).device
        return self.state_for(torch.full((batch_size,), self.start_token, device=device))

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        inner, first, started = state
        tokens = torch.where(started[:, 0], tokens, first[:, 0])
        logits, inner = self.policy.step(tokens, inner)
        return logits, (inner, first, torch.ones_like(started))


def _policy_of(model) -> Policy:
    """A policy as it is; a Hugging Face causal LM through `seqadv.hf.HFPolicy`."""
    if isinstance(model, Policy):
        return model
    if hasattr(model, "config") and callable(model):
        from seqadv.hf import HFPolicy

        return HFPolicy(model)
    raise TypeError(f"token_rewards takes a Hugging Face causal LM or a seqadv.core.policy.Policy, got "
                    f"{type(model).__name__}")


def _layout(sequences: Tensor, prompt_lengths, prompt_mask: Optional[Tensor],
            attention_mask: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Each row's text as one block: (left, length, prompt) with left the positions of padding
    before it, length its tokens, prompt how many of them are the prompt.

    Shape: sequences (B, T); prompt_lengths (B,) or an int; prompt_mask, attention_mask (B, T)
    -> three (B,) int64
    """
    B, T = sequences.shape
    positions = torch.arange(T, device=sequences.device)
    text = torch.ones(B, T, dtype=torch.bool, device=sequences.device) if attention_mask is None else (
        attention_mask.to(sequences.device) != 0)
    if text.shape != (B, T):
        raise ValueError(f"attention_mask must have the sequences' shape {(B, T)}, got {tuple(text.shape)}")
    length = text.sum(1)
    left = torch.where(length > 0, text.float().argmax(1), torch.zeros_like(length))
    block = (positions >= left[:, None]) & (positions < (left + length)[:, None])
    if (length == 0).any() or not torch.equal(block, text):
        raise ValueError("attention_mask: each row's text must be one block of 1s (padding on the left, the "
                         "right, or both), with at least one token")
    if prompt_mask is not None and prompt_lengths is not None:
        raise ValueError("give prompt_lengths or prompt_mask, not both")
    if prompt_mask is not None:
        mask = prompt_mask.to(sequences.device).bool()
        prompt = mask.sum(1)
        if mask.shape != (B, T) or not torch.equal(mask, (positions >= left[:, None]) & (
                positions < (left + prompt)[:, None])):
            raise ValueError("prompt_mask: each row's prompt must be the first tokens of its text (a block of True "
                             "starting where attention_mask's 1s start)")
    elif prompt_lengths is not None:
        prompt = torch.as_tensor(prompt_lengths, device=sequences.device).long().expand(B).clone()
        if (prompt < 0).any() or (prompt > length).any():
            raise ValueError("prompt_lengths must be in 0 .. each row's count of text tokens")
    else:
        prompt = torch.zeros(B, dtype=torch.long, device=sequences.device)
    return left, length, prompt


def _shift(x: Tensor, by: Tensor) -> Tensor:
    """Row b rotated left by by[b] positions. Shape: x (B, T), by (B,) -> (B, T)"""
    T = x.shape[1]
    index = (torch.arange(T, device=x.device) + by[:, None]) % T
    return x.gather(1, index)


@torch.no_grad()
def token_rewards(model, sequences: Tensor, reward_fn: Callable[..., Tensor], num_rollouts: int = 16, *,
                  prompt_lengths=None, prompt_mask: Optional[Tensor] = None,
                  attention_mask: Optional[Tensor] = None, eos_token: Optional[int] = None,
                  pad_token: Optional[int] = None, temperature: float = 1.0,
                  generator: Optional[torch.Generator] = None, memory_budget_mb: float = 512.0) -> Tensor:
    """Monte Carlo values of every token of `sequences` under `model`'s own completions.

    Shape:
        sequences: (B, T) int64 token ids: each row a prompt then its response, as one block
            of text; where `attention_mask` is 0 (left padding of the prompt, right padding
            of the response) is not text
        prompt_lengths: (B,) ints or one int (the first tokens of each row's text), or
        prompt_mask: (B, T) bool, True on the prompt's tokens; neither: no prompt
        attention_mask: (B, T) of 0/1, or None (every position is text)
        returns: (B, T) float32 values. At a response token t, Q_t: the mean reward of
            `num_rollouts` completions of the text up to t, drawn from the model at
            `temperature` (the prompt and the text up to t kept); at the row's last text token,
            reward_fn of the row itself. At each prompt token, an estimate of V(prompt), the
            value before any response token. 0 where `attention_mask` is 0.

    `model`: a Hugging Face causal LM (`AutoModelForCausalLM`, read through `seqadv.hf.HFPolicy`)
    or any `seqadv.core.policy.Policy`. When every row's prompt has two tokens or more, the model
    reads each row from its own first token, as it reads the text (no start token is added);
    otherwise every row starts from the policy's `start_token` (an HF model's BOS), read before
    the first token.

    `reward_fn(rows)` gets (rows, T) texts in the caller's layout (the same padding as
    `sequences`, the response positions completed) and returns (rows,) finite rewards; it may
    take the keyword `index` (the row of `sequences` each text completes). With `eos_token`
    and `pad_token`, a completion ends at its first end token and what follows is `pad_token`
    when scored; the prompt must not hold the end token.

    `generator` seeds the rollouts; the result is exact against enumeration (tests).
    """
    policy = _policy_of(model)
    B, T = sequences.shape
    left, length, prompt = _layout(sequences, prompt_lengths, prompt_mask, attention_mask)
    positions = torch.arange(T, device=sequences.device)
    shifted = _shift(sequences, left)  # (B, T): each row's text at 0 .. length-1, padding after it
    if eos_token is not None and pad_token is not None and ((shifted == eos_token) & (
            positions < prompt[:, None])).any():
        raise ValueError(f"a prompt holds the end token {eos_token}: the rollouts would take it for the end of the "
                         f"text (give eos_token=None, or prompts without it)")
    # the padding after the text is kept as it is, so the reward sees the caller's layout back
    fixed = (positions < prompt[:, None]) | (positions >= length[:, None])
    wants_index = _accepts(reward_fn, "index")

    def reward(rows: Tensor, index: Tensor) -> Tensor:
        back = _shift(rows, (T - left[index]) % T)
        return reward_fn(back, index=index) if wants_index else reward_fn(back)

    # with prompts of two tokens or more, the first is read, not drawn: it starts each row, and
    # column 1 (a prompt token) gives the prompt's value for column 0
    from_first = bool((prompt >= 2).all())
    if from_first:
        start = _FirstTokenStart(policy)
        engine = RolloutEngine(start, num_rollouts, temperature=temperature, memory_budget_mb=memory_budget_mb,
                               eos_token=eos_token, pad_token=pad_token)
        rest = engine.rewards(shifted[:, 1:], lambda rows, index: reward(torch.cat([shifted[index, :1], rows], 1),
                                                                          index),
                              fixed=fixed[:, 1:], generator=generator, initial_state=start.state_for(shifted[:, 0]))
        values = torch.cat([rest[:, :1], rest], 1)  # token 0 is the prompt's: V(prompt), as token 1's column says
    else:
        engine = RolloutEngine(policy, num_rollouts, temperature=temperature, memory_budget_mb=memory_budget_mb,
                               eos_token=eos_token, pad_token=pad_token)
        values = engine.rewards(shifted, reward, fixed=fixed, generator=generator)
    values = _shift(values, (T - left) % T)
    return values * (attention_mask.to(values.device) != 0) if attention_mask is not None else values


def token_advantages(values: Tensor, *, prompt_lengths=None, prompt_mask: Optional[Tensor] = None,
                     attention_mask: Optional[Tensor] = None) -> Tensor:
    """The dense per-token advantages of `token_rewards`' values: A_t = Q_t - Q_{t-1} at each
    response token, Q_{t-1} of the first response token being the prompt's value (the value
    at its last prompt token; 0 where a row has no prompt); 0 at the prompt and padding.
    Summed over a row's response: its reward less V(prompt). Feed them to a policy-gradient
    update as constants: loss = -(advantages * log_probs).sum() / (advantages != 0).sum().

    Shape: values (B, T), prompt_lengths (B,) or an int, prompt_mask / attention_mask (B, T)
    -> (B, T) float32
    """
    left, length, prompt = _layout(torch.zeros_like(values, dtype=torch.long), prompt_lengths, prompt_mask,
                                   attention_mask)
    T = values.shape[1]
    positions = torch.arange(T, device=values.device)
    shifted = _shift(values, left)
    previous = torch.cat([torch.zeros_like(shifted[:, :1]), shifted[:, :-1]], 1)
    response = (positions >= prompt[:, None]) & (positions < length[:, None])
    return _shift(torch.where(response, shifted - previous, torch.zeros_like(shifted)), (T - left) % T)
