"""The session's event hub: what happened to its torrents, numbered, kept briefly, told.

Pure (layer 0): no clock, no I/O. The session feeds it (bt.sessionevents) and
the control API's event stream subscribes (bt.control.events). Every notice
gets the next id; all but progress summaries are also kept in a short backlog,
so a client that reconnects with the last id it saw gets what it missed. A
progress summary is not kept: the next one, a second later, supersedes it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["BACKLOG", "EventHub", "Kind", "Notice", "Replay", "Subscriber"]

#: Notices kept for clients that reconnect (``Last-Event-ID``); progress is not kept.
BACKLOG = 256


class Kind(StrEnum):
    """What happened; the stream's ``event:`` field."""

    TORRENT_ADDED = "torrent-added"
    #: A magnet got its info dictionary: it is a torrent now (its real name, its size).
    METADATA_RECEIVED = "metadata-received"
    STATE_CHANGED = "state-changed"
    #: Every wanted piece is verified and written (the lifecycle's downloading -> seeding).
    FINISHED = "finished"
    REMOVED = "removed"
    PROGRESS = "progress"


@dataclass(frozen=True, slots=True)
class Notice:
    """One event: its id (increasing), its kind and its JSON-ready data."""

    id: int
    kind: Kind
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Replay:
    """What a client reconnecting after ``after`` gets: the notices since, from the backlog.

    ``complete`` is False when some were dropped from the backlog meanwhile (or
    the id is not one of this hub's): the client missed something, and gets all
    that is left.
    """

    notices: tuple[Notice, ...]
    complete: bool


Subscriber = Callable[[Notice], None]


class EventHub:
    """Numbers notices, keeps the last :data:`BACKLOG`, and tells every subscriber at once.

    ``first_id`` lets ids go on increasing across restarts (the session starts
    them from the clock), so an id from an earlier run reads as older than the
    backlog. A subscriber that raises is reported to ``on_error`` and stays
    subscribed: the torrent whose state changed must not fail because of it.
    """

    def __init__(
        self,
        *,
        backlog: int = BACKLOG,
        first_id: int = 1,
        on_error: Callable[[Subscriber, Exception], None] | None = None,
    ) -> None:
        if backlog < 1:
            raise ValueError(f"backlog: expected at least 1 notice, got {backlog}")
        if first_id < 1:
            raise ValueError(f"first_id: expected a positive integer, got {first_id}")
        self._backlog: deque[Notice] = deque(maxlen=backlog)
        self._next = first_id
        #: The id of the newest notice dropped from the backlog (first_id - 1: none yet).
        self._dropped = first_id - 1
        self._first = first_id
        self._subscribers: list[Subscriber] = []
        self._on_error = on_error

    @property
    def last_id(self) -> int:
        """The id of the newest notice (``first_id - 1`` before the first)."""
        return self._next - 1

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Idempotent: a stream may end twice (dropped, then its connection lost)."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def publish(self, kind: Kind, data: dict[str, Any]) -> Notice:
        notice = Notice(self._next, kind, data)
        self._next += 1
        if kind is not Kind.PROGRESS:
            if len(self._backlog) == self._backlog.maxlen:
                self._dropped = self._backlog[0].id
            self._backlog.append(notice)
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(notice)
            except Exception as error:  # a bug in one client's stream, not in the torrent
                if self._on_error is None:
                    raise
                self._on_error(subscriber, error)
        return notice

    def since(self, after: int) -> Replay:
        """The kept notices newer than id ``after`` (a client's ``Last-Event-ID``)."""
        if after >= self.last_id:
            # Up to date; an id from the future is from another run (or made up).
            complete = after == self.last_id
            return Replay((), complete) if complete else Replay(tuple(self._backlog), False)
        complete = after >= self._dropped and after >= self._first - 1
        return Replay(tuple(n for n in self._backlog if n.id > after), complete)
