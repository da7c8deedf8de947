"""Soft colour-histogram loss: matches the global colour distribution, not pixel positions.

A colorizer trained on pixel losses drifts towards desaturated averages; comparing the
per-channel histograms of prediction and target rewards the right palette wherever it lands.
Histograms are made differentiable by letting each value vote into nearby bins through a
kernel. Votes go only to the bins within the kernel's reach (scatter-add), so memory grows
with the pixel count times the reach, not times the number of bins.
"""

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.losses.term import LossTerm

KERNELS = ("gaussian", "triangular")
DISTANCES = ("kl", "chi2")
_EPS = 1e-8
KL_FLOOR = 1e-4
"""Added to both histograms inside KL's logarithm: caps the cost and gradient of an empty bin."""


def soft_histogram(x: Tensor, bins: int, kernel: str = "gaussian", bandwidth: float = 1.0) -> Tensor:
    """Normalised per-channel histograms ``B×C×bins`` of ``x`` (``B×C×H×W``, values in [0,1]).

    ``bandwidth`` is in bin widths: the standard deviation of the Gaussian kernel (cut at
    3 sigma), or the half-width of the triangular one (1 = linear interpolation between the
    two nearest bins). Values outside [0,1] count as 0 or 1.
    """
    batch, channels = x.shape[:2]
    # Position in bin units, so that bin k's centre is at k.
    position = x.float().clamp(0.0, 1.0).flatten(2) * bins - 0.5
    nearest = position.detach().round()
    reach = math.ceil(3.0 * bandwidth) if kernel == "gaussian" else math.ceil(bandwidth)
    histogram = position.new_zeros(batch, channels, bins)
    for step in range(-reach, reach + 1):
        index = nearest + step
        distance = (position - index) / bandwidth
        if kernel == "gaussian":
            vote = torch.exp(-0.5 * distance.square())
        else:
            vote = torch.relu(1.0 - distance.abs())
        inside = (index >= 0) & (index < bins)
        histogram = histogram.scatter_add(2, index.clamp(0, bins - 1).long(), vote * inside)
    return histogram / histogram.sum(dim=2, keepdim=True).clamp_min(_EPS)


def histogram_distance(pred: Tensor, target: Tensor, distance: str) -> Tensor:
    """Mean over images and channels of KL(target ‖ pred) or the chi-squared distance.

    Chi-squared ``Σ (p - t)² / (p + t)`` is bounded (at most 2) with bounded gradients; KL
    grows without limit where the prediction leaves a bin of the target empty, hence
    :data:`KL_FLOOR`.
    """
    if distance == "kl":
        per_channel = (target * (torch.log(target + KL_FLOOR) - torch.log(pred + KL_FLOOR))).sum(dim=-1)
    else:
        per_channel = ((pred - target).square() / (pred + target + _EPS)).sum(dim=-1)
    return per_channel.mean()


class HistogramLoss(LossTerm):
    """Distance between soft per-channel RGB histograms of prediction and target, per image.

    Chi-squared is the default: it stays bounded early in training, when the predicted
    palette misses whole ranges of the target's.
    """

    def __init__(
        self, bins: int = 64, kernel: str = "gaussian", bandwidth: float = 1.0, distance: str = "chi2"
    ) -> None:
        super().__init__()
        if kernel not in KERNELS:
            raise ConfigError(f"histogram loss option 'kernel' is '{kernel}'; allowed: {', '.join(KERNELS)}")
        if distance not in DISTANCES:
            raise ConfigError(f"histogram loss option 'distance' is '{distance}'; allowed: {', '.join(DISTANCES)}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ConfigError(f"histogram loss option 'bins' must be an integer >= 2, got {bins!r}")
        if not (math.isfinite(bandwidth) and bandwidth > 0):
            raise ConfigError(f"histogram loss option 'bandwidth' must be > 0 (in bin widths), got {bandwidth}")
        self.bins = bins
        self.kernel = kernel
        self.bandwidth = float(bandwidth)
        self.distance = distance

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        predicted = soft_histogram(pred["rgb"], self.bins, self.kernel, self.bandwidth)
        with torch.no_grad():
            true = soft_histogram(target_rgb, self.bins, self.kernel, self.bandwidth)
        return histogram_distance(predicted, true, self.distance)
