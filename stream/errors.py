"""Errors of the real-time pipeline: one-line messages the command line prints without a traceback."""

from nirstream.core.errors import NirstreamError


class SourceError(NirstreamError):
    """An input cannot be opened or read: missing file, corrupt or truncated video, unsupported
    pixel format, camera not found or gone."""


class SinkError(NirstreamError):
    """An output cannot be written: unwritable path, full disk, unknown codec."""


class ClusterError(NirstreamError):
    """A batch on a cluster cannot start or did not finish: Ray missing or unreachable, storage
    the workers cannot see, files that failed every try."""
