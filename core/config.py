"""YAML configuration: safe loading, ``--set`` overrides, and strict dataclass binding.

Every config section is a dataclass; binding a mapping to it rejects unknown keys with a
message that names the key and the allowed ones, so a typo never silently does nothing.
"""

import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nirstream.core.errors import ConfigError

T = TypeVar("T")


def bundled_config(kind: str, name: str) -> Path:
    """Path of a config shipped with nirstream, e.g. ``bundled_config("models", "colormamba-lite")``."""
    path = Path(str(resources.files("nirstream.configs").joinpath(kind, f"{name}.yaml")))
    if not path.is_file():
        raise ConfigError(f"no bundled {kind} config named '{name}'; known: {', '.join(bundled_names(kind))}")
    return path


def bundled_names(kind: str) -> list[str]:
    folder = Path(str(resources.files("nirstream.configs").joinpath(kind)))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; missing or malformed files are ConfigErrors."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a nested mapping, in place."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is a value, not a section")
            node = child
        node[leaf] = value
    return data


def bind(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, recursing into nested dataclass fields."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"'{where or cls.__name__}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; allowed: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, value in data.items():
        values[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config '{where or cls.__name__}': {exc}") from exc


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass config as plain data (for logs, checkpoints and weights metadata)."""
    return dataclasses.asdict(obj)


def _convert(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return bind(hint, value, where)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, where) if len(options) == 1 else value
    if hint in (int, float) and isinstance(value, bool):
        raise ConfigError(f"config key '{where}' must be {hint.__name__}, got {value!r}")
    if hint is float and isinstance(value, int):
        return float(value)
    if hint is float and isinstance(value, str):
        # YAML 1.1 reads exponents without a dot ("1e-3") as strings.
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"config key '{where}' must be {hint.__name__}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{where}' must be a list, e.g. [a, b], got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (None,)
        if dataclasses.is_dataclass(item):  # a list of sections, each bound strictly
            return [bind(item, entry, f"{where}[{i}]") for i, entry in enumerate(value)]
        return list(value) if origin is list else tuple(value)
    return value
