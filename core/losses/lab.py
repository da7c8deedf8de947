"""Chroma losses in CIELAB, for the LAB colorizers that predict a and b beside the NIR's L."""

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from nirstream.core.colorspace import AB_SCALE, rgb_to_lab
from nirstream.core.losses.term import LossTerm


def target_ab(target_rgb: Tensor) -> Tensor:
    """The target's a and b, normalised exactly as the models predict them (no offset)."""
    with torch.no_grad():
        return rgb_to_lab(target_rgb)[:, 1:] / AB_SCALE


class ABMSELoss(LossTerm):
    """Mean squared error between predicted and true a/b (each divided by ``AB_SCALE``)."""

    needs = ("ab",)

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        return F.mse_loss(pred["ab"], target_ab(target_rgb))


class ABL1Loss(LossTerm):
    """Mean absolute error between predicted and true a/b: pix2pix's L1 term, in Lab."""

    needs = ("ab",)

    def forward(self, pred: Mapping[str, Tensor], target_rgb: Tensor) -> Tensor:
        return F.l1_loss(pred["ab"], target_ab(target_rgb))
