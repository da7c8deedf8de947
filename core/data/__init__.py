"""Paired NIR/RGB data: image files, datasets of registered pairs, training crops and augmentation."""

from nirstream.core.data.augment import Augment, AugmentedPairs
from nirstream.core.data.mixture import PairMixture
from nirstream.core.data.images import IMAGE_EXTENSIONS, nir_to_gray, read_image, to_float, write_image
from nirstream.core.data.paired import CsvPairedDataset, Pair, PairedDataset, PairedFolderDataset, load_pair
from nirstream.core.data.patches import PatchSampler, random_box

__all__ = [
    "IMAGE_EXTENSIONS",
    "Augment",
    "AugmentedPairs",
    "CsvPairedDataset",
    "Pair",
    "PairedDataset",
    "PairMixture",
    "PairedFolderDataset",
    "PatchSampler",
    "load_pair",
    "nir_to_gray",
    "random_box",
    "read_image",
    "to_float",
    "write_image",
]
