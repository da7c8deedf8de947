"""Fast mode: colorize at reduced resolution, restore full-resolution detail from the NIR.

Colour varies slowly and the NIR frame holds the detail, so the model runs on a downscaled
frame and its output is brought back with a guided upsampling (the fast guided filter of
He & Sun, 2015): in every small window of the low-resolution result, each RGB channel is
fitted as a linear function ``a * nir + b`` of the low-resolution NIR; the coefficient maps
are smooth, so they are upsampled bilinearly and applied to the full-resolution NIR. Edges
and texture therefore come from the input frame, colour from the network.
"""

import torch.nn.functional as F
from torch import Tensor


def _box(x: Tensor, radius: int) -> Tensor:
    """Mean over a (2r+1)² window, borders handled by renormalising the window size."""
    size = 2 * radius + 1
    return F.avg_pool2d(x, size, stride=1, padding=radius, count_include_pad=False)


def guided_upsample(rgb_low: Tensor, nir_low: Tensor, nir_full: Tensor, radius: int = 2, eps: float = 1e-3) -> Tensor:
    """Full-resolution RGB ``B×3×H×W`` from a low-resolution result and the NIR at both sizes.

    ``eps`` regularises flat windows (there the fit falls back to the local mean colour);
    ``radius`` is in low-resolution pixels.
    """
    mean_i = _box(nir_low, radius)
    mean_p = _box(rgb_low, radius)
    cov_ip = _box(nir_low * rgb_low, radius) - mean_i * mean_p
    var_i = _box(nir_low * nir_low, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    size = nir_full.shape[-2:]
    a = F.interpolate(_box(a, radius), size=size, mode="bilinear", align_corners=False)
    b = F.interpolate(_box(b, radius), size=size, mode="bilinear", align_corners=False)
    return (a * nir_full + b).clamp(0.0, 1.0)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The size the model sees in fast mode at ``scale``."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def downscale(x: Tensor, scale: float) -> Tensor:
    """Area-average downscaling, which keeps the low-resolution NIR free of aliasing."""
    return F.interpolate(x, size=scaled_size(*x.shape[-2:], scale), mode="area")
