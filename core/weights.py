"""Released weights: ``.safetensors`` files that carry their model config.

The file's metadata holds the model config (``arch`` and constructor arguments) as JSON, so
``load_model(path)`` rebuilds the right architecture from the file alone. Safetensors holds
tensors only and cannot run code on load. Training checkpoints (optimiser, scheduler, RNG)
are a separate format, see :mod:`nirstream.core.train.checkpoint`.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from nirstream.core.errors import WeightsError, one_line
from nirstream.core.files import atomic_path
from nirstream.core.models import build_model

FORMAT = "nirstream-weights/1"


def save_weights(
    model: nn.Module,
    path: str | Path,
    *,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model``'s parameters and buffers with its config in the metadata.

    ``info`` is free-form provenance (data, epoch, metrics) stored beside the config;
    ``dtype`` (e.g. ``torch.float16``) shrinks floating-point tensors for release.
    """
    config = getattr(model, "config", None)
    if not config:
        raise WeightsError("model has no .config: build it with nirstream.core.models.build_model")
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous()
    metadata = {"format": FORMAT, "model": json.dumps(config), "info": json.dumps(info or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """``{"model": config, "info": provenance}`` from a weights file, without loading tensors."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({one_line(exc)})") from exc
    if raw.get("format") != FORMAT or "model" not in raw:
        raise WeightsError(f"{path} is a safetensors file but not nirstream weights (no model config)")
    try:
        return {"model": json.loads(raw["model"]), "info": json.loads(raw.get("info", "{}"))}
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path} has a corrupt model config in its metadata ({exc.msg})") from exc


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model a weights file describes, load its tensors, and return it in eval mode."""
    meta = read_metadata(path)
    model = build_model(meta["model"])
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path} is truncated or corrupt ({one_line(exc)})") from exc
    reference = model.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsError(
            f"{path} does not match its own model config: "
            f"{len(missing)} missing tensors (e.g. {missing[:2]}), {len(unexpected)} unexpected"
        )
    return model.to(device).eval()


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    return path
