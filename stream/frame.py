"""The unit every stage passes on, and what a source tells its sinks about the stream.

Latency figures are differences of the monotonic timestamps the stages write into
``Frame.timings``: ``captured`` by the source, then one entry per stage as it finishes.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """One NIR frame on its way through the pipeline.

    ``nir`` is H×W, uint8 or uint16 as captured; ``rgb`` (H×W×3 uint8, RGB order) is set by
    the colorizer. ``pts`` is the presentation time in seconds from the container or the
    camera clock (None when the input has none); ``captured_at`` is ``time.monotonic()`` when
    the frame entered the pipeline.
    """

    index: int
    pts: float | None
    captured_at: float
    nir: np.ndarray
    rgb: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    source: str = ""


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
