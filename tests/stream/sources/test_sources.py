"""Sources on inputs the tests make themselves: videos written with PyAV, images, a fake camera."""

import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from nirstream.core.data.images import write_image
from nirstream.stream.errors import SourceError
from nirstream.stream.sources import (
    CameraSource,
    ImageSource,
    TestSource,
    VideoSource,
    expand_inputs,
    open_source,
)
from nirstream.stream.sources import camera as camera_module
from nirstream.stream.stats import Stage

from videos import RATE, fragmented_mp4, random_frames, write_video
from nirstream.stream.sources.camera import camera_frame_to_nir

@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[np.ndarray]]]:
    root = tmp_path_factory.mktemp("videos")
    made = {}
    lossless = {"qp": "0"}
    for name, codec, pix_fmt, width, high, dtype, options in [
        ("gray8.mp4", "libx264", "gray", 641, 255, np.uint8, lossless),
        ("yuv420p.mp4", "libx264", "yuv420p", 642, 255, np.uint8, lossless),  # 4:2:0 needs an even width
        ("gray16.mkv", "ffv1", "gray16le", 641, 65535, np.uint16, {}),
        ("gray10.mkv", "ffv1", "gray10le", 641, 1023, np.uint16, {}),
    ]:
        frames = random_frames(5, width, 479 + (width % 2 == 0), high, dtype)
        write_video(root / name, codec, pix_fmt, frames, options)
        made[name] = (root / name, frames)
    return made


@pytest.mark.parametrize("name", ["gray8.mp4", "yuv420p.mp4", "gray16.mkv", "gray10.mkv"])
def test_video_frames_values_and_timestamps_survive(videos, name: str) -> None:
    path, written = videos[name]
    with VideoSource(path) as source:
        frames = list(source)
        info = source.info
    height, width = written[0].shape
    assert (info.width, info.height, info.fps, info.live) == (width, height, RATE, False)
    assert info.bit_depth == (8 if written[0].dtype == np.uint8 else 16)
    assert len(frames) == len(written)
    assert [frame.pts for frame in frames] == pytest.approx([i / RATE for i in range(len(written))])
    assert [frame.index for frame in frames] == list(range(len(written)))
    for frame, expected in zip(frames, written):
        assert frame.nir.dtype == expected.dtype and frame.nir.shape == (height, width)
        np.testing.assert_array_equal(frame.nir, expected)
        assert frame.source == name and frame.time_of(Stage.CAPTURED) == frame.captured_at
    assert frames[0].nir.max() == written[0].max() and frames[0].nir.min() == 0


def test_video_of_rgb_frames_becomes_one_channel(tmp_path: Path) -> None:
    gray = random_frames(2, 32, 24, 255, np.uint8)
    path = tmp_path / "rgb.mkv"
    height, width = gray[0].shape
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for index, pixels in enumerate(gray):
            frame = av.VideoFrame.from_ndarray(np.repeat(pixels[:, :, None], 3, axis=2), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with VideoSource(path) as source:
        frames = [frame.nir for frame in source]
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[1], gray[1])


