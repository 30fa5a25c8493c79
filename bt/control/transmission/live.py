"""What Transmission clients ask of a torrent beyond :class:`~bt.status.TorrentStatus`.

Trackers, peers, the dates and the magnet link are read here from the live
session, in one snapshot per torrent (:class:`Details`), so the field mapping
stays pure and the unit tests give it fake details. A session without live
torrents (a test double) gets :data:`NO_DETAILS`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import quote

from twisted.internet.defer import Deferred

from bt.errors import UnknownTorrentError
from bt.sessionprefs import set_session_prefs, set_torrent_prefs, torrent_prefs
from bt.torrentprefs import TorrentPrefs

__all__ = [
    "NO_DETAILS",
    "Details",
    "Extras",
    "LiveTorrents",
    "PeerDetails",
    "TrackerDetails",
]


@dataclass(frozen=True)
class TrackerDetails:
    url: str
    tier: int
    #: Failed announces so far, and when it last answered (epoch seconds; None: never).
    errors: int = 0
    last_announce: float | None = None


@dataclass(frozen=True)
class PeerDetails:
    address: str
    port: int
    client: str
    progress: float
    rate_to_us: float
    rate_to_peer: float
    incoming: bool
    am_choking: bool
    am_interested: bool
    peer_choking: bool
    peer_interested: bool


@dataclass(frozen=True)
class Details:
    added: float = 0.0
    #: When seeding began (None: not seeding).
    seeding_since: float | None = None
    comment: str = ""
    creator: str = ""
    created: int = 0
    magnet: str = ""
    trackers: tuple[TrackerDetails, ...] = ()
    peers: tuple[PeerDetails, ...] = ()
    webseeds: tuple[str, ...] = ()
    #: The verified pieces as a BEP 3 bitfield (Transmission's ``pieces``, base64).
    pieces: str = ""
    #: This torrent's own seed ratio (None: none), its seedRatioMode and labels (bt.torrentprefs).
    seed_ratio: float | None = None
    ratio_mode: int = 0
    labels: tuple[str, ...] = ()
    peers_from: dict[str, int] = field(default_factory=dict)


NO_DETAILS = Details()


class Extras(Protocol):
    """What the RPC asks beyond the control API's session calls (a fake in unit tests)."""

    def details(self, info_hash: bytes, *, peers: bool = ..., pieces: bool = ...) -> Details: ...
    def reannounce(self, info_hash: bytes) -> None: ...
    def set_prefs(self, info_hash: bytes, **changes: Any) -> None: ...
    def set_session_prefs(self, **changes: Any) -> Deferred[None]: ...


class LiveTorrents:
    """Reads :class:`Details` from a :class:`~bt.session.Session`, and pokes its announcers."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def _torrent(self, info_hash: bytes) -> Any:
        torrents = getattr(self._session, "torrents", None)
        torrent = torrents.get(info_hash) if isinstance(torrents, dict) else None
        return torrent if hasattr(torrent, "metainfo") else None

    def details(self, info_hash: bytes, *, peers: bool = False, pieces: bool = False) -> Details:
        torrent = self._torrent(info_hash)
        memory = getattr(self._session, "memory", None)
        added = getattr(memory, "added", {}).get(info_hash, 0.0) if memory is not None else 0.0
        prefs = _prefs(self._session, info_hash)
        if torrent is None:
            return replace(
                NO_DETAILS,
                added=added,
                magnet=_magnet(info_hash, "", ()),
                seed_ratio=prefs.own_ratio,
                ratio_mode=prefs.ratio_mode,
                labels=prefs.labels,
            )
        metainfo = torrent.metainfo
        trackers = tuple(
            TrackerDetails(url, tier) for tier, urls in enumerate(metainfo.trackers) for url in urls
        )
        errors = [getattr(a, "errors", 0) for a in torrent.announcers]
        if len(errors) == len(metainfo.trackers):  # one announcer per tier: give its errors
            trackers = tuple(replace(t, errors=errors[t.tier]) for t in trackers)
        return Details(
            added=added,
            seeding_since=torrent.seeding_since,
            comment=metainfo.comment or "",
            creator=metainfo.created_by or "",
            created=metainfo.creation_date or 0,
            magnet=_magnet(info_hash, metainfo.name, metainfo.trackers),
            trackers=trackers,
            peers=tuple(_peer(link) for link in torrent.links) if peers else (),
            webseeds=tuple(metainfo.url_list),
            pieces=_pieces(torrent) if pieces else "",
            seed_ratio=prefs.own_ratio,
            ratio_mode=prefs.ratio_mode,
            labels=prefs.labels,
        )

    def reannounce(self, info_hash: bytes) -> None:
        """Ask the trackers for peers now (each announcer keeps its tracker's min interval)."""
        torrent = self._torrent(info_hash)
        if torrent is not None:
            for announcer in torrent.announcers:
                announcer.need_peers()

    def set_prefs(self, info_hash: bytes, **changes: Any) -> None:
        """A torrent's labels or seed-ratio goal (bt.sessionprefs): kept in its record."""
        set_torrent_prefs(self._session, info_hash, **changes)

    def set_session_prefs(self, **changes: Any) -> Deferred[None]:
        """The session's download folder or seed ratio, kept in settings.json."""
        return set_session_prefs(self._session, **changes)


def _prefs(session: Any, info_hash: bytes) -> TorrentPrefs:
    memory = getattr(session, "memory", None)
    if memory is None or not hasattr(session, "magnets"):
        return TorrentPrefs()  # a test double
    try:
        return torrent_prefs(session, info_hash)
    except UnknownTorrentError:
        return TorrentPrefs()


def _pieces(torrent: Any) -> str:
    return base64.b64encode(torrent.picker.have_bitfield().to_bytes()).decode("ascii")


def _magnet(info_hash: bytes, name: str, tiers: Any) -> str:
    link = f"magnet:?xt=urn:btih:{info_hash.hex()}"
    if name:
        link += "&dn=" + quote(name, safe="")
    for urls in tiers:
        for url in urls:
            link += "&tr=" + quote(url, safe="")
    return link


def _peer(link: Any) -> PeerDetails:
    host, port = link.address
    have = link.bitfield
    protocol = getattr(link, "protocol", None)
    connection = getattr(protocol, "connection", None)
    return PeerDetails(
        address=str(host),
        port=int(port),
        client=_client_name(getattr(protocol, "peer_id", None)),
        progress=have.count() / have.length if have.length else 0.0,
        rate_to_us=link.download_meter.rate,
        rate_to_peer=link.upload_meter.rate,
        incoming=not link.outgoing,
        am_choking=link.am_choking,
        am_interested=link.am_interested,
        peer_choking=bool(getattr(connection, "peer_choking", True)),
        peer_interested=link.peer_interested,
    )


def _client_name(peer_id: Any) -> str:
    """Azureus-style ids (``-lt0D10-``) name the client; others are left unnamed."""
    if isinstance(peer_id, bytes) and peer_id[:1] == b"-" and peer_id[7:8] == b"-":
        return peer_id[1:7].decode("ascii", "replace")
    return ""
