"""Recorded drives: ROS 2 bags, bare MCAP files and ROS 1 bags, read through one small interface.

Robotics and driver-assistance teams keep drives as bags, every camera frame stamped so that
it lines up with lidar, radar and CAN. Two maintained libraries read them, no ROS install
needed:

- ``rosbags`` for rosbag2 folders (``metadata.yaml`` with ``.mcap`` or ``.db3`` files), bare
  ``.db3`` files and ROS 1 ``.bag`` files;
- ``mcap`` for bare ``.mcap`` files, whatever their messages: ROS 2 (CDR, decoded by rosbags'
  type system from the definitions the file carries) or Foxglove's schemas (protobuf or JSON).
  It reads an MCAP file with no index (a recording that was killed) record by record, up to
  where it breaks off.

Both stream: messages are read one chunk at a time, so memory does not grow with the bag's
length. :func:`open_bag` picks the reader; :data:`IMAGE_TYPES` are the message types a NIR
camera's frames come in, and :func:`decode_image` turns any of them into the NIR array.
"""

import base64
import json
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from loguru import logger

from nirstream.core.data.images import nir_to_gray
from nirstream.core.errors import one_line
from nirstream.stream.errors import SourceError

BAG_SUFFIXES = (".mcap", ".db3", ".bag")
"""File endings read as recorded drives; a folder is a bag when it holds ``metadata.yaml``."""

RAW_IMAGE_TYPES = frozenset({"sensor_msgs/msg/Image", "foxglove.RawImage", "foxglove_msgs/msg/RawImage"})
COMPRESSED_IMAGE_TYPES = frozenset(
    {"sensor_msgs/msg/CompressedImage", "foxglove.CompressedImage", "foxglove_msgs/msg/CompressedImage"}
)
IMAGE_TYPES = RAW_IMAGE_TYPES | COMPRESSED_IMAGE_TYPES

MONO_ENCODINGS = {"mono8": np.uint8, "8uc1": np.uint8, "mono16": np.uint16, "16uc1": np.uint16}
COLOUR_ENCODINGS = {"rgb8": (3, [0, 1, 2]), "bgr8": (3, [2, 1, 0]), "rgba8": (4, [0, 1, 2]), "bgra8": (4, [2, 1, 0])}


def is_bag_path(path: Path) -> bool:
    """Whether ``path`` is a recorded drive: a bag file, or a rosbag2 folder."""
    return path.suffix.lower() in BAG_SUFFIXES if not path.is_dir() else (path / "metadata.yaml").is_file()


@dataclass(frozen=True)
class Topic:
    """One topic of a bag: its message type, how its messages are serialised, and how many."""

    name: str
    msgtype: str
    encoding: str  # cdr, ros1, protobuf, json
    count: int | None = None  # messages, where the bag's index says


@dataclass
class RawMessage:
    """One message as stored: what a bag sink copies unchanged into the output bag."""

    topic: str
    log_time_ns: int
    data: bytes
    publish_time_ns: int = 0
    encoding: str = "cdr"  # the message encoding: cdr, protobuf, json (ros1 before :meth:`BagReader.portable`)
    schema: tuple[str, str, bytes] | None = None  # name, encoding, definition (MCAP's schema record)
    metadata: dict[str, str] = field(default_factory=dict)  # the channel's (offered QoS profiles...)


class BagReader(ABC):
    """What every bag reader offers: its topics, its messages in time order, and decoding."""

    path: Path
    topics: dict[str, Topic]
    indexed: bool = True  # False: an MCAP file without its index, read to where it ends

    @abstractmethod
    def messages(self, topics: set[str] | None = None) -> Iterator[RawMessage]:
        """The messages of ``topics`` (None: all), as stored."""

    @abstractmethod
    def decode(self, message: RawMessage) -> Any:
        """The message as an object with the fields of its type (``height``, ``data``...)."""

    def portable(self, message: RawMessage) -> RawMessage:
        """The message as an MCAP file stores it: with its schema, in CDR for ROS messages."""
        return message

    def close(self) -> None:
        """Release the files; safe to call more than once."""


