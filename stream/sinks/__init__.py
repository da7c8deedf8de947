"""Outputs: video files, image sequences, a display window, a live HTTP preview, and a null sink.

:func:`open_sink` turns the user's ``--sink`` string into a sink, the way ``--source`` names a
source: ``null``, ``window``, ``preview`` / ``preview:PORT`` / ``http://127.0.0.1:PORT`` (a live
MJPEG preview), a video file (``.mp4``, ``.mkv``, ``.mov``), or a folder (an
existing directory, or a path ending with ``/``) for an image sequence.
"""

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nirstream.stream.errors import SinkError
from nirstream.stream.sinks.base import Sink
from nirstream.stream.sinks.compose import nir_to_gray8, nir_to_rgb8, output_image, side_by_side
from nirstream.stream.sinks.images import ImageSequenceSink
from nirstream.stream.sinks.null import NullSink
from nirstream.stream.sinks.preview import PreviewSink
from nirstream.stream.sinks.video import VideoSink
from nirstream.stream.sinks.window import WindowSink

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov"})

__all__ = [
    "ImageSequenceSink",
    "NullSink",
    "PreviewSink",
    "Sink",
    "VIDEO_SUFFIXES",
    "VideoSink",
    "WindowSink",
    "is_folder_spec",
    "nir_to_gray8",
    "nir_to_rgb8",
    "open_sink",
    "output_image",
    "side_by_side",
    "sink_for_input",
]


def is_folder_spec(spec: str) -> bool:
    """True when ``spec`` names a folder: it ends with a path separator or is an existing directory."""
    return spec.endswith(("/", os.sep)) or Path(spec).is_dir()


def open_sink(spec: str, **options: Any) -> Sink:
    """Build the sink ``spec`` names; ``options`` go to its constructor (``side_by_side``, ``crf``...).

    The sink is not opened yet: the pipeline opens it with the source's StreamInfo. ``null``
    takes no options and ignores those given, so one set of options can serve every sink.
    """
    if spec == "null":
        return NullSink()
    if spec == "window":
        return WindowSink(**options)
    if spec == "preview" or spec.startswith(("preview:", "http://")):
        return PreviewSink(*_preview_address(spec), **options)
    if Path(spec).suffix.lower() in VIDEO_SUFFIXES and not spec.endswith(("/", os.sep)):
        return VideoSink(spec, **options)
    if is_folder_spec(spec):
        return ImageSequenceSink(spec, **options)
    raise SinkError(
        f"unknown sink {spec!r}: expected null, window, preview[:PORT], a .mp4/.mkv/.mov file, or a folder ending with /"
    )


def _preview_address(spec: str) -> tuple[str, int]:
    """Host and port of a preview spec: ``preview`` (127.0.0.1:8080), ``preview:PORT``, ``http://HOST:PORT``."""
    if spec == "preview":
        return "127.0.0.1", 8080
    try:
        if spec.startswith("preview:"):
            return "127.0.0.1", int(spec.removeprefix("preview:"))
        url = urlsplit(spec)
        if url.hostname and url.path in ("", "/") and not url.query:
            return url.hostname, url.port if url.port is not None else 8080
    except ValueError:
        pass
    raise SinkError(f"bad preview sink {spec!r}: expected preview, preview:PORT or http://127.0.0.1:PORT")


def sink_for_input(spec: str, input_name: str) -> str:
    """The sink spec for one of many inputs: a folder ``out/`` and input ``drive1.mp4`` give ``out/drive1.mp4``.

    Each input becomes an MP4 named after it (its file stem, or the last part of a URL or
    camera name). Any other spec (``null``, ``window``, a preview address, one file) is
    returned unchanged.
    """
    if spec.startswith(("http://", "preview")) or not is_folder_spec(spec):
        return spec
    stem = Path(input_name.rstrip("/").split("?")[0]).stem or "output"
    return str(Path(spec) / f"{stem}.mp4")
