"""User-facing errors.

Anything raised as a :class:`NirstreamError` is a problem with the user's input (a file, a
config key, a checkpoint), not a bug: the command line prints its message on one line and
exits non-zero, with the traceback only under ``--debug``.
"""


class NirstreamError(Exception):
    """A problem the user can fix; its message names the problem in one line."""


class ConfigError(NirstreamError):
    """A configuration file or ``--set`` override is missing, malformed or has an unknown key."""


class DataError(NirstreamError):
    """An image or dataset folder is missing, unreadable, unpaired or of mismatched size."""


class WeightsError(NirstreamError):
    """A weights file or training checkpoint is missing, truncated or not nirstream's."""
