"""MS-SSIM loss: structure and contrast across scales, the perceptual fidelity term.

pytorch_msssim's ``ms_ssim`` asserts a short side above ``(win_size - 1) · 16`` (160 px for
the usual 11-tap window) whatever the number of scales, so a 128 px training crop would fail
even with fewer weights. This term runs the same per-scale SSIM (pytorch_msssim's own
``_ssim``, same window, constants and padding) and uses only the scales whose image still
holds the window, with the standard scale weights renormalised over the scales used. On
crops big enough for five scales it equals ``1 - pytorch_msssim.ms_ssim``.
"""

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim
from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.losses.term import LossTerm

SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Wang, Simoncelli and Bovik (2003), finest scale first; pytorch_msssim's default."""

SSIM_CONSTANTS = (0.01, 0.03)
_FLOOR = 1e-6  # keeps x**w differentiable where a contrast term is 0 or negative


def usable_scales(short_side: int, win_size: int, max_scales: int) -> int:
    """How many scales fit: each halving (rounded up, as pytorch_msssim pads) must hold the window."""
    scales, side = 0, short_side
    while scales < max_scales and side >= win_size:
        scales += 1
        side = (side + 1) // 2
    return scales


class MSSSIMLoss(LossTerm):
    """``1 - MS-SSIM`` on RGB in [0,1] (data range 1), mean over images and channels."""

    def __init__(self, scales: int = len(SCALE_WEIGHTS), win_size: int = 11, win_sigma: float = 1.5) -> None:
        super().__init__()
        if isinstance(scales, bool) or not isinstance(scales, int) or not 1 <= scales <= len(SCALE_WEIGHTS):
            raise ConfigError(f"ms_ssim loss option 'scales' must be an integer from 1 to 5, got {scales!r}")
        if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
            raise ConfigError(f"ms_ssim loss option 'win_size' must be an odd integer >= 3, got {win_size!r}")
        self.scales = scales
        self.win_size = win_size
        window = _fspecial_gauss_1d(win_size, win_sigma).repeat(3, 1, 1, 1)  # one per RGB channel
        self.register_buffer("window", window, persistent=False)

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        x, y = pred["rgb"], target_rgb
        scales = usable_scales(min(x.shape[-2:]), self.win_size, self.scales)
        if scales == 0:
            raise ConfigError(
                f"ms_ssim loss needs crops of at least {self.win_size} px, got {x.shape[-2]}×{x.shape[-1]}"
            )
        weights = x.new_tensor(SCALE_WEIGHTS[:scales])
        weights = weights / weights.sum()
        factors = []
        for scale in range(scales):
            ssim_per_channel, contrast_structure = _ssim(
                x, y, data_range=1.0, win=self.window, size_average=False, K=SSIM_CONSTANTS
            )
            if scale < scales - 1:
                factors.append(contrast_structure)
                padding = [side % 2 for side in x.shape[2:]]
                x = F.avg_pool2d(x, kernel_size=2, padding=padding)
                y = F.avg_pool2d(y, kernel_size=2, padding=padding)
        factors.append(ssim_per_channel)
        stacked = torch.stack(factors).clamp_min(_FLOOR)  # scales × B × C
        ms_ssim = torch.prod(stacked ** weights.view(-1, 1, 1), dim=0)
        return 1.0 - ms_ssim.mean()
