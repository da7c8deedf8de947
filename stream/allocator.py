"""Keep freed memory for the next frame: glibc's malloc tuned for a model that allocates the
same large buffers on every frame.

By default glibc hands every buffer above a moving threshold (at most 32 MiB) to ``mmap``,
returns freed memory at the top of the heap to the OS, and gives each thread its own arena.
A CPU forward pass frees and allocates its activations, tens to hundreds of megabytes, on
every frame, so the kernel maps and zeroes them again each time: at 1280x720 about 49,000
page faults a frame, a fifth of the frame's time (``benchmarks/pipeline.py`` measures runs
with and without). :func:`keep_freed_memory` sets one arena, the largest fixed ``mmap``
threshold glibc accepts and no trimming, so after the first frame the buffers are reused. The
cost: the process keeps its peak memory until it exits, which a pipeline needs again on the
next frame anyway.

Nothing is changed where malloc is not glibc's (macOS, musl), or where the user tunes it
(any ``MALLOC_*`` variable, ``GLIBC_TUNABLES``, or a ``LD_PRELOAD`` of another allocator such
as jemalloc or tcmalloc).
"""

import ctypes
import os
import platform

from loguru import logger

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
"""``mallopt`` parameters, from glibc's ``malloc.h``."""

SETTINGS = {M_ARENA_MAX: 1, M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 2**31 - 1}
"""One arena; buffers up to 32 MiB (glibc's largest threshold on 64-bit) from the heap; never trim it."""


def user_tunes_malloc(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment already chooses the allocator or its settings."""
    environ = os.environ if environ is None else environ
    preload = environ.get("LD_PRELOAD", "")
    return (any(name.startswith("MALLOC_") for name in environ) or "glibc.malloc" in environ.get("GLIBC_TUNABLES", "")
            or any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")))


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module says; whether it was done. Call it once, early, in a
    process that runs the model (threads started before keep their own arenas)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or user_tunes_malloc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    done = all(mallopt(parameter, value) == 1 for parameter, value in SETTINGS.items())
    logger.debug(f"malloc: {'one arena, freed memory kept' if done else 'mallopt refused; glibc defaults'}")
    return done
