"""The session's magnets still fetching their metadata, and their handover to torrents.

Kept out of session.py: a magnet is not yet a torrent. Each is a
:class:`~bt.magnetfetch.MetadataFetch` child service of the session, found by
info-hash for status, removal and incoming peers. When its info dictionary
arrives it becomes a torrent through the session's ``add_torrent`` (same
info-hash, the magnet's trackers as announce-list, its peers as candidates),
whose .torrent copy lands in the state folder at once: a restart never fetches
it again. A magnet remembered while still fetching is ``HASH.magnet`` there.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from bt.candidates import Address, PeerSource
from bt.errors import BtError, DuplicateTorrentError, UnknownTorrentError
from bt.logs import Logger
from bt.magnet import MagnetLink
from bt.magnetfetch import MetadataFetch, torrent_from_metadata
from bt.metainfo import parse_metainfo
from bt.registry import TorrentRecord
from bt.sessionprefs import apply_torrent_prefs
from bt.snapshot import dht_peers
from bt.status import MagnetState, TorrentStatus
from bt.torrentindex import TorrentIndex
from bt.torrentprefs import TorrentPrefs

if TYPE_CHECKING:
    from bt.session import Session

__all__ = ["Magnets"]


class _Tiers:
    """What the tracker factory reads of a torrent, for a magnet's ``tr`` trackers."""

    def __init__(self, magnet: MagnetLink) -> None:
        self.name = magnet.display_name
        self.trackers = magnet.tiers


