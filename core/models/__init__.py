"""Models: building blocks, the SS2D / VSS layer, ColorMamba, the LAB CNNs, the registry that builds
them, and :func:`create_model`, the one way to get a model by name, file or config.

``create_model("colormamba-lite")`` (trained, shipped), ``create_model("runs/x/best.safetensors")``,
``build_model({"arch": "colormamba", ...})`` (random weights, for training).
"""

from .colormamba import ColorMamba  # importing a model's module registers its arch
from .pix2pix_lab import Pix2PixLAB
from .resnet_lab import ResNet34LAB
from .registry import build_model, complete_config, list_models, load_model_config, register_model
from .factory import create_model, default_name
from .ss2d import set_scan_backend, use_scan_backend

__all__ = ["ColorMamba", "Pix2PixLAB", "ResNet34LAB", "build_model", "complete_config", "create_model", "default_name",
           "list_models", "load_model_config", "register_model", "set_scan_backend", "use_scan_backend"]
