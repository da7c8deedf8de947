"""The GPU stage: NIR normalisation, tiling, precision and backends, temporal smoothing."""

from .colorizer import Colorizer, ColorizerConfig
from .normalize import Levels, normalize
from .tiling import Tiler, plan_tiles

__all__ = ["Colorizer", "ColorizerConfig", "Levels", "Tiler", "normalize", "plan_tiles"]