class Magnets:
    """Magnets of one session that have no metadata yet."""

    log = Logger()

    def __init__(self, session: Session) -> None:
        self._session = session
        #: By the magnet's key; ``find`` by any of its hashes (BEP 52).
        self.fetches = TorrentIndex[MetadataFetch](lambda fetch: fetch.info_hashes)
        self._records: dict[bytes, TorrentRecord] = {}
        self._remembered: set[bytes] = set()

    def __contains__(self, info_hash: bytes) -> bool:
        return info_hash in self.fetches

    def add(
        self,
        magnet: MagnetLink,
        *,
        paused: bool = False,
        download_dir: Path | None = None,
        remember: bool = True,
        record: TorrentRecord | None = None,
    ) -> MetadataFetch:
        """Start fetching ``magnet``'s metadata; DuplicateTorrentError if it is known.

        ``record``: the magnet's settings as restored from the state folder (so not
        saved again).
        """
        session = self._session
        info_hash = magnet.key
        if any(session.torrents.find(h) or self.fetches.find(h) for h in magnet.info_hashes):
            raise DuplicateTorrentError(f"{magnet.display_name}: already added")
        restored = record is not None
        if record is None:
            record = TorrentRecord(
                paused=paused,
                download_dir=str(download_dir) if download_dir is not None else None,
                added=session.reactor.seconds(),
            )
        fetch = MetadataFetch(
            magnet,
            peer_id=session.peer_id,
            port=session.port,
            reactor=session.reactor,
            rng=random.Random(session.rng.getrandbits(64)),
            slots=session.limits.connections,
            trackers=session.tracker_factory.tiers_for(_Tiers(magnet)),  # type: ignore[arg-type]
            on_metadata=lambda raw, peers, layers: self._fetched(info_hash, raw, peers, layers),
            connect_timeout=session.config.torrent.connect_timeout,
            own_addresses=session.limits.own_addresses,
        )
        if session.dht is not None:  # BEP 9 without trackers: peers from the DHT
            fetch.dialer.factory.dht = session.dht.advert
            for each in magnet.info_hashes:  # a hybrid magnet's two (BEP 52)
                fetch.sources.register(
                    session.dht.source_for(each, fetch.dialer.add, fetch.port_now)
                )
        self.fetches[info_hash] = fetch
        self._records[info_hash] = record
        if remember:
            self._remembered.add(info_hash)
        if remember and not restored:
            saved = session.memory.serially(
                session.memory.registry.save_magnet, info_hash, record, magnet.uri()
            )
            saved.addErrback(lambda failure: self.log.failure("cannot remember magnet", failure))
        session.events.magnet_added(fetch)
        fetch.setServiceParent(session)
        return fetch

    def _fetched(
        self, info_hash: bytes, raw_info: bytes, peers: list[Address], layers: Mapping[bytes, bytes]
    ) -> None:
        """The metadata (and a v2 torrent's piece layers) arrived: the magnet becomes a
        torrent (saved to the state dir now)."""
        fetch = self.fetches.pop(info_hash, None)
        if fetch is None:
            return  # removed meanwhile
        record = self._records.pop(info_hash)
        remembered = info_hash in self._remembered
        self._remembered.discard(info_hash)
        self._stop(fetch)
        session = self._session
        try:
            metainfo = parse_metainfo(torrent_from_metadata(raw_info, fetch.magnet.tiers, layers))
            torrent = session.add_torrent(
                metainfo,
                paused=record.paused,
                download_dir=Path(record.download_dir) if record.download_dir else None,
                remember=remembered,
            )
        except (ValueError, BtError) as exc:
            # The peers agreed on bytes that hash right but are no torrent bt can use.
            self.log.error("{name}: cannot use its metadata: {error}", name=fetch.name, error=exc)
            session.events.magnet_dropped(fetch, f"cannot use its metadata: {exc}")
            return
        if remembered:
            session.memory.serially(session.memory.registry.forget_magnet, info_hash)
        if record.prefs != TorrentPrefs():  # labels or a ratio given while it fetched
            apply_torrent_prefs(session, torrent, record.prefs)
        torrent.add_candidates([*fetch.magnet.peers, *peers], PeerSource.MAGNET)

    def _stop(self, fetch: MetadataFetch) -> Deferred[Any]:
        stopped: Deferred[Any] = Deferred()
        stopping = fetch.disownServiceParent()
        if isinstance(stopping, Deferred):
            stopping.addErrback(
                lambda failure: self.log.failure("stopping {name}", failure, name=fetch.name)
            )
            stopping.chainDeferred(stopped)
        else:
            stopped.callback(None)
        return stopped

    def remove(self, info_hash: bytes) -> Deferred[Any]:
        """Stop fetching and forget the magnet (its record and link in the state folder)."""
        fetch = self.fetches.pop(info_hash)
        self._records.pop(info_hash, None)
        stopped = self._stop(fetch)
        if info_hash in self._remembered:
            self._remembered.discard(info_hash)
            memory = self._session.memory
            stopped.addCallback(lambda _: memory.serially(memory.registry.forget, info_hash))
        return stopped.addCallback(lambda _: None)

    def record(self, info_hash: bytes) -> TorrentRecord:
        """A fetching magnet's settings (changed in place, then :meth:`save_record`)."""
        fetch = self.fetches.find(info_hash)
        if fetch is None:
            raise UnknownTorrentError(f"no torrent with info-hash {info_hash.hex()}")
        return self._records[fetch.magnet.key]

    def save_record(self, info_hash: bytes) -> Deferred[Any]:
        """Write a remembered magnet's record (after :meth:`record` changed it)."""
        fetch = self.fetches.find(info_hash)
        key = fetch.magnet.key if fetch is not None else info_hash
        if key not in self._remembered:
            return defer.succeed(None)
        memory = self._session.memory
        return memory.serially(memory.registry.save, key, self._records[key])

    def set_download_dir(self, info_hash: bytes, folder: Path) -> Deferred[Any]:
        """A magnet has no data yet: moving it only changes where its files will go."""
        self.record(info_hash).download_dir = str(folder)
        return self.save_record(info_hash)

    def unknown(self, info_hash: bytes) -> UnknownTorrentError:
        """Why the session has no torrent ``info_hash`` to change: none, or not yet one."""
        fetch = self.fetches.get(info_hash)
        if fetch is None:
            return UnknownTorrentError(f"no torrent with info-hash {info_hash.hex()}")
        return UnknownTorrentError(
            f"{fetch.name}: still fetching its metadata; it can be removed, not changed yet"
        )

    def listening(self, port: int) -> None:
        for fetch in self.fetches.values():
            fetch.port = port

    def status(self, info_hash: bytes) -> TorrentStatus:
        fetch = self.fetches[info_hash]
        record = self._records[info_hash]
        return TorrentStatus(
            info_hash=info_hash.hex(),
            name=fetch.name,
            state=MagnetState.FETCHING_METADATA,
            error=None,
            size=0,
            wanted=0,
            done=0,
            progress=0.0,
            pieces=0,
            pieces_have=0,
            piece_length=0,
            download_rate=0.0,
            upload_rate=0.0,
            downloaded=0,
            uploaded=0,
            ratio=0.0,
            peers=len(fetch.peers),
            seeds=0,
            eta=None,
            hash_failures=0,
            tracker_errors=fetch.tracker_errors,
            upload_limit=None,
            download_limit=None,
            download_dir=record.download_dir or str(self._session.config.download_dir),
            private=False,
            files=(),
            peers_tried=len(fetch.tried),
            dht_peers=dht_peers(fetch.sources.sources),
            info_hash_v1=fetch.magnet.info_hash.hex() if fetch.magnet.info_hash else None,
            info_hash_v2=fetch.magnet.info_hash_v2.hex() if fetch.magnet.info_hash_v2 else None,
        )

    def statuses(self) -> list[TorrentStatus]:
        return [self.status(info_hash) for info_hash in self.fetches]
