"""The threaded pipeline: no loss for files, bounded latency for live sources, clean shutdown."""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from nirstream.stream.errors import SinkError, SourceError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.pipeline import FrameQueue, Pipeline
from nirstream.stream.sinks.base import Sink
from nirstream.stream.stats import Stage


class FakeSource:
    """``count`` frames of ``size``; a live one paces them at ``fps`` like a camera."""

    def __init__(self, count, *, live=False, fps=1000.0, size=(32, 48), on_frame=None):
        self.info = StreamInfo("fake", size[1], size[0], fps, 8, live, None if live else count)
        self.count, self.size, self.on_frame = count, size, on_frame
        self.closed = False

    def __iter__(self):
        start = time.monotonic()
        for i in range(self.count):
            if self.info.live:
                time.sleep(max(0.0, start + i / self.info.fps - time.monotonic()))
            now = time.monotonic()
            nir = np.full(self.size, i % 256, np.uint8)
            if self.on_frame is not None:
                self.on_frame(i)
            yield Frame(i, i / self.info.fps, now, nir, source="fake")

    def close(self):
        self.closed = True


class Gray:
    """A stand-in GPU stage: RGB = the NIR on three channels."""

    def run(self, frames):
        for frame in frames:
            frame.rgb = np.repeat(frame.nir[..., None], 3, axis=2)
            frame.stamp(Stage.COLORIZED)
            yield frame


class ListSink(Sink):
    def __init__(self, delay=0.0, fail_at=None):
        self.frames, self.delay, self.fail_at = [], delay, fail_at
        self.opened = self.closed = False
        self.complete = None

    def open(self, info):
        self.opened = True

    def write(self, frame):
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise SinkError("disk full while writing out.mp4")
        time.sleep(self.delay)
        self.frames.append((frame.index, frame.pts))

    def close(self, complete=True):
        self.closed, self.complete = True, complete


def test_file_source_under_a_slow_sink_loses_nothing_and_keeps_order_and_pts():
    source, sink = FakeSource(60), ListSink(delay=0.003)
    summary = Pipeline(source, Gray(), [sink], capacity=2).run()
    assert [i for i, _ in sink.frames] == list(range(60))
    assert [p for _, p in sink.frames] == [i / 1000.0 for i in range(60)]
    assert summary.captured == summary.written == 60 and summary.total_dropped == 0
    assert sink.opened and sink.closed and source.closed
    assert set(summary.latencies) == {"queue", "colorize", "sink", "end_to_end"}


class ShowSink(ListSink):
    """A sink that shows the stream (a window, the preview): it wants the freshest frame."""

    shows_latest = True


class GatedSink(ListSink):
    """A sink whose writes wait until ``gate`` opens: slower than anything, without a clock."""

    def __init__(self, gate, **kwargs):
        super().__init__(**kwargs)
        self.gate = gate

    def write(self, frame):
        assert self.gate.wait(timeout=120), "the gate never opened"
        super().write(frame)


class GatedShowSink(GatedSink):
    shows_latest = True


def test_live_source_under_a_stuck_recording_drops_for_that_sink_and_bounds_its_backlog():
    """The recording cannot write until the camera has sent its last frame: it keeps its buffer's
    worth (about 15 frames) and drops the rest, counted; the freshest frames get through."""
    import threading

    gate = threading.Event()
    source = FakeSource(150, live=True, fps=300.0, on_frame=lambda i: i == 149 and gate.set())
    sink = GatedSink(gate)
    summary = Pipeline(source, Gray(), [sink], capacity=2, recording_buffer_s=0.05).run()
    counts = summary.sinks["gated"]
    assert summary.captured == 150 and counts["written"] + counts["dropped"] + summary.total_dropped == 150
    # the frame in hand, its buffer (0.05 s at 300 fps), and at most what was in flight behind the
    # source's last frame when the gate opened (the two queues of capacity 2, the colorizer's
    # look-ahead, the fan-out's and the capture thread's frame in hand)
    assert counts["written"] <= 1 + 15 + 2 + 2 + 2 + 1 + 1
    assert counts["dropped"] >= 150 - 24
    indices = [i for i, _ in sink.frames]
    assert indices == sorted(indices) and indices[-1] == 149  # the freshest frames get through
    assert "gated: " in summary.table() and "dropped (it fell behind)" in summary.table()


