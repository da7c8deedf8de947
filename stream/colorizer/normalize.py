"""NIR normalisation: raw uint8/uint16 sensor values to float [0, 1] on the device.

The colorizer copies the raw integer frame to the device and normalises there: a uint8 frame
is a quarter of the bytes of its float32 version, a uint16 frame half. Fixed levels match how
the models were trained (black 0, white the dtype's maximum); auto-levels stretch each frame
between two percentiles, for sensors whose useful range is a small part of 16 bits.

Percentiles come from a histogram of the integer values (``bincount``, 256 or 65536 bins per
image): exact for integer input, linear in the pixel count, and free of ``torch.quantile``'s
sort and input-size limit.
"""

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from nirstream.core.errors import ConfigError

DTYPE_MAX = {torch.uint8: 255, torch.uint16: 65535}
"""Full-scale value of each raw NIR dtype."""


@dataclass
class Levels:
    """How raw NIR values map to [0, 1].

    ``fixed``: ``black`` maps to 0 and ``white`` to 1, both in the input's units (None means 0
    and the dtype's maximum, the models' training convention). ``auto``: per frame, the
    ``low_pct`` and ``high_pct`` percentiles of its values. Values outside are clipped.
    """

    mode: Literal["fixed", "auto"] = "fixed"
    black: float | None = None
    white: float | None = None
    low_pct: float = 0.5
    high_pct: float = 99.5

    def __post_init__(self) -> None:
        if self.mode not in ("fixed", "auto"):
            raise ConfigError(f"levels.mode must be 'fixed' or 'auto', got {self.mode!r}")
        if self.black is not None and self.white is not None and self.white <= self.black:
            raise ConfigError(f"levels.white ({self.white}) must be above levels.black ({self.black})")
        if not 0.0 <= self.low_pct < self.high_pct <= 100.0:
            raise ConfigError(
                f"levels need 0 <= low_pct < high_pct <= 100, got {self.low_pct} and {self.high_pct}"
            )


def normalize(raw: Tensor, levels: Levels) -> Tensor:
    """``raw`` (``H×W`` or ``B×H×W``, uint8 or uint16) to float32 ``B×1×H×W`` in [0, 1].

    Auto-levels are computed per image. A flat frame (white level equal to black) maps to 0
    rather than dividing by zero: the span is at least one input unit.
    """
    if raw.dtype not in DTYPE_MAX:
        raise TypeError(f"NIR frames must be uint8 or uint16, got {raw.dtype}")
    if raw.dim() == 2:
        raw = raw.unsqueeze(0)
    full_scale = DTYPE_MAX[raw.dtype]
    x = raw.unsqueeze(1).float()
    if levels.mode == "auto":
        black, white = percentiles(raw, levels.low_pct, levels.high_pct)
        black, white = black.view(-1, 1, 1, 1), white.view(-1, 1, 1, 1)
        return ((x - black) / (white - black).clamp_min(1.0)).clamp_(0.0, 1.0)
    # Python scalars, not device tensors: no host-to-device copy for constants.
    black = 0.0 if levels.black is None else float(levels.black)
    white = float(full_scale) if levels.white is None else float(levels.white)
    return ((x - black) * (1.0 / max(white - black, 1.0))).clamp_(0.0, 1.0)


def percentiles(raw: Tensor, low_pct: float, high_pct: float) -> tuple[Tensor, Tensor]:
    """Per-image ``low_pct`` and ``high_pct`` percentiles of ``B×H×W`` integer images, as float32 ``B``.

    The value ``v`` returned for ``q`` is the smallest with at least ``q`` percent of the pixels
    at or below it (numpy's ``inverted_cdf``), found on the cumulative histogram without
    leaving the device.
    """
    bins = DTYPE_MAX[raw.dtype] + 1
    batch = raw.shape[0]
    flat = raw.reshape(batch, -1).to(torch.int64)
    offsets = torch.arange(batch, device=raw.device).unsqueeze(1) * bins
    hist = torch.bincount((flat + offsets).flatten(), minlength=batch * bins).view(batch, bins)
    cdf = hist.cumsum(dim=1)
    count = flat.shape[1]
    ranks = [max(math.ceil(q / 100.0 * count), 1) for q in (low_pct, high_pct)]
    # The first bin whose cumulative count reaches the rank = the number of bins below it.
    low, high = ((cdf < rank).sum(dim=1).clamp_max(bins - 1).float() for rank in ranks)
    return low, high
