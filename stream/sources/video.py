"""Video files and network streams through PyAV: any container and codec FFmpeg reads.

NIR is one band, so a frame is read as the luma plane at its stored bit depth, straight from
the decoder's buffer: no range conversion (PyAV's ``to_ndarray('gray')`` would stretch the
limited range 16-235 of a yuv stream to 0-255 and lose the values the camera recorded).

- ``gray``, ``yuv*``, ``yuvj*``, ``nv12``/``nv21``... (8 bit): the Y plane as uint8.
- ``gray9le`` ... ``gray16le``/``be`` and high-bit ``yuv*p10le`` etc.: the Y plane as uint16,
  values kept as stored (a 10-bit sample of 1023 stays 1023, no shift); ``info.bit_depth`` is 16.
- RGB formats (``rgb24``, ``bgr24``, ``gbrp``, ``rgb48le``...): converted to RGB and reduced to
  one channel with :func:`nir_to_gray` (equal channels are kept exactly, others averaged).
- Anything else (palettes, Bayer, gray+alpha...): :class:`SourceError` naming the format.
"""

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from loguru import logger

from nirstream.core.data.images import nir_to_gray
from nirstream.core.errors import one_line
from nirstream.stream.errors import SourceError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sources.base import Source, make_frame

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://", "srt://")
"""URL prefixes read as live network streams."""

_LOW_DELAY = {"fflags": "nobuffer", "flags": "low_delay"}

TRUNCATION_SLACK_FRAMES = 1.5
"""A file whose frames end this many frame intervals (or 1 %) before its declared duration is cut off."""


def is_network_url(spec: str) -> bool:
    """True for the URLs that are opened as network streams rather than files."""
    return spec.lower().startswith(NETWORK_SCHEMES)


def _luma_kind(format: av.VideoFormat) -> str | None:
    """How to read this pixel format: 'luma8', 'luma16', 'rgb8', 'rgb16', or None if unsupported."""
    if format.has_palette or format.is_bayer or format.is_bit_stream:
        return None
    bits = format.components[0].bits
    if format.is_rgb:
        return "rgb8" if bits <= 8 else "rgb16"
    name = format.name
    if name.startswith(("gray", "yuv", "nv")) and not name.startswith("grayf"):
        return "luma8" if bits <= 8 else "luma16"
    return None


def _plane_array(plane: av.video.plane.VideoPlane, width: int, height: int, dtype: np.dtype) -> np.ndarray:
    """Copy one plane out of the decoder's buffer, dropping the padding at the end of each line."""
    row = plane.line_size // dtype.itemsize
    data = np.frombuffer(plane, dtype=dtype, count=row * (height - 1) + width)
    rows = np.lib.stride_tricks.as_strided(data, shape=(height, width), strides=(plane.line_size, dtype.itemsize))
    return rows.astype(dtype.newbyteorder("="), copy=True)


def frame_to_nir(frame: av.VideoFrame) -> np.ndarray:
    """The frame's NIR image, H×W uint8 or uint16, without changing the stored values (see module doc)."""
    kind = _luma_kind(frame.format)
    if kind == "luma8":
        return _plane_array(frame.planes[0], frame.width, frame.height, np.dtype(np.uint8))
    if kind == "luma16":
        order = ">" if frame.format.is_big_endian else "<"
        return _plane_array(frame.planes[0], frame.width, frame.height, np.dtype(f"{order}u2"))
    if kind == "rgb8":
        return nir_to_gray(frame.to_ndarray(format="rgb24"))
    if kind == "rgb16":
        return nir_to_gray(frame.to_ndarray(format="rgb48le"))
    raise SourceError(f"unsupported pixel format {frame.format.name}: expected gray, yuv or rgb")


