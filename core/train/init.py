"""Starting a training run from released weights: fine-tuning, or continuing a shipped model.

``run.init`` names a ``.safetensors`` weights file or a shipped model (``colormamba-lite``).
The file carries its model config; it must be the run's, since a tensor of another shape or
another architecture cannot be continued, and the error says which settings differ. Some
differences are allowed. A run may *grow* a file by the parts it lacks (:data:`GROWTHS`): a
semantic prior (``encoder``, ``encoder_scale``; the encoder starts from its ImageNet weights,
its projections at zero) or a luma gate (``luma_gate``; its conv at zero). Every trained tensor
is kept, so the grown model starts out computing what the file did. A run may also *prune* VSS
blocks (fewer ``depths`` or ``decoder_depths`` per stage), which keeps every other tensor; each
stage's VSS blocks come last in it, so the ones kept are the first of the file's, and the run
starts from the file with the rest skipped.
"""

from pathlib import Path

from loguru import logger
from torch import nn

from nirstream.core.assets import shipped_weights
from nirstream.core.errors import WeightsError
from nirstream.core.models import complete_config
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


#: The parts a run may add to its init file, when the file has none (its key is None or False):
#: the config keys each part brings, and the prefix of its tensors.
GROWTHS = {
    "encoder": ({"encoder", "encoder_scale"}, "semantic."),
    "luma_gate": ({"luma_gate"}, "g_a.luma_gate."),
}


def grown_parts(saved: dict, config: dict) -> list[str]:
    """The parts (keys of :data:`GROWTHS`) by which a model built from ``config`` grows the
    (completed) file config ``saved``; empty when it differs from the file in anything else."""
    keys = {key for key in set(saved) | set(config) if saved.get(key) != config.get(key)}
    parts = [part for part in GROWTHS if part in keys and not saved.get(part) and config.get(part)]
    allowed = set().union(*(GROWTHS[part][0] for part in parts))
    return parts if parts and keys <= allowed else []


#: Config keys in which a run may have fewer VSS blocks per stage than its init file.
PRUNED_KEYS = {"depths", "decoder_depths"}


def prunes_vss_blocks(saved: dict, config: dict) -> bool:
    """Whether ``config`` is the (completed) file config ``saved`` with fewer VSS blocks in some stages."""
    keys = {key for key in set(saved) | set(config) if saved.get(key) != config.get(key)}
    return bool(keys) and keys <= PRUNED_KEYS and all(
        len(saved[key]) == len(config[key]) and all(k <= s for k, s in zip(config[key], saved[key])) for key in keys
    )


def load_init_weights(model: nn.Module, name: str) -> bool:
    """Load the weights ``name`` means into ``model``, whose config must equal the file's, prune
    its VSS blocks or grow it (:data:`GROWTHS`); True when it grew by a semantic prior (the
    caller then loads the prior's pretrained weights)."""
    path = init_weights_path(name)
    saved = complete_config(read_metadata(path)["model"])
    keys = sorted(key for key in set(saved) | set(model.config) if saved.get(key) != model.config.get(key))
    grows, prunes = grown_parts(saved, model.config), prunes_vss_blocks(saved, model.config)
    if keys and not grows and not prunes:
        differences = ", ".join(f"{key}: file {saved.get(key)!r}, run {model.config.get(key)!r}" for key in keys)
        raise WeightsError(f"run.init {path} holds another model than the run builds ({differences})")
    missing, unexpected = model.load_state_dict(load_model(path).state_dict(), strict=not (grows or prunes))
    if grows:
        prefixes = tuple(GROWTHS[part][1] for part in grows)
        if unexpected or not all(key.startswith(prefixes) for key in missing):
            raise WeightsError(f"run.init {path}: growing it by {' and '.join(grows)} left other tensors unset")
        logger.info("starting from the weights in {}, grown by {}", path, " and ".join(grows))
    elif prunes:
        stray = [key for key in unexpected if not key.startswith(("g_a.encoder.", "g_a.decoder."))]
        if missing or stray:
            raise WeightsError(f"run.init {path}: pruning its VSS blocks left tensors unset or unused "
                               f"({(missing + stray)[0]}, ...)")
        dropped = sorted({".".join(key.split(".")[:4]) for key in unexpected})
        logger.info("starting from the weights in {} without its VSS blocks {}", path, ", ".join(dropped))
    else:
        logger.info("starting from the weights in {}", path)
    return "encoder" in grows
