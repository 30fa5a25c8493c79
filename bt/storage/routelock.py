"""A shared/exclusive lock: many reads and writes at once, or one re-routing alone.

``FileStorage`` decides per file whether its bytes live in the file or in the
part file. Reads and writes take the lock shared (they run in several disk
threads at once); ``set_skipped``, which changes that decision and moves
bytes, takes it alone so no piece is written by the old rule and read by the
new one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RouteLock"]


class RouteLock:
    """A waiting exclusive user stops new shared ones, so steady seeding cannot starve it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._users = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            while self._exclusive or self._waiting:
                self._condition.wait()
            self._users += 1
        try:
            yield
        finally:
            self.release_shared()

    def try_shared(self) -> bool:
        """Take it shared only if that needs no waiting (for the reactor thread, which
        must not wait for a re-routing); True if taken: then call :meth:`release_shared`."""
        if not self._condition.acquire(blocking=False):
            return False
        try:
            if self._exclusive or self._waiting:
                return False
            self._users += 1
            return True
        finally:
            self._condition.release()

    def release_shared(self) -> None:
        with self._condition:
            self._users -= 1
            if not self._users:
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._waiting += 1
            while self._exclusive or self._users:
                self._condition.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()
