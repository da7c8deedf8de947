"""``--realtime``: replay a recorded input at the rate it was recorded, as if its camera were live.

Latency and drop figures of a file input read as fast as the disk allows say little about a
car: there the camera sets the pace and a slow colorizer drops frames. Replayed in real time,
each frame is released when its timestamp comes due (relative to the first frame's), stamped
as captured then, and the stream is live: the pipeline keeps the freshest frames and counts
the ones it drops, as it does for a camera.
"""

import dataclasses
import time
from collections.abc import Iterator

from nirstream.stream.frame import Frame
from nirstream.stream.sources.base import Source

DEFAULT_FPS = 30.0
"""The pace of an input that has neither timestamps nor a frame rate."""


class RealtimeSource(Source):
    """``source`` released frame by frame at its recorded pace: its timestamps, else its frame rate."""

    def __init__(self, source: Source, *, clock=time.monotonic, sleep=time.sleep) -> None:
        self.source = source
        self.info = dataclasses.replace(source.info, live=True)
        self._clock, self._sleep = clock, sleep

    def __iter__(self) -> Iterator[Frame]:
        fps = self.source.info.fps or DEFAULT_FPS
        start = first_pts = None
        for frame in self.source:
            offset = frame.index / fps if frame.pts is None else frame.pts
            if start is None:
                start, first_pts = self._clock(), offset
            due = start + (offset - first_pts)
            wait = due - self._clock()
            if wait > 0:
                self._sleep(wait)
            frame.captured_at = self._clock()
            yield frame

    def close(self) -> None:
        self.source.close()