def open_bag(path: Path) -> BagReader:
    """The reader for ``path``: a SourceError naming the problem if it is not a readable bag."""
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if path.suffix.lower() == ".mcap" and not path.is_dir():
        return McapReader(path)
    return RosbagsReader(path)


class RosbagsReader(BagReader):
    """rosbag2 folders, bare ``.db3`` files and ROS 1 ``.bag`` files, through ``rosbags``."""

    def __init__(self, path: Path) -> None:
        from rosbags.highlevel import AnyReader, AnyReaderError
        from rosbags.typesys import Stores, get_typestore

        self.path = path
        self._reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        try:
            self._reader.open()
        except (AnyReaderError, Exception) as error:  # apsw, yaml and struct errors of a file that is not a bag
            raise SourceError(f"{path}: not a readable bag ({one_line(error)})") from error
        self._is_ros1 = not self._reader.is2
        self._definitions: dict[str, tuple[str, str, bytes]] = {}
        self._store: Any = None
        self._connections: dict[str, list[Any]] = {}
        for connection in self._reader.connections:
            self._connections.setdefault(connection.topic, []).append(connection)
        self.topics = {
            name: Topic(name, conns[0].msgtype, "ros1" if self._is_ros1 else "cdr", sum(c.msgcount for c in conns) or None)
            for name, conns in self._connections.items()
        }
        self._qos = {name: _qos_text(conns[0]) for name, conns in self._connections.items()}

    def messages(self, topics: set[str] | None = None) -> Iterator[RawMessage]:
        from rosbags.highlevel import AnyReaderError

        connections = [c for name, conns in self._connections.items() if topics is None or name in topics for c in conns]
        if not connections:
            return
        try:
            for connection, log_time, data in self._reader.messages(connections=connections):
                yield RawMessage(connection.topic, log_time, bytes(data), encoding=self.topics[connection.topic].encoding)
        except (AnyReaderError, Exception) as error:  # a storage file cut off or corrupt part-way
            raise SourceError(f"{self.path}: unreadable after some messages ({one_line(error)})") from error

    def decode(self, message: RawMessage) -> Any:
        try:
            return self._reader.deserialize(message.data, self.topics[message.topic].msgtype)
        except Exception as error:  # rosbags' serde errors on a damaged message
            raise SourceError(f"{self.path}: a message on {message.topic} cannot be decoded ({one_line(error)})") from error

    def portable(self, message: RawMessage) -> RawMessage:
        """With the type's ROS 2 definition as its schema; ROS 1 messages converted to CDR
        (ROS 2 messages are kept byte for byte)."""
        msgtype = self.topics[message.topic].msgtype
        store = self._ros2_store()
        try:
            if msgtype not in self._definitions:
                text, _ = store.generate_msgdef(msgtype, ros_version=2)
                self._definitions[msgtype] = (msgtype, "ros2msg", text.encode())
            data = bytes(store.ros1_to_cdr(message.data, msgtype)) if self._is_ros1 else message.data
        except Exception as error:  # rosbags' type system and serde errors
            raise SourceError(f"{self.path}: cannot convert a {msgtype} message on {message.topic} "
                              f"to ROS 2 ({one_line(error)})") from error
        qos = self._qos[message.topic]
        return RawMessage(message.topic, message.log_time_ns, data, message.publish_time_ns, "cdr",
                          self._definitions[msgtype], {"offered_qos_profiles": qos} if qos else {})

    def _ros2_store(self) -> Any:
        """The bag's own message definitions with ROS 2's Header (no ``seq``): what ROS 1 messages
        convert to, as rosbags' own converter does; for ROS 2 bags, their own definitions."""
        if self._store is None:
            from rosbags.typesys import Stores, get_typestore

            self._store = get_typestore(Stores.EMPTY)
            definitions = dict(self._reader.typestore.fielddefs)
            if self._is_ros1:
                ros2 = get_typestore(Stores.ROS2_HUMBLE).fielddefs
                for name in ("std_msgs/msg/Header", "builtin_interfaces/msg/Time", "builtin_interfaces/msg/Duration"):
                    definitions[name] = ros2[name]
            self._store.register(definitions)
        return self._store

    def close(self) -> None:
        with suppress(Exception):
            self._reader.close()


