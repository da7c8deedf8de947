"""The ``--sink`` grammar, parsed in one place, and the settings the sinks share.

A sink string names one of: ``null``; ``window``; a live preview (``preview``, ``preview:PORT``
or ``http://HOST:PORT``); a video file (``.mp4``, ``.mkv``, ``.mov``); or a folder (an existing
directory, or a path ending with ``/``): PNG images for one input, one video per input for
many. :func:`parse_sink` turns the string into a :class:`SinkSpec`; everything else (building
the sink, naming the per-input file, reporting the output path) reads the spec.
"""

import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from nirstream.core.files import free_path
from nirstream.stream.errors import SinkError

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov"})
PREVIEW_PORT = 8080
KINDS = ("null", "window", "preview", "video", "folder")


@dataclass
class SinkConfig:
    """The ``sink`` section: the video encoder's settings (video files only) and the view.

    ``side_by_side`` shows NIR | RGB instead of RGB alone, in every sink that shows pictures.
    ``overwrite`` lets a run replace an existing output file (``--overwrite``, ``-y``); without
    it a run refuses to start rather than destroy one.
    """

    codec: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    side_by_side: bool = False
    overwrite: bool = False


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
    is_folder = text.endswith(("/", os.sep))
    if Path(text).suffix.lower() in VIDEO_SUFFIXES and not is_folder:
        return SinkSpec("video", text, path=Path(text))
    if is_folder or Path(text).is_dir():
        return SinkSpec("folder", text, path=Path(text))
    raise SinkError(
        f"unknown sink {text!r}: expected null, window, preview[:PORT], a .mp4/.mkv/.mov file, or a folder ending with /"
    )


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
