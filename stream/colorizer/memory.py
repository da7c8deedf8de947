"""How much memory a whole frame costs on the CPU, and whether to tile it: ``engine.tile: auto``.

Tiles serve a GPU's compiled, fixed shapes and bound its memory. A CPU has neither limit
within reason, and each tile repeats the overlap and the padding: 640-px tiles cost 2.5-3x the
time of one pass at 1280x720 (``benchmarks/RESULTS.md``). So on the CPU a frame runs whole
while its activations fit a memory budget, and in tiles only above it.

The cost is measured, not guessed: the process's peak resident memory (Linux ``VmHWM``, reset
through ``/proc/self/clear_refs`` and with freed heap handed back by ``malloc_trim`` first)
while the model runs one probe frame, divided by its pixels. It includes the fixed part, so it
overstates the cost of larger frames a little: the safe side.
"""

import contextlib
import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

PROBE = (512, 640)
"""Height, width of the probe frame: a 640x512 NIR camera's frame, one default tile."""

BUDGET_SHARE = 0.5
"""``memory_budget_gb: null``: at most this share of the memory available when the run starts."""


@dataclass(frozen=True)
class TileChoice:
    """``tile`` 0: the frame runs whole; otherwise in tiles of that size. ``reason`` says why."""

    tile: int
    reason: str


def choose_tile(
    height: int,
    width: int,
    *,
    device_type: str,
    tile: int,
    bytes_per_pixel: float | None,
    budget_bytes: float | None,
) -> TileChoice:
    """What ``engine.tile: auto`` runs a ``height×width`` frame as, given the measurements.

    On CUDA: tiles of ``tile`` (fixed shapes for compiled backends and TensorRT, bounded GPU
    memory). On the CPU: whole when the frame fits in one tile or its measured cost fits the
    budget; tiles otherwise, or when there is no measurement to go by.
    """
    if device_type == "cuda":
        return TileChoice(tile, f"CUDA: {tile}-px tiles, the fixed shapes compiled backends need")
    if max(height, width) <= tile:
        return TileChoice(0, f"whole: a {width}x{height} frame fits in one {tile}-px tile")
    if bytes_per_pixel is None or budget_bytes is None:
        return TileChoice(tile, f"{tile}-px tiles: no memory measurement on this system to run whole frames by")
    need = bytes_per_pixel * height * width
    figures = f"about {_size(need)} of the {_size(budget_bytes)} memory budget ({bytes_per_pixel:.0f} B/pixel measured)"
    if need <= budget_bytes:
        return TileChoice(0, f"whole frames on the CPU: {figures}")
    return TileChoice(tile, f"{tile}-px tiles: a whole {width}x{height} frame would need {figures}")


def measure_bytes_per_pixel(model: nn.Module, probe: tuple[int, int] = PROBE) -> float | None:
    """Peak resident memory of one CPU forward of a probe frame, per pixel; None where it cannot be measured."""
    libc = _libc()
    status = Path("/proc/self/status")
    if libc is None or not status.is_file():
        return None
    try:
        libc.malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
        before = _status_bytes(status, "VmRSS")
        with torch.inference_mode():
            model(torch.zeros(1, 1, *probe))
        peak = _status_bytes(status, "VmHWM")
    except (OSError, ValueError):
        return None
    return max(peak - before, 0) / (probe[0] * probe[1])


def budget_bytes(memory_budget_gb: float | None) -> float | None:
    """The configured budget, or :data:`BUDGET_SHARE` of the memory available now; None if unknown."""
    if memory_budget_gb is not None:
        return memory_budget_gb * 2**30
    with contextlib.suppress(OSError, ValueError):
        return BUDGET_SHARE * _status_bytes(Path("/proc/meminfo"), "MemAvailable")
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return BUDGET_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return None


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(name)
        if hasattr(libc, "malloc_trim"):  # glibc
            return libc
    return None


def _status_bytes(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise ValueError(f"{key} not in {path}")


def _size(count: float) -> str:
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"
