"""Which torch device a command runs on: ``auto`` means CUDA when there is one."""

import torch

from nirstream.core.errors import ConfigError


def resolve_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """``auto`` means CUDA when available; ``cuda`` without a GPU is a config error, not a crash later.
    A ``torch.device`` is taken as it is."""
    if isinstance(name, torch.device):
        return name
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if name in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")
