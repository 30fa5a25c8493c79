"""The session's events: its hub (bt.events), fed by torrents' lifecycles and the session.

Kept out of session.py and torrent.py. A torrent's state changes in one place,
its lifecycle's transition table, so that is where the hub listens: one
watcher per torrent (``Lifecycle.watchers``), told of every accepted event
before its actions run, which keeps nested moves (downloading, then seeding
at once) in order. The session says when a torrent or magnet is added or
removed; a magnet's torrent arriving is its ``metadata-received``. While a
client listens, a progress summary (the listing ``GET /api/v1/torrents``
returns) goes out every second while anything is active, every
:data:`IDLE_PROGRESS` seconds otherwise, and at the next second after a new
client subscribed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import task
from twisted.python.failure import Failure

from bt.events import EventHub, Kind, Notice, Replay, Subscriber
from bt.lifecycle import Event, TorrentState
from bt.logs import Logger
from bt.status import MagnetState

if TYPE_CHECKING:
    from bt.magnetfetch import MetadataFetch
    from bt.session import Session
    from bt.torrent import Torrent

__all__ = ["IDLE_PROGRESS", "PROGRESS", "SessionEvents", "describe"]

#: Seconds between progress summaries while a torrent is checking, downloading or has
#: peers (or a magnet is fetching); and while nothing is.
PROGRESS = 1.0
IDLE_PROGRESS = 10.0
_ACTIVE = frozenset({TorrentState.CHECKING, TorrentState.DOWNLOADING})

log = Logger()


def describe(torrent: Torrent) -> dict[str, Any]:
    """A torrent as the lifecycle notices show it (the API's fields of the same names)."""
    error = torrent.error if torrent.error is not None else torrent.repair.error
    return {
        "info_hash": torrent.info_hash.hex(),
        "name": torrent.metainfo.name,
        "state": str(torrent.state),
        "error": error,
    }


def _describe_magnet(fetch: MetadataFetch, error: str | None = None) -> dict[str, Any]:
    return {
        "info_hash": fetch.magnet.info_hash.hex() if fetch.magnet.info_hash else "",
        "name": fetch.name,
        "state": str(MagnetState.FETCHING_METADATA),
        "error": error,
    }


class SessionEvents:
    """One session's hub and what feeds it; the control API's event source."""

    def __init__(self, session: Session) -> None:
        self._session = session
        #: The clock of keep-alives and progress (the session's reactor).
        self.clock = session.reactor
        # Ids start from the clock (ms) so they keep increasing across restarts.
        first = max(1, int(session.reactor.seconds() * 1000))
        self.hub = EventHub(first_id=first, on_error=self._failed)
        #: Per torrent: its watcher, and the state and error last told.
        self._watched: dict[bytes, tuple[Torrent, Any, tuple[str, str | None]]] = {}
        #: Magnets told as added, whose torrent is their ``metadata-received``.
        self._magnets: set[bytes] = set()
        self._progress = task.LoopingCall(self._tick)
        self._progress.clock = session.reactor
        self._last_progress: float | None = None
        self._newcomer = False

    # -- what the session tells ---------------------------------------------------------

    def watch(self, torrent: Torrent) -> None:
        """A torrent joins the session (added, restored, or a magnet's metadata arrived)."""
        info_hash = torrent.info_hash
        about = describe(torrent)
        watcher = self._watcher(torrent)
        self._watched[info_hash] = (torrent, watcher, (about["state"], about["error"]))
        torrent.lifecycle.watchers.append(watcher)
        if info_hash in self._magnets:
            self._magnets.discard(info_hash)
            self.hub.publish(Kind.METADATA_RECEIVED, about)
        else:
            self.hub.publish(Kind.TORRENT_ADDED, about)

    def magnet_added(self, fetch: MetadataFetch) -> None:
        if fetch.magnet.info_hash is not None:
            self._magnets.add(fetch.magnet.info_hash)
        self.hub.publish(Kind.TORRENT_ADDED, _describe_magnet(fetch))

    def magnet_dropped(self, fetch: MetadataFetch, error: str) -> None:
        """A magnet's metadata arrived but is no torrent bt can use: it is gone."""
        if fetch.magnet.info_hash is not None:
            self._magnets.discard(fetch.magnet.info_hash)
        self.hub.publish(Kind.REMOVED, _describe_magnet(fetch, error))

    def removing(self, info_hash: bytes) -> None:
        """The session is removing this torrent or magnet (nothing if it has none)."""
        watched = self._watched.pop(info_hash, None)
        if watched is not None:
            torrent, watcher, _told = watched
            if watcher in torrent.lifecycle.watchers:
                torrent.lifecycle.watchers.remove(watcher)  # its stopping is not news
            self.hub.publish(Kind.REMOVED, describe(torrent))
            return
        fetch = self._session.magnets.fetches.get(info_hash)
        if fetch is not None:
            self._magnets.discard(info_hash)
            self.hub.publish(Kind.REMOVED, _describe_magnet(fetch))

    def _watcher(self, torrent: Torrent) -> Any:
        def moved(event: Event, before: TorrentState) -> None:
            try:
                self._moved(torrent, event)
            except Exception:  # a bug here must not stop the torrent's own move
                log.failure("{name}: telling its {event} failed", name=torrent.title, event=event)

        return moved

    def _moved(self, torrent: Torrent, event: Event) -> None:
        watched = self._watched.get(torrent.info_hash)
        if watched is None or watched[0] is not torrent:
            return
        about = describe(torrent)
        now = (about["state"], about["error"])
        if now != watched[2]:
            self._watched[torrent.info_hash] = (torrent, watched[1], now)
            self.hub.publish(Kind.STATE_CHANGED, about)
        if event is Event.COMPLETE:
            self.hub.publish(Kind.FINISHED, about)

    # -- what the control API asks --------------------------------------------------------

    @property
    def last_id(self) -> int:
        return self.hub.last_id

    def since(self, after: int) -> Replay:
        return self.hub.since(after)

    def subscribe(self, subscriber: Subscriber) -> None:
        """Told every notice from now on; a progress summary follows within a second."""
        self.hub.subscribe(subscriber)
        self._newcomer = True
        if not self._progress.running:
            self._progress.start(PROGRESS, now=False)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.hub.unsubscribe(subscriber)
        if not self.hub.subscribers and self._progress.running:
            self._progress.stop()

    # -- progress -------------------------------------------------------------------------

    def _active(self) -> bool:
        session = self._session
        if session.magnets.fetches:
            return True
        return any(t.links or t.state in _ACTIVE for t in session.torrents.values())

    def _tick(self) -> None:
        now = self.clock.seconds()
        idle = self._last_progress is not None and now - self._last_progress < IDLE_PROGRESS
        if idle and not self._newcomer and not self._active():
            return
        self._newcomer = False
        self._last_progress = now
        self.progress()

    def progress(self) -> Notice:
        """Publish a progress summary now: every torrent's listing object."""
        statuses = self._session.torrent_statuses()
        torrents = [status.to_json(files=False) for status in statuses]
        return self.hub.publish(Kind.PROGRESS, {"torrents": torrents})

    def _failed(self, subscriber: Subscriber, error: Exception) -> None:
        # Called inside the hub's except clause: Failure() takes the traceback from there.
        log.failure("event hub: subscriber {subscriber!r} failed", Failure(), subscriber=subscriber)
