"""A live view in the Foxglove app: the NIR and colour frames and their latency over Foxglove WebSocket.

Foxglove shows the stream beside the rest of a drive (lidar, radar, CAN) on one timeline.
Like the HTTP preview it is a view, not a recording: ``write`` only swaps a reference to the
newest frame, and a background thread JPEG-encodes and publishes whichever frame is newest
when it is free, skipping those that arrived meanwhile, so it never slows the pipeline. It
encodes a topic only while a client subscribes to it. The server binds 127.0.0.1 by default,
since it shows whatever the camera sees.
"""

import threading
import time

import cv2
import foxglove
import numpy as np
from foxglove.channels import CompressedImageChannel
from foxglove.messages import CompressedImage, Timestamp
from loguru import logger

from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.compose import nir_to_gray8
from nirstream.stream.sinks.spec import FOXGLOVE_PORT
from nirstream.stream.stats import Stage

NIR_TOPIC, RGB_TOPIC, LATENCY_TOPIC = "/nirstream/nir", "/nirstream/rgb", "/nirstream/latency"
LATENCY_SCHEMA = {
    "title": "nirstream.Latency",
    "type": "object",
    "properties": {"latency_ms": {"type": "number"}, "frame": {"type": "integer"}},
}
BACKLOG = 9  # messages queued per client (three frames): a slow client drops stale frames, not the pipeline
STOP_TIMEOUT_S = 2.0  # the SDK's stop waits to say goodbye to every client, even one that stopped reading


class FoxgloveSink(Sink):
    """Publishes the newest frame on a Foxglove WebSocket server at ``ws://host:port``.

    ``port=0`` picks a free port; ``port`` and ``url`` give the one bound after ``open``.
    ``frames_sent`` counts the frames published to at least one subscriber.
    """

    shows_latest = True  # the pipeline hands it the freshest frame and never waits for it

    def __init__(self, host: str = "127.0.0.1", port: int = FOXGLOVE_PORT, *, quality: int = 80) -> None:
        self.host = host
        self.port = port
        self.quality = quality
        self.frames_sent = 0
        self._bit_depth: int | None = None
        self._server: foxglove.WebSocketServer | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._latest: tuple[Frame, float, int] | None = None  # frame, latency ms, wall-clock capture time (ns)
        self._seq = 0
        self._closed = False

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def open(self, info: StreamInfo) -> None:
        """Start the server and the publishing thread; a port in use is a one-line SinkError."""
        self._bit_depth = info.bit_depth
        # The sink's own context (kept: the server sees only channels of a live context), so that
        # several sinks can share a process.
        self._context = context = foxglove.Context()
        try:
            self._server = foxglove.start_server(
                name="nirstream", host=self.host, port=self.port, context=context, message_backlog_size=BACKLOG
            )
        except RuntimeError as error:
            text = str(error).removeprefix("FoxgloveError: ")
            reason = "address in use" if "Address already in use" in text else text
            raise SinkError(f"cannot start the Foxglove server on {self.host}:{self.port}: {reason}") from None
        self.port = self._server.port
        self._nir = CompressedImageChannel(NIR_TOPIC, context=context)
        self._rgb = CompressedImageChannel(RGB_TOPIC, context=context)
        self._latency = foxglove.Channel(LATENCY_TOPIC, schema=LATENCY_SCHEMA, context=context)
        self._thread = threading.Thread(target=self._run, name="foxglove-publish", daemon=True)
        self._thread.start()
        logger.info(f"Foxglove live view at {self.url}: in the Foxglove app, Open connection, Foxglove WebSocket, {self.url}")

    def write(self, frame: Frame) -> None:
        """Keep a reference to the newest frame and its latency: no encoding, no I/O."""
        latency_ms = (time.monotonic() - frame.time_of(Stage.CAPTURED)) * 1000.0
        with self._cond:
            self._latest = (frame, latency_ms, frame.capture_time_ns())
            self._seq += 1
            self._cond.notify()

    def close(self, complete: bool = True) -> None:
        """Stop the publishing thread and the server, freeing the port; safe to call twice.

        A client that stopped reading would hold the SDK's stop until it goes away: after
        STOP_TIMEOUT_S its connection is left to close in the background.
        """
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        server, self._server = self._server, None
        if server is not None:
            stopping = threading.Thread(target=server.stop, name="foxglove-stop", daemon=True)
            stopping.start()
            stopping.join(STOP_TIMEOUT_S)
            if stopping.is_alive():
                logger.warning("a Foxglove client stopped reading: its connection closes in the background")

    @logger.catch(message="the Foxglove live view stopped")
    def _run(self) -> None:
        """Publish the newest frame each time there is one, until the sink closes."""
        taken = 0  # the write count when the last frame was taken
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._seq > taken)
                if self._closed:
                    return
                taken, (frame, latency_ms, wall_ns) = self._seq, self._latest
            if self._publish(frame, latency_ms, wall_ns):
                self.frames_sent += 1

    def _publish(self, frame: Frame, latency_ms: float, wall_ns: int) -> bool:
        """Log ``frame`` on the topics someone subscribes to; False if nobody does."""
        stamp_ns, frame_id = (wall_ns, "nirstream") if frame.message is None else (
            frame.message.stamp_ns, frame.message.frame_id or "nirstream")
        sent = False
        if self._nir.has_sinks():
            self._log_image(self._nir, nir_to_gray8(frame.nir, self._bit_depth), stamp_ns, frame_id)
            sent = True
        if frame.rgb is not None and self._rgb.has_sinks():
            self._log_image(self._rgb, cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), stamp_ns, frame_id)
            sent = True
        if self._latency.has_sinks():
            self._latency.log({"latency_ms": latency_ms, "frame": frame.index}, log_time=stamp_ns)
            sent = True
        return sent

    def _log_image(self, channel: CompressedImageChannel, image: np.ndarray, stamp_ns: int, frame_id: str) -> None:
        """JPEG-encode ``image`` (gray or BGR) and log it as a CompressedImage stamped ``stamp_ns``."""
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise SinkError("JPEG encoding failed for the Foxglove live view")
        timestamp = Timestamp(*divmod(stamp_ns, 1_000_000_000))
        channel.log(CompressedImage(timestamp=timestamp, frame_id=frame_id, data=data.tobytes(), format="jpeg"), log_time=stamp_ns)
