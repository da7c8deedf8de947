"""The data a training config names: its training mixture and its validation sets.

Training draws augmented crops from the main pairs (``data.root``, without ``exclude``) and from
every ``more_train`` folder; validation scores whole images of the main validation split and
of every ``more_val`` set. ``nirstream eval --config`` scores the same validation sets, so a
model card's figures come from the sets its training selected on.
"""

from pathlib import Path

from nirstream.core.data import CsvPairedDataset, PairedDataset, PairedFolderDataset, PairMixture
from nirstream.core.errors import DataError
from nirstream.core.train.config import DataConfig

ValSets = list[tuple[str | None, PairedDataset, float]]
"""``(name, pairs, weight in val_score)`` per validation set; the main one has no name."""


def training_mixture(data: DataConfig) -> PairMixture:
    """The main training pairs and every ``more_train`` set, each with its augmentation and repeat."""
    root = _existing_root(data.root, "data.root")
    if data.layout == "csv":
        main = CsvPairedDataset(root / data.csv, split=data.train_split, exclude=data.exclude, cache=data.cache)
    else:
        main = PairedFolderDataset(root, data.train_split, exclude=data.exclude, cache=data.cache)
    parts = [(main, data.augment, data.repeat)]
    for more in data.more_train:
        where = _existing_root(more.root, f"data.more_train {more.name}: root")
        pairs = PairedFolderDataset(where, more.split, exclude=more.exclude, cache=data.cache)
        parts.append((pairs, more.augment or data.augment, more.repeat))
    return PairMixture(parts)


def validation_sets(data: DataConfig) -> ValSets:
    """The main validation split (no name) and every ``more_val`` set, with their weights."""
    root = _existing_root(data.root, "data.root")
    if data.layout == "csv":
        main = CsvPairedDataset(root / data.csv, split=data.val_split, cache=data.cache)
    else:
        main = PairedFolderDataset(root, data.val_split, cache=data.cache)
    sets: ValSets = [(None, main, data.val_weight)]
    for more in data.more_val:
        where = _existing_root(more.root, f"data.more_val {more.name}: root")
        sets.append((more.name, PairedFolderDataset(where, more.split, only=more.only, cache=data.cache), more.weight))
    return sets


def test_sets(data: DataConfig) -> list[tuple[str, PairedDataset]]:
    """The fixed test sets (``data.test``), which neither training nor selection reads."""
    return [
        (test.name, PairedFolderDataset(_existing_root(test.root, f"data.test {test.name}: root"), test.split,
                                        only=test.only, cache=data.cache))
        for test in data.test
    ]


def _existing_root(root: str, key: str) -> Path:
    path = Path(root)
    if not path.is_dir():
        hint = "; point to the pairs with --set data.root=PATH" if key == "data.root" else ""
        raise DataError(f"{key} {path} not found (relative to {Path.cwd()}){hint}")
    return path
