"""The ``--sink`` grammar, parsed in one place, and the settings the sinks share.

A sink string names one of: ``null``; ``window``; a live preview (``preview``, ``preview:PORT``
or ``http://HOST:PORT``); a Foxglove WebSocket server (``foxglove``, ``foxglove:PORT`` or
``foxglove:HOST:PORT``); a video file (``.mp4``, ``.mkv``, ``.mov``); an MCAP file (``.mcap``,
a recorded drive); or a folder (an existing directory, or a path ending with ``/``): PNG
images for one input, one video per input for many, and a rosbag2 folder when the input is a
bag (:meth:`SinkSpec.for_bag`). :func:`parse_sink` turns the string into a :class:`SinkSpec`;
everything else (building the sink, naming the per-input file, reporting the output path)
reads the spec.
"""

import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from nirstream.core.files import free_path
from nirstream.stream.errors import SinkError

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov"})
BAG_SUFFIX = ".mcap"
PREVIEW_PORT = 8080
FOXGLOVE_PORT = 8765


@dataclass
class SinkConfig:
    """The ``sink`` section: the video encoder's settings (video files only) and the view.

    ``side_by_side`` shows NIR | RGB instead of RGB alone, in every sink that shows pictures.
    ``overwrite`` lets a run replace an existing output file (``--overwrite``, ``-y``); without
    it a run refuses to start rather than destroy one. Bags: ``bag_format`` of the colorized
    messages (``jpeg``, ``png`` or ``rgb8``), ``jpeg_quality``, ``out_topic`` (default
    ``<input topic>/colorized``), and ``copy_topics``: copy the input bag's other topics.
    """

    codec: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    side_by_side: bool = False
    overwrite: bool = False
    bag_format: str = "jpeg"
    jpeg_quality: int = 90
    out_topic: str | None = None
    copy_topics: bool = True


@dataclass(frozen=True)
class SinkSpec:
    """One parsed ``--sink``: its ``kind``, the text it came from, and its path or address."""

    kind: str
    text: str
    path: Path | None = None
    host: str | None = None
    port: int | None = None

    @property
    def output(self) -> Path | None:
        """The file or folder this sink writes, absolute; None for sinks that write nothing."""
        return self.path.resolve() if self.path is not None else None

    def for_input(self, input_name: str) -> "SinkSpec":
        """The spec for one of many inputs: folder ``out/`` and input ``car1/front.mp4`` (its path
        below the glob's fixed folder) give ``out/car1/front.mp4``.

        Each input becomes an MP4 named after it, in the input's subfolders. Any other sink
        (``null``, ``window``, a preview, one file) is unchanged.
        """
        if self.kind != "folder":
            return self
        relative = Path(input_name.rstrip("/").split("?")[0])
        path = self.path / relative.parent / f"{relative.stem or 'output'}.mp4"
        return replace(self, kind="video", text=str(path), path=path)

    def for_bag(self, input_name: str | None = None) -> "SinkSpec":
        """The spec when the input is a recorded drive: a folder becomes a rosbag2 folder (one
        input), or a ``.mcap`` file per input named after it (``input_name``: many inputs)."""
        if self.kind != "folder":
            return self
        if input_name is None:
            return replace(self, kind="rosbag2")
        relative = Path(input_name.rstrip("/"))
        path = self.path / relative.parent / f"{relative.stem or 'output'}.mcap"
        return replace(self, kind="mcap", text=str(path), path=path)


def partial_path(path: Path) -> Path:
    """Where a recording is written until it completes: ``out.partial.mp4`` beside ``out.mp4``
    (``out.partial-2.mp4``... when an earlier interrupted run's partial file is still there)."""
    return free_path(path.with_name(f"{path.stem}.partial{path.suffix}"))


def refuse_to_replace(path: Path, overwrite: bool) -> None:
    """A one-line SinkError when ``path`` exists and the user did not ask to replace it."""
    if path.exists() and not overwrite:
        raise SinkError(f"{path} exists: pass --overwrite (or -y) to replace it, or choose another --sink")


def check_writable(path: Path) -> None:
    """A one-line SinkError when the folder ``path`` would be written in cannot be written."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the nearest folder that exists, which we would create in
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise SinkError(f"cannot write {path}: {folder} is not a folder this user can write in")


def parse_sink(text: str) -> SinkSpec:
    """The :class:`SinkSpec` a ``--sink`` string names; a one-line :class:`SinkError` if none."""
    if text in ("null", "window"):
        return SinkSpec(text, text)
    if text == "preview" or text.startswith(("preview:", "http://")):
        host, port = _preview_address(text)
        return SinkSpec("preview", text, host=host, port=port)
    if text == "foxglove" or text.startswith("foxglove:"):
        host, port = _foxglove_address(text)
        return SinkSpec("foxglove", text, host=host, port=port)
    is_folder = text.endswith(("/", os.sep))
    if Path(text).suffix.lower() in VIDEO_SUFFIXES and not is_folder:
        return SinkSpec("video", text, path=Path(text))
    if Path(text).suffix.lower() == BAG_SUFFIX and not is_folder:
        return SinkSpec("mcap", text, path=Path(text))
    if is_folder or Path(text).is_dir():
        return SinkSpec("folder", text, path=Path(text))
    raise SinkError(
        f"unknown sink {text!r}: expected null, window, preview[:PORT], foxglove[:PORT], a .mp4/.mkv/.mov or "
        ".mcap file, or a folder ending with /"
    )


def _foxglove_address(text: str) -> tuple[str, int]:
    """Host and port of a Foxglove server: ``foxglove`` (127.0.0.1:8765), ``foxglove:PORT``, ``foxglove:HOST:PORT``."""
    parts = text.split(":")[1:]
    try:
        if len(parts) <= 2 and all(parts):
            port = int(parts[-1]) if parts else FOXGLOVE_PORT
            if 0 <= port < 65536:
                return (parts[0] if len(parts) == 2 else "127.0.0.1"), port
    except ValueError:
        pass
    raise SinkError(f"bad Foxglove sink {text!r}: expected foxglove, foxglove:PORT or foxglove:HOST:PORT")


def _preview_address(text: str) -> tuple[str, int]:
    """Host and port of a preview: ``preview`` (127.0.0.1:8080), ``preview:PORT``, ``http://HOST:PORT``."""
    if text == "preview":
        return "127.0.0.1", PREVIEW_PORT
    try:
        if text.startswith("preview:"):
            return "127.0.0.1", int(text.removeprefix("preview:"))
        url = urlsplit(text)
        if url.hostname and url.path in ("", "/") and not url.query:
            return url.hostname, url.port if url.port is not None else PREVIEW_PORT
    except ValueError:
        pass
    raise SinkError(f"bad preview sink {text!r}: expected preview, preview:PORT or http://127.0.0.1:PORT")
