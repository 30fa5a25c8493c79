"""How ``twistd bittorrent`` starts, fails and stops as a process.

One path for every start-up error: a single line on standard error naming the
option and the cause, exit status 1, no usage text and no traceback
(:func:`fail`). twistd's daemon mode forks before it starts the services and
reports their errors through a pipe cut at 100 bytes, so everything that can
fail because of what the user asked for (the state folder's lock, binding the
peer and control ports) is done in ``makeService``, before twistd forks: the
original process still has the user's terminal and reports the whole line.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, NoReturn

from twisted.application.service import Service

from bt.logs import Logger

__all__ = [
    "PROGRAM",
    "QuietRepeatedSignals",
    "TwistdSettings",
    "fail",
]

PROGRAM = "twistd bittorrent"

log = Logger()


def fail(message: str, *, hint: bool = False) -> NoReturn:
    """Stop twistd with one readable line on standard error, exit status 1.

    ``hint`` adds where to read about the options (for mistakes on the
    command line, not for a port that is taken).
    """
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    if hint:
        print(f"{PROGRAM}: see '{PROGRAM} --help' for the options", file=sys.stderr)
    sys.stderr.flush()
    raise SystemExit(1)


class TwistdSettings:
    """What twistd's own options (the parent of ours) mean for bt."""

    def __init__(self, twistd_options: Any) -> None:
        get = getattr(twistd_options, "get", None) or (lambda _name, default=None: default)
        #: twistd forks and sets umask 077 unless -n.
        self.daemonised = not get("nodaemon", True)
        #: The user's --umask, if given (twistd's default 077 applies only otherwise).
        self.umask: int | None = get("umask", None)
        #: --uid/--gid: twistd drops root after privilegedStartService.
        self.switches_user = get("uid", None) is not None or get("gid", None) is not None

    @property
    def data_umask(self) -> int | None:
        """The umask for downloaded files: 022 when twistd's 077 would hide them.

        Daemonised without ``--umask``, twistd sets 077, which makes downloads
        0600: unreadable for a media server or another user. Transmission and
        libtorrent create 0644 files and 0755 folders under the usual umask;
        bt does the same. An explicit ``--umask``, or ``-n`` (the umask of the
        shell or of systemd's ``UMask=``) is the user's choice and is kept.
        """
        if self.daemonised and self.umask is None:
            return 0o022
        return None


class QuietRepeatedSignals(Service):
    """A second SIGTERM or SIGINT while stopping is noted once, not a traceback.

    The reactor's handler calls ``reactor.stop()`` again, which raises
    ``ReactorNotRunning`` into the log. Once shutdown begins, bt replaces the
    reactor's handlers (only those: a debugger's stays) with one that logs the
    first repeat and waits for the shutdown under way (SIGKILL still stops
    at once). twistd re-raises the first signal at exit as before.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, reactor: Any = None) -> None:
        self._reactor = reactor
        self._trigger: Any = None
        self._noted = False

    def startService(self) -> None:
        super().startService()
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._trigger = reactor.addSystemEventTrigger("before", "shutdown", self._stopping)

    def stopService(self) -> None:
        super().stopService()
        if self._trigger is not None:
            self._reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None

    def _stopping(self) -> None:
        self._trigger = None
        theirs = {getattr(self._reactor, name, None) for name in ("sigTerm", "sigInt")}
        for number in self.SIGNALS:
            if signal.getsignal(number) in theirs:
                signal.signal(number, self._repeated)

    def _repeated(self, number: int, frame: object = None) -> None:
        if self._noted:
            return
        self._noted = True
        log.info(
            "received {signal} again: still stopping cleanly (SIGKILL stops at once)",
            signal=signal.Signals(number).name,
        )
