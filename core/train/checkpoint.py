"""Resumable training checkpoints: everything needed to continue a run bit for bit.

A checkpoint holds the model, optimiser, scheduler and (with a GAN) discriminator states,
the random number generator states of torch, CUDA, numpy and Python, the epoch, the
best-so-far metric, the metric history and the config. It is written to a temporary file
and renamed, so an interrupted write never replaces a good checkpoint with a broken one.

Everything is stored as tensors and plain Python values so that it loads with
``torch.load(weights_only=True)``: opening a checkpoint can never run code from the file.
Released weights are a separate format, see :mod:`nirstream.core.weights`.
"""

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nirstream.core.errors import WeightsError
from nirstream.core.files import atomic_path

FORMAT = "nirstream-checkpoint/1"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (tensors and plain values) to ``path`` atomically, tagged with the format."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint on the CPU; a missing, truncated or foreign file is a :class:`WeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails in many ways on a foreign or cut-off file
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}" if str(exc) else type(exc).__name__
        raise WeightsError(f"{path} is not a readable training checkpoint, truncated or foreign ({detail})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a nirstream training checkpoint (expected format {FORMAT})")
    return state


def rng_state() -> dict[str, Any]:
    """The states of every random number generator training draws from, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states saved by :func:`rng_state` (CUDA only where devices exist)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    saved = state["numpy"]
    keys = saved["keys"].numpy().astype(np.uint32)
    np.random.set_state((saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