class VideoSource(Source):
    """Frames of one video file or network stream, with the container's timestamps in seconds.

    ``live`` defaults to True for network URLs and False for files; live streams are opened
    with FFmpeg's low-delay flags (no input buffering, RTSP over TCP so that no packet is lost
    to UDP) and ``timeout_s`` bounds how long a stalled connection blocks a read.
    """

    def __init__(self, path_or_url: str | Path, *, live: bool | None = None, timeout_s: float = 10.0) -> None:
        spec = str(path_or_url)
        network = is_network_url(spec)
        self.name = spec if network else Path(spec).name
        if not network and not Path(spec).is_file():
            raise SourceError(f"input not found: {spec}")
        options = dict(_LOW_DELAY) if network else {}
        if spec.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"
        try:
            self._container = av.open(spec, options=options, timeout=timeout_s if network else None)
        except av.error.FFmpegError as error:
            what = "cannot connect to" if network else "not a video or corrupt header:"
            raise SourceError(f"{what} {spec} ({one_line(error)})") from error
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{spec}: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "SLICE" if network else "AUTO"
        self._spec = spec
        self.damaged = 0  # packets skipped because the decoder rejected them
        context = self._stream.codec_context
        bit_depth = 8
        if context.format is not None:
            kind = _luma_kind(context.format)
            if kind is None:
                self._container.close()
                raise SourceError(f"{spec}: unsupported pixel format {context.format.name}")
            bit_depth = 16 if kind.endswith("16") else 8
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.info = StreamInfo(
            name=self.name,
            width=context.width,
            height=context.height,
            fps=float(rate) if rate else None,
            bit_depth=bit_depth,
            live=network if live is None else live,
            frame_count=self._stream.frames or None,
        )

    def __iter__(self) -> Iterator[Frame]:
        """Decode frames in order, the same way for every container.

        - A packet the decoder rejects in the middle of the input is skipped and counted: the
          run goes on, and a warning at the end names the file and how many were skipped.
        - A file that ends early is a :class:`SourceError` once its frames are read: its last
          packet is cut off (the demuxer flags it), or it holds fewer frames or a shorter
          duration than its header declares. The frames before the cut are all yielded, so
          the output keeps them (under a partial name, as for any failed run).
        - A demuxer that cannot read on (the container itself broken) is a SourceError at once.
        """
        read = damaged = 0
        reason, cut_off, end_seconds = "", False, 0.0
        try:
            for packet in self._container.demux(self._stream):
                if packet.size:  # (the empty packets at the end flush the decoder)
                    cut_off = packet.is_corrupt  # if it stays the last one: cut off by the end of the file
                try:
                    decoded_frames = packet.decode()
                except av.error.FFmpegError as error:
                    damaged, reason = damaged + 1, one_line(error)
                    continue
                for decoded in decoded_frames:
                    pts = self._seconds(decoded.pts)
                    if pts is not None:
                        end_seconds = max(end_seconds, pts + self._frame_seconds())
                    try:
                        nir = frame_to_nir(decoded)
                    except SourceError as error:
                        raise SourceError(f"{self._spec}: {error}") from None
                    yield make_frame(read, pts, nir, self.name)
                    read += 1
        except av.error.FFmpegError as error:
            raise SourceError(f"{self._spec}: unreadable container after frame {read} ({one_line(error)})") from error
        if self.info.live:
            self._report_damage(damaged, read, reason)
            return
        if cut_off and damaged:
            damaged -= 1  # the cut-off last packet is the truncation, not damage in the middle
        self._report_damage(damaged, read, reason)
        shortfall = self._shortfall(read + damaged, end_seconds, cut_off)
        if shortfall:
            raise SourceError(f"{self._spec}: truncated video: read {read} frames, {shortfall}")

    def _seconds(self, pts: int | None) -> float | None:
        time_base: Fraction | None = self._stream.time_base
        return float(pts * time_base) if pts is not None and time_base else None

    def _frame_seconds(self) -> float:
        return 1.0 / self.info.fps if self.info.fps else 0.0

    def _shortfall(self, frames: int, end_seconds: float, cut_off: bool) -> str | None:
        """How the file falls short of what it declares, or None when it is whole."""
        expected = self.info.frame_count
        if expected is not None and frames < expected:
            return f"{expected} declared"
        declared = self._declared_seconds()
        slack = max(TRUNCATION_SLACK_FRAMES * self._frame_seconds(), 0.01 * declared) if declared else 0.0
        if declared is not None and end_seconds and end_seconds < declared - slack:
            return f"{end_seconds:.1f} s of the {declared:.1f} s declared"
        return "its last frame is cut off" if cut_off else None

    def _declared_seconds(self) -> float | None:
        """The video's duration as the header states it: the stream's own, or the container's when
        the file holds nothing else (a longer audio track must not read as a cut-off video)."""
        if self._stream.duration and self._stream.time_base:
            return float(self._stream.duration * self._stream.time_base)
        if len(self._container.streams) == 1 and self._container.duration:
            return self._container.duration / av.time_base
        return None

    def _report_damage(self, damaged: int, read: int, reason: str) -> None:
        if damaged:
            self.damaged = damaged
            logger.warning(
                f"{self._spec}: {damaged} damaged packets could not be decoded and were skipped "
                f"({reason}); {read} frames read"
            )

    def close(self) -> None:
        self._container.close()
