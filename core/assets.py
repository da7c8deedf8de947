"""The trained weights and the demo clip that ship with nirstream (``assets/`` in the repository).

They install as the package data of ``nirstream.assets``, so a wheel and an editable checkout
find them the same way. Weights are named after the model config they were trained from
(``colormamba-lite.safetensors``); their provenance is in ``assets/weights/README.md``.
"""

from importlib.resources import files
from pathlib import Path

from nirstream.core.errors import ConfigError

#: The models ``nirstream run`` uses when neither --weights nor --model is given, best first:
#: the CPU one is sized for a few frames a second on two cores, the GPU one for real time.
#: The first one whose weights ship in this installation is taken.
DEFAULT_MODELS = {"cpu": ("colormamba-lite",), "cuda": ("colormamba-base", "colormamba-lite")}


def assets_dir() -> Path:
    return Path(str(files("nirstream.assets")))


def shipped_models() -> list[str]:
    """Names of the models with trained weights in this installation."""
    return sorted(path.stem for path in (assets_dir() / "weights").glob("*.safetensors"))


def shipped_weights(name: str) -> Path | None:
    """The shipped weights file for model ``name``, or None if none ships."""
    path = assets_dir() / "weights" / f"{name}.safetensors"
    return path if path.is_file() else None


def require_shipped(name: str) -> Path:
    """The shipped weights of model ``name``; a one-line error naming the shipped ones if none."""
    path = shipped_weights(name)
    if path is None:
        raise ConfigError(f"no shipped weights for '{name}': shipped models are {', '.join(shipped_models()) or 'none'}")
    return path


def default_model(device_type: str) -> str:
    """The best shipped model for a device type (``cpu``, ``cuda``)."""
    available = [name for name in DEFAULT_MODELS.get(device_type, ()) if shipped_weights(name) is not None]
    if not available:
        raise ConfigError(
            f"no shipped weights for device type '{device_type}' in {assets_dir() / 'weights'}: "
            "pass --weights or --model"
        )
    return available[0]


def demo_clip() -> Path:
    """The bundled real-NIR demo clip (``nirstream run`` with no --source)."""
    path = assets_dir() / "demo" / "nir-demo.mp4"
    if not path.is_file():
        raise ConfigError(f"the demo clip is missing from this installation ({path}): pass --source")
    return path
