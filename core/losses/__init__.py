"""Training losses, composed and weighted from the YAML ``loss:`` mapping (see :mod:`composite`).

Adversarial training is separate: the trainer pairs a
:class:`~nirstream.core.models.patchgan.PatchGANDiscriminator` with
:func:`lsgan_d_loss` / :func:`lsgan_g_loss`.
"""

from nirstream.core.losses.adversarial import lsgan_d_loss, lsgan_g_loss
from nirstream.core.losses.composite import LOSS_TERMS, CompositeLoss, build_loss
from nirstream.core.losses.term import LossTerm

__all__ = ["LOSS_TERMS", "CompositeLoss", "LossTerm", "build_loss", "lsgan_d_loss", "lsgan_g_loss"]
