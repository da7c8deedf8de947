"""The Foxglove live view, seen by a real Foxglove WebSocket client: the JPEGs on the NIR and RGB
topics carry the written frame with its bag stamp, the latency topic follows the advertised JSON
schema, a client that stops reading holds up neither ``write`` nor ``close``, and a port in use
is a one-line SinkError."""

import base64
import json
import socket
import struct
import time

import cv2
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from loguru import logger
from websockets.sync.client import connect

from nirstream.stream.errors import SinkError
from nirstream.stream.frame import BagMessage, Frame, StreamInfo
from nirstream.stream.sinks.foxglove import LATENCY_TOPIC, NIR_TOPIC, RGB_TOPIC, FoxgloveSink

TOPICS = (NIR_TOPIC, RGB_TOPIC, LATENCY_TOPIC)  # subscription id = index
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]  # foxglove-sdk 0.30 accepts only the first
MESSAGE_DATA = 0x01
RGB = (230, 20, 120)
STAMP_NS = 1_700_000_123_456_789_012
STALLED_FRAMES = 100  # about 40 MB of noise JPEGs


def _info(bit_depth: int = 8, width: int = 64, height: int = 48) -> StreamInfo:
    return StreamInfo(name="test", width=width, height=height, fps=30.0, bit_depth=bit_depth, live=True)


def _frame(index: int = 0, nir: np.ndarray | None = None, rgb: np.ndarray | None = None, message: BagMessage | None = None) -> Frame:
    if nir is None:
        nir = np.full((48, 64), 128, np.uint8)
    if rgb is None:
        rgb = np.empty((*nir.shape, 3), np.uint8)
        rgb[:] = RGB
    return Frame(index=index, pts=index / 30, captured_at=time.monotonic(), nir=nir, rgb=rgb, message=message)


@pytest.fixture
def sink():
    sink = FoxgloveSink(port=0)
    yield sink
    sink.close()