def test_a_slow_sink_never_slows_the_others():
    """Counts, not times: a sink stuck until the input ends gets only the freshest frames (it
    shows the stream) or drops for itself (a live recording), while the other sinks get every frame."""
    import threading

    gate = threading.Event()

    class OpeningSink(ListSink):  # opens the gate once it has the last frame: nothing is in flight then
        def write(self, frame):
            super().write(frame)
            if frame.index == 49:
                gate.set()

    recording, window = OpeningSink(), GatedShowSink(gate)
    summary = Pipeline(FakeSource(50), Gray(), [recording, window]).run()
    assert [i for i, _ in recording.frames] == list(range(50))  # a file: the recording keeps every frame
    # it skipped to the freshest: the frame it held, at most one more, and the last
    assert len(window.frames) <= 3 and summary.sinks["gatedshow"]["dropped"] >= 47
    assert window.frames[-1][0] == 49 and summary.written == 50 and summary.total_dropped == 0

    gate = threading.Event()
    fast = ListSink()
    # the camera waits for the fast recording before each frame: however busy the machine, it never falls behind
    source = FakeSource(150, live=True, fps=300.0, on_frame=lambda i: _wait_for(lambda: len(fast.frames) >= i - 4)
                        or (i == 149 and gate.set()))
    stuck, shown = GatedSink(gate), ShowSink()
    summary = Pipeline(source, Gray(), [stuck, fast, shown], recording_buffer_s=0.05).run()
    assert [i for i, _ in fast.frames] == list(range(150))  # not one frame lost to the stuck recording
    assert summary.sinks["gated"]["dropped"] >= 150 - 24 and summary.sinks["list"]["dropped"] == 0
    assert shown.frames and shown.frames[-1][0] == 149  # the window shows the last frame


def _wait_for(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.001)


def test_a_slow_recording_of_a_file_loses_nothing():
    slow, fast = ListSink(delay=0.003), ListSink()
    summary = Pipeline(FakeSource(60), Gray(), [slow, fast], capacity=2).run()
    assert slow.frames == fast.frames and len(slow.frames) == 60
    assert all(counts == {"written": 60, "dropped": 0} for counts in summary.sinks.values())


def test_several_sinks_each_get_every_frame():
    sinks = [ListSink(), ListSink()]
    Pipeline(FakeSource(10), Gray(), sinks).run()
    assert sinks[0].frames == sinks[1].frames and len(sinks[0].frames) == 10


def test_a_failing_sink_stops_the_run_with_its_error_and_closes_every_sink():
    failing, other = ListSink(fail_at=5), ListSink()
    with pytest.raises(SinkError, match="disk full"):
        Pipeline(FakeSource(100), Gray(), [other, failing]).run()
    assert failing.closed and other.closed
    assert len(other.frames) >= 5


def test_a_source_that_fails_part_way_stops_the_run_with_its_error():
    """A broken file after 12 good frames: the run must raise (so ``nirstream run`` exits non-zero),
    not end quietly with a truncated output, and every sink is closed (its file finished)."""

    def corrupt(i):
        if i == 12:
            raise SourceError("frame 12 of drive.mp4 cannot be decoded")

    sink = ListSink()
    with pytest.raises(SourceError, match="frame 12 of drive.mp4"):
        Pipeline(FakeSource(100, on_frame=corrupt), Gray(), [sink]).run()
    assert sink.closed
    assert [i for i, _ in sink.frames] == list(range(len(sink.frames))) and len(sink.frames) <= 12


def test_a_colorizer_that_fails_part_way_stops_the_run_with_its_error():
    class FailsAtFive(Gray):
        def run(self, frames):
            for frame in super().run(frames):
                if frame.index == 5:
                    raise RuntimeError("CUDA out of memory on frame 5")
                yield frame

    sink = ListSink()
    with pytest.raises(RuntimeError, match="out of memory on frame 5"):
        Pipeline(FakeSource(100), FailsAtFive(), [sink]).run()
    assert sink.closed and [i for i, _ in sink.frames] == list(range(len(sink.frames))) and len(sink.frames) <= 5


