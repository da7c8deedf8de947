"""Full-reference image-quality metrics on the VCIP 2020 NIR colorization protocol.

The challenge scored 8-bit output images against 8-bit ground truth, so every metric here
first rounds both inputs to 8-bit levels (:func:`quantize`) and then works in float64.
SSIM and angular error follow the evaluation code published with ColorMamba
(``tools/tools.py`` in AlexYangxx/ColorMamba: scikit-image's ``structural_similarity``
defaults and ``arccos(p.t / (|p||t| + 1e-6))``), so figures compare with the published ones. Each returns one value per image, shape ``(B,)``, on the input's device;
averaging over a dataset is the caller's choice (the challenge averaged per image).
Metrics are evaluation only: they run without autograd.
"""

import pytorch_msssim
import torch
import torch.nn.functional as F
from torch import Tensor

from nirstream.core.errors import DataError

AE_EPS = 1e-6
PSNR_CAP_DB = 100.0
"""PSNR of identical images is infinite; it is reported as this cap so dataset means stay finite."""

SSIM_WINDOW = 7
"""scikit-image's default: a 7×7 uniform window with the sample covariance (N / (N - 1))."""
MS_SSIM_WINDOW = 11
MS_SSIM_SIGMA = 1.5
MS_SSIM_MIN_SIDE = (MS_SSIM_WINDOW - 1) * 2**4
"""pytorch_msssim needs the short side above this (four halvings must still hold the window)."""


def quantize(x: Tensor) -> Tensor:
    """Float image in [0,1] to its 8-bit levels ``round(clamp(x, 0, 1) * 255)``, still float."""
    return torch.round(torch.clamp(x, 0.0, 1.0) * 255.0)


def _levels(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() != 4 or pred.shape[1] != 3:
        raise ValueError(f"metrics expect B×3×H×W RGB images, got shape {tuple(pred.shape)}")
    return quantize(pred).double(), quantize(target).double()


@torch.no_grad()
def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB (peak 255), capped at :data:`PSNR_CAP_DB`."""
    pred8, target8 = _levels(pred, target)
    mse = (pred8 - target8).pow(2).flatten(1).mean(dim=1)
    return torch.clamp(10.0 * torch.log10(255.0**2 / mse), max=PSNR_CAP_DB)


@torch.no_grad()
def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM as ``skimage.metrics.structural_similarity(data_range=1, channel_axis=-1)`` computes it.

    A 7×7 uniform window with the sample covariance, K1 0.01, K2 0.03, on the 8-bit levels
    scaled to [0, 1]; the map's mean over the window-valid interior, then over channels.
    """
    pred8, target8 = _levels(pred, target)
    if min(pred8.shape[-2:]) < SSIM_WINDOW:
        raise DataError(
            f"SSIM needs images of at least {SSIM_WINDOW} px on the short side, got "
            f"{pred8.shape[-2]}×{pred8.shape[-1]}"
        )
    x, y = pred8 / 255.0, target8 / 255.0

    def mean(t: Tensor) -> Tensor:  # window means where the whole window fits (skimage crops the rest)
        return F.avg_pool2d(t, SSIM_WINDOW, stride=1)

    ux, uy = mean(x), mean(y)
    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(2).mean(dim=2).mean(dim=1)


@torch.no_grad()
def ms_ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Five-scale MS-SSIM on 0-255 data; needs more than 160 px on the short side."""
    pred8, target8 = _levels(pred, target)
    if min(pred8.shape[-2:]) <= MS_SSIM_MIN_SIDE:
        raise DataError(
            f"MS-SSIM needs images larger than {MS_SSIM_MIN_SIDE} px on the short side, got "
            f"{pred8.shape[-2]}×{pred8.shape[-1]}"
        )
    return pytorch_msssim.ms_ssim(
        pred8, target8, data_range=255, size_average=False, win_size=MS_SSIM_WINDOW, win_sigma=MS_SSIM_SIGMA
    )


@torch.no_grad()
def angular_error(pred: Tensor, target: Tensor) -> Tensor:
    """Mean angle in degrees between predicted and true RGB vectors, per image.

    ``arccos(p.t / (|p||t| + 1e-6))`` on the 8-bit levels scaled to [0, 1], as ColorMamba's
    evaluation computes it: a pixel that is black in either image has no colour direction and
    scores 90°, which penalises predicting black.
    """
    pred8, target8 = _levels(pred, target)
    p, t = pred8 / 255.0, target8 / 255.0
    cosine = (p * t).sum(dim=1) / (p.norm(dim=1) * t.norm(dim=1) + AE_EPS)
    angles = torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0)))
    return angles.flatten(1).mean(dim=1)


@torch.no_grad()
def colorfulness(image: Tensor) -> Tensor:
    """Hasler and Süsstrunk's (2003) colourfulness of each image, on its 8-bit levels.

    ``sqrt(var(rg) + var(yb)) + 0.3 * sqrt(mean(rg)² + mean(yb)²)`` with ``rg = R - G`` and
    ``yb = (R + G) / 2 - B``: 0 for a gray image, about 30 for a typical colour photograph. A
    colorizer that plays safe with muted colour scores well below its ground truth.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"colorfulness expects B×3×H×W RGB images, got shape {tuple(image.shape)}")
    r, g, b = quantize(image).double().flatten(2).unbind(dim=1)
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    return spread + 0.3 * torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)


def image_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """The three metrics the VCIP 2020 challenge reported: ``psnr``, ``ssim``, ``ae`` (degrees),
    and the colourfulness of the prediction and of the ground truth beside them."""
    return {
        "psnr": psnr(pred, target),
        "ssim": ssim(pred, target),
        "ae": angular_error(pred, target),
        "colorfulness": colorfulness(pred),
        "colorfulness_truth": colorfulness(target),
    }