def _qos_text(connection: Any) -> str:
    """A rosbag2 connection's offered QoS profiles as rosbag2 writes them into MCAP channel
    metadata (YAML); a latched ``/tf_static`` replays as latched only with them. Empty for ROS 1."""
    from io import StringIO

    from rosbags.rosbag2.metadata import dump_qos_v9
    from ruamel.yaml import YAML

    profiles = getattr(connection.ext, "offered_qos_profiles", None)
    if not profiles:
        return ""
    text = StringIO()
    YAML(typ="safe").dump(dump_qos_v9(profiles), text)
    return text.getvalue().strip()


class McapReader(BagReader):
    """Bare MCAP files through the ``mcap`` library: ROS 2 CDR, protobuf and JSON channels.

    An indexed file is read chunk by chunk in log-time order. A file without its summary (a
    recorder killed before it could write one) is read record by record in file order, its
    topics found by a first pass; where it breaks off, the messages before the break are kept
    and the reader raises a SourceError that says so.
    """

    def __init__(self, path: Path) -> None:
        from mcap.exceptions import McapError
        from mcap.reader import SeekingReader

        self.path = path
        self._file: BinaryIO = path.open("rb")
        self._types: dict[str, Any] = {}  # rosbags typestores, one per schema name
        self._protobuf: Any = None
        self.indexed = True
        try:
            reader = SeekingReader(self._file)
            reader.get_header()
            try:
                summary = reader.get_summary()
            except (McapError, ValueError, OSError, struct.error):
                summary = None
            if summary is not None and summary.chunk_indexes:
                self._schemas, self._channels = summary.schemas, summary.channels
                counts = summary.statistics.channel_message_counts if summary.statistics else {}
            else:  # no index, or no chunks to index: read in file order (sorting would hold it all in memory)
                self.indexed = False
                self._schemas, self._channels, counts = self._scan()
        except SourceError:
            self.close()
            raise
        except Exception as error:  # mcap, struct and OS errors of a file that is not (all) there
            self.close()
            raise SourceError(f"{path}: not a readable MCAP file ({one_line(error)})") from error
        if not self.indexed:
            logger.warning(f"{path.name} has no index (a recording that did not finish?): reading it to where it ends")
        self.topics = {}
        for channel_id, channel in self._channels.items():
            schema = self._schemas.get(channel.schema_id)
            self.topics[channel.topic] = Topic(
                channel.topic, schema.name if schema else "", channel.message_encoding, counts.get(channel_id)
            )

    def _scan(self) -> tuple[dict, dict, dict]:
        """Schemas, channels and message counts of a file without a summary: one pass over it."""
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader

        schemas: dict[int, Any] = {}
        channels: dict[int, Any] = {}
        counts: dict[int, int] = {}
        self._file.seek(0)
        try:
            for record in StreamReader(self._file, emit_chunks=False).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    channels[record.id] = record
                elif isinstance(record, Message):
                    counts[record.channel_id] = counts.get(record.channel_id, 0) + 1
        except Exception as error:  # the file breaks off: what came before it stands
            if not channels:
                raise SourceError(f"{self.path}: not a readable MCAP file ({one_line(error)})") from error
        return schemas, channels, counts

    def messages(self, topics: set[str] | None = None) -> Iterator[RawMessage]:
        from mcap.reader import NonSeekingReader, SeekingReader

        self._file.seek(0)
        reader = SeekingReader(self._file) if self.indexed else NonSeekingReader(self._file)
        read = 0
        try:
            # file order without an index: sorting by log time would hold the whole file in memory
            wanted = list(topics) if topics is not None else None
            for schema, channel, message in reader.iter_messages(topics=wanted, log_time_order=self.indexed):
                yield RawMessage(
                    channel.topic, message.log_time, message.data, message.publish_time, channel.message_encoding,
                    (schema.name, schema.encoding, schema.data) if schema is not None else None,
                    dict(channel.metadata),
                )
                read += 1
        except Exception as error:  # mcap, struct, zstd errors where the file breaks off or is damaged
            raise SourceError(f"{self.path}: truncated or corrupt MCAP file after {read} messages "
                              f"({one_line(error)})") from error

    def decode(self, message: RawMessage) -> Any:
        encoding = self.topics[message.topic].encoding
        if encoding not in ("cdr", "protobuf", "json"):
            raise SourceError(f"{self.path}: topic {message.topic} has message encoding {encoding!r}: "
                              "expected cdr, protobuf or json")
        try:
            if encoding == "cdr":
                return self._ros2_types(message).deserialize_cdr(message.data, self.topics[message.topic].msgtype)
            if encoding == "protobuf":
                return self._decode_protobuf(message)
            return _JsonMessage(json.loads(message.data))
        except Exception as error:  # type system, serde, protobuf and JSON errors of a damaged message
            raise SourceError(f"{self.path}: a message on {message.topic} cannot be decoded ({one_line(error)})") from error

    def _ros2_types(self, message: RawMessage) -> Any:
        """A rosbags type store holding the message's type, from the definition the file carries."""
        from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

        name, encoding, data = message.schema or ("", "", b"")
        if name not in self._types:
            store = get_typestore(Stores.EMPTY)
            if encoding == "ros2msg" and data:
                store.register(get_types_from_msg(data.decode(), name))
            elif encoding in ("ros2idl", "omgidl") and data:
                store.register(get_types_from_idl(data.decode()))
            else:
                store = get_typestore(Stores.ROS2_HUMBLE)
            self._types[name] = store
        return self._types[name]

    def _decode_protobuf(self, message: RawMessage) -> Any:
        from mcap.records import Schema
        from mcap_protobuf.decoder import DecoderFactory

        if self._protobuf is None:
            self._protobuf = (DecoderFactory(), {})
        factory, decoders = self._protobuf
        if message.topic not in decoders:
            name, encoding, data = message.schema or ("", "", b"")
            decoders[message.topic] = factory.decoder_for("protobuf", Schema(id=0, name=name, encoding=encoding, data=data))
            if decoders[message.topic] is None:
                raise SourceError(f"{self.path}: topic {message.topic} is protobuf without a protobuf schema")
        return decoders[message.topic](message.data)

    def close(self) -> None:
        with suppress(Exception):
            self._file.close()


