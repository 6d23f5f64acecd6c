"""Interrupts that end a command cleanly: SIGINT and SIGTERM become :class:`~jaxplain.errors.Interrupted`."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable

from jaxplain.errors import Interrupted


@contextlib.contextmanager
def interruptible(saved: Callable[[], str]):
    """While the block runs, SIGINT and SIGTERM raise :class:`~jaxplain.errors.Interrupted` in the main thread with
    ``saved()`` (what is kept, and how to resume) as its message, instead of killing the process or surfacing as a
    bare ``KeyboardInterrupt`` inside library code."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(number, frame):
        raise Interrupted(f"interrupted: {saved()}", number)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
