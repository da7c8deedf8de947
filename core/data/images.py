"""Reading and writing image files as numpy arrays, in RGB order and at their stored bit depth.

OpenCV decodes and encodes (PNG, JPEG, TIFF, 8 and 16 bit); this module hides its BGR order
and turns its silent failures (``None``, ``False``) into :class:`DataError` naming the file.
"""

import contextlib
from pathlib import Path

import cv2
import numpy as np

from nirstream.core.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
"""File name endings (lower case) that the datasets treat as images."""

_DTYPE_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file: gray as H×W, colour as H×W×3 in RGB order, dtype as stored.

    Alpha is dropped (a gray+alpha file comes back as three equal channels). Bit depth is kept,
    so a 16-bit NIR frame is not silently reduced to 8 bits; :func:`to_float` scales it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        encoded = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error.strerror or error}") from error
    image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED) if encoded.size else None
    if image is None:
        raise DataError(f"cannot decode image {path}: empty, corrupt or not PNG/JPEG/TIFF/BMP")
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def to_float(image: np.ndarray) -> np.ndarray:
    """Scale an integer image to float32 in [0, 1] by its dtype's range (uint8 /255, uint16 /65535).

    Scaling by the dtype, not by the image's own maximum, keeps a dark frame dark.
    """
    scale = _DTYPE_MAX.get(image.dtype)
    if scale is None:
        raise DataError(f"unsupported pixel type {image.dtype}: expected uint8 or uint16")
    return image.astype(np.float32) / np.float32(scale)


def nir_to_gray(image: np.ndarray) -> np.ndarray:
    """Reduce a NIR image saved with three channels to one, keeping its dtype.

    NIR is one band; tools often save it as three equal channels. Those give their first channel
    exactly; channels that differ (a false-colour rendering) are averaged.
    """
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"a NIR image must have 1 or 3 channels, got shape {image.shape}")
    first = image[:, :, 0]
    if np.array_equal(first, image[:, :, 1]) and np.array_equal(first, image[:, :, 2]):
        return first.copy()
    mean = image.mean(axis=2, dtype=np.float64)
    return np.rint(mean).astype(image.dtype)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Encode an RGB (H×W×3) or gray (H×W) uint8/uint16 image; the format follows the file ending.

    Parent folders are created, so an output path can name a folder that does not exist yet.
    The file appears whole or not at all: it is written under a temporary name beside it and
    renamed, so a killed process never leaves half an image.
    """
    path = Path(path)
    if image.dtype not in _DTYPE_MAX:
        raise ValueError(f"write_image needs uint8 or uint16 pixels, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"write_image needs an H×W or H×W×3 image, got shape {image.shape}")
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    try:
        ok, encoded = cv2.imencode(path.suffix, pixels)
    except cv2.error as error:
        raise DataError(f"cannot write image {path}: unsupported file ending {path.suffix!r}") from error
    if not ok:
        raise DataError(f"cannot write image {path}: encoding as {path.suffix!r} failed")
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(encoded.tobytes())
        partial.replace(path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise DataError(f"cannot write image {path}: {error.strerror or error}") from error
