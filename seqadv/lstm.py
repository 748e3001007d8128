"""`nn.LSTM` under CPU autocast on any CPU.

oneDNN runs torch's LSTM in bfloat16 only on CPUs with AVX-512 (`torch.backends.cpu.
get_cpu_capability()` says what a machine has); elsewhere `nn.LSTM` under
`torch.autocast("cpu", dtype=torch.bfloat16)` fails with "could not create a primitive
descriptor for the LSTM forward propagation primitive". `run_lstm` finds out once per
dtype, by trying, and where the CPU cannot, runs the recurrence alone in float32 (autocast
off for it): the layers around it (embedding, output head) keep the autocast dtype.
"""
from __future__ import annotations

import functools
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
