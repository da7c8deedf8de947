"""The live HTTP preview: MJPEG parts carry the written colours, a stalled client never slows
the pipeline, and a real browser (headless Chromium) shows the stream on the page."""

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest

from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks import PreviewSink, SinkConfig, open_sink

RED = (230, 20, 20)
CHROMIUM = "/usr/bin/chromium"


def _info(width: int = 64, height: int = 48) -> StreamInfo:
    return StreamInfo(name="test", width=width, height=height, fps=30.0, bit_depth=8, live=True)


def _frame(index: int, width: int = 64, height: int = 48, colour=RED) -> Frame:
    now = time.monotonic()
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = colour
    nir = np.full((height, width), 128, np.uint8)
    return Frame(index=index, pts=index / 30, captured_at=now, nir=nir, rgb=rgb)


class _Writer:
    """Writes frames from a thread until stopped, as the pipeline's sink thread would."""

    def __init__(self, sink: PreviewSink, interval: float = 0.02, **frame_args) -> None:
        self.sink, self.interval, self.frame_args = sink, interval, frame_args
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set():
            self.sink.write(_frame(index, **self.frame_args))
            index += 1
            time.sleep(self.interval)

    def __enter__(self) -> "_Writer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def sink():
    sink = PreviewSink(port=0, side_by_side=False)
    sink.open(_info())
    yield sink
    sink.close()


def _read_parts(url: str, count: int) -> list[bytes]:
    """Read ``count`` JPEG parts of a multipart/x-mixed-replace response."""
    with urllib.request.urlopen(url, timeout=10) as response:
        content_type = response.headers["Content-Type"]
        assert content_type == "multipart/x-mixed-replace; boundary=frame"
        parts = []
        while len(parts) < count:
            assert response.readline() == b"--frame\r\n"
            headers = {}
            while (line := response.readline()) != b"\r\n":
                key, value = line.decode("ascii").split(":", 1)
                headers[key.strip().lower()] = value.strip()
            assert headers["content-type"] == "image/jpeg"
            parts.append(response.read(int(headers["content-length"])))
            assert response.readline() == b"\r\n"
        return parts


def test_stream_serves_jpeg_parts_with_the_written_colours(sink):
    with _Writer(sink):
        parts = _read_parts(sink.url + "stream.mjpg", 3)
    for part in parts:
        bgr = cv2.imdecode(np.frombuffer(part, np.uint8), cv2.IMREAD_COLOR)
        assert bgr.shape == (48, 64, 3)
        rgb = bgr[:, :, ::-1].reshape(-1, 3).mean(axis=0)
        assert np.abs(rgb - RED).max() < 8, rgb


