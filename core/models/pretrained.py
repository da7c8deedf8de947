"""Pretrained networks' weights from local torch files (nothing is downloaded): read them with
``weights_only=True`` and load them into a module, each failure one line naming the file."""

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from nirstream.core.errors import WeightsError


def read_state_dict(path: Path, network: str) -> Mapping[str, Tensor]:
    """The state dict in ``path``; a WeightsError if it cannot be read or is not a mapping."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(f"cannot read {network} weights from {path}: {error}") from error
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a {network} state dict")
    return state


def load_checked(module: nn.Module, state: Mapping[str, Tensor], mismatch: str, assign: bool = False) -> None:
    """``module.load_state_dict(state)`` strictly; a mismatch is a WeightsError ``mismatch (detail)``."""
    try:
        module.load_state_dict(state, assign=assign)
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[-1].strip()
        raise WeightsError(f"{mismatch} ({detail[:160]})") from error
