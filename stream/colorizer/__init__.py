"""The GPU stage: NIR normalisation, tiling, precision and backends, fast mode, temporal smoothing."""

from .colorizer import Colorizer, ColorizerConfig, TemporalConfig
from .normalize import Levels, normalize
from .temporal import TemporalSmoother, flicker
from .tiling import Tiler, plan_tiles

__all__ = [
    "TemporalSmoother",
    "Colorizer",
    "ColorizerConfig",
    "Levels",
    "TemporalConfig",
    "Tiler",
    "flicker",
    "normalize",
    "plan_tiles",
]
