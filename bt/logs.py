"""bt's logging: a level filter for bt's own events, and a JSON log for shippers.

Every bt module logs through :class:`Logger` below. Its events pass a level
filter (``--log-level``, default ``info``) before they reach Twisted's global
log publisher, so twistd's log file is not flooded by per-peer ``debug``
lines, and embedding programs can turn bt down without touching the rest of
their logging. ``JSONLogService`` adds one JSON object per line for log
shippers (``--json-log FILE``), beside twistd's human-readable log.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from twisted.application.service import Service
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
    jsonFileLogObserver,
)
from twisted.logger import Logger as _TwistedLogger

from bt.errors import BtError

__all__ = ["LEVELS", "JSONLogService", "Logger", "set_log_level"]

LEVELS = ("debug", "info", "warn", "error", "critical")

_level = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
#: Where bt's events go: through the level filter, then to every global observer.
bt_observer = FilteringLogObserver(globalLogPublisher, [_level])


def set_log_level(name: str) -> None:
    """The lowest level of bt's events that is logged: debug, info, warn, error, critical."""
    if name not in LEVELS:
        raise ValueError(f"{name!r} is not a log level ({', '.join(LEVELS)})")
    _level.setLogLevelForNamespace(None, LogLevel.levelWithName(name))  # type: ignore[arg-type]


class Logger(_TwistedLogger):
    """``twisted.logger.Logger`` whose events pass bt's level filter."""

    def __init__(
        self, namespace: str | None = None, source: object = None, observer: Any = None
    ) -> None:
        if namespace is None:
            # Twisted names a logger after the module creating it; one frame up, here.
            namespace = sys._getframe(1).f_globals.get("__name__", "bt")
        super().__init__(namespace, source, observer if observer is not None else bt_observer)


class JSONLogService(Service):
    """Writes every logged event as one JSON line to ``path`` (``-``: standard output).

    The file is opened in ``privilegedStartService`` (twistd has daemonised by
    then, and the session's other services have not logged yet) and appended
    to, so a restart keeps earlier lines.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._observer: ILogObserver | None = None

    def check_writable(self) -> None:
        """Fail now, with a line naming the option, if the file cannot be opened later.

        Called before twistd forks: a daemon child's start-up error would reach
        the terminal cut at 100 bytes.
        """
        if self.path == "-":
            return
        parent = Path(self.path).parent
        if parent.exists() and not parent.is_dir():
            raise BtError(f"--json-log {self.path}: {parent} is not a folder")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise BtError(f"--json-log {self.path}: cannot open: {exc.strerror or exc}") from exc

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._open()

    def startService(self) -> None:
        super().startService()
        self._open()

    def _open(self) -> None:
        if self._observer is not None:
            return
        if self.path == "-":
            stream: IO[str] = sys.stdout
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            stream = self._file = open(self.path, "a", encoding="utf-8")
        self._observer = jsonFileLogObserver(stream, recordSeparator="")
        globalLogPublisher.addObserver(self._observer)

    def stopService(self) -> None:
        super().stopService()
        if self._observer is not None:
            globalLogPublisher.removeObserver(self._observer)
            self._observer = None
        if self._file is not None:
            self._file.close()
            self._file = None
