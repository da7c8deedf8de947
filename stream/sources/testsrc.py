"""A synthetic moving NIR scene for demos, tests and benchmarks, with no file or camera needed.

Each frame is a pure function of its index (smooth gradients, moving shapes, a fixed texture),
so two runs give identical frames and a test can recompute any frame it expects.
"""

import time
from collections.abc import Iterator

import numpy as np

from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sources.base import Source, make_frame


class TestSource(Source):
    """Frames of ``width``×``height`` at ``fps``; endless when ``frames`` is None.

    ``bit_depth`` 8 gives uint8 frames, 16 gives uint16 using the full 16-bit range.
    ``realtime`` paces frames on the wall clock at ``fps`` as a camera would (frame n is not
    handed out before n/fps seconds after the first); ``live`` only sets ``info.live``, so a
    live, realtime test source stands in for a camera in pipeline tests.
    """

    __test__ = False  # a source, not a pytest test class

    def __init__(
        self,
        width: int = 640,
        height: int = 512,
        fps: float = 30,
        frames: int | None = None,
        bit_depth: int = 8,
        live: bool = False,
        realtime: bool = False,
    ) -> None:
        if bit_depth not in (8, 16):
            raise ValueError(f"testsrc bit_depth must be 8 or 16, got {bit_depth}")
        if width < 1 or height < 1 or fps <= 0:
            raise ValueError(f"testsrc needs a positive size and fps, got {width}x{height}@{fps}")
        self.frames = frames
        self.realtime = realtime
        self.info = StreamInfo("testsrc", width, height, float(fps), bit_depth, live, frames)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self._x = xs / max(width - 1, 1)
        self._y = ys / max(height - 1, 1)
        texture = np.random.default_rng(0).random((height, width), dtype=np.float32)
        self._texture = 0.08 * (texture - 0.5)

    def render(self, index: int) -> np.ndarray:
        """The NIR image of frame ``index``: the same index always gives the same pixels."""
        t = index / self.info.fps
        x, y = self._x, self._y
        image = 0.35 + 0.25 * np.sin(2 * np.pi * (x + 0.1 * t)) * np.cos(np.pi * (y - 0.05 * t))
        cx, cy = 0.5 + 0.3 * np.cos(0.7 * t), 0.5 + 0.3 * np.sin(1.1 * t)
        aspect = self.info.width / self.info.height
        disc = ((x - cx) * aspect) ** 2 + (y - cy) ** 2 < 0.12**2
        image[disc] = 0.9
        left = (0.25 * t) % 1.0
        bar = (x >= left) & (x < left + 0.08) & (y > 0.6) & (y < 0.85)
        image[bar] = 0.1
        image += self._texture
        peak = 255 if self.info.bit_depth == 8 else 65535
        dtype = np.uint8 if self.info.bit_depth == 8 else np.uint16
        return np.rint(np.clip(image, 0.0, 1.0) * peak).astype(dtype)

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index = 0
        while self.frames is None or index < self.frames:
            if self.realtime:
                delay = start + index / self.info.fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield make_frame(index, index / self.info.fps, self.render(index), self.info.name)
            index += 1
