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

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from loguru import logger

from nirstream.core import __version__
from nirstream.core.errors import NirstreamError, one_line
from nirstream.stream.bags import RawMessage
from nirstream.stream.errors import SinkError
from nirstream.stream.frame import Frame, StreamInfo
from nirstream.stream.sinks.base import Sink
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
    """The file the MCAP writer writes through: each write goes to the OS in one call together
    with a provisional end after it (overwritten by the next write), so the file on disk is a
    whole MCAP between any two system calls. Unbuffered: nothing waits in a Python buffer."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._end = 0
        self._tail = _provisional_end()

    def write(self, data: bytes) -> int:
        try:
            _write_all(self._fd, bytes(data) + self._tail, self._end)
        except OSError:
            self._restore()
            raise
        self._end += len(data)
        return len(data)

    def _restore(self) -> None:
        """After a failed write (a full disk), end the file at the last whole record again: the
        tail is smaller than what failed, and goes where the failed write began."""
        try:
            os.ftruncate(self._fd, self._end)
            _write_all(self._fd, self._tail, self._end)
        except OSError:
            pass

    def tell(self) -> int:
        return self._end

    def flush(self) -> None:
        """Nothing to do: every write is already the OS's."""

    def close(self, finished: bool) -> None:
        """Cut the provisional end once the writer has written the real one (``finished``)."""
        try:
            if finished:
                os.ftruncate(self._fd, self._end)
        finally:
            os.close(self._fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class BagSink(Sink):
    """A ``.mcap`` file (``folder=False``) or a rosbag2 folder of one MCAP file (``folder=True``).

    ``copy_from``: the input bag (a :class:`~nirstream.stream.sources.bag.BagSource`), whose
    other topics are copied (None: copy nothing). Its ``other_topics`` are known at open, its
    ``other_messages()`` come in time order, and ``finished`` says whether the run read it to
    the end: only then is the rest of it (after the last frame) copied too.
    ``image_format``: ``jpeg`` (``jpeg_quality``), ``png`` or ``rgb8`` (uncompressed Image).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        folder: bool = False,
        topic: str | None = None,
        copy_from: Any = None,
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
        self._left_out: set[str] = set()  # input topics a rosbag2 folder cannot hold (not CDR)
        self._passengers: Iterator[RawMessage] | None = None
        self._next_passenger: RawMessage | None = None
        self._file: _AlwaysClosedFile | None = None
        self._writer: Any = None
        self._channels: dict[str, int] = {}  # topic -> channel id
        self._counts: dict[str, int] = {}
        self._types: dict[str, str] = {}  # topic -> message type
        self._encodings: dict[str, str] = {}  # topic -> message encoding
        self._qos: dict[str, list] = {}  # topic -> offered QoS profiles (rosbag2's metadata)
        self._image_channel = 0
        self._chunk_start: int | None = None
        self._first_ns: int | None = None
        self._last_ns = 0
        self._bit_depth = 8
        self._fps = 30.0
        self._live = False
        self._failed = False
        self._store: Any = None

    # --- opening ---------------------------------------------------------------------------

    def open(self, info: StreamInfo) -> None:
        """Create the partial file or folder and write the MCAP header, so a bad path fails here."""
        from mcap.writer import CompressionType, Writer
        from rosbags.typesys import Stores, get_typestore

        self._bit_depth = info.bit_depth
        self._fps = info.fps if info.fps and info.fps > 0 else 30.0
        self._live = info.live
        refuse_to_replace(self.path, self.overwrite)
        profile = self._check_copy()
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
            self._writer.start(profile=profile, library=f"nirstream {__version__}")
            msgtype = "sensor_msgs/msg/Image" if self.image_format == "rgb8" else "sensor_msgs/msg/CompressedImage"
            definition, _ = self._store.generate_msgdef(msgtype, ros_version=2)
            self._image_channel = self._channel(self.topic, (msgtype, "ros2msg", definition.encode()), "cdr", {})
            self._write_metadata()
        except OSError as error:
            self._failed = True
            self._abandon()
            raise SinkError(f"cannot write bag {self.path}: {one_line(error)}") from error
        if self._copy_from is not None:
            self._passengers = (m for m in self._copy_from.other_messages() if m.topic not in self._left_out)
            self._next_passenger = next(self._passengers, None)

    def _check_copy(self) -> str:
        """The MCAP profile, after checking what will be copied: ``ros2`` when every message is
        ROS (CDR), else none. A rosbag2 folder holds CDR only: other topics (Foxglove's protobuf
        or JSON) are left out, with a warning. The colorized topic must be a new one."""
        if self._copy_from is None:
            return "ros2"
        others = self._copy_from.other_topics
        if self.topic in others:
            raise SinkError(f"the colorized topic {self.topic} is a topic of the input already: "
                            "name another with --out-topic")
        foreign = sorted(name for name, topic in others.items() if topic.encoding not in ("cdr", "ros1"))
        if foreign and self.folder:
            self._left_out = set(foreign)
            logger.warning(f"{self.path.name}: a rosbag2 folder holds ROS messages only; not copied: "
                           f"{', '.join(foreign)} (write a .mcap file to keep them)")
            return "ros2"
        return "" if foreign else "ros2"

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
            self._qos[topic] = yaml.safe_load(metadata.get("offered_qos_profiles") or "[]") or []
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
        if self._live:  # a camera or stream: the wall-clock time it was captured, as the Foxglove view stamps it
            stamp = frame.capture_time_ns()
        else:  # a file: its own timeline
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
            message, self._next_passenger = self._next_passenger, None  # written once, even if reading on fails
            channel = self._channel(message.topic, message.schema, message.encoding, message.metadata)
            self._add(channel, message.topic, message.log_time_ns, message.data, message.publish_time_ns)
            self.copied += 1
            self._next_passenger = next(self._passengers, None)

    def _add(self, channel: int, topic: str, log_time: int, data: bytes, publish_time: int) -> None:
        try:
            self._writer.add_message(channel, log_time=log_time, data=data, publish_time=publish_time or log_time)
            self._counts[topic] += 1
            self._first_ns = log_time if self._first_ns is None else min(self._first_ns, log_time)
            self._last_ns = max(self._last_ns, log_time)
            if self._chunk_start is None:
                self._chunk_start = log_time
            elif abs(log_time - self._chunk_start) >= CHUNK_SECONDS * 1e9:
                self._writer.flush()  # close the chunk: what a kill can lose stays under CHUNK_SECONDS
                self._chunk_start = None
                self._write_metadata()  # a killed folder's metadata then names every topic so far
        except OSError as error:
            self._failed = True
            raise SinkError(f"cannot write bag {self.written_path}: {one_line(error)}") from error

    # --- closing ---------------------------------------------------------------------------

    def close(self, complete: bool = True) -> None:
        """Copy what is left of the other topics (the rest of the input if the run read it to
        its end, else up to the last frame), write the index and footer, and move the bag into
        place if ``complete``. A failure while copying still finishes the file, kept partial."""
        if self._writer is None:
            return
        error: NirstreamError | None = None
        finished = False
        try:
            if not self._failed:
                whole = complete and self._copy_from is not None and self._copy_from.finished
                try:
                    self._copy_until(None if whole else self._last_ns)
                except NirstreamError as copying:  # the input breaks off, or a write fails
                    error = copying
            if not self._failed:
                self._writer.finish()
                finished = True
        except OSError as failure:
            self._failed = True
            error = error or SinkError(f"cannot finish bag {self.written_path}: {one_line(failure)}")
        finally:
            self._writer = None
            self._file.close(finished)
            if finished:
                self._write_metadata()
            self._settle(complete and finished and error is None)
        if error is not None:
            raise error

    def _settle(self, complete: bool) -> None:
        """Say what was copied and what was not, then move the bag into place or keep it partial."""
        if self._copy_from is not None:
            self._report_copies()
        if self._failed:  # what reached the disk, not what the writer was given
            self.frames_written = _frames_in(self.written_path, self.topic)
        if not complete:
            logger.warning(f"the run did not finish: {self.frames_written} frames kept in {self.written_path}")
            return
        if self.folder and self.path.exists():  # --overwrite: the old bag goes once the new one is whole
            old = partial_path(self.path.with_name(self.path.name + ".replaced"))
            self.path.replace(old)
            self.written_path.replace(self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.written_path.replace(self.path)
        self.written_path = self.path

    def _report_copies(self) -> None:
        """Every input message accounted for: colorized, copied, or counted here as left out."""
        others = self._copy_from.other_topics
        copied_topics = [name for name in others if name in self._counts]
        counts = [topic.count for name, topic in others.items() if name not in self._left_out]
        left = sum(counts) - self.copied if all(c is not None for c in counts) else None
        text = f"{self.path.name}: copied {self.copied} messages of {len(copied_topics)} other topics"
        if left:
            text += f"; {left} messages after the last frame were not copied"
        elif left is None and not self._copy_from.finished:
            text += "; the messages after the last frame were not copied"
        logger.info(text)

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
                                    "offered_qos_profiles": self._qos[topic], "type_description_hash": ""},
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


def _frames_in(path: Path, topic: str) -> int:
    """The messages on ``topic`` a bag written by this sink holds, 0 if it cannot be read."""
    from nirstream.stream.bags import open_bag

    try:
        reader = open_bag(path)
    except NirstreamError:
        return 0
    count = 0
    try:
        for _ in reader.messages({topic}):
            count += 1
    except NirstreamError:
        pass
    finally:
        reader.close()
    return count
