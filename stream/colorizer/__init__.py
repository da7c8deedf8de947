"""The GPU stage: NIR normalisation, tiling, precision and backends, fast mode, temporal smoothing."""

from .colorizer import Colorizer, ColorizerConfig, TemporalConfig
from .normalize import Levels, normalize
from .temporal import TemporalSmoother
from .tiling import Tiler, plan_tiles

__all__ = [
    "TemporalSmoother",
    "Colorizer",
    "ColorizerConfig",
    "Levels",
    "TemporalConfig",
    "Tiler",
    "normalize",
    "plan_tiles",
]
