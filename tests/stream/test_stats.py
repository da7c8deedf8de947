"""The latency figures: percentiles of known latencies."""

import pytest

from nirstream.stream.frame import Frame
from nirstream.stream.stats import Stage, StageClock


def test_stage_clock_percentiles_of_known_latencies():
    clock = StageClock()
    for ms in range(1, 101):  # end-to-end latencies 1, 2, ... 100 ms
        frame = Frame(ms, None, 10.0, None)
        frame.stamps[Stage.COLORIZE_START] = 10.0
        frame.stamps[Stage.COLORIZED] = 10.0
        frame.stamps[Stage.WRITTEN] = 10.0 + ms / 1000
        clock.record(frame)
    latency = clock.latencies()["end_to_end"]
    assert latency["p50"] == pytest.approx(50.5)
    assert latency["p95"] == pytest.approx(95.05)
    assert latency["p99"] == pytest.approx(99.01)
