"""Models: building blocks, the SS2D / VSS layer, ColorMamba, and the registry that builds them.

``build_model({"arch": "colormamba", ...})`` or ``build_model(load_model_config("colormamba-lite"))``.
"""

from .colormamba import ColorMamba  # importing the module registers "colormamba"
from .registry import build_model, list_models, load_model_config, register_model

__all__ = ["ColorMamba", "build_model", "list_models", "load_model_config", "register_model"]
