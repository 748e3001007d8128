"""Data-parallel training across processes with torch.distributed: the scripts' helper.

Under `torchrun --nproc-per-node K script.py ...` (which sets RANK, LOCAL_RANK,
WORLD_SIZE and the rendezvous address), `setup(device)` joins the process group:
NCCL on CUDA, one GPU per process (cuda:LOCAL_RANK), gloo on CPU. Run plainly, the
script gets a single-process `Group` whose collectives return their input, so a
training loop is written once and reads the same either way.

How a batch is split: every process holds the same models and draws the same data
order (the same seeds), takes its rows of each global batch (`shard`), and the
gradients are averaged across processes before clipping (`average_gradients`), so
every process makes the same update; generated samples that all processes need
(a discriminator's training set) are drawn per process and gathered (`all_gather`).
A mean over tokens of the whole batch needs the whole batch's token count
(`token_normalizer`): with shards of different lengths the mean of the shards'
means is not the batch's mean.

The rollout engine knows nothing of this: each process runs it on its own rows.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import Tensor

from seqadv.core.device import resolve_device


@dataclass(frozen=True)
class Group:
    """This process's place in the group: rank, number of processes, its device.

    The default is the single process of a plain run: every collective returns its input.
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints, logs and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def local_size(self, total: int, what: str) -> int:
        """This process's share of `total` rows; `total` must split evenly."""
        if total % self.world_size:
            raise ValueError(f"{what} {total} does not split evenly over {self.world_size} processes")
        return total // self.world_size

    def shard(self, rows: Tensor) -> Tensor:
        """This process's contiguous rows of a global batch. Shape: (B, ...) -> (B / K, ...)"""
        size = self.local_size(len(rows), "a batch of")
        if not self.active:
            return rows
        return rows[self.rank * size : (self.rank + 1) * size]

    def all_gather(self, rows: Tensor) -> Tensor:
        """Every process's rows, in rank order. Shape: (b, ...) on each -> (K * b, ...) on each"""
        if not self.active:
            return rows
        parts = [torch.empty_like(rows) for _ in range(self.world_size)]
        dist.all_gather(parts, rows.contiguous())
        return torch.cat(parts)

    def sum(self, value: Tensor) -> Tensor:
        """The sum over processes of a tensor of the same shape on each."""
        if not self.active:
            return value
        value = value.clone()
        dist.all_reduce(value)
        return value

    def any(self, flag: bool) -> bool:
        """True on every process if it is True on any (e.g. a stop asked of one of them)."""
        if not self.active:
            return flag
        return bool(self.sum(torch.tensor([float(flag)], device=self.device)).item() > 0)

    def token_normalizer(self, mask: Tensor) -> Tensor:
        """What a per-token mean divides its sum by on this process so that the average of
        the processes' gradients is the gradient of the whole batch's per-token mean:
        the whole batch's count over the number of processes. Shape: mask (b, T) -> scalar"""
        count = mask.sum().float()
        return self.sum(count).clamp(min=1) / self.world_size

    def average_gradients(self, module: torch.nn.Module, loss: Tensor) -> Tensor:
        """Average `module`'s gradients over processes, after backward and before clipping,
        in one all-reduce; the loss rides along. Returns the mean of the processes' losses."""
        if not self.active:
            return loss
        params = [p for p in module.parameters() if p.requires_grad]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().reshape(1).to(grads[0].dtype)])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p)  # a view: the buffer is not copied again
            offset += n
        return flat[-1]

    def broadcast_(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every process (so all start equal)."""
        if not self.active:
            return
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def gather_objects(self, obj: Any) -> list:
        """Every process's picklable object, in rank order (e.g. their random states)."""
        if not self.active:
            return [obj]
        objects: list = [None] * self.world_size
        dist.all_gather_object(objects, obj)
        return objects

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: str, timeout_minutes: float = 60.0) -> Group:
    """The group of this process: joined from torchrun's environment, or a single process.

    `device` is the script's --device (auto | cpu | cuda); it picks the backend.
    """
    if not launched_by_torchrun():
        return Group(device=resolve_device(device))
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"--device cuda: process {local_rank} on this node, but {torch.cuda.device_count()} "
                             f"GPUs (use --nproc-per-node {torch.cuda.device_count()} or fewer)")
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                                timeout=timedelta(minutes=timeout_minutes),
                                **({"device_id": chosen} if chosen.type == "cuda" else {}))
    return Group(rank=rank, world_size=world_size, device=chosen)


@contextmanager
def joined_group(device: str) -> Iterator[Group]:
    """`setup(device)` for a block of work; on leaving it, the group is left: together once
    the work ended, at once after an error (the others may never come). Only the block that
    joined torchrun's group leaves it, so blocks nest (IRGAN's seeds inside one group)."""
    joined = launched_by_torchrun() and not dist.is_initialized()
    group = setup(device)
    try:
        yield group
    except BaseException:
        if joined:
            teardown(together=False)
        raise
    if joined:
        teardown()


def teardown(together: bool = True) -> None:
    """Leave the group. `together`: first wait until every process is here. A process
    that leaves while a peer still works (rank 1 while rank 0 evaluates) can be killed
    by gloo on its way out (SIGABRT, "terminate called without an active exception":
    2 of 42 tiny 2-process runs here without the wait, 0 of 60 with it). After an
    error pass False: the others may never come."""
    if dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()
