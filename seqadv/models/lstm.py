"""`nn.LSTM` under CPU autocast on any CPU, and Sonnet's initialisation of one.

oneDNN runs torch's LSTM in bfloat16 only on CPUs with AVX-512 (`torch.backends.cpu.
get_cpu_capability()` says what a machine has); elsewhere `nn.LSTM` under
`torch.autocast("cpu", dtype=torch.bfloat16)` fails with "could not create a primitive
descriptor for the LSTM forward propagation primitive". `run_lstm` finds out once per
dtype, by trying, and where the CPU cannot, runs the recurrence alone in float32 (autocast
off for it): the layers around it (embedding, output head) keep the autocast dtype.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch import Tensor, nn


@functools.lru_cache(maxsize=None)
def cpu_lstm_supports(dtype: torch.dtype) -> bool:
    """Whether `nn.LSTM` runs under CPU autocast in `dtype` on this machine (tried once)."""
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
            nn.LSTM(2, 2, batch_first=True)(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True


def _cpu_autocast_dtype() -> Optional[torch.dtype]:
    """The CPU autocast dtype in force, None where CPU autocast is off."""
    if not torch.is_autocast_enabled("cpu"):
        return None
    get = getattr(torch, "get_autocast_dtype", None)  # torch >= 2.4; before, get_autocast_cpu_dtype
    return get("cpu") if get is not None else torch.get_autocast_cpu_dtype()


def run_lstm(lstm: nn.LSTM, x: Tensor, state: Optional[tuple[Tensor, Tensor]] = None
             ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """`lstm(x, state)`, also under CPU autocast in a dtype this CPU's LSTM kernels lack: the
    recurrence then runs in float32 and returns float32 outputs and state.

    Shape: as `nn.LSTM`'s: x (B, T, In) batch first, state ((L, B, H), (L, B, H)) or None
    """
    dtype = _cpu_autocast_dtype() if x.device.type == "cpu" else None
    if dtype is None or cpu_lstm_supports(dtype):
        return lstm(x) if state is None else lstm(x, state)
    with torch.autocast("cpu", enabled=False):
        x = x.float()
        return lstm(x) if state is None else lstm(x, tuple(s.float() for s in state))


def truncated_normal_(weight: Tensor, std: float) -> Tensor:
    """TensorFlow's truncated normal: N(0, std^2) redrawn outside 2 std (Sonnet's
    `create_linear_initializer(n)` has std 1 / sqrt(n))."""
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


@torch.no_grad()
def sonnet_lstm_init_(lstm: nn.LSTM) -> None:
    """Sonnet 1's `snt.LSTM` initialisation, which ScratchGAN's code uses for its generator and
    its discriminator: every weight and the gates' bias drawn from one truncated normal of std
    1 / sqrt(inputs + width), and a forget bias of 1 added to the forget gate (Sonnet adds it
    in the forward pass; torch keeps two biases, so bias_ih carries the draw and the 1,
    bias_hh is 0). Shape: any `nn.LSTM`; every layer."""
    H = lstm.hidden_size
    for layer in range(lstm.num_layers):
        inputs = lstm.input_size if layer == 0 else H * (2 if lstm.bidirectional else 1)
        std = 1.0 / math.sqrt(inputs + H)
        for name in (f"weight_ih_l{layer}", f"weight_hh_l{layer}", f"bias_ih_l{layer}"):
            truncated_normal_(getattr(lstm, name), std)
        getattr(lstm, f"bias_hh_l{layer}").zero_()
        getattr(lstm, f"bias_ih_l{layer}")[H : 2 * H] += 1.0  # torch's gate order: input, forget, cell, output
