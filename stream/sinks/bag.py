"""Writing the colorized stream as a recorded drive: a bare MCAP file or a rosbag2 folder.

The colorized topic (``<input topic>/colorized`` by default) holds ``sensor_msgs/CompressedImage``
(JPEG or PNG) or ``sensor_msgs/Image`` rgb8 messages with the input messages' header stamps,
``frame_id`` and log times, so the result opens in Foxglove or ``ros2 bag play`` beside the
drive's other sensors. From a bag, every message of the input's other topics is copied in time
order between the frames, unchanged (ROS 2 inputs byte for byte; ROS 1 messages converted to
CDR). Frames of other sources are stamped with their own times (``pts``).

Never losing a recording: the file is written as ``out.partial.mcap`` (``out_bag.partial/``) and
renamed when the run completes; an existing output is never replaced without ``overwrite``.
MCAP is append-only, and a recorder that is killed never writes the index and footer at its
end, which readers need (rosbags refuses such a file; mcap's own reader fails on it). So
after every record this sink leaves a provisional end (a ``DataEnd`` and a ``Footer`` that
points to no summary), which the next write overwrites: whenever the process dies, the file
ends in a valid footer, and readers scan it up to its last complete chunk. Chunks are closed
every :data:`CHUNK_SECONDS` of the drive's time, so a killed run loses at most that much. A
rosbag2 folder's ``metadata.yaml`` is written when the bag opens and again when it closes.
"""

import errno
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from loguru import logger

from nirstream.core import __version__
from nirstream.stream.bags import RawMessage
from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks.compose import output_image
from nirstream.stream.sinks.spec import SinkConfig, partial_path, refuse_to_replace

CHUNK_SECONDS = 1.0
"""The most drive time a chunk holds: what a killed recording can lose."""

CHUNK_BYTES = 4 << 20
"""A chunk is also closed at this size (a few high-resolution frames)."""

IMAGE_FORMATS = ("jpeg", "png", "rgb8")
DEFAULT_TOPIC = "/nirstream/colorized"
"""The colorized topic for sources that are not bags."""

DEFAULT_FRAME_ID = "camera"


def _provisional_end() -> bytes:
    """A DataEnd, a Footer with no summary, and the closing magic: a valid end of an MCAP file."""
    from mcap.data_stream import RecordBuilder
    from mcap.records import DataEnd, Footer
    from mcap.writer import MCAP0_MAGIC

    builder = RecordBuilder()
    DataEnd(0).write(builder)
    Footer(summary_start=0, summary_offset_start=0, summary_crc=0).write(builder)
    return builder.end() + MCAP0_MAGIC


