"""MS-SSIM loss: structure and contrast across five scales, the perceptual fidelity term.

The definition is pytorch_msssim's ``ms_ssim`` (Gaussian window, valid filtering, 2×2 average
pooling between scales, the five standard scale weights), and a test holds the two equal. The
Gaussian filtering is computed differently: as two matrix products with banded matrices instead
of pytorch_msssim's grouped convolutions, which oneDNN runs about 3x slower forward and
backward on the CPU, where this term was a quarter of a training step. pytorch_msssim needs a
short side above ``(win_size - 1) * 16`` (160 px for the usual 11-tap window); for smaller
crops the window shrinks to the largest odd size that fits, rather than failing.
"""

from collections.abc import Mapping
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.losses.term import LossTerm

SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Wang, Simoncelli and Bovik (2003), as pytorch_msssim uses them."""
K1, K2 = 0.01, 0.03


def fitting_window(short_side: int, win_size: int) -> int:
    """The largest odd window up to ``win_size`` that five scales leave room for (0: none)."""
    for size in range(win_size, 2, -2):
        if short_side > (size - 1) * 16:
            return size
    return 0


def ms_ssim(x: Tensor, y: Tensor, win_size: int = 11, win_sigma: float = 1.5, data_range: float = 1.0) -> Tensor:
    """Mean MS-SSIM of two ``B×C×H×W`` batches, as ``pytorch_msssim.ms_ssim(x, y)`` defines it."""
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    weights = x.new_tensor(SCALE_WEIGHTS).view(-1, 1, 1)
    levels = []
    for level in range(len(SCALE_WEIGHTS)):
        if level:
            padding = [side % 2 for side in x.shape[-2:]]
            x, y = F.avg_pool2d(x, 2, padding=padding), F.avg_pool2d(y, 2, padding=padding)
        mu_x, mu_y = _blur(x, win_size, win_sigma), _blur(y, win_size, win_sigma)
        mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
        var_x = _blur(x * x, win_size, win_sigma) - mu_xx
        var_y = _blur(y * y, win_size, win_sigma) - mu_yy
        cov = _blur(x * y, win_size, win_sigma) - mu_xy
        contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
        if level < len(SCALE_WEIGHTS) - 1:
            levels.append(torch.relu(contrast_structure.flatten(2).mean(-1)))
        else:
            luminance = (2 * mu_xy + c1) / (mu_xx + mu_yy + c1)
            levels.append(torch.relu((luminance * contrast_structure).flatten(2).mean(-1)))
    return torch.prod(torch.stack(levels) ** weights, dim=0).mean()


def _blur(image: Tensor, size: int, sigma: float) -> Tensor:
    """Valid Gaussian filtering along both image axes, as two products with banded matrices."""
    height, width = image.shape[-2:]
    along_rows = image @ _band(width, size, sigma, image.dtype, image.device)
    return (along_rows.transpose(-1, -2) @ _band(height, size, sigma, image.dtype, image.device)).transpose(-1, -2)


@lru_cache(maxsize=64)
def _band(length: int, size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``length × (length - size + 1)``: column j holds the normalised Gaussian at rows j..j+size-1."""
    taps = torch.arange(size, dtype=torch.float64) - size // 2
    gauss = torch.exp(-(taps**2) / (2 * sigma**2))
    gauss /= gauss.sum()
    out = length - size + 1
    band = torch.zeros(length, out, dtype=torch.float64)
    columns = torch.arange(out)
    for k in range(size):
        band[columns + k, columns] = gauss[k]
    return band.to(dtype=dtype, device=device)


class MSSSIMLoss(LossTerm):
    """``1 - MS-SSIM`` on RGB in [0,1] (data range 1), mean over images."""

    def __init__(self, win_size: int = 11, win_sigma: float = 1.5) -> None:
        super().__init__()
        if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
            raise ConfigError(f"ms_ssim loss option 'win_size' must be an odd integer >= 3, got {win_size!r}")
        self.win_size = win_size
        self.win_sigma = win_sigma

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        x = pred["rgb"]
        window = fitting_window(min(x.shape[-2:]), self.win_size)
        if not window:
            raise ConfigError(f"ms_ssim loss needs crops larger than 32 px, got {x.shape[-2]}×{x.shape[-1]}")
        return 1.0 - ms_ssim(x.float(), target_rgb.float(), window, self.win_sigma)