class _JsonMessage:
    """A JSON-encoded Foxglove message with attribute access; ``data`` (base64 in JSON) as bytes."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)
        if isinstance(fields.get("data"), str):
            self.data = base64.b64decode(fields["data"])


# --- image messages -----------------------------------------------------------------------------


class ImageDecoder:
    """Turns one topic's image messages into NIR arrays (H×W uint8 or uint16).

    ``sensor_msgs/Image`` and Foxglove ``RawImage``: mono8 and mono16 as they are (16-bit
    big-endian swapped), rgb8/bgr8/rgba8/bgra8 reduced to gray with one warning. Compressed
    images (JPEG, PNG, including 16-bit PNG) are decoded with OpenCV, colour reduced to gray.
    Anything else is a SourceError naming the encoding.
    """

    def __init__(self, topic: str, msgtype: str) -> None:
        self.topic = topic
        self.compressed = msgtype in COMPRESSED_IMAGE_TYPES
        self._warned = False

    def __call__(self, message: Any) -> np.ndarray:
        if self.compressed:
            return self._compressed(message)
        return self._raw(message)

    def _raw(self, message: Any) -> np.ndarray:
        encoding = str(message.encoding).lower()
        height, width, step = int(message.height), int(message.width), int(message.step)
        data = np.frombuffer(bytes(message.data) if not isinstance(message.data, np.ndarray) else message.data, np.uint8)
        if encoding in MONO_ENCODINGS:
            dtype = np.dtype(MONO_ENCODINGS[encoding])
            if getattr(message, "is_bigendian", 0) and dtype.itemsize > 1:
                dtype = dtype.newbyteorder(">")
            rows = _rows(data, height, width * dtype.itemsize, step, self.topic)
            return rows.view(dtype).astype(dtype.newbyteorder("="), copy=False).copy()
        if encoding in COLOUR_ENCODINGS:
            channels, order = COLOUR_ENCODINGS[encoding]
            rows = _rows(data, height, width * channels, step, self.topic).reshape(height, width, channels)
            self._warn_colour(encoding)
            return nir_to_gray(np.ascontiguousarray(rows[:, :, order]))
        raise SourceError(f"topic {self.topic}: unsupported image encoding {message.encoding!r} "
                          f"(expected mono8, mono16, rgb8, bgr8, rgba8 or bgra8)")

    def _compressed(self, message: Any) -> np.ndarray:
        data = np.frombuffer(bytes(message.data), np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if image is None:
            raise SourceError(f"topic {self.topic}: a compressed image in format {message.format!r} "
                              "that cannot be decoded (expected JPEG or PNG)")
        if image.ndim == 3:
            if image.shape[2] == 4:
                image = image[:, :, :3]
            self._warn_colour(str(message.format))
            image = nir_to_gray(np.ascontiguousarray(image[:, :, ::-1]))
        if image.dtype not in (np.uint8, np.uint16):
            raise SourceError(f"topic {self.topic}: compressed images of type {image.dtype} are not supported")
        return image

    def _warn_colour(self, encoding: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(f"topic {self.topic} holds colour images ({encoding}): each is reduced to gray as NIR")


def _rows(data: np.ndarray, height: int, row_bytes: int, step: int, topic: str) -> np.ndarray:
    """The image's rows without the padding at the end of each (``step`` bytes apart)."""
    step = step or row_bytes
    if step < row_bytes or data.size < step * (height - 1) + row_bytes:
        raise SourceError(f"topic {topic}: an image message holds {data.size} bytes, too few for "
                          f"{height} rows of {row_bytes} bytes (step {step})")
    return np.lib.stride_tricks.as_strided(data, shape=(height, row_bytes), strides=(step, 1))


def stamp_ns(message: Any) -> int:
    """The header stamp of a ROS message, or the timestamp of a Foxglove one, in nanoseconds (0 if none)."""
    header = getattr(message, "header", None)
    stamp = getattr(header, "stamp", None) if header is not None else getattr(message, "timestamp", None)
    if stamp is None:
        return 0
    if isinstance(stamp, dict):  # JSON: {"sec": ..., "nsec": ...}
        return int(stamp.get("sec", 0)) * 1_000_000_000 + int(stamp.get("nsec", 0))
    seconds = getattr(stamp, "sec", None)
    if seconds is None:
        seconds = getattr(stamp, "seconds", 0)  # protobuf's google.protobuf.Timestamp
    nanos = getattr(stamp, "nanosec", None)
    if nanos is None:
        nanos = getattr(stamp, "nsec", None) if hasattr(stamp, "nsec") else getattr(stamp, "nanos", 0)
    return int(seconds) * 1_000_000_000 + int(nanos)


def frame_id(message: Any) -> str:
    header = getattr(message, "header", None)
    return str(getattr(header, "frame_id", "") if header is not None else getattr(message, "frame_id", ""))
