"""The pipeline's clock: the moments a frame is stamped at, and the latencies read from them.

This module owns the clock. :class:`Stage` declares every moment, in pipeline order; a stage
records one with ``frame.stamp(Stage.X)`` (the monotonic clock), and every latency anywhere
(the run summary, ``nirstream bench``, the live preview) is the difference of two stamps,
read with ``frame.time_of(stage)``. The last :data:`WINDOW` frames are kept, so a stream of
any length holds bounded memory.
"""

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nirstream.stream.frame import Frame


class Stage(str, Enum):
    """The moments a frame is stamped at, in the order it passes them."""

    CAPTURED = "captured"  # the source made the frame (Frame.captured_at)
    COLORIZE_START = "colorize_start"  # the colorizer took it from its queue
    COLORIZED = "colorized"  # its RGB is ready
    WRITTEN = "written"  # every sink has it


WINDOW = 100_000
STAGES = {  # name: (from, to)
    "queue": (Stage.CAPTURED, Stage.COLORIZE_START),
    "colorize": (Stage.COLORIZE_START, Stage.COLORIZED),
    "sink": (Stage.COLORIZED, Stage.WRITTEN),
    "end_to_end": (Stage.CAPTURED, Stage.WRITTEN),
}


class StageClock:
    """Collects per-stage latencies (seconds) of written frames."""

    def __init__(self) -> None:
        self.samples = {name: deque(maxlen=WINDOW) for name in STAGES}

    def record(self, frame: "Frame") -> None:
        for name, (start, end) in STAGES.items():
            began, ended = frame.time_of(start), frame.time_of(end)
            if began is not None and ended is not None:
                self.samples[name].append(ended - began)

    def latencies(self) -> dict[str, dict[str, float]]:
        """``{stage: {"p50": ms, "p95": ms, "p99": ms}}`` for stages with samples."""
        out = {}
        for name, values in self.samples.items():
            if values:
                p50, p95, p99 = np.percentile(np.fromiter(values, float), [50, 95, 99]) * 1e3
                out[name] = {"p50": float(p50), "p95": float(p95), "p99": float(p99)}
        return out


@dataclass
class Summary:
    """What one pipeline run did: frames in, out, dropped, throughput and latency.

    ``dropped`` counts the frames lost to every output (the queues before the sinks);
    ``sinks`` what each sink wrote and dropped on its own (a preview skipping to the freshest
    frame, a recording that fell behind a live source).
    """

    name: str
    captured: int
    written: int
    dropped: dict[str, int]
    seconds: float
    fps: float
    latencies: dict[str, dict[str, float]] = field(default_factory=dict)
    interrupted: bool = False
    sinks: dict[str, dict[str, int]] = field(default_factory=dict)  # per sink: frames written and dropped
    cdc: float | None = None  # colour flicker of the output within scenes (core.metrics.temporal), from five frames on

    @classmethod
    def build(cls, *, seconds: float, written: int, **fields) -> "Summary":
        return cls(seconds=seconds, written=written, fps=written / seconds if seconds > 0 else 0.0, **fields)

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def table(self) -> str:
        lines = [
            f"{self.name}: {self.captured} frames in, {self.written} out, {self.total_dropped} dropped"
            + (" (" + ", ".join(f"{k}: {v}" for k, v in self.dropped.items() if v) + ")" if self.total_dropped else "")
            + f", {self.fps:.1f} fps over {self.seconds:.1f} s" + (" (stopped early)" if self.interrupted else ""),
            f"  {'latency ms':<12}{'p50':>9}{'p95':>9}{'p99':>9}",
        ]
        for stage, p in self.latencies.items():
            lines.append(f"  {stage:<12}{p['p50']:9.1f}{p['p95']:9.1f}{p['p99']:9.1f}")
        if self.cdc is not None:
            lines.append(f"  colour flicker (CDC, scene cuts left out): {self.cdc:.5f}")
        for sink, counts in self.sinks.items():
            if counts["dropped"]:
                lines.append(f"  {sink}: {counts['written']} frames written, {counts['dropped']} dropped (it fell behind)")
        return "\n".join(lines)
