"""Colour-direction terms: errors in hue and chromaticity that pixel distances under-weight."""

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from nirstream.core.colorspace import rgb_to_hsv
from nirstream.core.errors import ConfigError
from nirstream.core.losses.term import LossTerm

COSINE_EPS = 1e-8
"""Floor on the product of the norms, as in ``F.cosine_similarity``."""


class CosineLoss(LossTerm):
    """``1 - cos`` of the angle between predicted and true RGB vectors, mean over pixels.

    Brightness-invariant, so it penalises wrong hue and saturation only: the training
    counterpart of the angular-error metric. A black pixel has no direction; ``offset`` adds
    a small gray component to both vectors so identical blacks score 0 and the gradient near
    black stays bounded (about ``1 / offset``). The default is one 8-bit level.
    """

    def __init__(self, offset: float = 1.0 / 255.0) -> None:
        super().__init__()
        if not offset > 0:
            raise ConfigError(f"cosine loss option 'offset' must be > 0, got {offset}")
        self.offset = float(offset)

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        # Sums over the three channels rather than F.cosine_similarity: the same quantity, but
        # its vector norm across the channel stride took 50x longer on the CPU, a quarter of a
        # training step (benchmarks/train_speed.py).
        p, t = pred["rgb"] + self.offset, target_rgb + self.offset
        dot = (p * t).sum(dim=1)
        norms = torch.sqrt(((p * p).sum(dim=1) * (t * t).sum(dim=1)).clamp_min(COSINE_EPS**2))
        return 1.0 - (dot / norms).mean()


class HSVLoss(LossTerm):
    """L1 between ColorMamba's HSV-branch output and the target converted to HSV.

    Hue is circular, so its error is the shorter way round the colour circle (scaled so
    opposite hues cost 1). Hue is meaningless on gray and dark pixels, so the hue error is
    weighted by the target's chroma ``s·v`` (0 on grays, 1 on pure colours): the branch is
    not pushed towards the arbitrary hue 0 that gray pixels convert to.
    """

    needs = ("hsv",)

    def __init__(self, hue_weight: float = 1.0) -> None:
        super().__init__()
        if not (math.isfinite(hue_weight) and hue_weight >= 0):
            raise ConfigError(f"hsv loss option 'hue_weight' must be a finite number >= 0, got {hue_weight}")
        self.hue_weight = float(hue_weight)

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        hue, saturation, value = pred["hsv"].unbind(dim=1)
        true_hue, true_saturation, true_value = rgb_to_hsv(target_rgb).unbind(dim=1)
        turn = torch.remainder(hue - true_hue, 1.0)
        hue_error = 2.0 * torch.minimum(turn, 1.0 - turn)
        chroma = true_saturation * true_value
        return (
            self.hue_weight * (chroma * hue_error).mean()
            + (saturation - true_saturation).abs().mean()
            + (value - true_value).abs().mean()
        )


class ColourfulnessLoss(LossTerm):
    """``|C(pred) - C(target)|`` per image, mean over the batch, with C Hasler and Süsstrunk's
    colourfulness on the [0, 1] scale (about 0.12 for a typical photograph).

    Pixel losses reward the mean of the plausible colours, which is muted: the trained model's
    outputs are a third less colourful than their ground truth. This term asks for the
    image's overall colour spread and cast, not for any pixel's colour, so it counters the
    muting without asking for a certainty the model does not have.
    """

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        return (_colourfulness(pred["rgb"]) - _colourfulness(target_rgb)).abs().mean()


def _colourfulness(rgb: Tensor) -> Tensor:
    r, g, b = rgb.flatten(2).unbind(dim=1)
    rg, yb = r - g, 0.5 * (r + g) - b
    eps = COSINE_EPS  # keeps the square roots' gradients finite on gray images
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False) + eps)
    return spread + 0.3 * torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2 + eps)
