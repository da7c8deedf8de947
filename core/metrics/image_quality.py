"""Full-reference image-quality metrics on the VCIP 2020 NIR colorization protocol.

The challenge scored 8-bit output images against 8-bit ground truth, so every metric here
first rounds both inputs to 8-bit levels (:func:`quantize`) and then works on the 0-255
scale in float64. Each returns one value per image, shape ``(B,)``, on the input's device;
averaging over a dataset is the caller's choice (the challenge averaged per image).
Metrics are evaluation only: they run without autograd.
"""

import math

import pytorch_msssim
import torch
from torch import Tensor

PSNR_CAP_DB = 100.0
"""PSNR of identical images is infinite; it is reported as this cap so dataset means stay finite."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MS_SSIM_MIN_SIDE = (SSIM_WINDOW - 1) * 2**4
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
    """SSIM with an 11-tap Gaussian window (sigma 1.5) on 0-255 data, mean over channels."""
    pred8, target8 = _levels(pred, target)
    short_side = min(pred8.shape[-2:])
    if short_side < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW} px on the short side, got "
            f"{pred8.shape[-2]}×{pred8.shape[-1]}"
        )
    return pytorch_msssim.ssim(
        pred8, target8, data_range=255, size_average=False, win_size=SSIM_WINDOW, win_sigma=SSIM_SIGMA
    )


@torch.no_grad()
def ms_ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Five-scale MS-SSIM on 0-255 data; needs more than 160 px on the short side."""
    pred8, target8 = _levels(pred, target)
    if min(pred8.shape[-2:]) <= MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"MS-SSIM needs images larger than {MS_SSIM_MIN_SIDE} px on the short side, got "
            f"{pred8.shape[-2]}×{pred8.shape[-1]}"
        )
    return pytorch_msssim.ms_ssim(
        pred8, target8, data_range=255, size_average=False, win_size=SSIM_WINDOW, win_sigma=SSIM_SIGMA
    )


@torch.no_grad()
def angular_error(pred: Tensor, target: Tensor) -> Tensor:
    """Mean angle in degrees between predicted and true RGB vectors, per image.

    Computed as ``atan2(|p × t|, p · t)``, which is accurate near 0° (unlike ``acos``) and
    gives 0° where either vector is black: a black pixel has no colour direction, the same
    convention as evaluation code that maps the undefined angle to 0.
    """
    pred8, target8 = _levels(pred, target)
    cross = torch.linalg.cross(pred8, target8, dim=1).norm(dim=1)
    dot = (pred8 * target8).sum(dim=1)
    angles = torch.atan2(cross, dot) * (180.0 / math.pi)
    return angles.flatten(1).mean(dim=1)


def image_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """The three metrics the VCIP 2020 challenge reported: ``psnr``, ``ssim``, ``ae`` (degrees)."""
    return {"psnr": psnr(pred, target), "ssim": ssim(pred, target), "ae": angular_error(pred, target)}
