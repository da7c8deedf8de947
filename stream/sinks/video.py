"""Recording the colorized stream to a video file through PyAV (FFmpeg).

MP4 and MOV are written fragmented (an empty ``moov`` up front, then a ``moof``+``mdat`` for
at most one second of video, cut at each keyframe and at the latest after 1 s), each handed
to the OS as soon as it is complete, so a process killed at any moment leaves a file that
plays every frame but at most the last second it was given. That needs an encoder that
holds no frames back: B-frames are off (the frames' own timestamps then reach the file
unchanged; fragmented MP4 has no edit list to hide a B-frame delay), and x264/x265 run with
``tune=zerolatency`` (no lookahead, no frame threads), which costs some compression at a
given ``crf`` and buys a file that is never more than a second behind.

The file is written as ``out.partial.mp4`` beside ``out.mp4`` and renamed to ``out.mp4`` when
the run ends normally; an interrupted or failed run leaves the partial file, playable, under
that name. An existing ``out.mp4`` is never replaced unless the sink is told to overwrite.

yuv420p needs even dimensions: an odd width or height is padded by one pixel, copying the
last column or row, so a 641x479 input is stored as 642x480 and nothing is cropped or scaled.

Timestamps: ``Frame.pts`` (seconds) is stored in a 1/90000 time base, relative to the first
frame's, so the file's timeline starts at 0 and every interval between frames is kept. A
frame without a pts is placed at index/fps; a timestamp that does not increase is moved one
tick after the previous one, since the muxer needs strictly increasing timestamps.
"""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from loguru import logger

from nirstream.core.errors import one_line
from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.compose import output_image
from nirstream.stream.sinks.spec import SinkConfig, partial_path, refuse_to_replace

TIME_BASE = Fraction(1, 90000)
"""The MPEG clock: fine enough for any camera timestamp, and exact for 30000/1001 fps."""

FRAGMENT_SECONDS = 1.0
"""The most video a fragment holds: what a killed recording can lose."""

FRAGMENTED_MP4 = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": str(round(FRAGMENT_SECONDS * 1_000_000)),  # microseconds
    "flush_packets": "1",
}
"""Muxer options for MP4/MOV: a fragment per keyframe or second, each handed to the OS once muxed."""

NO_DELAY = {"libx264": {"tune": "zerolatency"}, "libx265": {"tune": "zerolatency"}}
"""Encoder options that make each frame's packet come out as the frame goes in."""

DEFAULT_FPS = 30.0
"""The nominal rate when the source does not know its own (an image folder, some cameras)."""


