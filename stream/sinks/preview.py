"""A live preview over HTTP: an MJPEG stream and a small page with the live fps and latency.

Standard library only (``http.server``), so a headless machine can be watched from a
browser (through an SSH tunnel: it binds 127.0.0.1 by default, since the stream shows
whatever the camera sees). ``write`` only swaps a reference to the newest frame: the JPEG
is encoded lazily, at most once per frame, by whichever client asks first, and each client
always gets the newest frame, so a slow or stalled client skips frames and never holds up
the pipeline.
"""

import errno
import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from nirstream.stream.errors import SinkError
from nirstream.stream.stats import Stage
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.compose import output_image
from nirstream.stream.sinks.spec import PREVIEW_PORT, SinkConfig

BOUNDARY = "frame"
FPS_WINDOW_S = 1.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>nirstream preview</title>
<style>body{margin:0;background:#111;color:#ddd;font:14px sans-serif}
#stats{padding:4px 8px}img{display:block;max-width:100%}</style></head>
<body><div id="stats">fps <span id="fps">-</span> &middot; latency <span id="latency">-</span> ms
&middot; frames <span id="frames">0</span></div>
<img src="/stream.mjpg" alt="live preview">
<script>
async function poll() {
  try {
    const s = await (await fetch('/stats.json', {cache: 'no-store'})).json();
    document.getElementById('fps').textContent = s.fps.toFixed(1);
    document.getElementById('latency').textContent = s.latency_ms === null ? '-' : s.latency_ms.toFixed(1);
    document.getElementById('frames').textContent = s.frames;
  } catch (e) {}
}
poll(); setInterval(poll, 1000);
</script></body></html>
"""


class PreviewSink(Sink):
    """Serves the newest frame (NIR | RGB by default) as MJPEG at ``http://host:port/``.

    ``port=0`` picks a free port; ``port`` and ``url`` give the one bound after ``open``.
    """

    shows_latest = True  # the pipeline hands it the freshest frame and never waits for it

    def __init__(
        self, host: str = "127.0.0.1", port: int = PREVIEW_PORT, *, side_by_side: bool = SinkConfig.side_by_side, quality: int = 80
    ) -> None:
        self.host = host
        self.port = port
        self.side_by_side = side_by_side
        self.quality = quality
        self._bit_depth: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._seq = 0
        self._closed = False
        self._written: deque[float] = deque()
        self._latency_ms: float | None = None
        self._encode_lock = threading.Lock()
        self._jpeg_seq = 0
        self._jpeg = b""
        self._clients: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def open(self, info: StreamInfo) -> None:
        """Bind and serve in a daemon thread; a port in use is a one-line SinkError."""
        self._bit_depth = info.bit_depth
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        except OSError as error:
            reason = "port in use" if error.errno == errno.EADDRINUSE else error.strerror or str(error)
            raise SinkError(f"cannot serve the preview on {self.host}:{self.port}: {reason}") from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="preview-http", daemon=True
        )
        self._thread.start()

    def write(self, frame: Frame) -> None:
        """Keep a reference to the newest frame and update the stats: no encoding, no I/O."""
        now = time.monotonic()
        captured = frame.time_of(Stage.CAPTURED)
        with self._cond:
            self._frame = frame
            self._seq += 1
            self._latency_ms = (now - captured) * 1000.0
            self._written.append(now)
            while now - self._written[0] > FPS_WINDOW_S:
                self._written.popleft()
            self._cond.notify_all()

    def close(self, complete: bool = True) -> None:
        """Stop serving, end every stream (even one stalled on a client that never reads), free the port."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            clients = list(self._clients)
        for connection in clients:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stats(self) -> dict:
        """Frames written, fps over the last second (0 once writes stop), latency of the newest frame."""
        now = time.monotonic()
        with self._cond:
            times = [t for t in self._written if now - t <= FPS_WINDOW_S]
            frames, latency = self._seq, self._latency_ms
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        fps = (len(times) - 1) / span if span > 0 else 0.0
        return {"frames": frames, "fps": round(fps, 2), "latency_ms": None if latency is None else round(latency, 2)}

    def _next_jpeg(self, last_seq: int) -> tuple[int, bytes] | None:
        """Wait for a frame newer than ``last_seq``; None once the sink closes."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._seq > last_seq)
            if self._closed:
                return None
            seq, frame = self._seq, self._frame
        with self._encode_lock:
            if self._jpeg_seq != seq:
                image = output_image(frame, side_by_side_view=self.side_by_side, bit_depth=self._bit_depth)
                ok, data = cv2.imencode(
                    ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
                )
                if not ok:
                    raise SinkError("JPEG encoding failed for the preview")
                self._jpeg_seq, self._jpeg = seq, data.tobytes()
            return self._jpeg_seq, self._jpeg

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        handler.send_header("Cache-Control", "no-cache, no-store")
        handler.send_header("Connection", "close")
        handler.end_headers()
        with self._cond:
            if self._closed:
                return
            self._clients.add(handler.connection)
        try:
            seq = 0
            while (part := self._next_jpeg(seq)) is not None:
                seq, jpeg = part
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                handler.wfile.write(head.encode("ascii") + jpeg + b"\r\n")
                handler.wfile.flush()
        except OSError:
            pass  # the client went away, or close() cut the connection
        finally:
            with self._cond:
                self._clients.discard(handler.connection)


def _handler_for(sink: PreviewSink) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``sink`` (http.server builds one handler per request)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/stream.mjpg":
                sink._stream(self)
            elif path in ("/", "/index.html"):
                self._send(PAGE.encode("utf-8"), "text/html; charset=utf-8")
            elif path == "/stats.json":
                self._send(json.dumps(sink.stats()).encode("utf-8"), "application/json")
            else:
                self.send_error(404)

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Silent: a request log would interleave with the pipeline's stats line."""

    return Handler
