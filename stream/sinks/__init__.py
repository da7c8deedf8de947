"""Outputs: video files, image sequences, bags (MCAP, rosbag2), a display window, a live HTTP
preview, a Foxglove server, and a null sink.

:func:`open_sink` turns the user's ``--sink`` string (the grammar is in :mod:`.spec`) into a
sink, the way ``--source`` names a source.
"""

from typing import Any

from nirstream.stream.sinks.bag import BagSink
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.compose import nir_to_gray8, nir_to_rgb8, output_image, side_by_side
from nirstream.stream.sinks.images import ImageSequenceSink
from nirstream.stream.sinks.null import NullSink
from nirstream.stream.sinks.preview import PreviewSink
from nirstream.stream.sinks.spec import VIDEO_SUFFIXES, SinkConfig, SinkSpec, parse_sink
from nirstream.stream.sinks.video import VideoSink
from nirstream.stream.sinks.window import WindowSink

__all__ = [
    "BagSink",
    "ImageSequenceSink",
    "NullSink",
    "PreviewSink",
    "Sink",
    "SinkConfig",
    "SinkSpec",
    "VIDEO_SUFFIXES",
    "VideoSink",
    "WindowSink",
    "nir_to_gray8",
    "nir_to_rgb8",
    "open_sink",
    "output_image",
    "parse_sink",
    "side_by_side",
]


def open_sink(
    spec: str | SinkSpec,
    config: SinkConfig | None = None,
    *,
    input_topic: str | None = None,
    copy_from: Any = None,
) -> Sink:
    """Build the sink ``spec`` names, each with only the settings of ``config`` it uses.

    A bag sink names its topic after ``input_topic`` (the input bag's camera topic) and copies
    the other topics of ``copy_from`` (the input :class:`~nirstream.stream.sources.BagSource`)
    unless ``config.copy_topics`` is off. The sink is not opened yet: the pipeline opens it with the source's StreamInfo.
    """
    spec = parse_sink(spec) if isinstance(spec, str) else spec
    config = config or SinkConfig()
    if spec.kind == "null":
        return NullSink()
    if spec.kind == "window":
        return WindowSink(side_by_side=config.side_by_side)
    if spec.kind == "preview":
        return PreviewSink(spec.host, spec.port, side_by_side=config.side_by_side)
    if spec.kind == "foxglove":
        from nirstream.stream.sinks.foxglove import FoxgloveSink

        return FoxgloveSink(spec.host, spec.port)
    if spec.kind in ("mcap", "rosbag2"):
        topic = config.out_topic or (f"{input_topic.rstrip('/')}/colorized" if input_topic else None)
        return BagSink(spec.path, folder=spec.kind == "rosbag2", topic=topic,
                       copy_from=copy_from if config.copy_topics else None, image_format=config.bag_format,
                       jpeg_quality=config.jpeg_quality, side_by_side=config.side_by_side, overwrite=config.overwrite)
    if spec.kind == "video":
        return VideoSink(spec.path, codec=config.codec, crf=config.crf, preset=config.preset,
                         side_by_side=config.side_by_side, overwrite=config.overwrite)
    return ImageSequenceSink(spec.path, side_by_side=config.side_by_side, overwrite=config.overwrite)
