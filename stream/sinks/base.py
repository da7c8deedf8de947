"""What the pipeline relies on from an output, declared once, so that several kinds of sink can
hang off one run and none is probed for what it might have."""

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from nirstream.stream.frame import Frame, StreamInfo


class Sink(ABC):
    """An output of the pipeline.

    ``open`` takes the source's StreamInfo before the first frame; ``write`` takes each frame
    in order; ``close`` is idempotent and safe after an error: it flushes and finalises what was
    written, so a recording stays playable however the run ended. ``complete`` says whether the
    run ended normally: a file sink then moves its output into place, and otherwise keeps it
    under a name that says it is partial.

    - ``shows_latest``: the sink shows the stream rather than recording it (a window, a live
      view): the pipeline gives it only the freshest frame and never waits for it.
    - ``quit_requested``: set by the sink to stop the run (a window's q).
    - ``path``: the file or bag it writes, once complete; ``written_path``: where its frames are
      now (the partial name until the run completes). None for sinks that keep no one file.
    - ``frames_written``: the frames it holds.
    - ``label``: its name in summaries.
    """

    shows_latest: bool = False
    quit_requested: bool = False
    path: Path | None = None
    written_path: Path | None = None
    frames_written: int = 0

    @abstractmethod
    def open(self, info: StreamInfo) -> None: ...

    @abstractmethod
    def write(self, frame: Frame) -> None: ...

    @abstractmethod
    def close(self, complete: bool = True) -> None: ...

    @property
    def label(self) -> str:
        """Its output's path, or its kind (``preview``, ``null``)."""
        return str(self.path) if self.path is not None else type(self).__name__.removesuffix("Sink").lower()

    def __enter__(self) -> "Sink":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close(complete=exc_type is None)
