"""Where a training crop lands in an image larger than the crop.

A uniformly placed crop in a high-resolution landscape is often plain sky or haze: a patch with
nothing to colorize that teaches the model only the mean sky colour. :class:`PatchSampler`
prefers crops whose NIR has texture.
"""

from dataclasses import dataclass

import torch

from nirstream.core.errors import ConfigError


def random_box(
    height: int, width: int, size: int, generator: torch.Generator | None = None
) -> tuple[int, int]:
    """The top-left corner of a ``size``×``size`` box placed uniformly inside ``height``×``width``."""
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    return top, left


@dataclass(frozen=True)
class PatchSampler:
    """Place crops where the NIR is not near-uniform.

    Draws up to ``tries`` uniform boxes and keeps the first whose NIR standard deviation (on the
    [0, 1] scale) reaches ``min_std``; when none does, the most textured candidate. The default
    0.04 rejects roughly the flattest 4% of 200 px crops of the EPFL country photos (sky, haze)
    and almost none of the VCIP crops.
    """

    min_std: float = 0.04
    tries: int = 8

    def __post_init__(self) -> None:
        if self.min_std < 0:
            raise ConfigError(f"patches.min_std must be >= 0, got {self.min_std}")
        if self.tries < 1:
            raise ConfigError(f"patches.tries must be >= 1, got {self.tries}")

    def box(self, nir: torch.Tensor, size: int, generator: torch.Generator | None = None) -> tuple[int, int]:
        """The top-left corner of a ``size``×``size`` crop of ``nir`` (1×H×W, values in [0, 1])."""
        height, width = nir.shape[-2:]
        best, best_std = (0, 0), -1.0
        for _ in range(self.tries):
            top, left = random_box(height, width, size, generator)
            std = float(nir[..., top : top + size, left : left + size].std())
            if std >= self.min_std:
                return top, left
            if std > best_std:
                best, best_std = (top, left), std
        return best