class _Viewer:
    """A Foxglove WebSocket client, as the Foxglove app is: it subscribes to the sink's three topics."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.channels: dict[str, dict] = {}  # topic: its advertisement
        self.written = 0  # frames written by receive()
        while missing := set(TOPICS) - self.channels.keys():
            try:
                message = json.loads(self.ws.recv(timeout=10))
            except TimeoutError:
                pytest.fail(f"the server did not advertise {missing}")
            if message["op"] == "advertise":
                self.channels.update({channel["topic"]: channel for channel in message["channels"]})
        subscriptions = [{"id": i, "channelId": self.channels[topic]["id"]} for i, topic in enumerate(TOPICS)]
        self.ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))

    def receive(self, sink: FoxgloveSink, frame: Frame, timeout: float = 30.0) -> dict[str, tuple[int, bytes]]:
        """Write ``frame`` until a message arrives on every topic: ``{topic: (timestamp ns, payload)}``.

        The server takes the subscription in its own time, so frames written before it has are
        (rightly) not sent: writing on until something arrives is how a live view is watched.
        """
        received: dict[str, tuple[int, bytes]] = {}
        deadline = time.monotonic() + timeout
        while missing := set(TOPICS) - received.keys():
            assert time.monotonic() < deadline, f"nothing received on {missing}"
            sink.write(frame)
            self.written += 1
            try:
                data = self.ws.recv(timeout=0.1)
            except TimeoutError:
                continue
            if isinstance(data, bytes) and data[0] == MESSAGE_DATA:
                subscription, stamp_ns = struct.unpack_from("<IQ", data, 1)
                received[TOPICS[subscription]] = (stamp_ns, data[13:])
        return received

    def decode_image(self, topic: str, payload: bytes):
        """The CompressedImage in ``payload``, decoded with the protobuf schema the server advertised."""
        channel = self.channels[topic]
        assert (channel["encoding"], channel["schemaEncoding"]) == ("protobuf", "protobuf")
        pool = descriptor_pool.DescriptorPool()
        for file in descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"])).file:
            pool.Add(file)
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"])).FromString(payload)


def test_publishes_the_frame_as_jpeg_with_its_bag_stamp(sink):
    sink.open(_info(bit_depth=10))
    assert sink.port != 0 and sink.url == f"ws://127.0.0.1:{sink.port}"
    nir = np.full((48, 64), 600, np.uint16)  # 10-bit: 600 / 1023 of full scale, 150 in 8 bits
    message = BagMessage(topic="/camera/nir", log_time_ns=STAMP_NS + 5_000_000, stamp_ns=STAMP_NS, frame_id="nir_camera")
    with connect(sink.url, subprotocols=SUBPROTOCOLS, open_timeout=10, close_timeout=1) as ws:
        viewer = _Viewer(ws)
        received = viewer.receive(sink, _frame(7, nir=nir, message=message))
        assert {topic: stamp for topic, (stamp, _) in received.items()} == dict.fromkeys(TOPICS, STAMP_NS)

        pictures = {}
        for topic in (NIR_TOPIC, RGB_TOPIC):
            image = viewer.decode_image(topic, received[topic][1])
            assert viewer.channels[topic]["schemaName"] == "foxglove.CompressedImage"
            assert (image.timestamp.seconds, image.timestamp.nanos) == divmod(STAMP_NS, 1_000_000_000)
            assert (image.frame_id, image.format) == ("nir_camera", "jpeg")
            pictures[topic] = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert pictures[NIR_TOPIC].shape == (48, 64)
        assert abs(float(pictures[NIR_TOPIC].mean()) - 150) < 3
        rgb = cv2.cvtColor(pictures[RGB_TOPIC], cv2.COLOR_BGR2RGB)
        assert rgb.shape == (48, 64, 3)
        np.testing.assert_allclose(rgb.reshape(-1, 3).mean(axis=0), RGB, atol=4)

        latency = json.loads(received[LATENCY_TOPIC][1])
        assert (viewer.channels[LATENCY_TOPIC]["encoding"], viewer.channels[LATENCY_TOPIC]["schemaName"]) == ("json", "nirstream.Latency")
        assert set(json.loads(viewer.channels[LATENCY_TOPIC]["schema"])["properties"]) == {"latency_ms", "frame"}
        assert latency["frame"] == 7 and latency["latency_ms"] >= 0
        assert sink.frames_sent >= 1


def test_a_live_frame_is_stamped_with_its_capture_time_on_the_wall_clock(sink):
    sink.open(_info())
    with connect(sink.url, subprotocols=SUBPROTOCOLS, open_timeout=10, close_timeout=1) as ws:
        viewer = _Viewer(ws)
        before = time.time_ns()
        frame = _frame()  # captured now
        after = time.time_ns()
        received = viewer.receive(sink, frame)
        stamp_ns, payload = received[RGB_TOPIC]
        assert before - 1_000_000 <= stamp_ns <= after + 1_000_000  # the two clocks read a few µs apart
        assert viewer.decode_image(RGB_TOPIC, payload).frame_id == "nirstream"


@pytest.mark.slow
def test_a_stalled_client_never_holds_up_write_or_close(sink):
    sink.open(_info(width=640, height=480))
    rng = np.random.default_rng(0)  # noise compresses badly: about 0.4 MB of JPEG a frame
    noise = _frame(nir=rng.integers(0, 256, (480, 640), np.uint8), rgb=rng.integers(0, 256, (480, 640, 3), np.uint8))
    for _ in range(200):  # nobody connected
        sink.write(noise)
    assert sink.frames_sent == 0  # nobody subscribed: nothing encoded, nothing sent
    with connect(sink.url, subprotocols=SUBPROTOCOLS, open_timeout=10, close_timeout=1) as ws:
        viewer = _Viewer(ws)
        viewer.receive(sink, noise)
        sent = sink.frames_sent
        written = 0
        deadline = time.monotonic() + 60
        # Subscribed but no longer reading: write on until the sink has published far more than
        # the socket buffers and the client's queue hold, so the server is stuck on the client.
        while written < 200 or sink.frames_sent < sent + STALLED_FRAMES:
            assert time.monotonic() < deadline, f"{sink.frames_sent - sent} frames published to a stalled client"
            sink.write(noise)
            written += 1
        assert sink.frames_sent <= viewer.written + written  # at most once per frame written while subscribed
        warnings = []
        handler = logger.add(lambda message: warnings.append(message.record["message"]), level="WARNING")
        try:
            sink.close()  # returns though the client never reads, and frees the port
        finally:
            logger.remove(handler)
        assert warnings == ["a Foxglove client stopped reading: its connection closes in the background"]
        again = FoxgloveSink(port=sink.port)
        again.open(_info())
        again.close()


def test_port_in_use_is_a_one_line_sink_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sink = FoxgloveSink(port=port)
        with pytest.raises(SinkError) as error:
            sink.open(_info())
        sink.close()
        sink.close()
    assert str(error.value) == f"cannot start the Foxglove server on 127.0.0.1:{port}: address in use"
