"""What the pipeline needs from an output, so that several kinds of sink can hang off one run."""

from typing import Protocol

from nirstream.stream.frame import Frame, StreamInfo


class Sink(Protocol):
    """An output of the pipeline.

    ``close`` is idempotent and safe after an error: it flushes and finalises what was
    written, so a recording stays playable however the run ended. ``complete`` says whether the
    run ended normally: a file sink then moves its output into place, and otherwise keeps it
    under a name that says it is partial.

    A sink that shows the stream rather than recording it sets ``shows_latest = True``: the
    pipeline then gives it only the freshest frame and never waits for it. A sink may set
    ``quit_requested`` to stop the run (a window's q).
    """

    def open(self, info: StreamInfo) -> None: ...

    def write(self, frame: Frame) -> None: ...

    def close(self, complete: bool = True) -> None: ...
