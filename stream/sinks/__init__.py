"""Outputs: video files, image sequences, a display window, a live HTTP preview, and a null sink.

:func:`open_sink` turns the user's ``--sink`` string (the grammar is in :mod:`.spec`) into a
sink, the way ``--source`` names a source.
"""

from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.compose import nir_to_gray8, nir_to_rgb8, output_image, side_by_side
from nirstream.stream.sinks.images import ImageSequenceSink
from nirstream.stream.sinks.null import NullSink
from nirstream.stream.sinks.preview import PreviewSink
from nirstream.stream.sinks.spec import VIDEO_SUFFIXES, SinkConfig, SinkSpec, parse_sink
from nirstream.stream.sinks.video import VideoSink
from nirstream.stream.sinks.window import WindowSink

__all__ = [
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


def open_sink(spec: str | SinkSpec, config: SinkConfig | None = None) -> Sink:
    """Build the sink ``spec`` names, each with only the settings of ``config`` it uses.

    The sink is not opened yet: the pipeline opens it with the source's StreamInfo.
    """
    spec = parse_sink(spec) if isinstance(spec, str) else spec
    config = config or SinkConfig()
    if spec.kind == "null":
        return NullSink()
    if spec.kind == "window":
        return WindowSink(side_by_side=config.side_by_side)
    if spec.kind == "preview":
        return PreviewSink(spec.host, spec.port, side_by_side=config.side_by_side)
    if spec.kind == "video":
        return VideoSink(spec.path, codec=config.codec, crf=config.crf, preset=config.preset,
                         side_by_side=config.side_by_side, overwrite=config.overwrite)
    return ImageSequenceSink(spec.path, side_by_side=config.side_by_side, overwrite=config.overwrite)
