"""Sinks: recorded video keeps frames, timestamps and colours; files survive errors and SIGKILL."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from nirstream.core.data.images import read_image
from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks import (
    ImageSequenceSink,
    NullSink,
    SinkConfig,
    VideoSink,
    WindowSink,
    open_sink,
    parse_sink,
    side_by_side,
)
from nirstream.stream.sinks import window as window_module

from conftest import REPOSITORY

RED = (230, 20, 20)


def make_info(width: int = 64, height: int = 48, fps: float | None = 30.0, bit_depth: int = 8) -> StreamInfo:
    return StreamInfo(name="test", width=width, height=height, fps=fps, bit_depth=bit_depth, live=False)


def make_frame(index: int, pts: float | None, width: int = 64, height: int = 48, colour=RED) -> Frame:
    nir = np.full((height, width), 100, np.uint8)
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = colour
    return Frame(index=index, pts=pts, captured_at=0.0, nir=nir, rgb=rgb)


def read_video(path: Path) -> tuple[list[float], list[np.ndarray], tuple[int, int]]:
    """Decoded pts (seconds), RGB frames and (width, height) of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        size = (stream.codec_context.width, stream.codec_context.height)
        times, images = [], []
        for frame in container.decode(stream):
            times.append(float(frame.pts * frame.time_base))
            images.append(frame.to_ndarray(format="rgb24"))
    return times, images, size


def write_video(path: Path, frames: list[Frame], info: StreamInfo, **options) -> VideoSink:
    sink = VideoSink(path, **options)
    sink.open(info)
    for frame in frames:
        sink.write(frame)
    sink.close()
    return sink