def test_missing_and_corrupt_videos_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="input not found") as missing:
        VideoSource(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(SourceError, match="junk.mp4.*not a video|not a video.*junk.mp4") as corrupt:
        VideoSource(junk)
    for error in (missing, corrupt):
        assert "\n" not in str(error.value)


def test_a_truncated_video_is_an_error_after_its_frames_in_every_container(tmp_path: Path, videos) -> None:
    """Cut in half: an MP4 with its index first (faststart) falls short of its declared frame
    count, an MKV of its declared duration, a fragmented MP4 ends inside a packet; each yields
    its complete frames, then fails naming the file and the frames read. An MP4 with its index
    at the end cannot be opened at all."""
    faststart = _faststart_mp4(tmp_path / "faststart.mp4", random_frames(20, 64, 48, 255, np.uint8))

    def cut(path: Path) -> Path:
        data = path.read_bytes()
        cut_path = tmp_path / f"cut_{path.name}"
        cut_path.write_bytes(data[: len(data) // 2])
        return cut_path

    mkv, written = videos["gray16.mkv"]
    cases = [
        (cut(faststart), r"20 declared"),
        (cut(mkv), r"[\d.]+ s of the [\d.]+ s declared"),
        (cut(fragmented_mp4(tmp_path / "fragmented.mp4", 3 * RATE)), r"its last frame is cut off"),
    ]
    for path, how in cases:
        decoded = []
        with pytest.raises(SourceError, match=rf"{path.name}: truncated video: read \d+ frames, {how}") as error:
            with VideoSource(path) as source:
                decoded.extend(frame.nir for frame in source)
        assert decoded and f"read {len(decoded)} frames" in str(error.value)
        assert "\n" not in str(error.value)
        if path.name == "cut_gray16.mkv":  # the frames before the cut are the written ones
            for nir, expected in zip(decoded, written):
                np.testing.assert_array_equal(nir, expected)
    with pytest.raises(SourceError, match="not a video or corrupt header"):
        VideoSource(cut(videos["gray8.mp4"][0]))


def test_whole_files_of_every_container_are_not_reported(tmp_path: Path, videos) -> None:
    for path in (fragmented_mp4(tmp_path / "whole.mp4", 2 * RATE), videos["gray16.mkv"][0], videos["gray8.mp4"][0]):
        with VideoSource(path) as source:
            assert sum(1 for _ in source) > 0 and source.damaged == 0


def test_damage_in_the_middle_is_skipped_and_counted(tmp_path: Path) -> None:
    """Packets the decoder rejects are skipped, counted and reported in one warning; the frames
    around them are all read."""
    from loguru import logger

    path = fragmented_mp4(tmp_path / "damaged.mp4", 3 * RATE)
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    for position, size in packets[RATE + 3 : RATE + 6]:  # three P-frames inside the second fragment
        data[position : position + size] = b"\xff" * size
    path.write_bytes(bytes(data))
    warnings: list[str] = []
    handle = logger.add(lambda message: warnings.append(message.record["message"]), level="WARNING")
    try:
        with VideoSource(path) as source:
            read = sum(1 for _ in source)
    finally:
        logger.remove(handle)
    assert source.damaged == 3 and read == 3 * RATE - 3
    assert len(warnings) == 1 and "damaged.mp4: 3 damaged packets" in warnings[0] and f"{read} frames read" in warnings[0]


def test_file_without_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(SourceError, match="no video stream"):
        VideoSource(path)


def test_image_folder_keeps_depth_and_reduces_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    eight = tmp_path / "eight"
    gray = rng.integers(0, 256, (24, 32), dtype=np.uint8)
    write_image(eight / "frame_10.png", gray)
    write_image(eight / "frame_2.png", gray[::-1].copy())
    flat = np.full((24, 32), 77, np.uint8)
    write_image(eight / "frame_3.jpg", np.stack([flat] * 3, axis=2))
    (eight / "notes.txt").write_text("not an image")
    with ImageSource(eight, fps=10) as source:
        frames = list(source)
        assert (source.info.width, source.info.height, source.info.bit_depth) == (32, 24, 8)
        assert source.info.frame_count == 3
    assert [frame.pts for frame in frames] == pytest.approx([0.0, 0.1, 0.2])
    np.testing.assert_array_equal(frames[0].nir, gray[::-1])  # natural order: 2, 3, 10
    assert frames[1].nir.ndim == 2 and abs(int(frames[1].nir.mean()) - 77) <= 1
    np.testing.assert_array_equal(frames[2].nir, gray)

    sixteen = tmp_path / "sixteen"
    deep = rng.integers(256, 65536, (24, 32)).astype(np.uint16)
    write_image(sixteen / "a.png", deep)
    write_image(sixteen / "b.tif", deep)
    with ImageSource(str(sixteen / "*")) as source:
        frames = list(source)
        assert source.info.bit_depth == 16
    assert all(frame.nir.dtype == np.uint16 for frame in frames) and len(frames) == 2
    np.testing.assert_array_equal(frames[1].nir, deep)


def test_image_source_errors(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    write_image(tmp_path / "b.png", np.zeros((8, 9), np.uint8))
    frames = list(ImageSource(tmp_path))  # each frame keeps its size and its file's name
    assert [(f.name, f.nir.shape) for f in frames] == [("a.png", (8, 8)), ("b.png", (8, 9))]
    write_image(tmp_path / "deep" / "a.png", np.zeros((8, 8), np.uint8))
    write_image(tmp_path / "deep" / "b.png", np.zeros((8, 8), np.uint16))
    with pytest.raises(SourceError, match="same bit depth"):
        list(ImageSource(tmp_path / "deep"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no PNG/TIFF/JPEG images"):
        ImageSource(tmp_path / "empty")
    with pytest.raises(SourceError, match="no images match"):
        ImageSource(str(tmp_path / "*.jpg"))
    with pytest.raises(SourceError, match="input not found"):
        ImageSource([tmp_path / "missing.png"])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="none of the 1 images .* can be read .*cannot decode image"):
        ImageSource([tmp_path / "broken.png"])
    with ImageSource([tmp_path / "broken.png", tmp_path / "a.png"]) as source:  # skipped, counted
        assert [f.name for f in source] == ["a.png"] and source.damaged == 1 and source.info.frame_count == 1


def test_testsrc_is_deterministic_and_moves() -> None:
    first = [frame.nir for frame in TestSource(64, 48, frames=4)]
    again = [frame.nir for frame in TestSource(64, 48, frames=4)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[3])
    assert first[0].dtype == np.uint8 and first[0].shape == (48, 64)
    deep = TestSource(64, 48, frames=1, bit_depth=16)
    assert deep.info.bit_depth == 16 and next(iter(deep)).nir.max() > 255


def test_testsrc_realtime_paces_at_fps() -> None:
    """Frame n is never handed out before n/fps after the start, however busy the machine.

    Only that lower bound is a promise: a late frame (a loaded machine) shortens the wait for
    the next one, so the gap between two frames has no lower bound and is not checked.
    """
    source = TestSource(32, 24, fps=50, frames=4, live=True, realtime=True)
    start = time.monotonic()
    frames = list(source)
    offsets = np.array([frame.captured_at for frame in frames]) - start
    assert np.all(offsets >= np.arange(4) / 50)
    assert source.info.live


class FakeCapture:
    """A cv2.VideoCapture stand-in: opens or not, then reads a scripted list of results."""

    def __init__(self, opened: bool, reads: list[np.ndarray | None]) -> None:
        self.opened, self.reads, self.props, self.released = opened, list(reads), {}, False

    def isOpened(self) -> bool:
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        image = self.reads.pop(0) if self.reads else None
        return image is not None, image

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 30.0}.get(prop, self.props.get(prop, 0.0))

    def release(self) -> None:
        self.released = True


def test_camera_reconnects_with_backoff_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    image = np.full((4, 6), 9, np.uint8)
    captures = [
        FakeCapture(True, [image, image, None]),  # two frames, then the cable is pulled
        FakeCapture(False, []),  # attempt 1: device gone
        FakeCapture(True, [image, None]),  # attempt 2: back, one frame, gone again
        *[FakeCapture(False, []) for _ in range(3)],  # attempts 1-3 after the second loss
    ]
    opened = list(captures)
    sleeps: list[float] = []
    monkeypatch.setattr(camera_module.time, "sleep", sleeps.append)
    source = CameraSource(0, pixel_format="GREY", reconnect_tries=3, backoff_s=0.1, capture=lambda _: opened.pop(0))
    assert source.info == source.info.__class__("camera 0", 6, 4, 30.0, 8, True)
    assert captures[0].props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter.fourcc(*"GREY")
    assert captures[0].props[cv2.CAP_PROP_CONVERT_RGB] == 0
    frames = []
    with pytest.raises(SourceError, match="^camera 0 disconnected; gave up after 3 reconnect attempts$"):
        for frame in source:
            frames.append(frame)
    assert [frame.index for frame in frames] == [0, 1, 2]
    assert sleeps == pytest.approx([0.1, 0.2, 0.1, 0.2, 0.4])
    assert all(capture.released for capture in captures)


def test_camera_not_found() -> None:
    with pytest.raises(SourceError, match="camera 3 not found"):
        CameraSource(3, capture=lambda _: FakeCapture(False, []))


def test_camera_frames_become_one_channel_at_their_depth() -> None:
    bgr = np.stack([np.arange(12, dtype=np.uint8).reshape(3, 4)] * 3, axis=2)
    np.testing.assert_array_equal(camera_frame_to_nir(bgr, 4, 3), bgr[:, :, 0])
    deep = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    np.testing.assert_array_equal(camera_frame_to_nir(deep, 4, 3), deep)
    raw_y16 = deep.astype("<u2").view(np.uint8).reshape(1, -1)
    converted = camera_frame_to_nir(raw_y16, 4, 3)
    assert converted.dtype == np.uint16
    np.testing.assert_array_equal(converted, deep)
    np.testing.assert_array_equal(camera_frame_to_nir(bgr[:, :, 0].reshape(1, -1), 4, 3), bgr[:, :, 0])


def test_open_source_dispatch(tmp_path: Path, videos, monkeypatch: pytest.MonkeyPatch) -> None:
    source = open_source("testsrc:320x240@50", frames=2)
    assert isinstance(source, TestSource) and (source.info.width, source.info.height, source.info.fps) == (320, 240, 50)
    assert isinstance(open_source("testsrc"), TestSource)

    devices = []

    def fake_camera(device: int | str, **options: object) -> str:
        devices.append(device)
        return "camera"

    monkeypatch.setattr("nirstream.stream.sources.CameraSource", fake_camera)
    for spec in ("cam0", "0", "/dev/video2"):
        assert open_source(spec) == "camera"
    assert devices == [0, 0, "/dev/video2"]

    urls = []
    monkeypatch.setattr("nirstream.stream.sources.VideoSource", lambda spec, **options: urls.append(spec) or "video")
    for url in ("rtsp://127.0.0.1:8554/cam", "http://127.0.0.1/x.mjpg", "https://host/x.m3u8"):
        assert open_source(url) == "video"
    assert open_source(str(videos["gray8.mp4"][0])) == "video"
    monkeypatch.undo()

    write_image(tmp_path / "img" / "a.png", np.zeros((8, 8), np.uint8))
    write_image(tmp_path / "img" / "b.png", np.zeros((8, 8), np.uint8))
    assert isinstance(open_source(str(tmp_path / "img")), ImageSource)
    assert isinstance(open_source(str(tmp_path / "img" / "a.png")), ImageSource)
    assert open_source(str(tmp_path / "img" / "*.png")).info.frame_count == 2
    with open_source(str(videos["gray16.mkv"][0])) as video:
        assert isinstance(video, VideoSource) and video.info.bit_depth == 16
    with pytest.raises(SourceError, match="^input not found: .*missing.mp4$"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="input not found: no files match"):
        open_source(str(tmp_path / "*.avi"))


def test_expand_inputs_splits_a_glob_of_videos(videos) -> None:
    root = videos["gray8.mp4"][0].parent
    assert expand_inputs(str(root / "*.mkv")) == [str(root / "gray10.mkv"), str(root / "gray16.mkv")]
    assert expand_inputs("testsrc") == ["testsrc"]
    assert expand_inputs(str(root / "gray8.mp4")) == [str(root / "gray8.mp4")]
    with pytest.raises(SourceError, match="matches 4 videos"):
        open_source(str(root / "*"))
    single = open_source(str(root / "gray16*.mkv"))
    assert isinstance(single, VideoSource)
    single.close()


def test_a_video_one_frame_short_is_reported(tmp_path: Path) -> None:
    """The last frame's packet cut off exactly at its start: every other frame is whole, and
    only the header's count (20 frames) tells the file is short."""
    path = _faststart_mp4(tmp_path / "short.mp4", random_frames(20, 64, 48, 255, np.uint8))
    with av.open(str(path)) as container:
        last = max((packet for packet in container.demux(video=0) if packet.size), key=lambda p: p.pos)
        start = last.pos
    path.write_bytes(path.read_bytes()[:start])
    decoded = []
    with pytest.raises(SourceError, match=r"short.mp4: truncated video: read 19 frames, 20 declared"):
        with VideoSource(path) as source:
            decoded.extend(frame.nir for frame in source)
    assert len(decoded) == 19


def _faststart_mp4(path: Path, frames: list[np.ndarray]) -> Path:
    """Lossless H.264 in an MP4 whose index (and so its frame count) comes first."""
    height, width = frames[0].shape
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=RATE, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "gray"
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="gray")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_cameras_are_listed_from_sysfs_with_their_formats(tmp_path: Path) -> None:
    from nirstream.stream.sources.camera_list import camera_table, list_cameras

    sysfs = tmp_path / "video4linux"
    for number, name in ((0, "NIR Camera: Y16"), (2, "Integrated Webcam"), (10, "busy")):
        (sysfs / f"video{number}").mkdir(parents=True)
        (sysfs / f"video{number}" / "name").write_text(name + "\n")

    def formats_of(device: str) -> list[str]:
        if device.endswith("video10"):
            raise PermissionError(13, "Permission denied")
        return {"/dev/video0": ["GREY", "Y16"], "/dev/video2": ["YUYV", "MJPG"]}[device]

    cameras = list_cameras(sysfs, Path("/dev"), formats_of)
    assert [(c.source, c.device, c.formats) for c in cameras] == [
        ("cam0", "/dev/video0", ["GREY", "Y16"]), ("cam2", "/dev/video2", ["YUYV", "MJPG"]), ("cam10", "/dev/video10", [])]
    table = camera_table(cameras)
    assert "NIR Camera: Y16" in table and "(Permission denied)" in table
    assert camera_table(list_cameras(tmp_path / "none")).startswith("no cameras found")


def test_a_device_that_is_not_a_camera_offers_no_formats() -> None:
    from nirstream.stream.sources.camera_list import pixel_formats

    assert pixel_formats("/dev/null") == []  # opens, refuses VIDIOC_ENUM_FMT