class VideoSink(Sink):
    """A video file (``.mp4``, ``.mov``, ``.mkv``), H.264 in yuv420p by default.

    ``crf`` and ``preset`` are passed to the encoder as codec options (x264/x265 semantics).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        codec: str = SinkConfig.codec,
        crf: int = SinkConfig.crf,
        preset: str = SinkConfig.preset,
        side_by_side: bool = SinkConfig.side_by_side,
        overwrite: bool = SinkConfig.overwrite,
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.written_path = self.path  # where the frames are: the partial file until the run completes
        self.codec = codec
        self.crf = crf
        self.preset = preset
        self.side_by_side = side_by_side
        self.frames_written = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._bit_depth: int | None = None
        self._fps = DEFAULT_FPS
        self._first_pts: float | None = None
        self._last_ticks = -1
        self._failed = False
        self._size = (0, 0)  # width, height of the pictures it takes: the first frame's

    def open(self, info: StreamInfo) -> None:
        """Create the file, set up the encoder and write the header, so that a bad path or codec fails here."""
        self._bit_depth = info.bit_depth
        self._fps = info.fps if info.fps and info.fps > 0 else DEFAULT_FPS
        width = info.width * (2 if self.side_by_side else 1)
        self._size = (width, info.height)
        refuse_to_replace(self.path, self.overwrite)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.written_path = partial_path(self.path)
            options = FRAGMENTED_MP4 if self.path.suffix.lower() in {".mp4", ".mov"} else {}
            self._container = av.open(str(self.written_path), mode="w", options=options)
            encoder = av.codec.Codec(self.codec, "w").name  # h264 -> libx264
            stream = self._container.add_stream(
                self.codec,
                rate=Fraction(self._fps).limit_denominator(1001),
                options={"crf": str(self.crf), "preset": self.preset, **NO_DELAY.get(encoder, {})},
            )
            stream.width = _even(width)
            stream.height = _even(info.height)
            if (stream.width, stream.height) != (width, info.height):
                logger.info(f"{self.path.name}: {width}x{info.height} frames are stored as {stream.width}x{stream.height} "
                            "(H.264 in yuv420p needs even sizes; the last column or row is repeated)")
            stream.pix_fmt = "yuv420p"
            stream.time_base = TIME_BASE
            stream.codec_context.time_base = TIME_BASE
            stream.codec_context.max_b_frames = 0
            stream.codec_context.gop_size = max(1, round(self._fps))
            self._stream = stream
            self._container.start_encoding()
        except av.codec.codec.UnknownCodecError as error:
            self._abandon()
            raise SinkError(f"cannot write video {self.path}: unknown codec {self.codec!r}") from error
        except (OSError, av.FFmpegError, ValueError) as error:
            self._abandon()
            raise SinkError(f"cannot write video {self.path}: {one_line(error)}") from error

    def write(self, frame: Frame) -> None:
        if self._container is None or self._stream is None:
            raise SinkError(f"video sink {self.path} is not open")
        image = output_image(frame, side_by_side_view=self.side_by_side, bit_depth=self._bit_depth)
        if image.shape[:2] != self._size[::-1]:  # the run fails, and its frames so far are kept as partial
            width, height = self._size[0] // (2 if self.side_by_side else 1), self._size[1]
            raise SinkError(
                f"{frame.name or f'frame {frame.index}'} is {frame.nir.shape[1]}x{frame.nir.shape[0]} but the video "
                f"{self.path.name} is {width}x{height}: a video has one frame size; pass --resize {width}x{height}, "
                f"or write an image folder (--sink {self.path.stem}/)"
            )
        image = _pad_to_even(image)
        video_frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        video_frame.pts = self._ticks(frame)
        video_frame.time_base = TIME_BASE
        try:
            self._encode(self._container, self._stream, video_frame)
        except SinkError:
            self.close()
            raise
        self.frames_written += 1

    def close(self, complete: bool = True) -> None:
        """Flush the encoder and finalise the file, then move it into place if the run is
        ``complete``; otherwise (or after a failed write) keep it under its partial name."""
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is None or stream is None:
            return
        try:
            if not self._failed:
                self._encode(container, stream, None)
        finally:
            try:
                container.close()
            except (OSError, av.FFmpegError) as error:
                if not self._failed:
                    self._failed = True
                    raise SinkError(f"cannot finish video {self.written_path}: {one_line(error)}") from error
            finally:
                self._settle(complete and not self._failed)

    def _settle(self, complete: bool) -> None:
        """The partial file becomes the output, or stays and says so."""
        if self._failed:  # frames may have been lost with the write that failed: count what the file holds
            if self.path.suffix.lower() in {".mp4", ".mov"}:
                cut_to_last_fragment(self.written_path)
            self.frames_written = _frames_in(self.written_path)
        if complete:
            self.written_path.replace(self.path)
            self.written_path = self.path
        else:
            logger.warning(f"the run did not finish: {self.frames_written} frames kept in {self.written_path}")

    def _ticks(self, frame: Frame) -> int:
        """The frame's pts in TIME_BASE ticks from the first frame, strictly increasing."""
        seconds = frame.pts if frame.pts is not None else frame.index / self._fps
        if self._first_pts is None:
            self._first_pts = seconds
        ticks = max(round((seconds - self._first_pts) / TIME_BASE), self._last_ticks + 1)
        self._last_ticks = ticks
        return ticks

    def _encode(self, container: av.container.OutputContainer, stream: av.video.stream.VideoStream, frame: av.VideoFrame | None) -> None:
        """Encode one frame (None flushes the encoder) and mux its packets; a write error marks the sink failed."""
        try:
            for packet in stream.encode(frame):
                container.mux(packet)
        except (OSError, av.FFmpegError) as error:
            self._failed = True
            raise SinkError(f"cannot write video {self.written_path}: {one_line(error)}") from error

    def _abandon(self) -> None:
        """Drop a file that failed before its header: it holds nothing worth keeping."""
        container, self._container, self._stream = self._container, None, None
        if container is None:
            return
        self._failed = True
        try:
            container.close()
        except (OSError, av.FFmpegError):
            pass
        if self.written_path != self.path:  # only ever our own partial file, never the user's
            self.written_path.unlink(missing_ok=True)


def cut_to_last_fragment(path: Path) -> None:
    """Truncate a fragmented MP4 after its last complete ``moof`` + ``mdat`` pair.

    A write that failed part-way (a full disk) leaves half a fragment at the end, which
    decoders report as invalid data; without it the file ends cleanly on its last whole
    fragment. Walks the top-level boxes only: a few reads however long the file is.
    """
    try:
        size = path.stat().st_size
        end = 0  # the end of the last box that may close the file: the header boxes, then each fragment
        with path.open("rb+") as file:
            offset, pending_moof = 0, False
            while offset + 8 <= size:
                file.seek(offset)
                header = file.read(16)
                length, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if length == 1 and len(header) == 16:
                    length = int.from_bytes(header[8:16], "big")
                if length < 8 or offset + length > size:
                    break
                offset += length
                if kind == b"moof":
                    pending_moof = True
                elif kind == b"mdat" and pending_moof or kind in (b"ftyp", b"moov", b"mfra"):
                    end, pending_moof = offset, False
            if end < size:
                file.truncate(end)
    except OSError as error:
        logger.debug(f"could not cut {path} to its last fragment: {error}")


def _frames_in(path: Path) -> int:
    """The video packets a file holds (no decoding), 0 if it cannot be read at all."""
    try:
        with av.open(str(path)) as container:
            return sum(1 for packet in container.demux(video=0) if packet.size)
    except (OSError, av.FFmpegError):
        return 0


def _even(size: int) -> int:
    return size + size % 2


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """Repeat the last row and/or column of an odd-sized image: yuv420p subsamples chroma 2x2."""
    height, width = image.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return image
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
