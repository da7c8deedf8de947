"""Datasets of registered NIR/RGB image pairs: a folder layout and a CSV index.

Pairing and file existence are checked when a dataset is built, so a broken dataset fails
before training starts; pixels are read lazily, one pair per item, so building is cheap and
DataLoader workers share nothing but file paths. Items are always whole images: training
crops and flips are applied on top by :class:`~nirstream.core.data.augment.AugmentedPairs`.
"""

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from nirstream.core.data.images import IMAGE_EXTENSIONS, nir_to_gray, read_image, to_float
from nirstream.core.errors import DataError

_SHOWN = 5
"""How many offending names an error message lists before summarising the rest."""


@dataclass(frozen=True)
class Pair:
    """One registered NIR/RGB pair: its name (the shared file stem) and both file paths."""

    name: str
    nir: Path
    rgb: Path


class PairedDataset(Dataset):
    """Items ``{"nir": 1×H×W, "rgb": 3×H×W, "name": str}``, float32 in [0, 1], from a list of pairs.

    An item is the whole image pair, as validation needs; wrap the dataset in
    :class:`~nirstream.core.data.augment.AugmentedPairs` for training crops. ``exclude`` drops
    pairs by name; names not in the dataset are ignored so one list can serve every split.
    ``only`` keeps just the pairs it names (a held-out part), and every name in it must exist.
    ``cache`` keeps each pair in memory once read: a training epoch then decodes no PNG, which
    for megapixel pairs cost more than the training step that used a crop of them.
    """

    def __init__(
        self,
        pairs: Iterable[Pair],
        *,
        exclude: Iterable[str] = (),
        only: Iterable[str] | None = None,
        cache: bool = False,
    ) -> None:
        pairs = list(pairs)
        if only is not None:
            kept = {_stem(name) for name in only}
            unknown = sorted(kept - {pair.name for pair in pairs})
            if unknown:
                raise DataError(f"pairs named in 'only' are not in the dataset: {_listing(unknown)}")
            pairs = [pair for pair in pairs if pair.name in kept]
        dropped = {_stem(name) for name in exclude}
        self.pairs: list[Pair] = [pair for pair in pairs if pair.name not in dropped]
        if not self.pairs:
            raise DataError("no image pairs left after excluding " + _listing(sorted(dropped)))
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    @property
    def names(self) -> list[str]:
        return [pair.name for pair in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        pair = self.pairs[index]
        if self._cache is None:
            nir, rgb = load_pair(pair)
        else:
            if index not in self._cache:
                self._cache[index] = load_pair(pair)
            nir, rgb = self._cache[index]  # augmentation never writes into its input
        return {"nir": nir, "rgb": rgb, "name": pair.name}


class PairedFolderDataset(PairedDataset):
    """Pairs ``<root>/<split>/nir/<name>.*`` with ``<root>/<split>/rgb/<name>.*`` by file stem.

    ``split=None`` reads ``<root>/nir`` and ``<root>/rgb`` (a folder with no splits). The two
    files of a pair may differ in format (``x.tif`` NIR with ``x.png`` RGB).
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None,
        *,
        exclude: Iterable[str] = (),
        only: Iterable[str] | None = None,
        cache: bool = False,
    ) -> None:
        folder = Path(root) if split is None else Path(root) / split
        nir_files = _images_by_stem(folder / "nir")
        rgb_files = _images_by_stem(folder / "rgb")
        nir_only = sorted(nir_files.keys() - rgb_files.keys())
        rgb_only = sorted(rgb_files.keys() - nir_files.keys())
        if nir_only or rgb_only:
            one_sided = (("NIR", nir_only), ("RGB", rgb_only))
            sides = [f"{side} only: {_listing(names)}" for side, names in one_sided if names]
            raise DataError(f"unpaired images in {folder} ({'; '.join(sides)})")
        pairs = [Pair(name, nir_files[name], rgb_files[name]) for name in sorted(nir_files)]
        super().__init__(pairs, exclude=exclude, only=only, cache=cache)


class CsvPairedDataset(PairedDataset):
    """Pairs listed in a CSV file, one row per pair, for layouts other than the paired folders.

    File paths are relative to ``root`` (default: the CSV's folder). Rows are filtered by
    ``split`` when given; a pair's name is the ``name`` column where present, else the NIR file's
    stem. The defaults read the ``pairs.csv`` of the VCIP 2020 folder.
    """

    def __init__(
        self,
        csv_path: str | Path,
        *,
        split: str | None = None,
        nir_column: str = "nir_file",
        rgb_column: str = "rgb_file",
        split_column: str = "split",
        name_column: str = "name",
        root: str | Path | None = None,
        exclude: Iterable[str] = (),
        only: Iterable[str] | None = None,
        cache: bool = False,
    ) -> None:
        csv_path = Path(csv_path)
        base = csv_path.parent if root is None else Path(root)
        columns, rows = _read_rows(csv_path)
        required = [nir_column, rgb_column] + ([split_column] if split is not None else [])
        missing = [column for column in required if column not in columns]
        if missing:
            absent = ", ".join(map(repr, missing))
            raise DataError(f"{csv_path} has no column {absent} (columns: {', '.join(columns)})")
        if split is not None:
            splits = sorted({row[split_column] for _, row in rows})
            rows = [(number, row) for number, row in rows if row[split_column] == split]
            if not rows:
                present = ", ".join(splits)
                raise DataError(f"{csv_path} has no rows with {split_column}={split!r} (present: {present})")
        pairs = [
            _row_pair(csv_path, number, row, base, nir_column, rgb_column, name_column)
            for number, row in rows
        ]
        _check_exist(csv_path, pairs)
        _check_unique(csv_path, pairs)
        super().__init__(pairs, exclude=exclude, only=only, cache=cache)


def load_pair(pair: Pair) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a pair as float tensors in [0, 1]: NIR 1×H×W and RGB 3×H×W of the same size."""
    nir = to_float(nir_to_gray(read_image(pair.nir)))
    rgb = read_image(pair.rgb)
    if rgb.ndim != 3:
        raise DataError(f"pair {pair.name!r}: RGB image {pair.rgb} has one channel, expected colour")
    if nir.shape != rgb.shape[:2]:
        nir_size, rgb_size = f"{nir.shape[1]}x{nir.shape[0]}", f"{rgb.shape[1]}x{rgb.shape[0]}"
        raise DataError(f"pair {pair.name!r}: NIR {pair.nir} is {nir_size} but RGB {pair.rgb} is {rgb_size}")
    # numpy makes the channels-first copy: a torch copy of one image goes through torch's thread
    # pool, which costs milliseconds per call on a CPU busy with training
    channels_first = np.ascontiguousarray(to_float(rgb).transpose(2, 0, 1))
    return torch.from_numpy(nir).unsqueeze(0), torch.from_numpy(channels_first)


def _images_by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or path.name.startswith(".") or not path.is_file():
            continue
        if path.stem in files:
            both = f"{files[path.stem].name} and {path.name}"
            raise DataError(f"two images named {path.stem!r} in {folder}: {both}")
        files[path.stem] = path
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {folder}")
    return files


def _read_rows(csv_path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The CSV's column names and its rows with their line numbers (the header is line 1)."""
    if not csv_path.is_file():
        raise DataError(f"pairs CSV not found: {csv_path}")
    try:
        with csv_path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            rows = list(enumerate(reader, start=2))
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read pairs CSV {csv_path}: {error}") from error
    if not rows:
        raise DataError(f"pairs CSV {csv_path} has no rows")
    return columns, rows


def _row_pair(
    csv_path: Path,
    number: int,
    row: dict[str, str],
    base: Path,
    nir_column: str,
    rgb_column: str,
    name_column: str,
) -> Pair:
    nir_file, rgb_file = (row.get(nir_column) or "").strip(), (row.get(rgb_column) or "").strip()
    if not nir_file or not rgb_file:
        raise DataError(f"{csv_path} line {number}: empty {nir_column if not nir_file else rgb_column}")
    name = (row.get(name_column) or "").strip() or Path(nir_file).stem
    return Pair(name, base / nir_file, base / rgb_file)


def _check_exist(csv_path: Path, pairs: Sequence[Pair]) -> None:
    missing = [str(path) for pair in pairs for path in (pair.nir, pair.rgb) if not path.is_file()]
    if missing:
        raise DataError(f"{len(missing)} image(s) listed in {csv_path} not found: {_listing(missing)}")


def _check_unique(csv_path: Path, pairs: Sequence[Pair]) -> None:
    counts = Counter(pair.name for pair in pairs)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise DataError(f"pair names repeated in {csv_path}: {_listing(repeated)}")


def _stem(name: str) -> str:
    """A pair name from an exclude entry, which may carry an image file ending."""
    path = Path(name)
    return path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else name


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
