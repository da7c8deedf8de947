"""Models by name: register a class, build it from a config mapping, load bundled configs.

A model config is ``{"arch": <registered name>, **constructor arguments}``. The built module
carries the full config (defaults filled in) as ``model.config``, so a weights file that
stores it can rebuild the same architecture from the file alone.
"""

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar


from nirstream.core.config import bundled_config, bundled_names, load_yaml
from nirstream.core.errors import ConfigError

from .interface import ColorizationModel

M = TypeVar("M", bound=type[ColorizationModel])

_MODELS: dict[str, type[ColorizationModel]] = {}


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: make ``cls`` buildable as ``{"arch": name, ...}``."""

    def register(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, ColorizationModel)):
            raise TypeError(f"model '{name}' must subclass ColorizationModel (core/models/interface.py)")
        if _MODELS.get(name, cls) is not cls:
            raise ValueError(f"model name '{name}' is already registered to {_MODELS[name].__qualname__}")
        _MODELS[name] = cls
        return cls

    return register


def list_models() -> list[str]:
    """Names of the registered architectures."""
    return sorted(_MODELS)


def build_model(config: dict[str, Any]) -> ColorizationModel:
    """Build the model ``config`` describes and attach the full config as ``model.config``.

    Unknown ``arch`` or unknown argument names are ConfigErrors that list the allowed ones;
    a value the constructor rejects is a ConfigError too.
    """
    full = complete_config(config)
    kwargs = dict(full)
    arch = kwargs.pop("arch")
    try:
        model = _MODELS[arch](**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model config for arch '{arch}': {exc}") from exc
    model.config = full
    return model


def complete_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every constructor argument it leaves out at its default, as ``model.config``
    holds it: a file written before an argument existed compares equal to a model built now."""
    if not isinstance(config, dict) or "arch" not in config:
        raise ConfigError(f"a model config needs an 'arch' key; known archs: {', '.join(list_models())}")
    kwargs = dict(config)
    arch = kwargs.pop("arch")
    if arch not in _MODELS:
        raise ConfigError(f"unknown model arch '{arch}'; allowed: {', '.join(list_models())}")
    signature = inspect.signature(_MODELS[arch])
    unknown = sorted(set(kwargs) - set(signature.parameters))
    if unknown:
        allowed = ", ".join(["arch", *signature.parameters])
        raise ConfigError(f"unknown model config key '{unknown[0]}' for arch '{arch}'; allowed: {allowed}")
    try:
        bound = signature.bind(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"model config for arch '{arch}': {exc}") from exc
    bound.apply_defaults()
    return {"arch": arch, **{k: _plain(v) for k, v in bound.arguments.items()}}


def load_model_config(name_or_path: str | Path) -> dict[str, Any]:
    """A model config from a bundled name (``colormamba-lite``) or a YAML file path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        if str(name_or_path) not in bundled_names("models"):
            raise ConfigError(
                f"'{name_or_path}' is neither a model config file nor a bundled config; "
                f"bundled: {', '.join(bundled_names('models'))}"
            )
        path = bundled_config("models", str(name_or_path))
    config = load_yaml(path)
    if "arch" not in config:
        raise ConfigError(f"model config {path} has no 'arch' key; known archs: {', '.join(list_models())}")
    return config


def _plain(value: Any) -> Any:
    """Tuples as lists, so a config compares equal after a trip through YAML or JSON."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
