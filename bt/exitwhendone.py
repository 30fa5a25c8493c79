"""``--exit-when-done``: stop the daemon once no torrent has anything left to do.

For scripts: ``twistd -n bittorrent --exit-when-done --torrent X`` downloads,
seeds as far as the seeding goals ask, and exits, with status 0 only when every
torrent completed verified.

When is a torrent done?

- ``finished``: downloaded, and its seeding goal (``--seed-ratio``/``--seed-time``) met;
- ``seeding`` with no seeding goal: it would seed forever, so downloaded and
  verified is done (aria2's ``--seed-time=0``);
- ``paused`` with every wanted piece verified: done too (a pause keeps the data).

A torrent can also be stuck, needing a person: in ``error``, or ``paused``
before it finished. The daemon exits once every torrent is done or stuck, with
status 1 if any is stuck. With no torrent at all it exits 1 at once (nothing
was downloaded), unless a watch folder may still bring one: then it waits for
the first. A torrent removed through the API no longer counts.

Every second is cheap even for 1,000 torrents (a look at each one's state),
and catches torrents added later by the watch folder or ``bt add``.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet import task
from twisted.internet.error import ReactorNotRunning
from twisted.python.failure import Failure

from bt.logs import Logger

__all__ = ["ExitWhenDone", "Verdict", "exit_with_status", "verdict"]

#: Exit status when some torrent did not complete (or there was none).
NOT_DONE = 1


class _Goals(Protocol):
    seed_ratio: float | None
    seed_time: float | None


class WatchedTorrent(Protocol):
    """What the watcher reads of a torrent (a :class:`bt.torrent.Torrent`)."""

    title: str
    state: str
    error: str | None
    config: _Goals

    @property
    def is_finished(self) -> bool: ...


@dataclass(frozen=True)
class Verdict:
    """A torrent with nothing left to do on its own: ``ok`` if it completed verified."""

    ok: bool
    why: str


def verdict(torrent: WatchedTorrent) -> Verdict | None:
    """Done, stuck, or (None) still working: downloading, checking, seeding to a goal."""
    state = torrent.state
    if state == "error" or (state == "paused" and torrent.error is not None):
        return Verdict(False, f"error: {torrent.error or 'unknown'}")
    if state == "finished":
        return Verdict(True, "downloaded and seeded to its goal")
    if state == "seeding" and torrent.is_finished:
        goals = torrent.config
        if goals.seed_ratio is None and goals.seed_time is None:
            return Verdict(True, "downloaded (no seeding goal)")
        return None
    if state == "paused":
        if torrent.is_finished:
            return Verdict(True, "downloaded, then paused")
        return Verdict(False, "paused before it finished downloading")
    return None


class ExitWhenDone(Service):
    """Watches the session's torrents; stops the reactor once all are done or stuck.

    ``exit_status(code)`` is called first with the status the process should
    exit with (see :func:`exit_with_status`); then ``reactor.stop()``, and
    twistd stops every service cleanly (state saved, trackers told) before the
    reactor returns.
    """

    log = Logger()

    def __init__(
        self,
        torrents: Mapping[bytes, WatchedTorrent],
        reactor: Any,
        exit_status: Callable[[int], None],
        *,
        wait_for_first: bool = False,
        interval: float = 1.0,
    ) -> None:
        self.torrents = torrents
        self.reactor = reactor
        self.exit_status = exit_status
        #: A watch folder may bring the first torrent later: no torrent is not yet a failure.
        self.wait_for_first = wait_for_first
        self.interval = interval
        self.status: int | None = None
        self._loop: task.LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.reactor
        running = self._loop.start(self.interval, now=False)  # torrents start checking first
        running.addErrback(self._check_failed)

    def _check_failed(self, failure: Failure) -> None:
        """A bug in check(): say so and stop, rather than run forever unwatched."""
        self.log.failure("--exit-when-done: checking the torrents failed", failure)
        self._loop = None
        if self.status is None:
            self._exit(NOT_DONE, "checking the torrents failed")

    def stopService(self) -> None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def check(self) -> None:
        """Decide whether to exit now (called every ``interval`` seconds)."""
        if self.status is not None:
            return
        torrents = list(self.torrents.values())
        if not torrents:
            if self.wait_for_first:
                return
            self._exit(NOT_DONE, "no torrent to download")
            return
        self.wait_for_first = False  # from now on, losing every torrent is the end
        verdicts = [(t, verdict(t)) for t in torrents]
        if any(v is None for _, v in verdicts):
            return
        stuck = [f"{t.title}: {v.why}" for t, v in verdicts if v is not None and not v.ok]
        if stuck:
            self._exit(NOT_DONE, "; ".join(stuck))
        else:
            count = len(torrents)
            self._exit(0, f"{count} torrent{'s' if count != 1 else ''} done")

    def _exit(self, status: int, why: str) -> None:
        self.status = status
        if status == 0:
            self.log.info("--exit-when-done: {why}; stopping", why=why)
        else:
            self.log.error(
                "--exit-when-done: {why}; stopping with exit status {status}",
                why=why,
                status=status,
            )
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.exit_status(status)
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            pass  # already stopping (a signal came first): the status still holds


def exit_with_status(status: int) -> None:
    """Make the process exit with ``status`` once twistd is through.

    twistd runs the reactor, removes its pidfile, stops logging and returns;
    its caller then exits 0 whatever happened. So a non-zero status is given
    at the very end, by an ``atexit`` hook that flushes stdout and stderr and
    calls ``os._exit``. Daemonised, the status goes to nobody: the parent
    exited when the daemon started. It matters with ``-n`` (and systemd).
    """
    if status == 0:
        return

    def leave() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # closed or gone: nothing more to say anyway
        os._exit(status)

    atexit.register(leave)