class _AlwaysClosedFile:
    """The file the MCAP writer writes through: after each write, a provisional end follows the
    data (and is overwritten by the next write), so the file on disk is a whole MCAP at all times."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("xb")
        self._end = 0
        self._tail = _provisional_end()

    def write(self, data: bytes) -> int:
        self._file.seek(self._end)
        try:
            self._file.write(data)
            self._file.write(self._tail)
            self._file.flush()
        except OSError:
            self._restore()
            raise
        self._end += len(data)
        return len(data)

    def _restore(self) -> None:
        """After a failed write (a full disk), end the file at the last whole record again."""
        try:
            self._file.seek(self._end)
            self._file.truncate()
            self._file.write(self._tail)
            self._file.flush()
        except OSError:
            pass

    def tell(self) -> int:
        return self._end

    def flush(self) -> None:
        self._file.flush()

    def close(self, finished: bool) -> None:
        """Cut the provisional end once the writer has written the real one."""
        try:
            if finished:
                self._file.truncate(self._end)
        finally:
            self._file.close()


class BagSink:
    """A ``.mcap`` file (``folder=False``) or a rosbag2 folder of one MCAP file (``folder=True``).

    ``copy_from`` gives the input bag's other messages in time order (None: copy nothing).
    ``image_format``: ``jpeg`` (``jpeg_quality``), ``png`` or ``rgb8`` (uncompressed Image).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        folder: bool = False,
        topic: str | None = None,
        copy_from: Callable[[], Iterator[RawMessage]] | None = None,
        image_format: str = SinkConfig.bag_format,
        jpeg_quality: int = SinkConfig.jpeg_quality,
        side_by_side: bool = SinkConfig.side_by_side,
        overwrite: bool = SinkConfig.overwrite,
    ) -> None:
        if image_format not in IMAGE_FORMATS:
            raise SinkError(f"sink.bag_format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
        self.path = Path(path)
        self.folder = folder
        self.topic = topic or DEFAULT_TOPIC
        self.image_format = image_format
        self.jpeg_quality = jpeg_quality
        self.side_by_side = side_by_side
        self.overwrite = overwrite
        self.written_path = self.path
        self.frames_written = 0
        self.copied = 0
        self._copy_from = copy_from
        self._passengers: Iterator[RawMessage] | None = None
        self._next_passenger: RawMessage | None = None
        self._file: _AlwaysClosedFile | None = None
        self._writer: Any = None
        self._channels: dict[str, int] = {}  # topic -> channel id
        self._counts: dict[str, int] = {}
        self._types: dict[str, str] = {}  # topic -> message type
        self._encodings: dict[str, str] = {}  # topic -> message encoding
        self._image_channel = 0
        self._chunk_start: int | None = None
        self._first_ns: int | None = None
        self._last_ns = 0
        self._bit_depth = 8
        self._fps = 30.0
        self._failed = False
        self._store: Any = None

    # --- opening ---------------------------------------------------------------------------

    def open(self, info: StreamInfo) -> None:
        """Create the partial file or folder and write the MCAP header, so a bad path fails here."""
        from mcap.writer import CompressionType, Writer
        from rosbags.typesys import Stores, get_typestore

        self._bit_depth = info.bit_depth
        self._fps = info.fps if info.fps and info.fps > 0 else 30.0
        refuse_to_replace(self.path, self.overwrite)
        self._store = get_typestore(Stores.ROS2_HUMBLE)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.folder:
                self.written_path = partial_path(self.path)
                self.written_path.mkdir()
                mcap_path = self.written_path / f"{self.path.name}_0.mcap"
            else:
                self.written_path = mcap_path = partial_path(self.path)
            self._mcap_name = mcap_path.name
            self._file = _AlwaysClosedFile(mcap_path)
            self._writer = Writer(self._file, chunk_size=CHUNK_BYTES, compression=CompressionType.ZSTD)
            self._writer.start(profile="ros2", library=f"nirstream {__version__}")
            msgtype = "sensor_msgs/msg/Image" if self.image_format == "rgb8" else "sensor_msgs/msg/CompressedImage"
            definition, _ = self._store.generate_msgdef(msgtype, ros_version=2)
            self._image_channel = self._channel(self.topic, (msgtype, "ros2msg", definition.encode()), "cdr", {})
            self._write_metadata()
        except OSError as error:
            self._failed = True
            self._abandon()
            raise SinkError(f"cannot write bag {self.path}: {_reason(error)}") from error
        if self._copy_from is not None:
            self._passengers = self._copy_from()
            self._next_passenger = next(self._passengers, None)

    def _channel(self, topic: str, schema: tuple[str, str, bytes] | None, encoding: str, metadata: dict[str, str]) -> int:
        """The channel id of ``topic``, registering it (and its schema) on first use."""
        if topic not in self._channels:
            schema_id = 0
            if schema is not None:
                name, schema_encoding, data = schema
                schema_id = self._writer.register_schema(name, schema_encoding, data)
                self._types[topic] = name
            self._channels[topic] = self._writer.register_channel(topic, encoding, schema_id, metadata)
            self._encodings[topic] = encoding
            self._counts[topic] = 0
        return self._channels[topic]

    # --- writing ---------------------------------------------------------------------------

    def write(self, frame: Frame) -> None:
        if self._writer is None:
            raise SinkError(f"bag sink {self.path} is not open")
        stamp, log_time, frame_id = self._stamps(frame)
        self._copy_until(log_time)
        data = self._serialize(output_image(frame, side_by_side_view=self.side_by_side, bit_depth=self._bit_depth),
                               stamp, frame_id)
        self._add(self._image_channel, self.topic, log_time, data, log_time)
        self.frames_written += 1

    def _stamps(self, frame: Frame) -> tuple[int, int, str]:
        """Header stamp, log time (ns) and frame_id: the input message's, or from the frame's own time."""
        if frame.message is not None:
            return frame.message.stamp_ns, frame.message.log_time_ns, frame.message.frame_id
        seconds = frame.pts if frame.pts is not None else frame.index / self._fps
        stamp = max(round(seconds * 1e9), 0)
        return stamp, stamp, DEFAULT_FRAME_ID

    def _serialize(self, image: np.ndarray, stamp: int, frame_id: str) -> bytes:
        types = self._store.types
        header = types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000),
            frame_id=frame_id,
        )
        height, width = image.shape[:2]
        if self.image_format == "rgb8":
            message = types["sensor_msgs/msg/Image"](
                header=header, height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3,
                data=np.ascontiguousarray(image).reshape(-1),
            )
            return bytes(self._store.serialize_cdr(message, "sensor_msgs/msg/Image"))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if self.image_format == "jpeg":
            ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(self.jpeg_quality)])
        else:
            ok, encoded = cv2.imencode(".png", bgr)
        if not ok:
            raise SinkError(f"cannot encode a {width}x{height} frame as {self.image_format}")
        message = types["sensor_msgs/msg/CompressedImage"](header=header, format=self.image_format, data=encoded.reshape(-1))
        return bytes(self._store.serialize_cdr(message, "sensor_msgs/msg/CompressedImage"))

    def _copy_until(self, log_time: int | None) -> None:
        """Copy the input's other messages logged up to ``log_time`` (None: all that are left)."""
        while self._next_passenger is not None and (log_time is None or self._next_passenger.log_time_ns <= log_time):
            message = self._next_passenger
            channel = self._channel(message.topic, message.schema, message.encoding, message.metadata)
            self._add(channel, message.topic, message.log_time_ns, message.data, message.publish_time_ns)
            self.copied += 1
            self._next_passenger = next(self._passengers, None)

    def _add(self, channel: int, topic: str, log_time: int, data: bytes, publish_time: int) -> None:
        try:
            self._writer.add_message(channel, log_time=log_time, data=data, publish_time=publish_time or log_time)
            if self._chunk_start is None:
                self._chunk_start = log_time
            elif abs(log_time - self._chunk_start) >= CHUNK_SECONDS * 1e9:
                self._writer.flush()  # close the chunk: what a kill can lose stays under CHUNK_SECONDS
                self._chunk_start = None
                self._write_metadata()  # a killed folder's metadata then names every topic so far
        except OSError as error:
            self._failed = True
            raise SinkError(f"cannot write bag {self.written_path}: {_reason(error)}") from error
        self._counts[topic] += 1
        self._first_ns = log_time if self._first_ns is None else min(self._first_ns, log_time)
        self._last_ns = max(self._last_ns, log_time)

    # --- closing ---------------------------------------------------------------------------

    def close(self, complete: bool = True) -> None:
        """Copy what is left of the other topics (all of it for a complete run, up to the last
        frame otherwise), write the index and footer, and move the bag into place if ``complete``."""
        if self._writer is None:
            return
        left = 0
        try:
            if not self._failed:
                self._copy_until(None if complete else self._last_ns)
                left = self._count_left()
                self._writer.finish()
        except OSError as error:
            self._failed = True
            raise SinkError(f"cannot finish bag {self.written_path}: {_reason(error)}") from error
        finally:
            self._writer = None
            self._file.close(finished=not self._failed)
            if not self._failed:
                self._write_metadata()
            self._settle(complete and not self._failed, left)

    def _count_left(self) -> int:
        """The input's other messages not copied (a run stopped before the input's end)."""
        left = 0
        while self._next_passenger is not None:
            left += 1
            self._next_passenger = next(self._passengers, None)
        return left

    def _settle(self, complete: bool, left: int) -> None:
        if self.copied or left:
            topics = len([t for t in self._channels if t != self.topic])
            logger.info(f"{self.path.name}: copied {self.copied} messages of {topics} other topics" +
                        (f"; {left} messages after the last frame were not copied" if left else ""))
        if complete:
            self.written_path.replace(self.path)
            self.written_path = self.path
        else:
            logger.warning(f"the run did not finish: {self.frames_written} frames kept in {self.written_path}")

    def _write_metadata(self) -> None:
        """A rosbag2 folder's ``metadata.yaml`` (version 9, MCAP storage), from the counts so far."""
        if not self.folder:
            return
        start = self._first_ns or 0
        duration = max(self._last_ns - start, 0) if self._first_ns is not None else 0
        count = sum(self._counts.values())
        metadata = {"rosbag2_bagfile_information": {
            "version": 9,
            "storage_identifier": "mcap",
            "relative_file_paths": [self._mcap_name],
            "duration": {"nanoseconds": duration},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": count,
            "topics_with_message_count": [
                {"topic_metadata": {"name": topic, "type": self._types.get(topic, ""), "serialization_format": self._encodings[topic],
                                    "offered_qos_profiles": [], "type_description_hash": ""},
                 "message_count": self._counts[topic]}
                for topic in self._channels
            ],
            "compression_format": "",
            "compression_mode": "",
            "files": [{"path": self._mcap_name, "starting_time": {"nanoseconds_since_epoch": start},
                       "duration": {"nanoseconds": duration}, "message_count": count}],
            "custom_data": None,
            "ros_distro": "nirstream",
        }}
        path = self.written_path / "metadata.yaml"
        temporary = path.with_suffix(".yaml.tmp")
        temporary.write_text(yaml.safe_dump(metadata, sort_keys=False))
        temporary.replace(path)

    def _abandon(self) -> None:
        """Drop a bag that failed before its first frame: it holds nothing worth keeping."""
        if self._file is not None:
            self._file.close(finished=False)
        self._writer = None
        if self.written_path == self.path:
            return
        if self.folder and self.written_path.is_dir():
            for child in self.written_path.iterdir():
                child.unlink()
            self.written_path.rmdir()
        elif not self.folder:
            self.written_path.unlink(missing_ok=True)


def _reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "disk full"
    return error.strerror or str(error)
