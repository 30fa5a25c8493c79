"""torrent-get's fields: each Transmission field name computed from bt's snapshot.

Pure mapping from a :class:`TorrentView` (bt's :class:`~bt.status.TorrentStatus`,
the :class:`~bt.control.transmission.live.Details` and the RPC's id) to
Transmission's values. Real Transmission answers integers for sizes, rates,
dates and ``percentDone`` when it is whole, and clients type-check them, so
every size and rate here is an ``int``. Speed fields are in kB/s of 1000
bytes; ``-1`` and ``-2`` are Transmission's "not available" / "unknown".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bt.control.transmission.live import Details
from bt.status import FilePriority, FileStatus, TorrentStatus

__all__ = ["FIELDS", "NEEDS_FILES", "NEEDS_PEERS", "STATUS", "TorrentView", "get_fields"]

#: Transmission's status codes (tr_torrent_activity).
STOPPED, CHECK_WAIT, CHECK, DOWNLOAD_WAIT, DOWNLOAD, SEED_WAIT, SEED = range(7)
STATUS = {
    "checking": CHECK,
    "downloading": DOWNLOAD,
    "fetching metadata": DOWNLOAD,
    "seeding": SEED,
    "finished": STOPPED,
    "paused": STOPPED,
    "error": STOPPED,
    "stopped": STOPPED,
}
ETA_NOT_AVAILABLE, ETA_UNKNOWN = -1, -2
#: Transmission's error codes: none, tracker warning, tracker error, local error.
ERROR_NONE, ERROR_LOCAL = 0, 3


@dataclass(frozen=True)
class TorrentView:
    id: int
    status: TorrentStatus
    details: Details
    now: float
    #: The session's seed ratio (``--seed-ratio``) and peers per torrent.
    session_seed_ratio: float | None = None
    max_peers: int = 50
    queue_position: int = 0


def _kb(rate: float | None) -> int:
    return 0 if rate is None else int(rate // 1000)


def _whole(value: float) -> int | float:
    """``1`` and ``0`` as integers (clients compare them with ``==``), fractions as floats."""
    return int(value) if value in (0, 1) else value


def _files(view: TorrentView) -> Sequence[FileStatus]:
    return view.status.files


def _file_priority(priority: FilePriority) -> int:
    return 1 if priority is FilePriority.HIGH else 0


def _active(view: TorrentView) -> bool:
    s = view.status
    return s.download_rate > 0 or s.upload_rate > 0 or str(s.state) == "checking"


def _seed_ratio_mode(view: TorrentView) -> int:
    """0: the session's ratio, 1: the torrent's own, 2: unlimited."""
    return view.details.ratio_mode


def _seed_ratio_limit(view: TorrentView) -> float:
    """The torrent's own ratio, else the session's (2, as Transmission's default, when
    neither has one: the mode then says which applies)."""
    for ratio in (view.details.seed_ratio, view.session_seed_ratio):
        if ratio is not None:
            return _whole(ratio)
    return 2


def _eta(view: TorrentView) -> int:
    s = view.status
    if s.wanted - s.done <= 0:
        return ETA_NOT_AVAILABLE
    return ETA_UNKNOWN if s.eta is None else int(s.eta)


def _tracker_host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.port else url


def _site(url: str) -> str:
    host = urlsplit(url).hostname or ""
    pieces = host.split(".")
    return pieces[-2] if len(pieces) >= 2 and not host.replace(".", "").isdigit() else host


def _trackers(view: TorrentView) -> list[dict[str, Any]]:
    return [
        {
            "announce": t.url,
            "id": number,
            "scrape": t.url.replace("/announce", "/scrape") if "/announce" in t.url else "",
            "sitename": _site(t.url),
            "tier": t.tier,
        }
        for number, t in enumerate(view.details.trackers)
    ]


def _tracker_stats(view: TorrentView) -> list[dict[str, Any]]:
    stats = []
    for entry in _trackers(view):
        tracker = view.details.trackers[entry["id"]]
        announced = tracker.last_announce
        stats.append(
            {
                **entry,
                "announceState": 0,
                "downloadCount": -1,
                "hasAnnounced": announced is not None,
                "hasScraped": False,
                "host": _tracker_host(tracker.url),
                "isBackup": False,
                "lastAnnouncePeerCount": 0,
                "lastAnnounceResult": f"{tracker.errors} failed" if tracker.errors else "",
                "lastAnnounceStartTime": int(announced or 0),
                "lastAnnounceSucceeded": tracker.errors == 0,
                "lastAnnounceTime": int(announced or 0),
                "lastAnnounceTimedOut": False,
                "lastScrapeResult": "",
                "lastScrapeStartTime": 0,
                "lastScrapeSucceeded": False,
                "lastScrapeTime": 0,
                "lastScrapeTimedOut": False,
                "leecherCount": -1,
                "nextAnnounceTime": 0,
                "nextScrapeTime": 0,
                "scrapeState": 0,
                "seederCount": -1,
            }
        )
    return stats


def _peers(view: TorrentView) -> list[dict[str, Any]]:
    result = []
    for p in view.details.peers:
        downloading = p.rate_to_us > 0
        uploading = p.rate_to_peer > 0
        flags = ("D" if downloading else "") + ("U" if uploading else "")
        flags += "I" if p.incoming else ""
        result.append(
            {
                "address": p.address,
                "clientIsChoked": p.peer_choking,
                "clientIsInterested": p.am_interested,
                "clientName": p.client,
                "flagStr": flags,
                "isDownloadingFrom": downloading,
                "isEncrypted": False,
                "isIncoming": p.incoming,
                "isUTP": False,
                "isUploadingTo": uploading,
                "peerIsChoked": p.am_choking,
                "peerIsInterested": p.peer_interested,
                "port": p.port,
                "progress": _whole(p.progress),
                "rateToClient": int(p.rate_to_us),
                "rateToPeer": int(p.rate_to_peer),
            }
        )
    return result


def _peers_from(view: TorrentView) -> dict[str, int]:
    counts = {
        key: 0
        for key in (
            "fromCache",
            "fromDht",
            "fromIncoming",
            "fromLpd",
            "fromLtep",
            "fromPex",
            "fromTracker",
        )
    }
    for p in view.details.peers:
        counts["fromIncoming" if p.incoming else "fromTracker"] += 1
    return counts


def _sending_to_us(view: TorrentView) -> int:
    if view.details.peers:
        return sum(1 for p in view.details.peers if p.rate_to_us > 0)
    return view.status.seeds if view.status.download_rate > 0 else 0


def _getting_from_us(view: TorrentView) -> int:
    return sum(1 for p in view.details.peers if p.rate_to_peer > 0)


def _left(view: TorrentView) -> int:
    return max(0, view.status.wanted - view.status.done)


def _seconds_seeding(view: TorrentView) -> int:
    since = view.details.seeding_since
    return int(view.now - since) if since is not None else 0


Field = Callable[[TorrentView], Any]

FIELDS: dict[str, Field] = {
    "activityDate": lambda v: int(v.now) if _active(v) else int(v.details.added),
    "addedDate": lambda v: int(v.details.added),
    "bandwidthPriority": lambda v: 0,
    "comment": lambda v: v.details.comment,
    "corruptEver": lambda v: v.status.hash_failures * v.status.piece_length,
    "creator": lambda v: v.details.creator,
    "dateCreated": lambda v: v.details.created,
    "desiredAvailable": lambda v: _left(v) if v.status.seeds else 0,
    "doneDate": lambda v: int(v.details.seeding_since or 0),
    "downloadDir": lambda v: v.status.download_dir,
    "downloadedEver": lambda v: v.status.downloaded,
    "downloadLimit": lambda v: _kb(v.status.download_limit),
    "downloadLimited": lambda v: v.status.download_limit is not None,
    "editDate": lambda v: 0,
    "error": lambda v: ERROR_LOCAL if v.status.error else ERROR_NONE,
    "errorString": lambda v: v.status.error or "",
    "eta": _eta,
    "etaIdle": lambda v: ETA_NOT_AVAILABLE,
    "file-count": lambda v: len(_files(v)),
    "files": lambda v: [
        {"bytesCompleted": f.done, "length": f.size, "name": f.path} for f in _files(v)
    ],
    "fileStats": lambda v: [
        {
            "bytesCompleted": f.done,
            "wanted": f.priority is not FilePriority.SKIP,
            "priority": _file_priority(f.priority),
        }
        for f in _files(v)
    ],
    "group": lambda v: "",
    "hashString": lambda v: v.status.info_hash,
    "haveUnchecked": lambda v: 0,
    "haveValid": lambda v: v.status.done,
    "honorsSessionLimits": lambda v: True,
    "id": lambda v: v.id,
    "isFinished": lambda v: str(v.status.state) == "finished",
    "isPrivate": lambda v: v.status.private,
    "isStalled": lambda v: False,
    "labels": lambda v: list(v.details.labels),
    "leftUntilDone": _left,
    "magnetLink": lambda v: v.details.magnet,
    "manualAnnounceTime": lambda v: -1,
    "maxConnectedPeers": lambda v: v.max_peers,
    "metadataPercentComplete": lambda v: 0 if str(v.status.state) == "fetching metadata" else 1,
    "name": lambda v: v.status.name,
    "peer-limit": lambda v: v.max_peers,
    "peers": _peers,
    "peersConnected": lambda v: v.status.peers,
    "peersFrom": _peers_from,
    "peersGettingFromUs": _getting_from_us,
    "peersSendingToUs": _sending_to_us,
    "percentComplete": lambda v: _whole(v.status.done / v.status.size if v.status.size else 0),
    "percentDone": lambda v: _whole(v.status.progress),
    "pieceCount": lambda v: v.status.pieces,
    "pieceSize": lambda v: v.status.piece_length,
    "pieces": lambda v: v.details.pieces,
    "primary-mime-type": lambda v: "application/octet-stream",
    "priorities": lambda v: [_file_priority(f.priority) for f in _files(v)],
    "queuePosition": lambda v: v.queue_position,
    "rateDownload": lambda v: int(v.status.download_rate),
    "rateUpload": lambda v: int(v.status.upload_rate),
    "recheckProgress": lambda v: 0,
    "secondsDownloading": lambda v: 0,
    "secondsSeeding": _seconds_seeding,
    "seedIdleLimit": lambda v: 0,
    "seedIdleMode": lambda v: 0,
    "seedRatioLimit": _seed_ratio_limit,
    "seedRatioMode": _seed_ratio_mode,
    "sequentialDownload": lambda v: False,
    "sizeWhenDone": lambda v: v.status.wanted,
    "startDate": lambda v: int(v.details.added),
    "status": lambda v: STATUS.get(str(v.status.state), STOPPED),
    "torrentFile": lambda v: "",
    "totalSize": lambda v: v.status.size,
    "trackerList": lambda v: "\n\n".join(
        "\n".join(t.url for t in v.details.trackers if t.tier == tier)
        for tier in sorted({t.tier for t in v.details.trackers})
    ),
    "trackerStats": _tracker_stats,
    "trackers": _trackers,
    "uploadLimit": lambda v: _kb(v.status.upload_limit),
    "uploadLimited": lambda v: v.status.upload_limit is not None,
    "uploadRatio": lambda v: round(v.status.ratio, 4),
    "uploadedEver": lambda v: v.status.uploaded,
    "wanted": lambda v: [int(f.priority is not FilePriority.SKIP) for f in _files(v)],
    "webseeds": lambda v: list(v.details.webseeds),
    "webseedsSendingToUs": lambda v: 0,
}

#: Fields that need each torrent's files (a per-torrent status) or its live peers.
NEEDS_FILES = frozenset({"file-count", "files", "fileStats", "priorities", "wanted"})
NEEDS_PEERS = frozenset({"peers", "peersFrom", "peersGettingFromUs", "peersSendingToUs"})


def get_fields(view: TorrentView, names: Sequence[str]) -> dict[str, Any]:
    """The asked-for fields Transmission knows and bt can answer; others are left out."""
    return {name: FIELDS[name](view) for name in names if name in FIELDS}
