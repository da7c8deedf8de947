"""The pipeline: source, colorizer and each sink in threads joined by bounded queues.

```
Source --Frame--> [inbox] --> Colorizer --Frame(+rgb)--> [outbox] --> fan-out --> [queue] --> Sink 1
(thread)          policy     (calling thread)             policy      (thread)     policy      (thread)
                                                                                   [queue] --> Sink 2 ...
```

The colorizer runs in the thread that calls :meth:`Pipeline.run`, the one that loaded and
warmed up the model. torch's OpenMP keeps a team of worker threads for each thread that runs
parallel work, and with more workers than cores libgomp stops them spinning between parallel
regions and puts them to sleep: the model run from a second thread of the process ran at
0.72x on a 2-core CPU (``benchmarks/model_thread.py``).

Each queue has a named policy: ``block`` (no frame lost: the default for files) or
``drop_oldest`` (the freshest frame, bounded latency: the default for live sources); every
dropped frame is counted. Every sink has its own thread and queue, so a slow one (a slow
disk, an encoder falling behind, a window) never holds up the others:

- sinks that show the stream (``shows_latest``: a window, the live preview) keep one frame
  and always show the freshest;
- recording sinks keep every frame of a file input (``block``); with a live source they hold
  up to :data:`LIVE_RECORDING_BUFFER_S` of frames, and drop (counted for that sink, said in
  the summary) only if the source outruns them for longer.

A frame counts as written when every sink has written or dropped it. Shutdown, whether at
the end of the input, on SIGINT/SIGTERM, on a sink asking to quit or on an error in any stage,
drains the frames in flight, closes every sink (flushing encoders) and returns a
:class:`~nirstream.stream.stats.Summary`.
"""

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from loguru import logger

from nirstream.core.metrics.temporal import CDCMeter, SceneCuts

from nirstream.stream.frame import Frame
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sources.base import Source
from nirstream.stream.stats import Stage, StageClock, Summary

POLICIES = ("block", "drop_oldest")

QUEUE_CAPACITY = 4
"""Frames each queue holds by default (``queue.capacity``)."""

LIVE_RECORDING_BUFFER_S = 1.0
"""How much video a recording sink of a live source may fall behind before it drops frames."""


@dataclass(frozen=True)
class RunStats:
    """A read-only snapshot of a run, handed to ``on_frame`` with each written frame: frames
    written so far, frames dropped before the sinks, and frames each sink skipped or dropped."""

    written: int
    dropped: int
    skipped: dict[str, int]


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

    def put(self, item: Frame) -> Frame | None:
        """Add ``item``; ``block`` waits for room, ``drop_oldest`` evicts the oldest and returns it.
        After :meth:`abandon` nothing is added and ``item`` itself comes back."""
        evicted = None
        with self._cond:
            while len(self._items) >= self.capacity and not self._abandoned:
                if self.policy == "drop_oldest":
                    evicted = self._items.popleft()
                    self.dropped += 1
                    break
                self._cond.wait(0.05)
            if self._abandoned:  # the consumer failed: nobody will read this
                return item
            self._items.append(item)
            self._cond.notify_all()
        return evicted

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

    def abandon(self) -> list[Frame]:
        """The consumer has failed: drop what is queued (returned) and let producers stop waiting."""
        with self._cond:
            self._abandoned = True
            items = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return items

    def drain(self) -> Iterator[Frame]:
        while True:
            try:
                yield self.get()
            except _Closed:
                return


