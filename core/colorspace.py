"""Differentiable colour-space conversions on ``B×3×H×W`` tensors.

Losses compare colours in spaces where the error means something (hue as an angle,
saturation, value), and ColorMamba's HSV branch predicts HSV directly, so these conversions
run inside the autograd graph. Where a quantity is undefined (hue of a gray pixel,
saturation of black) it is set to 0 through safe denominators, so gradients stay finite.
"""

import torch
from torch import Tensor


def _check_image(x: Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be B×3×H×W, got shape {tuple(x.shape)}")


def rgb_to_hsv(rgb: Tensor) -> Tensor:
    """RGB in [0,1] to HSV in [0,1] with hue in [0,1) (a fraction of the colour circle).

    Gray pixels (max == min) get hue 0 and black pixels saturation 0, as in ``colorsys``.
    """
    _check_image(rgb, "rgb")
    r, g, b = rgb.unbind(dim=1)
    value, max_channel = rgb.max(dim=1)
    minimum = rgb.min(dim=1).values
    chroma = value - minimum

    is_colour = chroma > 0
    safe_chroma = torch.where(is_colour, chroma, torch.ones_like(chroma))
    # Position on the hexagon, in sixths of the circle, from whichever channel is largest.
    sextant = torch.where(
        max_channel == 0,
        (g - b) / safe_chroma,
        torch.where(max_channel == 1, (b - r) / safe_chroma + 2.0, (r - g) / safe_chroma + 4.0),
    )
    hue = torch.remainder(sextant, 6.0) / 6.0
    # Float rounding can land a tiny negative angle exactly on 1.0; fold it onto 0.
    hue = torch.where(is_colour & (hue < 1.0), hue, torch.zeros_like(hue))

    is_lit = value > 0
    safe_value = torch.where(is_lit, value, torch.ones_like(value))
    saturation = torch.where(is_lit, chroma / safe_value, torch.zeros_like(value))
    return torch.stack((hue, saturation, value), dim=1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """HSV in [0,1] (hue a fraction of the circle, taken modulo 1) to RGB in [0,1].

    Uses the closed form ``c = v - v·s·clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6h) mod 6`` and ``n = 5, 3, 1`` for R, G, B: piecewise linear, no branches.
    """
    _check_image(hsv, "hsv")
    hue, saturation, value = hsv.unbind(dim=1)
    offsets = torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype, device=hsv.device).view(1, 3, 1, 1)
    k = torch.remainder(offsets + 6.0 * hue.unsqueeze(1), 6.0)
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return value.unsqueeze(1) * (1.0 - saturation.unsqueeze(1) * ramp)
