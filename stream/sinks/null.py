"""A sink that discards frames: measures the pipeline without the cost of an output."""

from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks.base import Sink


class NullSink(Sink):
    """Counts the frames it is given, for benchmarks and tests."""

    def __init__(self) -> None:
        self.frames_written = 0

    def open(self, info: StreamInfo) -> None:
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        self.frames_written += 1

    def close(self, complete: bool = True) -> None:
        """Nothing to finalise."""
