"""Several training sets as one: each with its own augmentation and its own draws per epoch.

The trainer's sampler shuffles integer positions of one dataset; this maps a position to a set
and a pair in it. A pair drawn ``repeat`` times per epoch takes ``repeat`` positions, and each
position has its own augmentation seed, so the draws are different crops of the same pair.
"""

from bisect import bisect_right
from typing import Any

from torch.utils.data import Dataset

from nirstream.core.data.augment import Augment, AugmentedPairs
from nirstream.core.data.paired import PairedDataset


class PairMixture(Dataset):
    """``parts``: ``(dataset, augment, repeat)``; indexed by ``(position, seed)`` like AugmentedPairs."""

    def __init__(self, parts: list[tuple[PairedDataset, Augment, int]]) -> None:
        if not parts:
            raise ValueError("a mixture needs at least one training set")
        self.parts = [AugmentedPairs(dataset, augment) for dataset, augment, _ in parts]
        self.starts: list[int] = []
        total = 0
        for dataset, _, repeat in parts:
            self.starts.append(total)
            total += len(dataset) * repeat
        self.length = total

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        position, seed = key
        if not 0 <= position < self.length:
            raise IndexError(f"position {position} outside a mixture of {self.length}")
        part = bisect_right(self.starts, position) - 1
        pairs = self.parts[part]
        return pairs[((position - self.starts[part]) % len(pairs), seed)]
