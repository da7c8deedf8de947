"""V4L2 cameras through OpenCV, at the bit depth they deliver, surviving a pulled cable.

A NIR camera sends 8-bit ``GREY`` or 16-bit ``Y16``. OpenCV's default RGB conversion would
turn Y16 into 8-bit BGR, so it is switched off for both and the raw buffer is shaped here;
cameras that only send colour frames are reduced to one channel. When a read fails the
camera is reopened with exponential backoff (USB cameras re-enumerate after a glitch), and
after ``reconnect_tries`` failed attempts the source ends with a one-line SourceError.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from nirstream.core.data.images import nir_to_gray
from nirstream.stream.errors import SourceError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sources.base import Source, make_frame

PIXEL_FORMATS = {"GREY": "GREY", "Y16": "Y16 "}


@dataclass
class CameraConfig:
    """The ``camera`` section: the format to ask the camera for, and how to ride out a lost link.

    ``pixel_format``: GREY (8-bit) or Y16 (16-bit); null takes the camera's default, as do null
    ``width``, ``height`` and ``fps``. After a lost link the source tries ``reconnect_tries``
    times, waiting ``backoff_s`` and then twice as long before each further try.
    """

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    pixel_format: str | None = None
    reconnect_tries: int = 5
    backoff_s: float = 0.5
"""Pixel formats a NIR camera is asked for, by name, and their V4L2 FOURCC codes."""


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the camera source uses (tests pass a fake)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def set(self, prop: int, value: float) -> bool: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


def open_v4l2(device: int | str) -> Capture:
    """Open a camera by index or ``/dev/videoN`` path with the V4L2 backend."""
    return cv2.VideoCapture(device, cv2.CAP_V4L2)


def camera_frame_to_nir(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Shape what OpenCV returned into H×W uint8/uint16 NIR.

    With RGB conversion off, OpenCV may return the raw V4L2 buffer as one row of bytes: it is
    reshaped to ``height``×``width`` (two bytes per pixel become little-endian uint16, as Y16
    is defined). 3-channel frames (BGR from a colour pipeline) become one channel.
    """
    if image.ndim == 2 and image.shape[0] == 1 and height > 1:
        raw = image.reshape(-1)
        if raw.dtype == np.uint8 and raw.size == 2 * width * height:
            return raw.view("<u2").reshape(height, width).astype(np.uint16)
        if raw.size == width * height:
            return raw.reshape(height, width)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype not in (np.uint8, np.uint16):
        raise SourceError(f"camera delivered {image.dtype} pixels: expected 8- or 16-bit")
    return nir_to_gray(image)


class CameraSource(Source):
    """Frames from a V4L2 camera; ``pts`` is seconds since the first frame, read on the monotonic clock.

    ``width``, ``height``, ``fps`` and ``pixel_format`` are requests: the camera may choose
    the nearest mode it supports, and ``info`` reports what it actually delivers. ``capture``
    opens a device (``open_v4l2`` unless a test injects a fake).
    """

    def __init__(
        self,
        device: int | str,
        *,
        width: int | None = CameraConfig.width,
        height: int | None = CameraConfig.height,
        fps: float | None = CameraConfig.fps,
        pixel_format: str | None = CameraConfig.pixel_format,
        reconnect_tries: int = CameraConfig.reconnect_tries,
        backoff_s: float = CameraConfig.backoff_s,
        capture: Callable[[int | str], Capture] = open_v4l2,
    ) -> None:
        if pixel_format is not None and pixel_format not in PIXEL_FORMATS:
            raise SourceError(f"unknown camera pixel format {pixel_format!r}: expected one of {sorted(PIXEL_FORMATS)}")
        self.device = device
        self.name = f"camera {device}"
        self.reconnect_tries = reconnect_tries
        self.backoff_s = backoff_s
        self._request = (width, height, fps, pixel_format)
        self._open_capture = capture
        self._cap = self._connect()
        if self._cap is None:
            raise SourceError(f"camera {device} not found or busy (V4L2 could not open it)")
        ok, image = self._cap.read()
        if not ok or image is None:
            self._cap.release()
            raise SourceError(f"camera {device} opened but delivered no frame")
        frame_width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or image.shape[1]
        frame_height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or image.shape[0]
        self._pending: np.ndarray | None = camera_frame_to_nir(image, frame_width, frame_height)
        height_px, width_px = self._pending.shape
        rate = self._cap.get(cv2.CAP_PROP_FPS)
        bit_depth = 8 if self._pending.dtype == np.uint8 else 16
        self.info = StreamInfo(self.name, width_px, height_px, rate if rate > 0 else fps, bit_depth, True)

    def _connect(self) -> Capture | None:
        """Open the device and request the configured mode; None when it cannot be opened."""
        cap = self._open_capture(self.device)
        if not cap.isOpened():
            cap.release()
            return None
        width, height, fps, pixel_format = self._request
        if pixel_format is not None:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*PIXEL_FORMATS[pixel_format]))
            cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        if width is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height is not None:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps is not None:
            cap.set(cv2.CAP_PROP_FPS, fps)
        return cap

    def _read(self) -> np.ndarray:
        """The next frame. When a read fails, reopen the camera after backoff_s, 2×, 4×... seconds;
        an attempt succeeds when the reopened camera delivers a frame."""
        if self._cap is not None:
            ok, image = self._cap.read()
            if ok and image is not None:
                return camera_frame_to_nir(image, self.info.width, self.info.height)
        for attempt in range(self.reconnect_tries):
            self.close()
            time.sleep(self.backoff_s * 2**attempt)
            self._cap = self._connect()
            if self._cap is None:
                continue
            ok, image = self._cap.read()
            if ok and image is not None:
                return camera_frame_to_nir(image, self.info.width, self.info.height)
        self.close()
        raise SourceError(f"camera {self.device} disconnected; gave up after {self.reconnect_tries} reconnect attempts")

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        start: float | None = None
        while True:
            if self._pending is not None:
                nir, self._pending = self._pending, None
            else:
                nir = self._read()
            frame = make_frame(index, None, nir, self.name)
            start = frame.captured_at if start is None else start
            frame.pts = frame.captured_at - start
            yield frame
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
