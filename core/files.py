"""Atomic file writes: a crash or a full disk never leaves a half-written file under the real name."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def free_path(path: Path) -> Path:
    """``path`` if nothing is there, else ``name-2.ext``, ``name-3.ext``...: the first name not taken."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success sync it to disk and rename it over ``path``.

    The file gets the usual mode for the user's umask: some writers (safetensors) create 0600
    files, which other users of a shared model folder could not read.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        tmp.chmod(0o666 & ~_UMASK)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
