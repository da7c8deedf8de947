"""Keep freed memory for the next frame: glibc's malloc tuned for a model that allocates the
same large buffers on every frame.

By default glibc hands buffers above a moving threshold to ``mmap``, returns freed memory at
the top of the heap to the OS, and gives each thread its own arena. A CPU forward pass frees
and allocates its activations, tens to hundreds of megabytes, on every frame, so the kernel
maps and zeroes them again each time: at 1280x720 about 50,000 page faults a frame
(``benchmarks/allocator.py``, which measures ``nirstream run`` with and without: 1.44x the
fps at 1280x720, 1.13x at 480x320). Tuned, there is one arena, the largest fixed ``mmap``
threshold glibc accepts (32 MiB on 64-bit) and no trimming, so after the first frame the
heap holds the buffers. The cost: the process keeps its peak memory until it exits, which a
pipeline needs again on the next frame anyway.

:func:`keep_freed_memory` tunes the running process (the ``nirstream`` command calls it for
the commands that run a model over frames, before any thread starts); :data:`TUNABLES` says
the same to a process yet to start (a cluster's workers, whose own threads exist before any
of our code runs). Nothing is changed where malloc is not glibc's (macOS, musl), or where the
user tunes it (any ``MALLOC_*`` variable, ``GLIBC_TUNABLES``, or a ``LD_PRELOAD`` of another
allocator such as jemalloc or tcmalloc).
"""

import ctypes
import os
import platform

from loguru import logger

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
"""``mallopt`` parameters, from glibc's ``malloc.h``."""

SETTINGS = {M_ARENA_MAX: 1, M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 2**31 - 1}
"""One arena; buffers up to 32 MiB (glibc's largest threshold on 64-bit) from the heap; never trim it."""

NAMES = {M_ARENA_MAX: "arena_max", M_MMAP_THRESHOLD: "mmap_threshold", M_TRIM_THRESHOLD: "trim_threshold"}

TUNABLES = ":".join(f"glibc.malloc.{NAMES[parameter]}={value}" for parameter, value in SETTINGS.items())
"""The same settings as ``GLIBC_TUNABLES``, for a process yet to start."""

GLIBC_DEFAULTS = {"MALLOC_PERTURB_": "0"}
"""An environment that keeps glibc's own malloc settings in a ``nirstream`` process, to measure
against: a ``MALLOC_*`` variable makes :func:`keep_freed_memory` leave malloc alone, and this one
sets glibc's default. (Not ``MALLOC_TOP_PAD_`` or a threshold: setting any of those, even to its
default value, turns off glibc's moving ``mmap`` threshold.)"""


def user_tunes_malloc(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment already chooses the allocator or its settings."""
    environ = os.environ if environ is None else environ
    preload = environ.get("LD_PRELOAD", "")
    return (any(name.startswith("MALLOC_") for name in environ) or "glibc.malloc" in environ.get("GLIBC_TUNABLES", "")
            or any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")))


def keep_freed_memory() -> bool:
    """Tune this process's malloc as the module says; whether every setting took. Call it early,
    before threads start (a thread that has allocated keeps its arena)."""
    if not _ours_to_tune():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    refused = [NAMES[parameter] for parameter, value in SETTINGS.items() if mallopt(parameter, value) != 1]
    if refused:
        logger.debug(f"malloc: glibc refused {', '.join(refused)}; the other settings hold")
    else:
        logger.debug("malloc: one arena, freed memory kept")
    return not refused


def worker_environment() -> dict[str, str]:
    """Environment variables that tune a process yet to start as :func:`keep_freed_memory` tunes
    this one (other glibc tunables the user set are kept); none where malloc is not ours to tune."""
    if not _ours_to_tune():
        return {}
    other = os.environ.get("GLIBC_TUNABLES")
    return {"GLIBC_TUNABLES": f"{other}:{TUNABLES}" if other else TUNABLES}


def _ours_to_tune() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and not user_tunes_malloc()
