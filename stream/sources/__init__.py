"""Inputs: cameras, video files and streams, image folders, and a synthetic test source.

:func:`open_source` turns the one ``--source`` string into a Source, the convention of tools
like ultralytics: ``testsrc`` (``testsrc:640x512@30``), ``cam0`` / ``0`` / ``/dev/video0``,
``rtsp://``, ``http(s)://`` URLs, a recorded drive (a rosbag2 folder, ``.mcap``, ``.db3`` or
``.bag``: :class:`BagSource`), an image folder, an image file or glob, or a video file.
:func:`expand_inputs` splits a glob of videos (``drives/*.mp4``) into the files the command
line runs one after another.
"""

import os
import re
from pathlib import Path
from typing import Any

from nirstream.stream.bags import is_bag_path
from nirstream.stream.errors import SourceError
from nirstream.stream.sources.bag import BagSource
from nirstream.stream.sources.base import Source, make_frame
from nirstream.stream.sources.camera import CameraSource
from nirstream.stream.sources.images import ImageSource, glob_files, is_glob, is_image_path
from nirstream.stream.sources.testsrc import TestSource
from nirstream.stream.sources.video import VideoSource, is_network_url

__all__ = [
    "BagSource",
    "is_camera_spec",
    "CameraSource",
    "ImageSource",
    "Source",
    "TestSource",
    "VideoSource",
    "expand_inputs",
    "make_frame",
    "open_source",
    "relative_names",
]

_TESTSRC = re.compile(r"testsrc(?::(?P<width>\d+)x(?P<height>\d+))?(?:@(?P<fps>\d+(?:\.\d+)?))?")
_CAMERA = re.compile(r"(?:cam)?(?P<index>\d+)|(?P<path>/dev/video\d+)")


def is_camera_spec(spec: str) -> bool:
    """Whether ``spec`` names a camera (``cam0``, ``0``, ``/dev/video0``): only cameras take camera options."""
    return _CAMERA.fullmatch(str(spec).strip()) is not None


def open_source(spec: str, **options: Any) -> Source:
    """Open the input a ``--source`` string names; ``options`` go to that source's constructor.

    Raises SourceError for a path that does not exist and for a glob that matches several
    videos (run each of :func:`expand_inputs` instead).
    """
    spec = str(spec).strip()
    if match := _TESTSRC.fullmatch(spec):
        size = {"width": int(match["width"]), "height": int(match["height"])} if match["width"] else {}
        rate = {"fps": float(match["fps"])} if match["fps"] else {}
        return TestSource(**{**size, **rate, **options})
    if match := _CAMERA.fullmatch(spec):
        device = int(match["index"]) if match["index"] is not None else match["path"]
        return CameraSource(device, **options)
    if is_network_url(spec):
        return VideoSource(spec, **options)
    path = Path(spec).expanduser()
    if path.exists() and is_bag_path(path):
        return BagSource(path, **options)
    if path.is_dir():
        return ImageSource(path, **options)
    if is_glob(spec):
        matches = glob_files(spec)
        if not matches:
            raise SourceError(f"input not found: no files match {spec}")
        if all(is_image_path(match) for match in matches):
            return ImageSource(spec, **options)
        inputs = expand_inputs(spec)
        if len(inputs) > 1:
            raise SourceError(f"{spec} matches {len(inputs)} videos: open them one at a time (expand_inputs)")
        return BagSource(inputs[0], **options) if is_bag_path(Path(inputs[0])) else VideoSource(inputs[0], **options)
    if not path.exists():
        raise SourceError(f"input not found: {spec}")
    if is_image_path(path):
        return ImageSource([path], **options)
    return VideoSource(path, **options)


def expand_inputs(spec: str) -> list[str]:
    """The inputs a ``--source`` string stands for, to be run one after another.

    A glob of videos gives each video (natural order); every other spec, including a glob of
    images (one image sequence), is one input. A glob mixing images and videos is an error.
    """
    spec = str(spec).strip()
    if not is_glob(spec) or is_network_url(spec) or Path(spec).exists():
        return [spec]
    matches = glob_files(spec)
    if not matches:
        raise SourceError(f"input not found: no files match {spec}")
    images = [match for match in matches if is_image_path(match)]
    if not images:
        return matches
    if len(images) < len(matches):
        raise SourceError(f"{spec} matches both images and videos: use one pattern for each")
    return [spec]


def relative_names(spec: str, inputs: list[str]) -> list[str]:
    """Each input's path below the fixed folder of the glob ``spec``: ``drives/**/*.mp4`` and
    ``drives/car1/front.mp4`` give ``car1/front.mp4``. A batch's outputs mirror these, so drives
    of the same file name in different folders do not collide."""
    fixed = []
    for part in Path(str(spec).strip()).parts:
        if is_glob(part):
            break
        fixed.append(part)
    base = Path(*fixed) if fixed else Path(".")
    return [os.path.relpath(path, base) for path in inputs]
