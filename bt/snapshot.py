"""Take a :class:`~bt.status.TorrentStatus` of a live torrent.

Kept out of torrent.py: reading state for people is not the torrent's job,
and the per-file arithmetic is only done when files are asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bt.candidates import PeerSource
from bt.priorities import file_done_bytes
from bt.progress import eta
from bt.status import FileStatus, PeerStatus, TorrentState, TorrentStatus, TrackerStatus
from bt.tracker.announcer import tracker_name
from bt.untrusted import shown

if TYPE_CHECKING:
    from bt.torrent import Torrent

__all__ = ["peer_statuses", "torrent_status", "tracker_statuses"]


def torrent_status(torrent: Torrent, *, files: bool = True) -> TorrentStatus:
    metainfo = torrent.metainfo
    picker = torrent.picker
    size = metainfo.total_length
    left = torrent.bytes_left
    # As Transmission's "size when done": what will be on disk once every wanted piece is.
    done = _have_bytes(torrent)
    wanted = done + left
    file_statuses: tuple[FileStatus, ...] = ()
    if files:
        done_per_file = file_done_bytes(torrent.layout, picker.has)
        file_statuses = tuple(
            FileStatus(
                index=index,
                path="/".join(entry.path),
                size=entry.length,
                priority=torrent.file_priorities[index],
                done=done_per_file[index],
            )
            for index, entry in enumerate(metainfo.files)
            if not entry.padding
        )
    down, up = torrent.download_rate, torrent.upload_rate
    return TorrentStatus(
        info_hash=metainfo.info_hash.hex(),
        name=metainfo.name,
        state=TorrentState(torrent.state),
        error=torrent.error if torrent.error is not None else torrent.repair.error,
        size=size,
        wanted=wanted,
        done=done,
        progress=done / wanted if wanted else 1.0,
        pieces=metainfo.num_pieces,
        pieces_have=picker.have_count,
        piece_length=metainfo.piece_length,
        download_rate=down.rate if torrent.links else 0.0,
        upload_rate=up.rate if torrent.links else 0.0,
        downloaded=down.total,
        uploaded=up.total,
        ratio=up.total / size,
        peers=len(torrent.links),
        seeds=sum(1 for link in torrent.links if link.bitfield.is_complete()),
        eta=eta(left, down.rate) if left and torrent.state == "downloading" else None,
        hash_failures=torrent.hash_failures,
        tracker_errors=sum(a.errors for a in torrent.announcers),
        upload_limit=torrent.upload_bucket.rate,
        download_limit=torrent.download_bucket.rate,
        download_dir=torrent.download_dir,
        private=metainfo.private,
        files=file_statuses,
        dht_peers=dht_peers(torrent.sources.sources),
        format=metainfo.format,
        info_hash_v1=_hex(metainfo.info_hash_v1),
        info_hash_v2=_hex(metainfo.info_hash_v2),
    )


def _hex(digest: bytes | None) -> str | None:
    return None if digest is None else digest.hex()


def _have_bytes(torrent: Torrent) -> int:
    """Bytes in verified pieces (the last piece may be short)."""
    geometry, picker = torrent.metainfo.geometry, torrent.picker
    return geometry.bytes_in_count(picker.have_count, includes_last=picker.has(geometry.last_piece))


def dht_peers(sources: Iterable[Any]) -> int:
    """Peers found by the DHT source among a torrent's (or magnet's) peer sources."""
    return sum(getattr(s, "peers_found", 0) for s in sources if s.tag == PeerSource.DHT)


def peer_statuses(torrent: Torrent) -> list[PeerStatus]:
    """The torrent's connected peers, in the order they connected."""
    pieces = torrent.metainfo.num_pieces
    statuses = []
    for link in torrent.links:
        host, port = link.address[0], link.address[1]
        connection = link.protocol.connection
        peer_id = link.protocol.peer_id
        statuses.append(
            PeerStatus(
                address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                client=_client(peer_id),
                outgoing=link.outgoing,
                progress=link.bitfield.count() / pieces if pieces else 1.0,
                download_rate=link.download_meter.rate,
                upload_rate=link.upload_meter.rate,
                am_choking=connection.am_choking,
                am_interested=connection.am_interested,
                peer_choking=connection.peer_choking,
                peer_interested=connection.peer_interested,
            )
        )
    return statuses


def tracker_statuses(torrent: Torrent, now: float) -> list[TrackerStatus]:
    """The torrent's trackers (one per BEP 12 tier), as the announcers know them."""
    return [
        TrackerStatus(
            url=tracker_name(announcer.tracker),
            errors=announcer.errors,
            failures=announcer.failures,
            last_announce_ago=(
                None if announcer.last_announce is None else now - announcer.last_announce
            ),
        )
        for announcer in torrent.announcers
    ]


def _client(peer_id: bytes | None) -> str:
    """The peer id's first 8 bytes (Azureus-style ``-lt2010-``), escaped; "" when unknown."""
    return shown(peer_id[:8], 16) if peer_id else ""
