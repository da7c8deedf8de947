"""Models: building blocks, the SS2D / VSS layer, ColorMamba, the LAB CNNs, and the registry that builds them.

``build_model({"arch": "colormamba", ...})`` or ``build_model(load_model_config("colormamba-lite"))``.
"""

from .colormamba import ColorMamba  # importing a model's module registers its arch
from .pix2pix_lab import Pix2PixLAB
from .resnet_lab import ResNet34LAB
from .registry import build_model, complete_config, list_models, load_model_config, register_model

__all__ = ["ColorMamba", "Pix2PixLAB", "ResNet34LAB", "build_model", "complete_config", "list_models", "load_model_config", "register_model"]
