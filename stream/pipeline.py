"""The pipeline: source, colorizer and sinks in threads joined by bounded queues.

```
Source --Frame--> [inbox] --> Colorizer --Frame(+rgb)--> [outbox] --> Sink(s)
(thread)          policy       (thread)                   policy       (thread)
```

Each queue has a named policy: ``block`` (no frame lost: the default for files) or
``drop_oldest`` (the freshest frame, bounded latency: the default for live sources); every
dropped frame is counted. Shutdown, whether at the end of the input, on SIGINT/SIGTERM, on a
sink asking to quit or on an error in any stage, drains the frames in flight, closes every
sink (flushing encoders) and returns a :class:`~nirstream.stream.stats.Summary`.
"""

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from loguru import logger

from nirstream.stream.frame import Frame
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sources.base import Source
from nirstream.stream.stats import Stage, StageClock, Summary

POLICIES = ("block", "drop_oldest")


class ColorizeStage(Protocol):
    """The GPU stage: a lazy map from frames to colorized frames (see ``Colorizer.run``)."""

    def run(self, frames: Iterable[Frame]) -> Iterator[Frame]: ...


class _Closed(Exception):
    """Raised by :meth:`FrameQueue.get` once the queue is closed and empty."""


class FrameQueue:
    """A bounded queue with a named overflow policy and a drop counter."""

    def __init__(self, name: str, capacity: int, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"queue policy must be one of {', '.join(POLICIES)}, got '{policy}'")
        self.name, self.capacity, self.policy = name, max(1, capacity), policy
        self.dropped = 0
        self._items: deque[Frame] = deque()
        self._closed = False
        self._abandoned = False
        self._cond = threading.Condition()

    def put(self, item: Frame) -> None:
        """Add ``item``; ``block`` waits for room, ``drop_oldest`` evicts the oldest."""
        with self._cond:
            while len(self._items) >= self.capacity and not self._abandoned:
                if self.policy == "drop_oldest":
                    self._items.popleft()
                    self.dropped += 1
                    break
                self._cond.wait(0.05)
            if self._abandoned:  # the consumer failed: nobody will read this
                return
            self._items.append(item)
            self._cond.notify_all()

    def get(self) -> Frame:
        with self._cond:
            while not self._items:
                if self._closed:
                    raise _Closed
                self._cond.wait(0.05)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more items will come; readers finish what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abandon(self) -> None:
        """The consumer has failed: drop what is queued and let producers stop waiting."""
        with self._cond:
            self._abandoned = True
            self._items.clear()
            self._cond.notify_all()

    def drain(self) -> Iterator[Frame]:
        while True:
            try:
                yield self.get()
            except _Closed:
                return


class Pipeline:
    """Runs one source through the colorizer into one or more sinks.

    ``policy`` (``None``: ``drop_oldest`` for live sources, ``block`` otherwise) applies to
    both queues. ``max_frames`` stops after that many captured frames. ``on_frame`` is called
    from the sink thread after each written frame (progress bars, live stats lines).
    """

    def __init__(
        self,
        source: Source,
        stage: ColorizeStage,
        sinks: list[Sink],
        *,
        capacity: int = 4,
        policy: str | None = None,
        max_frames: int | None = None,
        on_frame: Callable[[Frame, "Pipeline"], None] | None = None,
    ) -> None:
        self.source, self.stage, self.sinks = source, stage, sinks
        policy = policy or ("drop_oldest" if source.info.live else "block")
        self.inbox = FrameQueue("capture->colorize", capacity, policy)
        self.outbox = FrameQueue("colorize->sinks", capacity, policy)
        self.max_frames = max_frames
        self.on_frame = on_frame
        self.stop = threading.Event()
        self.clock = StageClock()
        self.captured = 0
        self.written = 0
        self._errors: list[BaseException] = []

    # --- stages -------------------------------------------------------------------------

    def _capture(self) -> None:
        try:
            for frame in self.source:
                if self.stop.is_set():
                    break
                self.captured += 1
                self.inbox.put(frame)
                if self.max_frames is not None and self.captured >= self.max_frames:
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._fail(exc)
        finally:
            self.inbox.close()

    def _colorize(self) -> None:
        try:
            for frame in self.stage.run(self._stamped(self.inbox.drain(), Stage.COLORIZE_START)):
                self.outbox.put(frame)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            self.inbox.abandon()
        finally:
            self.outbox.close()

    def _write(self) -> None:
        try:
            for frame in self.outbox.drain():
                for sink in self.sinks:
                    sink.write(frame)
                frame.stamp(Stage.WRITTEN)
                self.written += 1
                self.clock.record(frame)
                if self.on_frame is not None:
                    self.on_frame(frame, self)
                if any(getattr(sink, "quit_requested", False) for sink in self.sinks):
                    self.stop.set()
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            self.outbox.abandon()

    @staticmethod
    def _stamped(frames: Iterator[Frame], stage: Stage) -> Iterator[Frame]:
        for frame in frames:
            frame.stamp(stage)
            yield frame

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self.stop.set()

    # --- running --------------------------------------------------------------------------

    def run(self) -> Summary:
        """Run to the end of the input (or a stop), close everything, and summarise."""
        started = time.monotonic()
        threads = [
            threading.Thread(target=target, name=f"nirstream-{name}", daemon=True)
            for name, target in (("capture", self._capture), ("colorize", self._colorize), ("sinks", self._write))
        ]
        previous = _install_stop_handlers(self.stop)
        finished = False  # every stage ran to its end: nothing raised here (a sink's open, Ctrl-C)
        try:
            for sink in self.sinks:  # inside the try: a sink that fails to open closes the others
                sink.open(self.source.info)
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)
            finished = True
        finally:
            self._close_all(finished)
            _restore_handlers(previous)
        if self._errors:
            raise self._errors[0]
        return Summary.build(
            name=self.source.info.name,
            captured=self.captured,
            written=self.written,
            dropped={q.name: q.dropped for q in (self.inbox, self.outbox)},
            seconds=time.monotonic() - started,
            latencies=self.clock.latencies(),
            interrupted=self.stop.is_set() and not self._errors,
        )

    def _close_all(self, finished: bool) -> None:
        """Close every sink even when one fails, so each file written so far stays playable.

        A run that failed, or a file input stopped early, closes them as incomplete (their files
        keep a partial name). A live source has no end but the user's stop (Ctrl-C, a window's
        q), so for it a stop is the normal end and its recordings are complete.
        """
        stopped_early = self.stop.is_set() and not self.source.info.live
        complete = finished and not self._errors and not stopped_early
        closers = [lambda sink=sink: sink.close(complete) for sink in self.sinks] + [self.source.close]
        for close in closers:
            try:
                close()
            except BaseException as exc:  # noqa: BLE001
                logger.debug("closing failed: {}", exc)
                if not self._errors:
                    self._errors.append(exc)


def _install_stop_handlers(stop: threading.Event) -> dict[int, Any]:
    """SIGINT and SIGTERM set ``stop`` (a clean, draining shutdown) instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _restore_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
