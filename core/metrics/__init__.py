"""Image-quality metrics on the VCIP 2020 protocol: 8-bit output against 8-bit ground truth."""

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

__all__ = ["PSNR_CAP_DB", "angular_error", "colorfulness", "image_metrics", "ms_ssim", "psnr", "quantize", "ssim"]
