"""Where the computation runs: the one place a device is chosen from a name."""
import torch


def resolve_device(name: str) -> torch.device:
    """auto | cpu | cuda -> a device; the one place a script chooses it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine (use --device cpu)")
    return torch.device(name)


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """What a run's figures depend on beyond its code, config and seed, for results.json.

    The thread count and the CPU change the order of floating-point sums, so one seed's
    figures are reproducible to the digit only on the same machine and thread count.
    """
    import platform
    info = {"torch": torch.__version__, "python": platform.python_version(),
            "cpu": _cpu_model(), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
