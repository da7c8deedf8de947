"""What every input has in common: an iterator of Frames with ``info``, ``close()`` and ``with``.

The pipeline runs a source in its own thread and only ever iterates it and closes it, so a new
kind of input needs nothing more than this class and an entry in :func:`open_source`.
"""

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType

import numpy as np

from nirstream.stream.frame import Frame, StreamInfo


class Source(ABC):
    """Base of all inputs: subclasses set ``info`` in their constructor and implement ``__iter__``."""

    info: StreamInfo

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Yield frames until the input ends (files) or is closed (live sources)."""

    def close(self) -> None:
        """Release the file, device or connection; safe to call more than once."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def make_frame(index: int, pts: float | None, nir: np.ndarray, source: str, name: str = "") -> Frame:
    """Stamp a frame with the monotonic time it entered the pipeline, the origin of all latencies."""
    now = time.monotonic()
    return Frame(index=index, pts=pts, captured_at=now, nir=nir, source=source, name=name)
