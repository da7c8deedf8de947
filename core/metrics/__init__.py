"""Image-quality metrics on the VCIP 2020 protocol (8-bit output against 8-bit ground truth), and CDC for video."""

from nirstream.core.metrics.image_quality import (
    PSNR_CAP_DB,
    angular_error,
    colorfulness,
    image_metrics,
    ms_ssim,
    psnr,
    quantize,
    ssim,
)
from nirstream.core.metrics.temporal import SCENE_CUT, CDCMeter, SceneCuts, cdc, colour_histograms, js_divergence

__all__ = [
    "PSNR_CAP_DB",
    "SCENE_CUT",
    "CDCMeter",
    "SceneCuts",
    "angular_error",
    "cdc",
    "colorfulness",
    "colour_histograms",
    "image_metrics",
    "js_divergence",
    "ms_ssim",
    "psnr",
    "quantize",
    "ssim",
]