@pytest.mark.parametrize("width, height", [(64, 48), (641, 479)])
def test_video_keeps_frames_timestamps_and_colour(tmp_path, width, height):
    # Irregular intervals (a dropped frame, jitter) must survive, not be re-timed to 30 fps.
    pts = [10.0, 10.033, 10.067, 10.2, 10.2334, 10.3, 10.35, 10.4]
    frames = [make_frame(i, t, width, height) for i, t in enumerate(pts)]
    path = tmp_path / "out.mp4"
    write_video(path, frames, make_info(width, height))
    times, images, size = read_video(path)
    assert len(times) == len(pts)
    assert size == (width + width % 2, height + height % 2)
    # The file's timeline starts at 0: intervals are kept to the 1/90000 tick.
    np.testing.assert_allclose(times, np.array(pts) - pts[0], atol=1.5 / 90000)
    centre = images[-1][height // 2, width // 2].astype(int)
    assert centre[0] > 180 and centre[1] < 70 and centre[2] < 70, centre


def test_video_without_pts_uses_index_over_fps_and_keeps_order(tmp_path):
    frames = [make_frame(i, None) for i in range(5)] + [make_frame(5, None)]
    frames[5].index = 4  # a repeated index must still give a strictly later timestamp
    path = tmp_path / "out.mp4"
    write_video(path, frames, make_info(fps=25.0))
    times, _, _ = read_video(path)
    assert len(times) == 6
    np.testing.assert_allclose(times[:5], [i / 25 for i in range(5)], atol=1.5 / 90000)
    assert times[5] > times[4]


def test_video_side_by_side_and_16_bit_nir(tmp_path):
    frame = make_frame(0, 0.0)
    frame.nir = np.full((48, 64), 4095, np.uint16)  # 12-bit white
    path = tmp_path / "sbs.mkv"
    write_video(path, [frame], make_info(bit_depth=12), side_by_side=True)
    _, images, size = read_video(path)
    assert size == (128, 48)
    left, right = images[0][24, 16].astype(int), images[0][24, 100].astype(int)
    assert left.min() > 235  # 4095 at 12 bits is white, not 1/16 gray
    assert right[0] > 180 and right[2] < 70


def test_side_by_side_shape_and_scaling():
    frame = make_frame(0, 0.0, width=5, height=3)
    frame.nir = np.full((3, 5), 65535, np.uint16)
    image = side_by_side(frame)
    assert image.shape == (3, 10, 3) and image.dtype == np.uint8
    assert (image[:, :5] == 255).all()
    assert (image[:, 5:] == RED).all()
    frame.rgb = None
    assert (side_by_side(frame)[:, 5:] == 255).all()  # not yet colorized: NIR on both halves


def test_close_is_idempotent_and_safe_before_open(tmp_path):
    sink = VideoSink(tmp_path / "x.mp4")
    sink.close()
    write_video(tmp_path / "y.mp4", [make_frame(0, 0.0)], make_info()).close()
    assert len(read_video(tmp_path / "y.mp4")[0]) == 1


def test_unwritable_path_is_a_sink_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SinkError, match="cannot write video"):
        VideoSink(blocker / "sub" / "out.mp4").open(make_info())
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        if os.access(readonly, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(SinkError, match=str(readonly)):
            VideoSink(readonly / "out.mp4").open(make_info())
    finally:
        readonly.chmod(0o700)


def test_unknown_codec_is_a_sink_error(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(SinkError, match="unknown codec 'nosuchcodec'"):
        VideoSink(path, codec="nosuchcodec").open(make_info())
    assert not path.exists()


class FullDisk:
    """Stands in for the output container: muxes ``room`` packets, then fails as a full disk does."""

    def __init__(self, container, room: int) -> None:
        self._container = container
        self.room = room

    def mux(self, packet) -> None:
        if self.room == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= 1
        self._container.mux(packet)

    def __getattr__(self, name):
        return getattr(self._container, name)


def test_full_disk_is_a_sink_error_and_keeps_what_was_written(tmp_path):
    path = tmp_path / "out.mp4"
    sink = VideoSink(path)
    sink.open(make_info())
    for i in range(40):  # past the first keyframe interval: one fragment is complete
        sink.write(make_frame(i, i / 30))
    sink._container = FullDisk(sink._container, room=0)
    with pytest.raises(SinkError, match="disk full") as caught:
        for i in range(40, 200):
            sink.write(make_frame(i, i / 30))
    partial = tmp_path / "out.partial.mp4"
    assert "\n" not in str(caught.value) and str(partial) in str(caught.value)
    sink.close()  # after the error: nothing more to do, and no second error
    assert sink.written_path == partial and not path.exists()  # kept under a name that says so
    times, _, _ = read_video(partial)
    assert 0 < len(times) <= sink.frames_written


def count_frames(path: Path) -> int:
    """Decodable frames: PyAV's count, checked against ``ffprobe -count_frames`` where ffmpeg is installed."""
    frames = len(read_video(path)[0])
    if shutil.which("ffprobe"):
        probed = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
             "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
            capture_output=True, text=True, check=True,
        )
        assert int(probed.stdout.strip()) == frames
    return frames


@pytest.mark.parametrize(("seconds", "sparse"), [(1.5, False), (3.0, False), (10.0, False), (10.0, True)])
def test_a_recording_killed_at_any_moment_keeps_all_but_at_most_its_last_second(tmp_path, seconds, sparse):
    """SIGKILL after ``seconds`` of the demo clip's real frames were handed to the sink: the file
    plays every frame but those of at most the last second (one fragment). ``sparse``: frames
    4/15 s apart in a stream declared at the clip's rate, so a keyframe (every ``fps`` frames)
    comes only every 8 s: the fragment's time limit alone must keep the loss under a second."""
    clip = REPOSITORY / "assets" / "demo" / "nir-demo.mp4"
    path = tmp_path / "killed.mp4"
    script = textwrap.dedent(
        f"""
        import itertools, time
        import av
        from nirstream.stream.frame import Frame, StreamInfo
        from nirstream.stream.sinks import VideoSink
        with av.open({str(clip)!r}) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate)
            pictures = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        height, width = pictures[0].shape[:2]
        sink = VideoSink({str(path)!r})
        sink.open(StreamInfo("demo", width, height, fps, 8, False))
        step = 4 / 15 if {sparse} else 1 / fps
        goal = round({seconds} / step)
        for index, rgb in zip(range(goal), itertools.cycle(pictures)):
            sink.write(Frame(index, index * step, 0.0, rgb[:, :, 0].copy(), rgb))
        print(goal, 1 / step, flush=True)
        time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        handed, fps = child.stdout.readline().split()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    handed, fps = int(handed), float(fps)  # fps: frames per second of the frames' own times
    assert not path.exists()
    kept = count_frames(tmp_path / "killed.partial.mp4")
    assert handed - fps - 1 <= kept <= handed
    times, _, _ = read_video(tmp_path / "killed.partial.mp4")
    np.testing.assert_allclose(times, [i / fps for i in range(kept)], atol=1.5 / 90000)


def test_normal_close_keeps_every_frame(tmp_path):
    path = tmp_path / "all.mp4"
    write_video(path, [make_frame(i, i / 30) for i in range(100)], make_info())
    assert len(read_video(path)[0]) == 100


def test_image_sequence_names_and_content(tmp_path):
    folder = tmp_path / "frames"
    sink = ImageSequenceSink(folder)
    sink.open(make_info())
    for i in (3, 4, 7):
        sink.write(make_frame(i, None))
    sink.close()
    assert sorted(p.name for p in folder.iterdir()) == ["000003.png", "000004.png", "000007.png"]
    assert (read_image(folder / "000007.png") == RED).all()

    sbs = ImageSequenceSink(tmp_path / "sbs", pattern="f{index}.jpg", side_by_side=True)
    sbs.open(make_info())
    sbs.write(make_frame(1, None))
    assert read_image(tmp_path / "sbs" / "f1.jpg").shape == (48, 128, 3)


def test_image_sequence_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkError, match="cannot create image folder"):
        ImageSequenceSink(blocker / "frames").open(make_info())


def test_null_sink_counts():
    sink = NullSink()
    sink.open(make_info())
    for i in range(5):
        sink.write(make_frame(i, None))
    sink.close()
    assert sink.frames_written == 5


def test_window_without_display(monkeypatch):
    monkeypatch.setattr(window_module.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="^no display available for the window sink .*--sink preview"):
        WindowSink().open(make_info())


def test_window_when_opencv_has_no_gui(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")

    def no_gui(*args):
        raise cv2.error("The function is not implemented")

    monkeypatch.setattr(window_module.cv2, "namedWindow", no_gui)
    with pytest.raises(SinkError, match="no display available"):
        WindowSink().open(make_info())


class FakeGui:
    """OpenCV's window functions, scripted: a queue of keys and whether the window is still visible."""

    def __init__(self, monkeypatch, keys: list[int], visible: bool = True) -> None:
        self.keys, self.visible, self.shown = list(keys), visible, []
        monkeypatch.setenv("DISPLAY", ":0")
        for name, function in {
            "namedWindow": lambda *a: None,
            "imshow": lambda title, image: self.shown.append(image),
            "waitKey": lambda delay: self.keys.pop(0) if self.keys else -1,
            "getWindowProperty": lambda *a: 1.0 if self.visible else 0.0,
            "destroyWindow": lambda *a: None,
        }.items():
            monkeypatch.setattr(window_module.cv2, name, function)


def test_window_quits_on_q(monkeypatch):
    gui = FakeGui(monkeypatch, keys=[-1, ord("a"), ord("q") | 0x100000])
    sink = WindowSink(side_by_side=True)
    sink.open(make_info())
    sink.write(make_frame(0, None))
    sink.write(make_frame(1, None))
    assert not sink.quit_requested
    sink.write(make_frame(2, None))
    assert sink.quit_requested
    sink.close()
    sink.close()
    assert gui.shown[0].shape == (48, 128, 3)
    assert tuple(gui.shown[0][0, 100]) == RED[::-1]  # BGR for OpenCV


def test_window_quits_when_closed(monkeypatch):
    gui = FakeGui(monkeypatch, keys=[])
    sink = WindowSink(side_by_side=False)
    sink.open(make_info())
    sink.write(make_frame(0, None))
    assert not sink.quit_requested
    gui.visible = False
    sink.write(make_frame(1, None))
    assert sink.quit_requested
    assert gui.shown[0].shape == (48, 64, 3)


def test_open_sink_specs_and_their_options(tmp_path):
    config = SinkConfig(crf=30, side_by_side=True)
    assert isinstance(open_sink("null", config), NullSink)
    window = open_sink("window", config)
    assert isinstance(window, WindowSink) and window.side_by_side
    video = open_sink(str(tmp_path / "a.MOV"), config)
    assert isinstance(video, VideoSink) and (video.crf, video.codec, video.side_by_side) == (30, "libx264", True)
    assert isinstance(open_sink(str(tmp_path)), ImageSequenceSink)
    assert isinstance(open_sink("new/folder/"), ImageSequenceSink)
    with pytest.raises(SinkError, match="unknown sink"):
        open_sink(str(tmp_path / "out.avi"))


def test_parse_sink_kinds_and_output_paths(tmp_path):
    assert [parse_sink(text).kind for text in ("null", "window", "preview:9000", "x.mkv", "out/", str(tmp_path))] == [
        "null", "window", "preview", "video", "folder", "folder"]
    assert parse_sink("out/x.mp4").output == (Path("out") / "x.mp4").resolve()
    assert parse_sink("null").output is None and parse_sink("preview").output is None


def test_a_folder_sink_gives_each_of_many_inputs_its_own_video(tmp_path):
    assert parse_sink("out/").for_input("drive1.mp4").path == Path("out") / "drive1.mp4"
    assert parse_sink("out/").for_input("car1/2026-11-29/front.mkv").path == Path("out") / "car1" / "2026-11-29" / "front.mp4"
    per_camera = parse_sink(str(tmp_path)).for_input("cam0")
    assert (per_camera.kind, per_camera.path) == ("video", tmp_path / "cam0.mp4")
    for text in ("null", "one.mp4", "http://127.0.0.1:8080/", "preview:9000"):  # one sink for every input
        assert parse_sink(text).for_input("drive1.mp4") == parse_sink(text)


# --- outputs are never destroyed --------------------------------------------------------------


def test_a_recording_is_partial_until_the_run_completes(tmp_path):
    path = tmp_path / "out.mp4"
    sink = VideoSink(path)
    sink.open(make_info())
    for index in range(4):
        sink.write(make_frame(index, index / 30))
    assert not path.exists() and sink.written_path == tmp_path / "out.partial.mp4"
    sink.close(complete=True)
    assert sink.written_path == path and path.is_file() and not (tmp_path / "out.partial.mp4").exists()
    assert len(read_video(path)[0]) == 4


def test_an_interrupted_recording_keeps_its_frames_under_a_partial_name(tmp_path):
    path = tmp_path / "out.mp4"
    for attempt, name in enumerate(["out.partial.mp4", "out.partial-2.mp4"]):  # an earlier partial is kept too
        sink = VideoSink(path)
        sink.open(make_info())
        for index in range(3 + attempt):
            sink.write(make_frame(index, index / 30))
        sink.close(complete=False)
        assert sink.written_path == tmp_path / name and not path.exists()
        assert len(read_video(tmp_path / name)[0]) == 3 + attempt


def test_an_existing_output_is_never_replaced_unless_asked(tmp_path):
    path = tmp_path / "keep.mp4"
    path.write_bytes(b"135 frames of somebody's recording")
    with pytest.raises(SinkError, match=r"keep.mp4 exists: pass --overwrite \(or -y\)"):
        VideoSink(path).open(make_info())
    failing = VideoSink(path, codec="no-such-codec", overwrite=True)
    with pytest.raises(SinkError, match="unknown codec"):
        failing.open(make_info())  # a failed start of an overwriting run destroys nothing either
    assert path.read_bytes() == b"135 frames of somebody's recording"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]
    write_video(path, [make_frame(0, 0.0)], make_info(), overwrite=True)
    assert len(read_video(path)[0]) == 1


def test_an_image_folder_never_replaces_an_existing_image(tmp_path):
    (tmp_path / "000000.png").write_bytes(b"not ours")
    sink = ImageSequenceSink(tmp_path)
    sink.open(make_info())
    with pytest.raises(SinkError, match="000000.png exists"):
        sink.write(make_frame(0, 0.0))
    assert (tmp_path / "000000.png").read_bytes() == b"not ours"
    replacing = ImageSequenceSink(tmp_path, overwrite=True)
    replacing.open(make_info())
    replacing.write(make_frame(0, 0.0))
    assert read_image(tmp_path / "000000.png").shape == (48, 64, 3)


def test_an_odd_size_says_once_that_it_is_padded(tmp_path):
    from loguru import logger

    lines = []
    handler = logger.add(lines.append, format="{message}")
    try:
        write_video(tmp_path / "odd.mp4", [make_frame(i, i / 30, 65, 49) for i in range(3)], make_info(65, 49))
    finally:
        logger.remove(handler)
    padded = [line for line in lines if "stored as 66x50" in line]
    assert len(padded) == 1 and "65x49" in padded[0]
