"""``nirstream cameras``: the V4L2 cameras this machine has, their names and pixel formats.

Names come from sysfs (``/sys/class/video4linux/videoN/name``); pixel formats from the device
itself (``VIDIOC_ENUM_FMT``), so a NIR camera's ``GREY`` or ``Y16`` shows before any run. A
device that cannot be opened (in use, no permission) is listed with the reason. Linux only:
elsewhere the list is empty and says so.
"""

import fcntl
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VIDIOC_ENUM_FMT = 0xC0405602  # _IOWR('V', 2, struct v4l2_fmtdesc), 64 bytes
V4L2_BUF_TYPE_VIDEO_CAPTURE = 1
FMTDESC = struct.Struct("=II I32s I I 12x")  # index, type, flags, description, pixelformat, mbus_code


@dataclass(frozen=True)
class Camera:
    device: str  # /dev/video0
    source: str  # what --source takes: cam0
    name: str
    formats: list[str]  # FourCC codes, e.g. GREY, Y16, YUYV
    problem: str = ""  # why the formats are unknown


def pixel_formats(device: str) -> list[str]:
    """The capture pixel formats (FourCC) ``device`` offers; OSError if it cannot be opened."""
    fd = os.open(device, os.O_RDWR | os.O_NONBLOCK)
    try:
        formats = []
        for index in range(64):
            buffer = bytearray(FMTDESC.pack(index, V4L2_BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0))
            try:
                fcntl.ioctl(fd, VIDIOC_ENUM_FMT, buffer)
            except OSError:  # EINVAL: no more formats (or not a capture device)
                break
            fourcc = FMTDESC.unpack(buffer)[4]
            formats.append(fourcc.to_bytes(4, "little").decode("ascii", "replace").strip())
        return formats
    finally:
        os.close(fd)


def list_cameras(sysfs: Path = Path("/sys/class/video4linux"), dev: Path = Path("/dev"),
                 formats_of: Callable[[str], list[str]] = pixel_formats) -> list[Camera]:
    """Every ``videoN`` device sysfs lists, in number order."""
    if not sysfs.is_dir():
        return []
    cameras = []
    for entry in sorted(sysfs.glob("video*"), key=lambda p: int(p.name.removeprefix("video") or 0)):
        number = entry.name.removeprefix("video")
        if not number.isdigit():
            continue
        name_file = entry / "name"
        name = name_file.read_text().strip() if name_file.is_file() else "unknown"
        device = str(dev / entry.name)
        try:
            found, problem = formats_of(device), ""
        except OSError as error:
            found, problem = [], error.strerror or str(error)
        cameras.append(Camera(device, f"cam{number}", name, found, problem))
    return cameras


def camera_table(cameras: list[Camera]) -> str:
    if not cameras:
        return "no cameras found (no /sys/class/video4linux/video* devices)"
    lines = [f"{'source':<8}{'device':<14}{'formats':<24}name"]
    for camera in cameras:
        formats = ", ".join(camera.formats) if camera.formats else f"({camera.problem or 'no capture formats'})"
        lines.append(f"{camera.source:<8}{camera.device:<14}{formats:<24}{camera.name}")
    return "\n".join(lines)
