"""Stopping a training run cleanly on SIGINT or SIGTERM (Ctrl-C, ``kill``, a ``nohup`` run ended).

The first signal asks the run to stop after the step in flight: the trainer then keeps a
checkpoint that resumes at the next step and the weights so far, and says where they are. A
second signal stops at once (KeyboardInterrupt), for a step that takes too long.
"""

import signal
import threading
from typing import Any

from loguru import logger


class StopRequest:
    """A flag the signal handlers set; :meth:`install` them around the epochs, :meth:`uninstall` after."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def install(self, enabled: bool = True) -> None:
        """Take over SIGINT and SIGTERM (main thread only; ``enabled`` False leaves them alone:
        several processes of a distributed run must stop at the same step, which one flag cannot say)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt  # the second signal: now
        self.requested = True
        logger.warning(f"{signal.Signals(signum).name}: stopping after this step, with a checkpoint "
                       "(send it again to stop at once)")


def ignore_stop_signals(worker_id: int = 0) -> None:
    """A data-loading worker's start: Ctrl-C goes to the whole process group, and a worker that
    died of it would end the run before the main process could stop it cleanly. SIGTERM stays
    as it is: the DataLoader itself ends its workers with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
