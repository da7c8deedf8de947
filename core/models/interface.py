"""The contract every colorization model keeps: what the colorizer, trainer, exporters and FLOP
counter may rely on, and all they rely on.

- ``forward(nir)``: NIR ``B×1×H×W`` in [0, 1] to RGB ``B×3×H×W`` in [0, 1], any ``H×W``, each
  image independent of the others in the batch, no CPU round trip.
- ``forward_with_aux(nir)``: ``{"rgb": ..., **outputs only training reads}`` (ColorMamba's HSV
  map, the LAB models' a/b); the trainer's losses name what they need.
- ``pad_multiple``: the model pads its input (:func:`pad_with_margin`) by at least
  ``EDGE_MARGIN`` up to a multiple of this. ``multiple``: the period of its stride pattern in
  the frame (``pad_multiple`` or a multiple of it); strided stages are not shift-invariant, so
  the colorizer places tiles at multiples of it, with :meth:`pad_offset`, to give every tile the
  frame's own stride pattern.
- ``config``: the full constructor arguments with ``arch``, set by
  :func:`~nirstream.core.models.registry.build_model`; weights files store it.
- ``load_pretrained()`` and ``pretrained_parameters()``: a model with a pretrained part (an
  ImageNet encoder) loads its weights when a run starts from nothing, and names the parameters
  that train frozen or at a lower rate; the others have none.
- FLOPs: a layer whose work a FLOP counter cannot see (the selective scan's recurrence)
  defines ``uncounted_flops(input_shape)``; :mod:`.cost` adds what every such layer reports.
"""

from abc import ABC, abstractmethod
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

EDGE_MARGIN = 8
"""Pixels of reflected image the network always sees beyond each border."""


class ColorizationModel(nn.Module, ABC):
    """Base of every registered model; see the module docstring for the contract."""

    multiple: int = 1
    config: dict[str, Any]

    @property
    def pad_multiple(self) -> int:
        """What the input is padded to a multiple of; the stride period unless a model pads less."""
        return self.multiple

    @abstractmethod
    def forward(self, nir: Tensor) -> Tensor:
        """NIR ``B×1×H×W`` in [0, 1] to RGB ``B×3×H×W`` in [0, 1]."""

    def forward_with_aux(self, nir: Tensor) -> dict[str, Tensor]:
        """The RGB output and whatever else the model's training losses read."""
        return {"rgb": self(nir)}

    def load_pretrained(self) -> None:
        """Load the pretrained weights a training run from scratch starts from (none by default)."""

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """Parameters that came pretrained and train frozen or at ``optim.encoder_lr_ratio``."""
        return []

    def pad_offset(self, height: int, width: int) -> tuple[int, int]:
        """``(top, left)``: where an ``height×width`` input sits inside the model's padded input."""
        top, _, left, _ = margin_padding(height, width, self.pad_multiple)
        return top, left


def margin_padding(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)``: at least :data:`EDGE_MARGIN` a side, up to a multiple of ``multiple``."""
    pad_h = -(height + 2 * EDGE_MARGIN) % multiple + 2 * EDGE_MARGIN
    pad_w = -(width + 2 * EDGE_MARGIN) % multiple + 2 * EDGE_MARGIN
    return pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2


def pad_with_margin(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad all four sides as :func:`margin_padding` says; the padded image and the original's ``(top, left)``.

    Reflect where the image is large enough, replicate where it is smaller than the padding:
    every image border then looks the same to the network in training (crops of any size) and
    at inference (whole frames, tiles).
    """
    h, w = x.shape[-2:]
    top, bottom, left, right = margin_padding(h, w, multiple)
    mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
    return F.pad(x, (left, right, top, bottom), mode=mode), (top, left)
