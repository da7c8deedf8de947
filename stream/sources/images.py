"""Image sequences as a stream: a folder, a glob or a list of PNG/TIFF/JPEG files, in natural order.

Images keep their bit depth (8-bit as uint8, 16-bit as uint16); NIR saved with three channels
is reduced to one. A sequence is one stream, so every image must match the first one's size
and bit depth: a mismatch is a one-line error naming the file, not a silent resize.
"""

import glob
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from nirstream.core.data.images import IMAGE_EXTENSIONS, nir_to_gray, read_image
from nirstream.core.errors import DataError
from nirstream.stream.errors import SourceError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sources.base import Source, make_frame

GLOB_CHARS = frozenset("*?[")


def is_image_path(path: str | Path) -> bool:
    """True when the file name ends like an image the sources read."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_glob(spec: str) -> bool:
    """True when the spec is a shell-style pattern rather than one path."""
    return any(char in GLOB_CHARS for char in spec)


def natural_key(path: str | Path) -> list[int | str]:
    """Sort key that puts frame_2 before frame_10, as a person numbering frames expects."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def glob_files(pattern: str) -> list[str]:
    """The files (not folders) a pattern matches, in natural order; ``**`` recurses."""
    matches = glob.glob(pattern, recursive=True)
    return sorted((match for match in matches if Path(match).is_file()), key=natural_key)


def list_images(spec: str | Path | Iterable[str | Path]) -> list[Path]:
    """The image files of a folder, a glob, one file or a list of files; SourceError when there are none."""
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if Path(text).is_dir():
            paths = sorted((p for p in Path(text).iterdir() if p.is_file() and is_image_path(p)), key=natural_key)
            if not paths:
                raise SourceError(f"no PNG/TIFF/JPEG images in folder {text}")
            return paths
        if is_glob(text):
            paths = [Path(p) for p in glob_files(text) if is_image_path(p)]
            if not paths:
                raise SourceError(f"no images match {text}")
            return paths
        spec = [text]
    paths = [Path(p) for p in spec]
    if not paths:
        raise SourceError("empty list of images")
    for path in paths:
        if not path.is_file():
            raise SourceError(f"input not found: {path}")
    return paths


class ImageSource(Source):
    """Frames from image files, ``pts = index / fps`` (the sequence has no clock of its own)."""

    def __init__(self, images: str | Path | Iterable[str | Path], *, fps: float = 30.0) -> None:
        self.paths = list_images(images)
        self.name = str(images) if isinstance(images, (str, Path)) else str(self.paths[0].parent)
        first = self._read(self.paths[0])
        self._first: np.ndarray | None = first
        height, width = first.shape
        bit_depth = 8 if first.dtype == np.uint8 else 16
        self.info = StreamInfo(self.name, width, height, float(fps), bit_depth, False, len(self.paths))

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        try:
            return nir_to_gray(read_image(path))
        except DataError as error:
            raise SourceError(str(error)) from error

    def __iter__(self) -> Iterator[Frame]:
        expected = (self.info.height, self.info.width)
        for index, path in enumerate(self.paths):
            if index == 0 and self._first is not None:
                nir, self._first = self._first, None
            else:
                nir = self._read(path)
            if nir.shape != expected:
                raise SourceError(
                    f"image {path} is {nir.shape[1]}x{nir.shape[0]} but the sequence is "
                    f"{expected[1]}x{expected[0]}: all images of one source must have the same size"
                )
            if (nir.dtype == np.uint8) != (self.info.bit_depth == 8):
                raise SourceError(
                    f"image {path} is {nir.dtype.itemsize * 8}-bit but the sequence is "
                    f"{self.info.bit_depth}-bit: all images of one source must have the same bit depth"
                )
            yield make_frame(index, index / self.info.fps, nir, self.name)
