"""Ctrl-C and SIGTERM while pgfast trains: one KeyboardInterrupt, the rest held.

The first SIGINT or SIGTERM raises KeyboardInterrupt (so training writes its
checkpoint and stops); any later one is held rather than raised, so that it cannot cut
the checkpoint write short or turn the command's one-line exit into a traceback. A
SIGINT the process ignores (a background job of a shell) stays ignored. Guards nest:
an inner one (``pgfast.train`` inside ``pgfast train``) uses the outer one's.
"""
from __future__ import annotations

import signal
import threading

__all__ = ["Interrupts"]

_active = None   # the outermost guard in force


class Interrupts:
    """A context manager for the guard described above (a no-op off the main thread,
    where handlers cannot be set). With `hold_after`, a guard that saw an interrupt
    keeps holding signals after it exits (a command about to exit 130 with one line:
    a late Ctrl-C must not turn that into death by the signal)."""

    def __init__(self, hold_after=False):
        self.raised = False
        self.hold_after = hold_after
        self._previous = {}

    def __enter__(self):
        global _active
        if _active is not None or threading.current_thread() is not threading.main_thread():
            return _active or self
        for sig in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(sig)
            if handler is not signal.SIG_IGN and handler is not None:
                self._previous[sig] = signal.signal(sig, self._handle)
        _active = self
        return self

    def __exit__(self, *exc):
        global _active
        if _active is self:
            for sig, handler in self._previous.items():
                signal.signal(sig, signal.SIG_IGN if self.raised and self.hold_after
                              else handler)
            _active = None
        return False

    def _handle(self, signum, frame):
        if self.raised:
            return
        self.raised = True
        raise KeyboardInterrupt("SIGTERM" if signum == signal.SIGTERM else "SIGINT")