def test_sigint_drains_in_flight_frames_and_returns_a_summary():
    def interrupt(i):
        if i == 20:
            os.kill(os.getpid(), signal.SIGINT)

    sink = ListSink()
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN under a shell's `cmd &`
    summary = Pipeline(FakeSource(10_000, on_frame=interrupt), Gray(), [sink]).run()
    assert summary.interrupted and sink.closed
    assert 20 <= summary.written < 10_000
    assert summary.written == summary.captured  # every captured frame was finished, none lost
    assert signal.getsignal(signal.SIGINT) == before  # handler restored


def test_max_frames_stops_capture():
    sink = ListSink()
    summary = Pipeline(FakeSource(100), Gray(), [sink], max_frames=7).run()
    assert summary.written == 7 and len(sink.frames) == 7


def test_drop_oldest_queue_keeps_the_newest_and_counts():
    queue = FrameQueue("q", 2, "drop_oldest")
    for i in range(5):
        queue.put(Frame(i, None, 0.0, np.zeros((1, 1), np.uint8)))
    queue.close()
    assert [f.index for f in queue.drain()] == [3, 4] and queue.dropped == 3


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_memory_stays_flat_over_a_long_stream():
    """2200 testsrc frames of 128x96 through a real (tiny) ColorMamba: a leak of the frames (49 kB
    each with RGB) would add about 90 MB, well over 5% of the process after warm-up."""
    from nirstream.core.models import build_model
    from nirstream.stream.colorizer import Colorizer, ColorizerConfig
    from nirstream.stream.sinks import NullSink
    from nirstream.stream.sources import TestSource

    from conftest import TINY_COLORMAMBA

    samples = {}

    class Probe(NullSink):
        def write(self, frame):
            super().write(frame)
            if frame.index in (200, 2199):
                samples[frame.index] = _rss_bytes()

    colorizer = Colorizer(build_model(dict(TINY_COLORMAMBA)), ColorizerConfig(device="cpu", tile=0))
    summary = Pipeline(TestSource(128, 96, frames=2200), colorizer, [Probe()]).run()
    assert summary.written == 2200
    growth = (samples[2199] - samples[200]) / samples[200]
    assert growth < 0.05, f"resident memory grew {growth:.1%} after warm-up"


def _logged_lines(run, monkeypatch) -> list[str]:
    """What ``run()`` logs with progress lines due at every frame."""
    from loguru import logger

    from nirstream.stream import progress

    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    lines: list[str] = []
    handler = logger.add(lines.append, format="{message}")
    try:
        run()
    finally:
        logger.remove(handler)
    return lines


def test_live_runs_log_a_stats_line(monkeypatch):
    from nirstream.stream.progress import Progress

    def run():
        source = FakeSource(5, live=True, fps=500.0)
        progress = Progress([source], max_frames=None, bars=False)
        progress.start(source)
        Pipeline(source, Gray(), [ListSink()], on_frame=progress).run()
        progress.close()

    lines = _logged_lines(run, monkeypatch)
    assert any("fps" in line and "latency p50" in line and "dropped" in line for line in lines)


def test_file_runs_without_a_terminal_log_progress_with_eta_per_input_and_for_the_batch(monkeypatch):
    from nirstream.stream.progress import Progress

    def run():
        sources = [FakeSource(6), FakeSource(4)]
        progress = Progress(sources, max_frames=None, bars=False)
        for source in sources:
            progress.start(source)
            Pipeline(source, Gray(), [ListSink(delay=0.002)], on_frame=progress).run()
            progress.end()
        progress.close()

    lines = _logged_lines(run, monkeypatch)
    assert any(line.startswith("fake: 3/6 frames") and "ETA" in line and "(input 1 of 2, batch ETA" in line for line in lines)
    assert any(line.startswith("fake: 4/4 frames") and "(input 2 of 2" in line for line in lines)


def test_a_sink_that_fails_to_open_closes_the_ones_already_open():
    class Unopenable(ListSink):
        def open(self, info):
            raise SinkError("cannot serve the preview on 127.0.0.1:8080: port in use")

    first, source = ListSink(), FakeSource(3)
    with pytest.raises(SinkError, match="port in use"):
        Pipeline(source, Gray(), [first, Unopenable()]).run()
    assert first.opened and first.closed and source.closed
    assert first.complete is False  # its file keeps a partial name: it must not replace anything


