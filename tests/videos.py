"""Test videos written with PyAV: gray frames at a known rate and timestamps."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 25


def write_video(path: Path, codec: str, pix_fmt: str, frames: list[np.ndarray], options: dict | None = None) -> None:
    """Encode gray frames (uint8 or uint16) at RATE fps with pts 0, 1, 2... in 1/RATE units."""
    height, width = frames[0].shape
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=RATE, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = Fraction(1, RATE)
        for index, pixels in enumerate(frames):
            if pix_fmt == "yuv420p":
                frame = av.VideoFrame(width, height, "yuv420p")
                line = frame.planes[0].line_size
                frame.planes[0].update(np.pad(pixels, ((0, 0), (0, line - width))).tobytes())
                for plane in frame.planes[1:]:
                    plane.update(np.full(plane.buffer_size, 128, np.uint8).tobytes())
            else:
                frame = av.VideoFrame.from_ndarray(pixels, format=pix_fmt)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def random_frames(count: int, width: int, height: int, high: int, dtype: type) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, high + 1, (height, width)).astype(dtype) for _ in range(count)]
    frames[0][0, :2] = (0, high)  # the full range, so a limited-range rescale would show
    return frames


def fragmented_mp4(path: Path, count: int) -> Path:
    """The kind of file nirstream itself records: fragmented MP4, a fragment per second."""
    from nirstream.stream.frame import Frame, StreamInfo
    from nirstream.stream.sinks import VideoSink

    sink = VideoSink(path)
    sink.open(StreamInfo("t", 64, 48, float(RATE), 8, False))
    for index, pixels in enumerate(random_frames(count, 64, 48, 255, np.uint8)):
        sink.write(Frame(index, index / RATE, 0.0, pixels, np.repeat(pixels[:, :, None], 3, axis=2)))
    sink.close()
    return path
