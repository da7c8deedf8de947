"""Latency and throughput: per-stage and end-to-end percentiles from the frames' timestamps.

A frame carries monotonic timestamps (``captured``, ``colorize_start``, ``colorized``,
``written``); each stage's latency is the difference of two of them. The last
:data:`WINDOW` frames are kept, so a stream of any length holds bounded memory.
"""

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from nirstream.stream.frame import Frame

WINDOW = 100_000
STAGES = {  # name: (from timestamp, to timestamp)
    "queue": ("captured", "colorize_start"),
    "colorize": ("colorize_start", "colorized"),
    "sink": ("colorized", "written"),
    "end_to_end": ("captured", "written"),
}


class StageClock:
    """Collects per-stage latencies (seconds) of written frames."""

    def __init__(self) -> None:
        self.samples = {name: deque(maxlen=WINDOW) for name in STAGES}

    def record(self, frame: Frame) -> None:
        t = frame.timings
        for name, (start, end) in STAGES.items():
            if start in t and end in t:
                self.samples[name].append(t[end] - t[start])

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
    """What one pipeline run did: frames in, out, dropped, throughput and latency."""

    name: str
    captured: int
    written: int
    dropped: dict[str, int]
    seconds: float
    fps: float
    latencies: dict[str, dict[str, float]] = field(default_factory=dict)
    interrupted: bool = False

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
        return "\n".join(lines)
