"""``create_model``: the one way to get a model, as ``timm.create_model`` is for timm.

Every command (run, eval, export, bench, the cluster's workers), benchmark and tool resolves a
model through it, with one rule for names:

1. nothing: the best shipped model for the device (:data:`~nirstream.core.assets.DEFAULT_MODELS`:
   ``colormamba-lite`` on a CPU; ``colormamba-base`` on CUDA once its weights ship);
2. a weights file (``.safetensors``, or any existing file that is not a YAML config): its model
   config and weights;
3. a shipped model's name (``colormamba-lite``): its shipped weights;
4. a model config (a bundled name such as ``colormamba-base``, or a YAML path) without weights:
   built with random weights, only where ``untrained`` allows it (timing), with a warning.

Anything else is a one-line ConfigError naming what ships.
"""

from pathlib import Path

import torch
from loguru import logger
from torch import nn

from nirstream.core.assets import DEFAULT_MODELS, assets_dir, shipped_models, shipped_weights
from nirstream.core.device import resolve_device
from nirstream.core.errors import ConfigError

from .registry import build_model, load_model_config


def create_model(
    name_or_path: str | Path | None = None, *, device: str | torch.device = "cpu", untrained: bool = False
) -> nn.Module:
    """The model ``name_or_path`` names (see the module docstring), on ``device``, in eval mode.

    ``device`` may be ``auto``: CUDA where there is a GPU; it also picks the default model.
    """
    from nirstream.core.weights import load_model  # core.weights builds models: imported when called

    target = resolve_device(device)
    if name_or_path is None:
        name_or_path = _default_for(target.type)
    spec = str(name_or_path)
    path = Path(spec).expanduser()
    if path.suffix == ".safetensors" or (path.is_file() and path.suffix not in (".yaml", ".yml")):
        return load_model(path, target)  # a weights file, whatever its name ends with
    shipped = shipped_weights(spec)
    if shipped is not None:
        logger.info(f"model: {spec} (shipped weights, {shipped})")
        return load_model(shipped, target)
    if not untrained:
        raise ConfigError(f"no shipped weights for '{spec}': shipped models are {', '.join(shipped_models()) or 'none'} "
                          "(or give a .safetensors file)")
    config = load_model_config(spec)  # an unknown name fails here, before any warning
    logger.warning(
        f"no trained weights for {spec}: running it untrained (colours are meaningless; use this "
        f"for latency and throughput only). Shipped models: {', '.join(shipped_models()) or 'none'}"
    )
    return build_model(config).to(target).eval()


def default_name(device: str | torch.device = "cpu") -> str:
    """The name of the best shipped model for ``device``'s type."""
    return _default_for(resolve_device(device).type)


def _default_for(device_type: str) -> str:
    preferred = DEFAULT_MODELS.get(device_type, ())
    available = [name for name in preferred if shipped_weights(name) is not None]
    if not available:
        raise ConfigError(f"no shipped weights for device type '{device_type}' in {assets_dir() / 'weights'}: "
                          "pass --weights or --model")
    if available[0] != preferred[0]:
        logger.info(f"no {preferred[0]} weights ship with this version: using {available[0]}")
    return available[0]
