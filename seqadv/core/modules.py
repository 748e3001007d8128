"""Small tools on `nn.Module`s: a mode held for a block, a moving average of parameters."""
import torch
from torch import nn


class module_mode:
    """Run a module in train (`training=True`) or eval mode, restoring its mode afterwards."""

    def __init__(self, module: torch.nn.Module, training: bool):
        self.module, self.training = module, training

    def __enter__(self) -> torch.nn.Module:
        self.was_training = self.module.training
        self.module.train(self.training)
        return self.module

    def __exit__(self, *exc) -> None:
        self.module.train(self.was_training)


class eval_mode(module_mode):
    """Run a module in eval mode, restoring its mode afterwards."""

    def __init__(self, module: torch.nn.Module):
        super().__init__(module, False)


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, rate: float) -> None:
    """target <- rate * target + (1 - rate) * source, parameter by parameter.

    SeqGAN's delayed rollout policy is this moving average of the generator with
    rate 0.8 (official code, `rollout.update_params`): the rollouts that score the
    generator's tokens come from a slightly older, smoother policy.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"ema rate must be in [0, 1], got {rate}")
    if target is source:  # a policy that is G itself (LeakGAN's, or a caller's): in place, mul_ then add_ would zero it
        return
    for t, s in zip(target.parameters(), source.parameters()):
        t.mul_(rate).add_(s.detach(), alpha=1.0 - rate)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)
