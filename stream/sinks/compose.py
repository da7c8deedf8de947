"""Turning a Frame into the 8-bit RGB picture a sink shows or stores.

NIR is stored at its captured bit depth (a 10- or 12-bit camera delivers uint16 holding
values below 1024 or 4096), so it is scaled by the stream's bit depth, not by its dtype,
or a 12-bit frame would look almost black.
"""

import numpy as np

from nirstream.stream.frame import Frame


def nir_to_gray8(nir: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Scale an H×W uint8/uint16 NIR frame to uint8 by its bit depth (default: its dtype's)."""
    depth = bit_depth if bit_depth is not None else nir.dtype.itemsize * 8
    if depth == 8 and nir.dtype == np.uint8:
        return nir
    scale = 255.0 / float((1 << depth) - 1)
    return np.clip(np.rint(nir.astype(np.float32) * scale), 0, 255).astype(np.uint8)


def nir_to_rgb8(nir: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """The NIR frame as an H×W×3 uint8 gray picture."""
    gray = nir_to_gray8(nir, bit_depth)
    return np.repeat(gray[:, :, None], 3, axis=2)


def side_by_side(frame: Frame, bit_depth: int | None = None) -> np.ndarray:
    """NIR (as gray) | RGB, H×(2W)×3 uint8; a frame not yet colorized shows NIR on both halves."""
    left = nir_to_rgb8(frame.nir, bit_depth)
    right = frame.rgb if frame.rgb is not None else left
    return np.concatenate([left, right], axis=1)


def output_image(frame: Frame, *, side_by_side_view: bool, bit_depth: int | None = None) -> np.ndarray:
    """The picture a sink writes: the RGB result, or NIR | RGB when ``side_by_side_view``.

    Without a colorizer stage (``rgb`` is None) the NIR frame is written as gray, so a
    pipeline can record or preview its input alone.
    """
    if side_by_side_view:
        return side_by_side(frame, bit_depth)
    if frame.rgb is not None:
        return frame.rgb
    return nir_to_rgb8(frame.nir, bit_depth)
