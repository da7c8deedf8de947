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


def demo_clip() -> Path:
    """The bundled real-NIR demo clip (``nirstream run`` with no --source)."""
    path = assets_dir() / "demo" / "nir-demo.mp4"
    if not path.is_file():
        raise ConfigError(f"the demo clip is missing from this installation ({path}): pass --source")
    return path