class Pipeline:
    """Runs one source through the colorizer into one or more sinks.

    ``policy`` (``None``: ``drop_oldest`` for live sources, ``block`` otherwise) applies to the
    queues before the sinks and to the recording sinks' own queues; ``capacity`` is their size
    (a live recording's queue holds ``recording_buffer_s`` of frames, at least ``capacity``).
    ``max_frames`` stops after that many captured frames. ``on_frame(frame, stats)`` is called,
    from the sink thread that finishes it, one call at a time and outside the lock the stages
    share, after each frame
    every sink has written or dropped (progress bars, live stats lines), with a
    :class:`RunStats` snapshot. ``stop`` is the event that ends the run early (set by
    SIGINT/SIGTERM, a window's q, or whoever passed it: a cluster worker asked to stop).
    """

    def __init__(
        self,
        source: Source,
        stage: ColorizeStage,
        sinks: list[Sink],
        *,
        capacity: int = QUEUE_CAPACITY,
        policy: str | None = None,
        max_frames: int | None = None,
        on_frame: Callable[[Frame, RunStats], None] | None = None,
        recording_buffer_s: float = LIVE_RECORDING_BUFFER_S,
        stop: threading.Event | None = None,
    ) -> None:
        self.source, self.stage, self.sinks = source, stage, sinks
        live = source.info.live
        policy = policy or ("drop_oldest" if live else "block")
        self.inbox = FrameQueue("capture->colorize", capacity, policy)
        self.outbox = FrameQueue("colorize->sinks", capacity, policy)
        recording = max(capacity, round(recording_buffer_s * (source.info.fps or 30.0))) if live else capacity
        self.sink_queues = [
            FrameQueue(name, 1, "drop_oldest")
            if sink.shows_latest
            else FrameQueue(name, recording, policy)
            for sink, name in zip(sinks, sink_names(sinks))
        ]
        self.sink_written = [0] * len(sinks)
        self.max_frames = max_frames
        self.on_frame = on_frame
        self.stop = stop if stop is not None else threading.Event()
        self.clock = StageClock()
        self.captured = 0
        self.written = 0
        self._errors: list[BaseException] = []
        self.flicker = CDCMeter()  # the output's colour flicker within scenes, for the summary
        self._cuts = SceneCuts((1 << source.info.bit_depth) - 1)  # a cut is a new scene, not flicker
        self._pending: dict[int, int] = {}  # id(frame): sinks yet to write or drop it
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()  # on_frame runs in several sink threads: one at a time

    # --- stages -------------------------------------------------------------------------

    def _capture(self) -> None:
        try:
            for frame in self._read():
                self.inbox.put(frame)
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

    def _fan_out(self) -> None:
        """Hand each colorized frame to every sink's queue."""
        try:
            for frame in self.outbox.drain():
                self._handed(frame)
                for queue in self.sink_queues:
                    evicted = queue.put(frame)
                    if evicted is not None:  # dropped by this sink, or refused by a failed one
                        self._finish(evicted)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            self.outbox.abandon()
        finally:
            for queue in self.sink_queues:
                queue.close()

    def _write(self, index: int) -> None:
        queue = self.sink_queues[index]
        try:
            for frame in queue.drain():
                self._deliver(index, frame)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
            for frame in queue.abandon():
                self._finish(frame)

    def _deliver(self, index: int, frame: Frame) -> None:
        """Sink ``index`` writes ``frame``; a sink that asks to quit (a window's q) stops the run."""
        sink = self.sinks[index]
        sink.write(frame)
        self.sink_written[index] += 1
        self._finish(frame)
        if sink.quit_requested:
            self.stop.set()

    def _read(self) -> Iterator[Frame]:
        """The source's frames, counted, until its end, a stop or ``max_frames``."""
        for frame in self.source:
            if self.stop.is_set():
                return
            self.captured += 1
            yield frame
            if self.max_frames is not None and self.captured >= self.max_frames:
                return

    def _handed(self, frame: Frame) -> None:
        """A colorized frame goes to the sinks: count its colours and how many sinks must finish it."""
        if frame.rgb is not None:
            self.flicker.add(frame.rgb, cut=self._cuts(frame.nir))
        with self._lock:
            self._pending[id(frame)] = max(len(self.sinks), 1)
        if not self.sinks:
            self._finish(frame)

    def _finish(self, frame: Frame) -> None:
        """One sink is done with ``frame``; the last one stamps it written and reports it."""
        with self._lock:
            left = self._pending[id(frame)] - 1
            if left:
                self._pending[id(frame)] = left
                return
            del self._pending[id(frame)]
            frame.stamp(Stage.WRITTEN)
            self.written += 1
            self.clock.record(frame)
            if self.on_frame is None:
                return
            stats = RunStats(self.written, self.inbox.dropped + self.outbox.dropped,
                             {q.name: q.dropped for q in self.sink_queues if q.dropped})
        with self._report_lock:
            self.on_frame(frame, stats)

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
        """Run to the end of the input (or a stop), close everything, and summarise. The
        colorizer runs in this thread: call it from the thread that loaded and warmed up the
        model (the module's docstring says why)."""
        started = time.monotonic()
        threads = self._threads()
        previous = _install_stop_handlers(self.stop)
        finished = False  # every stage ran to its end: nothing raised here (a sink's open, Ctrl-C)
        try:
            for sink in self.sinks:  # inside the try: a sink that fails to open closes the others
                sink.open(self.source.info)
            for thread in threads:
                thread.start()
            self._colorize()  # here, in the model's own thread (the module's docstring says why)
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
            sinks={q.name: {"written": n, "dropped": q.dropped} for q, n in zip(self.sink_queues, self.sink_written)},
            seconds=time.monotonic() - started,
            latencies=self.clock.latencies(),
            interrupted=self.stop.is_set() and not self._errors,
            cdc=self.flicker.value,
        )

    def _threads(self) -> list[threading.Thread]:
        """A thread per stage but the colorizer's: capture, fan-out, and one per sink."""
        stages = [("capture", self._capture), ("fan-out", self._fan_out)]
        stages += [(f"sink-{i}", lambda i=i: self._write(i)) for i in range(len(self.sinks))]
        return [threading.Thread(target=target, name=f"nirstream-{name}", daemon=True) for name, target in stages]

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
        # set from a thread of its own: the handler runs in the main thread, which may be inside
        # stop.set() already (the colorizer failing), and the Event's lock is not reentrant
        previous[sig] = signal.signal(sig, lambda *_: threading.Thread(target=stop.set, daemon=True).start())
    return previous


def _restore_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def sink_names(sinks: list[Sink]) -> list[str]:
    """A name per sink for summaries: its file or folder, else its kind; repeated names numbered."""
    names = [sink.label for sink in sinks]
    return [f"{name} {names[:i].count(name) + 1}" if names.count(name) > 1 else name for i, name in enumerate(names)]
