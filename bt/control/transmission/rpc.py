"""The Transmission RPC's state: the session, the ids, the clock, and the method table.

Everything a method does to the session goes through the same calls bt's own
JSON API makes (:class:`~bt.control.api.ControlSession`); the few things
Transmission asks for beyond them (trackers, peers, a reannounce) come from
:class:`~bt.control.transmission.live.LiveTorrents`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, threads

from bt.control.transmission.adding import METHODS as ADD_METHODS
from bt.control.transmission.dispatcher import Dispatcher, Method
from bt.control.transmission.ids import RECENT_SECONDS, TorrentIds
from bt.control.transmission.live import Extras, LiveTorrents
from bt.control.transmission.methods import METHODS as TORRENT_METHODS
from bt.control.transmission.sessionfields import SessionFacts
from bt.control.transmission.sessionmethods import METHODS as SESSION_METHODS
from bt.status import TorrentStatus

__all__ = ["Rpc"]


class Rpc:
    """One daemon's Transmission RPC: ids stable for its life, one session id."""

    def __init__(
        self,
        session: Any,
        *,
        clock: Any = None,
        live: Extras | None = None,
        run_blocking: Callable[..., defer.Deferred[Any]] | None = None,
        close: Callable[[], None] | None = None,
        fetch: Callable[[str], defer.Deferred[bytes]] | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.session = session
        self.clock = clock
        self.live: Extras = live if live is not None else LiveTorrents(session)
        self.run_blocking = (
            run_blocking or getattr(session, "run_blocking", None) or threads.deferToThread
        )
        self.close = close
        #: Downloads a .torrent a client named by URL (bt.control.transmission.adding).
        self.fetch = fetch
        self.ids = TorrentIds()
        #: What the client must echo in X-Transmission-Session-Id (new each daemon start).
        self.session_id = secrets.token_urlsafe(24)
        self.started = clock.seconds()
        #: Kept for a limit given while disabled, as Transmission keeps it (kB/s).
        self.kept_limits: dict[tuple[bytes | None, str], float] = {}
        #: session-set's start-added-torrents: torrent-add's default for "paused" (negated).
        self.start_added = True
        self._active: dict[bytes, float] = {}
        self._states: dict[bytes, str] = {}
        #: Each torrent's place in the session at the last look (torrent-get's queuePosition).
        self.order: dict[bytes, int] = {}
        table: dict[str, Method] = {}
        for group in (TORRENT_METHODS, SESSION_METHODS, ADD_METHODS):
            for name, function in group.items():
                table[name] = _bound(function, self)
        self.dispatcher = Dispatcher(table)

    @property
    def facts(self) -> SessionFacts:
        return SessionFacts.of(self.session)

    def now(self) -> float:
        return float(self.clock.seconds())

    def statuses(self) -> list[TorrentStatus]:
        """Every torrent, each with its id assigned, and activity noted for recently-active."""
        statuses: list[TorrentStatus] = self.session.torrent_statuses()
        now = self.now()
        present = {bytes.fromhex(s.info_hash) for s in statuses}
        for gone in set(self.order) - present:  # removed by bt's own API, the CLI, ...
            self.forget(gone)
        self.order = {}
        for status in statuses:
            info_hash = bytes.fromhex(status.info_hash)
            self.ids.id_for(info_hash)
            self.order[info_hash] = len(self.order)
            state = str(status.state)
            busy = status.download_rate > 0 or status.upload_rate > 0 or state == "checking"
            if busy or self._states.get(info_hash) != state:
                self._active[info_hash] = now
            self._states[info_hash] = state
        return statuses

    def id_of(self, info_hash: bytes) -> int:
        """A torrent's id; the ones not numbered yet are first, in the session's order."""
        if not self.ids.knows(info_hash):
            self.statuses()
        return self.ids.id_for(info_hash)

    def select(self, arguments: dict[str, Any]) -> tuple[list[TorrentStatus], bool]:
        """The torrents ``ids`` names (all when absent), and whether it said recently-active."""
        statuses = self.statuses()
        value = arguments.get("ids")
        if value == "recently-active":
            now = self.now()
            recent = [
                s
                for s in statuses
                if now - self._active.get(bytes.fromhex(s.info_hash), -1e18) <= RECENT_SECONDS
            ]
            return recent, True
        by_hash = {bytes.fromhex(s.info_hash): s for s in statuses}
        chosen = self.ids.select(value, by_hash)
        if chosen is None:
            return statuses, False
        return [by_hash[h] for h in chosen], False

    def hashes(self, arguments: dict[str, Any]) -> list[bytes]:
        return [bytes.fromhex(s.info_hash) for s in self.select(arguments)[0]]

    def forget(self, info_hash: bytes) -> None:
        self.ids.removed(info_hash, self.now())
        self._active.pop(info_hash, None)
        self._states.pop(info_hash, None)
        self.kept_limits.pop((info_hash, "download"), None)
        self.kept_limits.pop((info_hash, "upload"), None)


def _bound(function: Callable[[Rpc, dict[str, Any]], Any], rpc: Rpc) -> Method:
    return lambda arguments: function(rpc, arguments)
