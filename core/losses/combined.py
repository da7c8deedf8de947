"""The ColorMamba / MCFNet combined loss: perceptual + colour distribution + colour direction."""

from collections.abc import Mapping, Sequence

from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.losses.color import CosineLoss
from nirstream.core.losses.histogram import HistogramLoss
from nirstream.core.losses.perceptual import DEFAULT_LAYERS, VGGPerceptualLoss
from nirstream.core.losses.term import LossTerm


class CombinedLoss(LossTerm):
    """``vgg_weight · VGG + histogram_weight · histogram + cosine_weight · cosine`` as one term.

    VGG features keep texture and structure, the histogram term the global palette, the
    cosine term the per-pixel hue. The sub-terms' options are accepted here under the same
    names; ``weights_path`` (the local VGG-19 weights) is required.
    """

    def __init__(
        self,
        weights_path: str | None = None,
        vgg_weight: float = 1.0,
        histogram_weight: float = 1.0,
        cosine_weight: float = 1.0,
        layers: Sequence[str] = DEFAULT_LAYERS,
        bins: int = 64,
        kernel: str = "gaussian",
        bandwidth: float = 1.0,
        distance: str = "chi2",
        offset: float = 1.0 / 255.0,
    ) -> None:
        super().__init__()
        self.weights = {"vgg": vgg_weight, "histogram": histogram_weight, "cosine": cosine_weight}
        for name, weight in self.weights.items():
            if not weight >= 0:
                raise ConfigError(f"combined loss option '{name}_weight' must be >= 0, got {weight}")
        self.vgg = VGGPerceptualLoss(weights_path=weights_path, layers=layers)
        self.histogram = HistogramLoss(bins=bins, kernel=kernel, bandwidth=bandwidth, distance=distance)
        self.cosine = CosineLoss(offset=offset)

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        return (
            self.weights["vgg"] * self.vgg(pred, target_rgb)
            + self.weights["histogram"] * self.histogram(pred, target_rgb)
            + self.weights["cosine"] * self.cosine(pred, target_rgb)
        )
