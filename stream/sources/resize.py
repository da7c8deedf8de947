"""``--resize WxH``: every frame of a source scaled to one size before it is colorized.

For inputs whose frames differ in size (a folder of images from several cameras) going into a
video, which has one frame size; and to colorize a large input at a smaller size for speed.
Area averaging when shrinking (no aliasing), bilinear when enlarging; the bit depth is kept.
"""

import dataclasses
from collections.abc import Iterator

import cv2

from nirstream.core.errors import ConfigError
from nirstream.stream.frame import Frame
from nirstream.stream.sources.base import Source


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``; ConfigError naming the text otherwise."""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise ConfigError(f"a size must be WIDTHxHEIGHT in pixels, such as 640x480; got {text!r}")
    return int(width), int(height)


class ResizedSource(Source):
    """``source`` with every frame scaled to ``size`` (width, height)."""

    def __init__(self, source: Source, size: tuple[int, int]) -> None:
        self.source, self.size = source, size
        self.info = dataclasses.replace(source.info, width=size[0], height=size[1])

    def __iter__(self) -> Iterator[Frame]:
        width, height = self.size
        for frame in self.source:
            rows, columns = frame.nir.shape
            if (columns, rows) != self.size:
                shrinking = columns * rows > width * height
                frame.nir = cv2.resize(frame.nir, self.size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
            yield frame

    def close(self) -> None:
        self.source.close()
