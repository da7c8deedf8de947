"""User-facing errors.

Anything raised as a :class:`NirstreamError` is a problem with the user's input (a file, a
config key, a checkpoint), not a bug: the command line prints its message on one line and
exits non-zero, with the traceback only under ``--debug``.
"""

import errno


def one_line(error: BaseException, *, with_file: bool = False) -> str:
    """The cause of ``error`` in one line, for a message that already says what failed: "disk
    full" for ENOSPC, the file-size limit for EFBIG, the OS's (or FFmpeg's) own words where it
    has them (``with_file``: and the file it names), else the first line of the message, else
    the exception's type."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "disk full"
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        return "file too large (a file size limit of the file system or the process)"
    words = getattr(error, "strerror", None)
    if words:
        filename = getattr(error, "filename", None)
        return f"{words}: {filename}" if with_file and filename else str(words)
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class NirstreamError(Exception):
    """A problem the user can fix; its message names the problem in one line."""


class ConfigError(NirstreamError):
    """A configuration file or ``--set`` override is missing, malformed or has an unknown key."""


class DataError(NirstreamError):
    """An image or dataset folder is missing, unreadable, unpaired or of mismatched size."""


class WeightsError(NirstreamError):
    """A weights file or training checkpoint is missing, truncated or not nirstream's."""
