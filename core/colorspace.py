"""Differentiable colour-space conversions on ``B×3×H×W`` tensors.

Losses compare colours in spaces where the error means something (hue as an angle,
saturation, value), and ColorMamba's HSV branch predicts HSV directly, so these conversions
run inside the autograd graph. Where a quantity is undefined (hue of a gray pixel,
saturation of black) it is set to 0 through safe denominators, so gradients stay finite.
"""

import torch
from torch import Tensor

LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 luma weights of R, G and B."""


def _check_image(x: Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be B×3×H×W, got shape {tuple(x.shape)}")


def luma(rgb: Tensor) -> Tensor:
    """Rec. 601 luma ``B×1×H×W`` of RGB ``B×3×H×W``."""
    _check_image(rgb, "rgb")
    return LUMA[0] * rgb[:, 0:1] + LUMA[1] * rgb[:, 1:2] + LUMA[2] * rgb[:, 2:3]


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


# CIELAB (CIE 1976 L*a*b*) from sRGB under the D65 white point, with OpenCV's matrix and white.
# Plain Python constants: no tensor is built per call (no host-to-device copy on CUDA), and the
# arithmetic exports to ONNX and runs in any dtype (linalg.inv does neither).
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_XYZ_TO_RGB = (  # the inverse of _RGB_TO_XYZ
    (3.240481343, -1.537151516, -0.498536326),
    (-0.969254950, 1.875990001, 0.041555927),
    (0.055646639, -0.204041338, 1.057311070),
)
_D65_WHITE = (0.950456, 1.0, 1.088754)  # XYZ of the reference white; scaling by it makes white (1, 0, 0) in Lab
_LAB_EPSILON = (6.0 / 29.0) ** 3  # where the cube-root law hands over to the linear segment
AB_SCALE = 128.0
"""a and b divided by this lie in about [-1, 1] for any sRGB colour (b reaches -108, a 98).

Models predict ``ab / AB_SCALE`` and the data side must be normalised with the same constant
and **no offset**: a gray pixel is a = b = 0, so its normalised value must be 0 too. Mixing
conventions (``(ab + 128) / 255`` on one side, ``ab / 128`` on the other) shifts every
prediction towards +a, +b, the well-known red cast of LAB colorizers.
"""


def _mix(rows: tuple, x: Tensor, scale: tuple = (1.0, 1.0, 1.0)) -> Tensor:
    """``rows`` (3×3) times the channels of ``x`` (``B×3×H×W``), output channel i divided by ``scale[i]``."""
    channels = x.unbind(dim=1)
    return torch.stack(
        [sum(w * c for w, c in zip(row, channels)) / s for row, s in zip(rows, scale)], dim=1
    )


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0,1] to CIELAB: L in [0, 100], a and b in about [-128, 127]; differentiable.

    Inputs outside [0, 1] are clamped first (sRGB's transfer curve is defined on [0, 1]).
    """
    _check_image(rgb, "rgb")
    c = rgb.clamp(0.0, 1.0)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = _mix(_RGB_TO_XYZ, linear, scale=_D65_WHITE)
    # clamp_min keeps the cube root's gradient finite in the branch torch.where discards.
    f = torch.where(t > _LAB_EPSILON, t.clamp_min(_LAB_EPSILON) ** (1.0 / 3.0), t / (3 * (6 / 29) ** 2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """CIELAB to sRGB, the inverse of :func:`rgb_to_lab`; differentiable, not clamped.

    Lab colours outside the sRGB gamut come back outside [0, 1]: clamp them for display.
    """
    _check_image(lab, "lab")
    lightness, a, b = lab.unbind(dim=1)
    fy = (lightness + 16.0) / 116.0
    f = torch.stack((fy + a / 500.0, fy, fy - b / 200.0), dim=1)
    delta = 6.0 / 29.0
    t = torch.where(f > delta, f**3, 3 * delta**2 * (f - 4.0 / 29.0))
    xyz = torch.stack([channel * white for channel, white in zip(t.unbind(dim=1), _D65_WHITE)], dim=1)
    linear = _mix(_XYZ_TO_RGB, xyz)
    return torch.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * linear.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055
    )


def nir_ab_to_rgb(nir: Tensor, ab: Tensor) -> Tensor:
    """The LAB colorizers' output: the NIR frame (``B×1×H×W`` in [0,1]) as L, normalised ``ab`` as colour.

    ``ab`` is ``B×2×H×W`` divided by :data:`AB_SCALE`; the result is RGB clamped to [0, 1].
    """
    lab = torch.cat((nir * 100.0, ab * AB_SCALE), dim=1)
    return lab_to_rgb(lab).clamp(0.0, 1.0)
