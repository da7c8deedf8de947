"""VGG-19 perceptual loss: L1 between ImageNet-trained features of prediction and target.

The network is built here in plain torch with the layer indices of torchvision's
``vgg19().features`` (so its state dicts load as they are) because torchvision and model
downloads are not available: the weights come from a local file.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nirstream.core.errors import ConfigError, WeightsError
from nirstream.core.losses.term import LossTerm
from nirstream.core.models.pretrained import load_checked, read_state_dict

_STAGE_WIDTHS = (64, 128, 256, 512, 512)
_STAGE_CONVS = (2, 2, 4, 4, 4)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")


def vgg19_features() -> tuple[nn.Sequential, list[str]]:
    """VGG-19's convolutional part, laid out as torchvision's, and a name for every layer.

    Names follow the paper: ``conv3_2`` / ``relu3_2`` is the second convolution of stage 3,
    ``pool3`` the max-pool that ends it.
    """
    layers: list[nn.Module] = []
    names: list[str] = []
    channels = 3
    for stage, (width, convs) in enumerate(zip(_STAGE_WIDTHS, _STAGE_CONVS), start=1):
        for conv in range(1, convs + 1):
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            names += [f"conv{stage}_{conv}", f"relu{stage}_{conv}"]
            channels = width
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        names.append(f"pool{stage}")
    return nn.Sequential(*layers), names


def load_vgg19_features(weights_path: str | Path) -> nn.Sequential:
    """VGG-19 features with weights from a local torchvision state dict.

    Accepts the ``features`` state dict (``0.weight``, ...) or the whole classifier's
    (``features.0.weight``, ..., whose ``classifier.*`` entries are ignored).
    """
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise WeightsError(f"VGG-19 weights not found at {path}")
    state = read_state_dict(path, "VGG-19")
    if any(key.startswith("features.") for key in state):
        prefix = "features."
        state = {key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)}
    with torch.device("meta"):  # no random init of 20M weights that are replaced at once
        features, _ = vgg19_features()
    load_checked(features, state, f"{path} is not a VGG-19 state dict", assign=True)
    return features.float()


class VGGPerceptualLoss(LossTerm):
    """Mean over ``layers`` of the L1 distance between VGG-19 activations.

    Inputs are RGB in [0,1], normalised with the ImageNet mean and std the weights were
    trained with. The network is frozen and stays in eval mode whatever ``train()`` is called
    with; it is cut after the deepest layer used.
    """

    def __init__(self, weights_path: str | None = None, layers: Sequence[str] = DEFAULT_LAYERS) -> None:
        super().__init__()
        if weights_path is None:
            raise ConfigError(
                "the VGG-19 perceptual loss needs option 'weights_path': VGG weights cannot be "
                "downloaded here and must be given as a local path to torchvision's vgg19 "
                "state dict (e.g. vgg19-dcbb9e9d.pth)"
            )
        _, names = vgg19_features()
        allowed = [name for name in names if name.startswith("relu")]
        if isinstance(layers, str) or not layers:
            raise ConfigError(
                f"VGG loss option 'layers' must be a non-empty list; allowed: {', '.join(allowed)}"
            )
        for layer in layers:
            if layer not in allowed:
                raise ConfigError(f"unknown VGG layer '{layer}'; allowed: {', '.join(allowed)}")
        self.tap_indices = sorted(names.index(layer) for layer in set(layers))
        features = load_vgg19_features(weights_path)
        self.features = features[: self.tap_indices[-1] + 1].requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGGPerceptualLoss":
        """Keep the frozen network in eval mode; only the module flag follows ``mode``."""
        super().train(mode)
        self.features.eval()
        return self

    def _activations(self, rgb: Tensor) -> list[Tensor]:
        x = (rgb - self.mean) / self.std
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.tap_indices:
                taps.append(x)
        return taps

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        predicted = self._activations(pred["rgb"])
        with torch.no_grad():
            true = self._activations(target_rgb)
        return torch.stack([F.l1_loss(p, t) for p, t in zip(predicted, true)]).mean()
