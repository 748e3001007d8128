"""Where the computation runs: the one place a device is chosen from a name."""
import torch


def resolve_device(name: str) -> torch.device:
    """auto | cpu | cuda -> a device; the one place a script chooses it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine (use --device cpu)")
    return torch.device(name)
