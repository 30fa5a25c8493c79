"""One daemon per state folder: an ``flock`` on ``STATE_DIR/lock`` held while it runs.

Two daemons on one folder would overwrite each other's ``control.json``,
registry and resume files. The lock is advisory (only bt looks at it), dies
with the process (no stale lock after a crash or SIGKILL) and holds the
holder's pid, so the second daemon can say which process to look at. flock
locks belong to the open file, so two :class:`StateDirLock` in one process
conflict as well, and a lock taken before twistd forks stays with the daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bt.errors import BtError

__all__ = ["LOCK_FILE", "StateDirBusy", "StateDirLock"]

LOCK_FILE = "lock"


class StateDirBusy(BtError):
    """Another process holds the state folder's lock."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"--state-dir {state_dir}: in use by another bt daemon ({holder}); "
            "stop it or give this one its own --state-dir"
        )
        self.state_dir = state_dir
        self.pid = pid


class StateDirLock:
    """The exclusive lock of one state folder; :meth:`acquire` is idempotent."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOCK_FILE
        self._fd: int | None = None
        self._pid_written: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (or StateDirBusy naming the holder); write our pid into it.

        Called again after a fork (twistd daemonising), it only rewrites the pid.
        """
        if self._fd is None:
            self._fd = self._lock()
        if self._pid_written != os.getpid():
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
            self._pid_written = os.getpid()

    def _lock(self) -> int:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise BtError(
                f"--state-dir {self.state_dir}: cannot create {self.path.name}: "
                f"{exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StateDirBusy(self.state_dir, pid) from None
        except OSError as exc:
            os.close(fd)
            raise BtError(
                f"--state-dir {self.state_dir}: cannot lock {self.path.name}: {exc.strerror or exc}"
            ) from exc
        return fd

    def release(self) -> None:
        """Let the next daemon in; the file stays (removing it would race a new holder)."""
        fd, self._fd = self._fd, None
        self._pid_written = None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor of the open file releases the lock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
