"""Random training transforms applied to a NIR/RGB pair.

Geometry (scale, crop, flips) is drawn once and applied to both images, so the pair stays
registered; intensity jitter touches only the NIR, teaching the model to tolerate exposure and
gain differences between NIR cameras while the RGB target stays fixed. Every random draw comes
from the ``torch.Generator`` given (torch's global RNG without one); :class:`AugmentedPairs`
gives each item its own generator, seeded by the sampler, which is how training augments.
"""

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nirstream.core.data.patches import PatchSampler, random_box
from nirstream.core.errors import ConfigError, DataError


@dataclass(frozen=True)
class Augment:
    """Options of the random pair transform; defaults as ColorMamba trained (200 px crops, h-flips).

    - ``crop``: side of the square random crop, or ``None`` for the whole image.
    - ``hflip`` / ``vflip``: flip with probability 1/2 (landscapes are not upside-down
      symmetric, hence ``vflip`` off by default).
    - ``contrast`` / ``brightness``: NIR-only jitter amplitudes: gain drawn from
      ``1 ± contrast`` about the crop's mean, offset from ``± brightness``, then clipped to [0, 1].
    - ``scale``: range of a random zoom factor (``(1.0, 1.0)``: none); the crop then covers
      ``crop / factor`` source pixels, at most the whole image's shorter side. Needs ``crop``.
    - ``patches``: how the crop is placed; ``None`` places it uniformly.
    """

    crop: int | None = 200
    hflip: bool = True
    vflip: bool = False
    contrast: float = 0.0
    brightness: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    patches: PatchSampler | None = None

    def __post_init__(self) -> None:
        if self.crop is not None and self.crop < 1:
            raise ConfigError(f"augment.crop must be a positive size or null, got {self.crop}")
        if not 0.0 <= self.contrast < 1.0:
            raise ConfigError(f"augment.contrast must be in [0, 1), got {self.contrast}")
        if not 0.0 <= self.brightness <= 1.0:
            raise ConfigError(f"augment.brightness must be in [0, 1], got {self.brightness}")
        object.__setattr__(self, "scale", tuple(float(bound) for bound in self.scale))  # YAML gives a list
        low, high = self.scale
        if not 0.0 < low <= high:
            raise ConfigError(f"augment.scale must be (low, high) with 0 < low <= high, got {self.scale}")
        if self.crop is None and (self.patches is not None or self.scale != (1.0, 1.0)):
            raise ConfigError("augment.patches and augment.scale shape the crop: augment.crop must be set")

    def __call__(
        self,
        nir: torch.Tensor,
        rgb: torch.Tensor,
        generator: torch.Generator | None = None,
        name: str = "",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform a pair (NIR 1×H×W, RGB 3×H×W, same size, in [0, 1]); ``name`` labels errors."""
        if self.crop is not None:
            nir, rgb = self._crop(nir, rgb, generator, name)
        if self.hflip and _coin(generator):
            nir, rgb = nir.flip(-1), rgb.flip(-1)
        if self.vflip and _coin(generator):
            nir, rgb = nir.flip(-2), rgb.flip(-2)
        return self._jitter(nir, generator), rgb

    def _crop(
        self, nir: torch.Tensor, rgb: torch.Tensor, generator: torch.Generator | None, name: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut a window of ``crop / factor`` pixels and resize it to ``crop``: the same as scaling the
        whole image by ``factor`` and cropping, without resizing pixels that are thrown away."""
        size = self.crop
        height, width = nir.shape[-2:]
        if self.scale == (1.0, 1.0):
            if height < size or width < size:
                raise DataError(f"pair {name!r} is {width}x{height}, smaller than the {size} px crop")
            source = size
        else:
            low, high = self.scale
            factor = low + (high - low) * float(torch.rand((), generator=generator))
            source = max(1, min(round(size / factor), height, width))
        if self.patches is None:
            top, left = random_box(height, width, source, generator)
        else:
            top, left = self.patches.box(nir, source, generator)
        window = (..., slice(top, top + source), slice(left, left + source))
        nir, rgb = nir[window], rgb[window]
        if source == size:
            return nir, rgb
        pair = torch.cat([nir, rgb]).unsqueeze(0)
        shrink = source > size  # filter detail that a smaller grid cannot hold instead of aliasing it
        pair = F.interpolate(pair, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        pair = pair.squeeze(0).clamp_(0.0, 1.0)
        return pair[:1], pair[1:]

    def _jitter(self, nir: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.contrast == 0.0 and self.brightness == 0.0:
            return nir
        gain = 1.0 + self.contrast * _symmetric(generator)
        offset = self.brightness * _symmetric(generator)
        mean = nir.mean()
        return ((nir - mean) * gain + mean + offset).clamp(0.0, 1.0)


class AugmentedPairs(Dataset):
    """The items of ``dataset`` (whole pairs, e.g. a ``PairedDataset``) put through ``augment``.

    Indexed by ``(index, seed)`` keys, such as those ``SeededShardSampler`` yields: item
    ``index`` is augmented with draws from a fresh ``torch.Generator`` seeded by ``seed``. An
    item's crop, flips and jitter therefore depend on its key alone, not on which DataLoader
    worker loads it or what was drawn before, so any number of workers gives the same batches
    and a run resumed at an epoch boundary draws exactly what the uninterrupted run drew.
    """

    def __init__(self, dataset: Dataset, augment: Augment) -> None:
        self.dataset = dataset
        self.augment = augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError(f"AugmentedPairs is indexed by (index, seed) keys, got {key!r}")
        index, seed = key
        item = self.dataset[index]
        generator = torch.Generator().manual_seed(seed)
        nir, rgb = self.augment(item["nir"], item["rgb"], generator=generator, name=item["name"])
        return {"nir": nir, "rgb": rgb, "name": item["name"]}


def _coin(generator: torch.Generator | None) -> bool:
    return bool(torch.rand((), generator=generator) < 0.5)


def _symmetric(generator: torch.Generator | None) -> float:
    """A draw uniform in [-1, 1)."""
    return 2.0 * float(torch.rand((), generator=generator)) - 1.0
