"""What a run says while it runs: progress bars with ETA on a terminal, log lines elsewhere.

- Files on a terminal: a bar per input (frames, fps, ETA) and, for a batch of several
  inputs, one over all of them.
- Files without a terminal (a log file, CI, ``--log-json``): a progress line every
  :data:`EVERY_S` seconds with the same figures.
- Live and endless sources (cameras, streams, ``testsrc``): a stats line every
  :data:`EVERY_S` seconds: fps, end-to-end latency p50/p99, and the frames dropped.
"""

import time

import numpy as np
from loguru import logger
from tqdm import tqdm

from nirstream.stream.frame import Frame
from nirstream.stream.pipeline import RunStats
from nirstream.stream.sources.base import Source
from nirstream.stream.stats import Stage

EVERY_S = 5.0
"""Seconds between progress or stats lines where no bar is shown."""


class Progress:
    """Progress over a batch of inputs; pass it as a pipeline's ``on_frame`` and bracket each input
    with :meth:`start` and :meth:`end`."""

    def __init__(self, sources: list[Source], *, max_frames: int | None, bars: bool) -> None:
        self.max_frames = max_frames
        self.inputs = len(sources)
        counts = [self._expected(s) for s in sources]
        self.total = sum(counts) if all(c is not None for c in counts) else None
        self.live = any(s.info.live for s in sources)
        self.bars = bars and not self.live
        self.batch = tqdm(total=self.total, unit="frame", desc="all inputs", position=0, dynamic_ncols=True,
                          disable=not (self.bars and self.inputs > 1))
        self.bar: tqdm | None = None
        self.number = 0
        self.done_before = 0  # frames of the inputs already finished
        self.done_now = 0  # frames of the input under way
        self.name, self.expected = "", None
        self.started = self.last = time.monotonic()
        self.frames_at_last = 0
        self.latencies: list[float] = []  # end to end (s), of the frames written since the last line

    def _expected(self, source: Source) -> int | None:
        count = source.info.frame_count
        if count is None or self.max_frames is None:
            return count
        return min(count, self.max_frames)

    def start(self, source: Source) -> None:
        self.number += 1
        self.name, self.expected = source.info.name, self._expected(source)
        self.started = self.last = time.monotonic()
        self.frames_at_last = self.done_now = 0
        self.latencies.clear()
        self.bar = tqdm(total=self.expected, unit="frame", desc=self.name, position=1 if self.inputs > 1 else 0,
                        leave=False, dynamic_ncols=True, disable=not self.bars)

    def __call__(self, frame: Frame, stats: RunStats) -> None:
        self.done_now += 1
        self.latencies.append(frame.time_of(Stage.WRITTEN) - frame.time_of(Stage.CAPTURED))
        if self.bar is not None:
            self.bar.update(1)
        self.batch.update(1)
        now = time.monotonic()
        if self.bars or now - self.last < EVERY_S:
            return
        if self.live:
            logger.info(stats_line(stats, stats.written - self.frames_at_last, now - self.last, self.latencies))
        else:
            logger.info(self._progress_line(stats.written, now - self.started))
        self.last, self.frames_at_last = now, stats.written
        self.latencies.clear()

    def _progress_line(self, done: int, seconds: float) -> str:
        fps = done / seconds if seconds > 0 else 0.0
        of = f"/{self.expected}" if self.expected else ""
        line = f"{self.name}: {done}{of} frames, {fps:.1f} fps"
        if self.expected and fps > 0:
            line += f", ETA {duration((self.expected - done) / fps)}"
        if self.inputs > 1:
            line += f" (input {self.number} of {self.inputs}"
            if self.total and fps > 0:
                line += f", batch ETA {duration((self.total - self.done_before - done) / fps)}"
            line += ")"
        return line

    def end(self) -> None:
        self.done_before += self.done_now
        self.done_now = 0
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.batch.close()


def stats_line(stats: RunStats, frames: int, seconds: float, latencies: list[float]) -> str:
    """fps and end-to-end latency over the last ``seconds`` (``latencies`` in seconds, of the
    frames written then), and drops so far, in one line."""
    p50, p99 = np.percentile(latencies, [50, 99]) * 1e3 if latencies else (0.0, 0.0)
    behind = ", ".join(f"{name} {count}" for name, count in stats.skipped.items())
    return (
        f"{stats.written} frames, {frames / seconds if seconds > 0 else 0.0:.1f} fps, latency p50 "
        f"{p50:.0f} ms p99 {p99:.0f} ms, {stats.dropped} dropped"
        + (f" (skipped by sinks: {behind})" if behind else "")
    )


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
