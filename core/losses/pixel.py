"""Per-pixel RGB distances: the plain fidelity terms every colorizer starts from."""

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor

from nirstream.core.losses.term import LossTerm


class PixelMSELoss(LossTerm):
    """Mean squared error over all pixels and channels: what PSNR measures."""

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        return F.mse_loss(pred["rgb"], target_rgb)


class PixelL1Loss(LossTerm):
    """Mean absolute error: less blurring than MSE where the colour is ambiguous."""

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        return F.l1_loss(pred["rgb"], target_rgb)
