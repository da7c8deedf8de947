"""The unit every stage passes on, and what a source tells its sinks about the stream.

Latency figures are differences of the frame's stamps, one per :class:`~nirstream.stream.stats.Stage`
it has passed: ``captured_at`` set by the source, then ``frame.stamp(stage)`` by each stage.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from nirstream.stream.stats import Stage


@dataclass
class Frame:
    """One NIR frame on its way through the pipeline.

    ``nir`` is H×W, uint8 or uint16 as captured; ``rgb`` (H×W×3 uint8, RGB order) is set by
    the colorizer. ``pts`` is the presentation time in seconds from the container or the
    camera clock (None when the input has none); ``captured_at`` is ``time.monotonic()`` when
    the frame entered the pipeline: its :attr:`Stage.CAPTURED` stamp. ``stamps`` holds the
    later stages' times. ``name`` is the input file the frame was read from where every frame
    is a file of its own (an image folder): image sinks name their outputs after it.
    ``message`` says which message of a recorded drive (a ROS bag, an MCAP file) the frame is:
    a bag sink writes its colour back with the same stamps.
    """

    index: int
    pts: float | None
    captured_at: float
    nir: np.ndarray
    rgb: np.ndarray | None = None
    stamps: dict[Stage, float] = field(default_factory=dict)
    source: str = ""
    name: str = ""
    message: "BagMessage | None" = None

    def stamp(self, stage: Stage) -> None:
        """Record that the frame reaches ``stage`` now, on the monotonic clock."""
        if stage is Stage.CAPTURED:
            raise ValueError("the capture time is captured_at, set when the frame is made")
        self.stamps[stage] = time.monotonic()

    def capture_time_ns(self) -> int:
        """When the frame was captured on the wall clock (ns since the epoch): a live frame's stamp."""
        return time.time_ns() - round((time.monotonic() - self.captured_at) * 1e9)

    def time_of(self, stage: Stage) -> float | None:
        """When the frame reached ``stage`` (monotonic seconds), or None if it has not."""
        return self.captured_at if stage is Stage.CAPTURED else self.stamps.get(stage)


@dataclass(frozen=True)
class BagMessage:
    """The message of a recorded drive a frame was read from.

    ``stamp_ns`` is the header stamp (the sensor's time, which lines the frame up with lidar,
    radar and CAN), or the log time where the stamp is zero; ``log_time_ns`` is when the
    recorder received it; ``frame_id`` is the camera's coordinate frame.
    """

    topic: str
    log_time_ns: int
    stamp_ns: int
    frame_id: str = ""


@dataclass(frozen=True)
class StreamInfo:
    """What a source knows about its stream before the first frame: sinks open with it."""

    name: str
    width: int
    height: int
    fps: float | None
    bit_depth: int
    live: bool
    frame_count: int | None = None
    sequence: bool = True  # frames follow each other in time; False for a folder of independent images
