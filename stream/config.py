"""The ``nirstream run`` configuration: YAML in ``configs/pipelines/``, bound strictly.

Sections: ``engine`` (the colorizer: device, precision, backend, tiling, levels), ``queue``
(capacity and policy), ``sink`` (video encoder settings, side-by-side view), ``camera``
(requested format, reconnects), and the model. Any value can be overridden with
``--set section.key=value``; an unknown key is an error naming the allowed ones.
"""

from dataclasses import dataclass, field
from pathlib import Path

from nirstream.core.config import apply_overrides, bind, bundled_config, load_yaml
from nirstream.core.errors import ConfigError
from nirstream.stream.colorizer import ColorizerConfig
from nirstream.stream.pipeline import POLICIES, QUEUE_CAPACITY
from nirstream.stream.sinks.spec import SinkConfig
from nirstream.stream.sources.camera import CameraConfig


@dataclass
class QueueConfig:
    """``policy`` null: ``drop_oldest`` for live sources (bounded latency), ``block`` for files."""

    capacity: int = QUEUE_CAPACITY
    policy: str | None = None

    def __post_init__(self) -> None:
        if self.policy is not None and self.policy not in POLICIES:
            raise ConfigError(f"queue.policy must be one of {', '.join(POLICIES)} or null, got '{self.policy}'")


@dataclass
class RunConfig:
    """What to run: ``weights`` (a .safetensors file) wins; else ``model``, a shipped model's name
    (its trained weights) or a model YAML (untrained, for timing); else the shipped default for
    the device (:data:`nirstream.core.assets.DEFAULT_MODELS`)."""

    weights: str | None = None
    model: str | None = None
    max_frames: int | None = None
    resize: str | None = None  # WIDTHxHEIGHT: every frame scaled to it before colorizing
    topic: str | None = None  # a bag's camera topic (--topic); None: its only image topic
    realtime: bool = False  # replay a recorded input at its recorded rate, as a live source (--realtime)
    engine: ColorizerConfig = field(default_factory=ColorizerConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    sink: SinkConfig = field(default_factory=SinkConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)


def load_run_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A pipeline YAML (path or bundled name such as ``drive``), or the defaults, plus overrides."""
    data = {}
    if path is not None:
        is_file = Path(path).suffix in (".yaml", ".yml") or Path(path).is_file()
        data = load_yaml(path if is_file else bundled_config("pipelines", str(path)))
    return bind(RunConfig, apply_overrides(data, list(overrides)))