def test_a_frame_is_stamped_once_per_stage_in_order_and_the_summary_reads_the_stamps():
    sink = ListSink()
    stamped = []
    summary = Pipeline(FakeSource(5), Gray(), [sink], on_frame=lambda frame, _: stamped.append(frame)).run()
    for frame in stamped:
        times = [frame.time_of(stage) for stage in Stage]
        assert None not in times and times == sorted(times)  # captured <= colorize_start <= colorized <= written
    assert set(summary.latencies) == {"queue", "colorize", "sink", "end_to_end"}
    with pytest.raises(ValueError, match="captured_at"):
        stamped[0].stamp(Stage.CAPTURED)  # the source's capture time is never overwritten


def test_sinks_hear_whether_the_run_completed():
    done, failed = ListSink(), ListSink()
    Pipeline(FakeSource(3), Gray(), [done]).run()

    def corrupt(i):
        if i == 2:
            raise SourceError("frame 2 cannot be decoded")

    with pytest.raises(SourceError):
        Pipeline(FakeSource(10, on_frame=corrupt), Gray(), [failed]).run()
    assert done.complete is True and failed.complete is False


def test_a_live_source_that_fails_leaves_its_recording_partial():
    """A camera that drops out is not a user's stop: its recording must not be renamed as whole."""
    def unplugged(i):
        if i == 3:
            raise SourceError("camera 0 stopped delivering frames")

    sink = ListSink()
    with pytest.raises(SourceError):
        Pipeline(FakeSource(10, live=True, fps=500.0, on_frame=unplugged), Gray(), [sink], policy="block").run()
    assert sink.complete is False and len(sink.frames) == 3


def test_a_stop_ends_a_live_recording_normally_but_cuts_a_file_short():
    def interrupt(i):
        if i == 5:
            os.kill(os.getpid(), signal.SIGINT)

    live, recorded = ListSink(), ListSink()
    assert Pipeline(FakeSource(10_000, live=True, fps=500.0, on_frame=interrupt), Gray(), [live]).run().interrupted
    assert Pipeline(FakeSource(10_000, on_frame=interrupt), Gray(), [recorded]).run().interrupted
    assert live.complete is True  # a camera has no end but the user's stop
    assert recorded.complete is False  # a file input stopped early: the output says it is partial


def test_the_summary_reports_the_outputs_colour_flicker():
    steady = Pipeline(FakeSource(8), Gray(), [ListSink()]).run()
    assert steady.cdc is not None and steady.cdc > 0  # the fake frames' gray level changes every frame
    assert Pipeline(FakeSource(4), Gray(), [ListSink()]).run().cdc is None  # too short to measure
    assert "colour flicker (CDC" in steady.table()


def test_the_summary_cdc_leaves_scene_cuts_out():
    class TwoScenes(FakeSource):
        """Five steady frames of one scene, then five of a much brighter one: a cut, no flicker."""

        def __iter__(self):
            for i in range(10):
                yield Frame(i, i / 30, time.monotonic(), np.full(self.size, 30 if i < 5 else 220, np.uint8), source="fake")

    summary = Pipeline(TwoScenes(10), Gray(), [ListSink()]).run()
    assert summary.cdc == 0.0  # counted across the cut it would be large


def test_the_colorizer_runs_in_the_thread_that_runs_the_pipeline():
    """The thread that loaded the model: on the CPU a second thread would keep a second OpenMP team."""
    import threading

    class RecordingGray(Gray):
        def __init__(self):
            self.threads = set()

        def run(self, frames):
            for frame in super().run(frames):
                self.threads.add(threading.get_ident())
                yield frame

    stage = RecordingGray()
    for source in (FakeSource(12), FakeSource(12, live=True)):
        sink = ListSink()
        # block: a live source's drop-oldest queues may drop frames on a busy machine, and
        # this test counts threads, not drops
        Pipeline(source, stage, [sink, ListSink()], policy="block").run()
        assert len(sink.frames) == 12
    assert stage.threads == {threading.get_ident()}


def test_on_frame_is_called_one_at_a_time_from_the_sink_threads():
    import threading

    inside, most, lock = [0], [0], threading.Lock()

    def on_frame(frame, stats):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.001)  # widens the window two threads would share (a longer call, not a timed assertion)
        with lock:
            inside[0] -= 1

    summary = Pipeline(FakeSource(60), Gray(), [ListSink(), ListSink(), ListSink()], on_frame=on_frame).run()
    assert summary.written == 60 and most[0] == 1
