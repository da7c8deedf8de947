"""One camera topic of a recorded drive (a ROS 2 bag, an MCAP file, a ROS 1 bag) as a source.

Each frame keeps the message it came from (:class:`~nirstream.stream.frame.BagMessage`): its
header stamp, its log time and its ``frame_id``, so that a bag sink writes the colour back
where the NIR was, beside the drive's other sensors. ``pts`` is the header stamp in seconds
(the log time where the stamp is zero): what the summary, the flicker figure and every sink see.
"""

from collections.abc import Iterator
from pathlib import Path

from loguru import logger

from nirstream.stream.bags import IMAGE_TYPES, BagReader, ImageDecoder, RawMessage, Topic, frame_id, open_bag, stamp_ns
from nirstream.stream.errors import SourceError
from nirstream.stream.frame import BagMessage, Frame, StreamInfo
from nirstream.stream.sources.base import Source, make_frame


class BagSource(Source):
    """The frames of one image topic of a bag: ``topic`` may be left out when the bag has one."""

    def __init__(self, path: str | Path, *, topic: str | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.finished = False  # every frame of the topic was read: a bag sink then copies the rest of the bag
        self.reader: BagReader = open_bag(self.path)
        try:
            self.topic = self._choose_topic(topic)
            self._decode = ImageDecoder(self.topic, self.reader.topics[self.topic].msgtype)
            first = next(iter(self._frames()), None)
        except BaseException:
            self.reader.close()
            raise
        if first is None:
            self.reader.close()
            raise SourceError(f"{self.path}: topic {self.topic} holds no messages")
        known = self.reader.topics[self.topic]
        self.info = StreamInfo(
            name=self.name, width=first.nir.shape[1], height=first.nir.shape[0], fps=self._rate(),
            bit_depth=first.nir.dtype.itemsize * 8, live=False, frame_count=known.count,
        )

    def _choose_topic(self, topic: str | None) -> str:
        topics = self.reader.topics
        images = sorted(name for name, t in topics.items() if t.msgtype in IMAGE_TYPES)
        if topic is not None:
            if topic not in topics:
                raise SourceError(f"{self.path}: no topic {topic}; its image topics: {_listed(images)}")
            if topic not in images:
                raise SourceError(f"{self.path}: topic {topic} holds {topics[topic].msgtype}, not images; "
                                  f"its image topics: {_listed(images)}")
            return topic
        if not images:
            raise SourceError(f"{self.path}: no image topics (sensor_msgs/Image or CompressedImage, Foxglove "
                              f"RawImage or CompressedImage); its topics: {_listed(sorted(topics))}")
        if len(images) > 1:
            raise SourceError(f"{self.path} has {len(images)} image topics: choose one with --topic ({', '.join(images)})")
        logger.info(f"{self.name}: reading its image topic {images[0]}")
        return images[0]

    def _rate(self, messages: int = 16) -> float | None:
        """The camera's frame rate: the median interval between the first messages' stamps."""
        stamps = []
        try:
            for raw in self.reader.messages({self.topic}):
                stamps.append(stamp_ns(self.reader.decode(raw)) or raw.log_time_ns)
                if len(stamps) >= messages:
                    break
        except SourceError:  # a bag cut short: its frames before the cut are read, and the cut reported, later
            pass
        intervals = sorted(b - a for a, b in zip(stamps, stamps[1:]) if b > a)
        return 1e9 / intervals[len(intervals) // 2] if intervals else None

    def __iter__(self) -> Iterator[Frame]:
        yield from self._frames()
        self.finished = True

    def _frames(self) -> Iterator[Frame]:
        for index, raw in enumerate(self.reader.messages({self.topic})):
            message = self.reader.decode(raw)
            try:
                nir = self._decode(message)
                stamp = stamp_ns(message) or raw.log_time_ns
                frame = make_frame(index, stamp / 1e9, nir, self.name)
                frame.message = BagMessage(self.topic, raw.log_time_ns, stamp, frame_id(message))
            except SourceError:
                raise
            except Exception as error:  # a message that lacks an image type's fields
                raise SourceError(f"{self.path}: message {index} on {self.topic} is not a readable image "
                                  f"({type(error).__name__}: {error})") from error
            yield frame

    @property
    def other_topics(self) -> dict[str, Topic]:
        """The bag's topics other than the camera's: what a bag sink copies."""
        return {name: topic for name, topic in self.reader.topics.items() if name != self.topic}

    def other_messages(self) -> Iterator[RawMessage]:
        """Every message of the bag's other topics, in time order: what a bag sink copies.

        Read through a reader of its own, so that the sink's thread and the capture thread
        never share a file position."""
        others = set(self.other_topics)
        if not others:
            return
        reader = open_bag(self.path)
        try:
            for message in reader.messages(others):
                yield reader.portable(message)
        finally:
            reader.close()

    def close(self) -> None:
        self.reader.close()


def _listed(names: list[str]) -> str:
    return ", ".join(names) if names else "none"
