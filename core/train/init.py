"""Starting a training run from released weights: fine-tuning, or continuing a shipped model.

``run.init`` names a ``.safetensors`` weights file or a shipped model (``colormamba-lite``).
The file carries its model config; it must be the run's, since a tensor of another shape or
another architecture cannot be continued, and the error says which settings differ.
"""

from pathlib import Path

from loguru import logger
from torch import nn

from nirstream.core.assets import shipped_weights
from nirstream.core.errors import WeightsError
from nirstream.core.weights import load_model, read_metadata


def init_weights_path(name: str) -> Path:
    """The weights file ``name`` means: a path, or the name of a shipped model."""
    path = Path(name)
    if path.is_file() or path.suffix:
        return path
    shipped = shipped_weights(name)
    if shipped is None:
        raise WeightsError(f"run.init {name!r} is neither a weights file nor a shipped model")
    return shipped


def init_provenance(name: str) -> dict:
    """What a run continues: the starting file's name, release, epoch and training hours in all,
    read when the run starts (the file may be replaced by a new release before this one ships)."""
    info = read_metadata(init_weights_path(name))["info"]
    total = info.get("training_seconds_total", info.get("training_seconds"))
    return {"name": info.get("name", name), "released": info.get("released"), "epoch": info.get("epoch"),
            "training_seconds_total": total or 0.0}


def load_init_weights(model: nn.Module, name: str) -> None:
    """Load the weights ``name`` means into ``model``, whose config must equal the file's."""
    path = init_weights_path(name)
    saved = read_metadata(path)["model"]
    if saved != model.config:
        keys = sorted(key for key in set(saved) | set(model.config) if saved.get(key) != model.config.get(key))
        differences = ", ".join(f"{key}: file {saved.get(key)!r}, run {model.config.get(key)!r}" for key in keys)
        raise WeightsError(f"run.init {path} holds another model than the run builds ({differences})")
    model.load_state_dict(load_model(path).state_dict())
    logger.info("starting from the weights in {}", path)
