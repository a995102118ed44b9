"""Graceful stops: SIGTERM (what batch schedulers send before they kill a job) and SIGINT (Ctrl-C).

The first signal only sets a flag; the trainer checks it after every optimiser step, writes its checkpoint and the
best model so far, and stops. The handlers are restored at once, so a second signal acts as it normally would (a
second Ctrl-C aborts straight away).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ['StopRequest', 'stop_on_signals']


class StopRequest:
    """A flag raised by :func:`stop_on_signals` (or by hand with :meth:`request`)."""

    def __init__(self):
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        """Ask the trainer to stop after its current step; ``reason`` names why (``'SIGTERM'``, ``'SIGINT'``)."""
        if self.reason is None:
            self.reason = reason

    def __bool__(self) -> bool:
        return self.reason is not None


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[StopRequest]:
    """Within the block, the first of ``signals`` sets the yielded :class:`StopRequest` instead of ending the process.

    Outside the main thread (where Python cannot install handlers) the request is returned but never raised.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handler(signum, _frame):
        request.request(signal.Signals(signum).name)
        for sig, old in previous.items():  # a second signal is not caught: the user can still abort hard
            signal.signal(sig, old)

    for sig in signals:
        signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