def test_side_by_side_shows_nir_then_rgb():
    sink = PreviewSink(port=0, side_by_side=True)
    sink.open(_info())
    try:
        with _Writer(sink):
            (part,) = _read_parts(sink.url + "stream.mjpg", 1)
    finally:
        sink.close()
    rgb = cv2.imdecode(np.frombuffer(part, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].astype(int)
    assert rgb.shape == (48, 128, 3)
    assert np.abs(rgb[8:-8, 8:56] - 128).max() < 8  # NIR as gray
    assert np.abs(rgb[8:-8, 72:120] - RED).max() < 8


def test_page_embeds_the_stream_and_polls_stats(sink):
    with urllib.request.urlopen(sink.url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        page = response.read().decode("utf-8")
    assert '<img src="/stream.mjpg"' in page
    assert "/stats.json" in page


def test_stats_count_frames_fps_and_latency(sink, monkeypatch):
    """On a clock the test controls: a busy machine that delays the request cannot change the figures."""
    from nirstream.stream.sinks import preview

    clock = [100.0]
    monkeypatch.setattr(preview, "time", type("Clock", (), {"monotonic": staticmethod(lambda: clock[0])}))
    for index in range(10):  # 50 fps, each frame written 30 ms after its capture
        frame = _frame(index)
        frame.captured_at = clock[0] - 0.03
        sink.write(frame)
        clock[0] += 0.02
    clock[0] -= 0.02  # the request comes at the time of the last write
    with urllib.request.urlopen(sink.url + "stats.json", timeout=5) as response:
        stats = json.load(response)
    assert stats["frames"] == 10
    assert stats["fps"] == pytest.approx(50.0, rel=1e-3)
    assert stats["latency_ms"] == pytest.approx(30.0, abs=0.01)
    clock[0] += 5.0  # writes stopped: no fps to show
    with urllib.request.urlopen(sink.url + "stats.json", timeout=5) as response:
        assert json.load(response)["fps"] == 0.0


def test_unknown_path_is_404(sink):
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(sink.url + "nope", timeout=5)
    assert error.value.code == 404


def test_stalled_client_does_not_block_write():
    """A client that asks for the stream and never reads must not slow ``write`` down."""
    sink = PreviewSink(port=0, side_by_side=False)
    sink.open(_info(640, 480))
    client = socket.create_connection(("127.0.0.1", sink.port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        client.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)  # ~0.5 MB a JPEG
        for index in range(20):  # fill the socket buffers: the handler then stalls in send
            frame = _frame(index, 640, 480)
            frame.rgb = noise
            sink.write(frame)
            time.sleep(0.02)
        frames = [_frame(i, 640, 480) for i in range(20, 120)]
        # A write that waited on the stalled client would never return (it is not read until
        # the test ends): the writes and the close must finish, however busy the machine (the
        # 60 s bound only keeps a broken sink from hanging the suite).
        writer = threading.Thread(target=lambda: [sink.write(frame) for frame in frames], daemon=True)
        writer.start()
        writer.join(timeout=60)
        assert not writer.is_alive(), "write blocked on a client that does not read"
        closer = threading.Thread(target=sink.close, daemon=True)  # also ends the stalled stream
        closer.start()
        closer.join(timeout=60)
        assert not closer.is_alive(), "close blocked on a client that does not read"
    finally:
        client.close()
        sink.close()


def test_close_is_idempotent_and_frees_the_port():
    sink = PreviewSink(port=0)
    sink.open(_info())
    port = sink.port
    assert port != 0 and sink.url == f"http://127.0.0.1:{port}/"
    sink.close()
    sink.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    again = PreviewSink(port=port)
    again.open(_info())
    again.close()


def test_port_in_use_is_a_one_line_sink_error(sink):
    other = PreviewSink(port=sink.port)
    with pytest.raises(SinkError) as error:
        other.open(_info())
    assert "port in use" in str(error.value) and "\n" not in str(error.value)
    other.close()


def test_default_binds_localhost_only():
    assert PreviewSink().host == "127.0.0.1"
    sink = open_sink("preview")
    assert isinstance(sink, PreviewSink) and (sink.host, sink.port) == ("127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("spec", "address"),
    [("preview:0", ("127.0.0.1", 0)), ("preview:9001", ("127.0.0.1", 9001)), ("http://127.0.0.1:9002", ("127.0.0.1", 9002)),
     ("http://localhost:9003/", ("localhost", 9003))],
)
def test_open_sink_preview_specs(spec, address):
    sink = open_sink(spec, SinkConfig(side_by_side=True))
    assert isinstance(sink, PreviewSink) and (sink.host, sink.port) == address and sink.side_by_side


@pytest.mark.parametrize("spec", ["preview:abc", "http://127.0.0.1:9002/x.mp4"])
def test_open_sink_bad_preview_spec(spec):
    with pytest.raises(SinkError):
        open_sink(spec)


def test_http_client_sees_newest_frame_after_reconnect(sink):
    """A client that connects later starts at the newest frame, not at a backlog."""
    for index in range(5):
        sink.write(_frame(index, colour=(0, 0, 255)))
    sink.write(_frame(5, colour=(0, 200, 0)))
    connection = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
    connection.request("GET", "/stream.mjpg")
    response = connection.getresponse()
    assert response.readline() == b"--frame\r\n"
    length = 0
    while (line := response.readline()) != b"\r\n":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    rgb = cv2.imdecode(np.frombuffer(response.read(length), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    connection.close()
    assert np.abs(rgb.reshape(-1, 3).mean(axis=0) - (0, 200, 0)).max() < 8


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium package is not installed")
def test_preview_page_screenshot_in_chromium(tmp_path):
    """The page, rendered by a real browser while frames arrive, shows the stream."""
    sink = PreviewSink(port=0, side_by_side=False)
    sink.open(_info(640, 480))
    shot = tmp_path / "shot.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=800,600",
        "--virtual-time-budget=3000", sink.url,
    ]
    try:
        with _Writer(sink, interval=0.03, width=640, height=480):
            subprocess.run(command, capture_output=True, timeout=60, check=False)
    finally:
        sink.close()
    assert shot.exists(), "chromium wrote no screenshot"
    rgb = cv2.imread(str(shot), cv2.IMREAD_COLOR)[:, :, ::-1].astype(int)
    red = (np.abs(rgb - RED).max(axis=2) < 16).mean()
    assert red > 0.4, f"only {red:.0%} of the screenshot shows the stream's colour"
