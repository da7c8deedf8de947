"""MS-SSIM loss: structure and contrast across five scales, the perceptual fidelity term.

Computed by pytorch_msssim. Its ``ms_ssim`` needs a short side above ``(win_size - 1) * 16``
(160 px for the usual 11-tap window: ColorMamba's 200 px crops fit). For smaller crops the
window shrinks to the largest odd size that fits, rather than failing; on crops big enough
it is exactly ``1 - pytorch_msssim.ms_ssim``.
"""

from collections.abc import Mapping

import pytorch_msssim
from torch import Tensor

from nirstream.core.errors import ConfigError
from nirstream.core.losses.term import LossTerm


def fitting_window(short_side: int, win_size: int) -> int:
    """The largest odd window up to ``win_size`` that pytorch_msssim accepts for this side (0: none)."""
    for size in range(win_size, 2, -2):
        if short_side > (size - 1) * 16:
            return size
    return 0


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
        value = pytorch_msssim.ms_ssim(
            x.float(), target_rgb.float(), data_range=1.0, win_size=window, win_sigma=self.win_sigma
        )
        return 1.0 - value
