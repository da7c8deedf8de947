"""Image sequences as a stream: a folder, a glob or a list of PNG/TIFF/JPEG files, in natural order.

Images keep their bit depth (8-bit as uint8, 16-bit as uint16); NIR saved with three channels
is reduced to one. Each frame keeps its own size and the name of its file, so a folder of
images of different sizes colorizes into an image folder with every output the size of its
input and named after it; a video, which has one frame size, refuses them (see ``--resize``).
Every image must have the first one's bit depth. An image that cannot be read is skipped,
counted and reported in one warning at the end, as damaged video packets are.
"""

import glob
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from loguru import logger

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
    """Frames from image files, ``pts = index / fps`` (the sequence has no clock of its own).

    ``info`` has the first readable image's size; :attr:`damaged` counts the images skipped.
    """

    def __init__(self, images: str | Path | Iterable[str | Path], *, fps: float = 30.0) -> None:
        self.paths = list_images(images)
        self.name = str(images) if isinstance(images, (str, Path)) else str(self.paths[0].parent)
        self.damaged = 0
        self._reasons: list[str] = []
        first = None
        for start, path in enumerate(self.paths):
            first = self._read(path)
            if first is not None:
                break
        if first is None:
            raise SourceError(f"none of the {len(self.paths)} images of {self.name} can be read ({self._reasons[0]})")
        self._start, self._first = start, first
        height, width = first.shape
        bit_depth = 8 if first.dtype == np.uint8 else 16
        self.info = StreamInfo(self.name, width, height, float(fps), bit_depth, False, len(self.paths) - start,
                               sequence=False)

    def _read(self, path: Path) -> np.ndarray | None:
        """The image as NIR, or None (counted) when it cannot be read."""
        try:
            return nir_to_gray(read_image(path))
        except DataError as error:
            self.damaged += 1
            self._reasons.append(str(error))
            return None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for position, path in enumerate(self.paths[self._start :]):
            if position == 0 and self._first is not None:
                nir, self._first = self._first, None
            else:
                nir = self._read(path)
                if nir is None:
                    continue
            if (nir.dtype == np.uint8) != (self.info.bit_depth == 8):
                raise SourceError(
                    f"image {path} is {nir.dtype.itemsize * 8}-bit but the sequence is "
                    f"{self.info.bit_depth}-bit: all images of one source must have the same bit depth"
                )
            yield make_frame(index, index / self.info.fps, nir, self.name, name=path.name)
            index += 1
        if self.damaged:
            logger.warning(
                f"{self.name}: {self.damaged} of {len(self.paths)} images could not be read and were "
                f"skipped (first: {self._reasons[0]})"
            )
