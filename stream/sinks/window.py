"""A live preview in an OpenCV window; `q` or closing the window asks the pipeline to stop.

The sink only raises a flag (``quit_requested``): stopping is the pipeline's job, so the
shutdown path (drain, flush, close every sink) is the same as for SIGINT.
"""

import os
import sys

import cv2

from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.compose import output_image
from nirstream.stream.sinks.spec import SinkConfig

QUIT_KEYS = frozenset({ord("q"), ord("Q")})
NO_DISPLAY = ("no display available for the window sink (DISPLAY and WAYLAND_DISPLAY are unset): "
              "watch it with --sink preview (a page on 127.0.0.1) or --sink foxglove")


def check_display() -> None:
    """A one-line SinkError on a Linux machine without a display: run checks this before any model loads."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise SinkError(NO_DISPLAY)


class WindowSink(Sink):
    """Shows each frame (NIR | RGB by default) and polls the keyboard once per frame."""

    shows_latest = True  # the pipeline hands it the freshest frame and never waits for it

    def __init__(self, title: str = "nirstream", side_by_side: bool = SinkConfig.side_by_side) -> None:
        self.title = title
        self.side_by_side = side_by_side
        self.quit_requested = False
        self._bit_depth: int | None = None
        self._shown = False

    def open(self, info: StreamInfo) -> None:
        """Create the window; a headless machine or an OpenCV built without a GUI fails here."""
        check_display()
        self._bit_depth = info.bit_depth
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as error:
            raise SinkError(NO_DISPLAY) from error
        self._shown = True

    def write(self, frame: Frame) -> None:
        image = output_image(frame, side_by_side_view=self.side_by_side, bit_depth=self._bit_depth)
        try:
            cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            key = cv2.waitKey(1)
            closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error as error:
            raise SinkError(NO_DISPLAY) from error
        if (key != -1 and key & 0xFF in QUIT_KEYS) or closed:
            self.quit_requested = True

    def close(self, complete: bool = True) -> None:
        if not self._shown:
            return
        self._shown = False
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass
