"""Snapshots of a torrent's and a session's state, as plain values.

The control API, the CLI, the metrics endpoint and embedding programs all read
these instead of reaching into live objects, so what they show is one
consistent picture taken at one moment. ``to_json`` gives the API's shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from bt.lifecycle import TorrentState
from bt.policy.priority import Priority

__all__ = [
    "UNCHANGED",
    "FilePriority",
    "FileStatus",
    "MagnetState",
    "PeerStatus",
    "SessionStatus",
    "TorrentState",
    "TorrentStatus",
    "TrackerStatus",
]


class _Unchanged:
    """Marks a setting the caller did not give (None already means "unlimited")."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


class FilePriority(StrEnum):
    """A file's download priority, as users of other clients know it."""

    SKIP = "skip"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def piece_priority(self) -> Priority:
        """This level on the one scale of files and pieces (bt.policy.priority)."""
        return Priority[self.name]


class MagnetState(StrEnum):
    """The state of a magnet before its metadata: not yet a torrent with a lifecycle."""

    FETCHING_METADATA = "fetching metadata"


@dataclass(frozen=True, slots=True)
class FileStatus:
    index: int
    #: Path relative to the download folder, with ``/`` separators.
    path: str
    size: int
    priority: FilePriority
    #: Bytes of this file inside verified pieces.
    done: int


@dataclass(frozen=True, slots=True)
class TorrentStatus:
    info_hash: str
    """Hex, lower case: the id every API call and CLI command uses."""
    name: str
    state: TorrentState | MagnetState
    #: What put the torrent into ``error``, or data damaged under it while pieces of it
    #: are still missing (bt.storage.damage); None otherwise.
    error: str | None
    size: int
    #: Bytes of the files not skipped; progress and ETA are about these.
    wanted: int
    #: Verified bytes of ``wanted``.
    done: int
    #: done / wanted, 0.0 .. 1.0 (1.0 when nothing is wanted).
    progress: float
    pieces: int
    pieces_have: int
    piece_length: int
    #: Payload bytes per second, smoothed over a few seconds.
    download_rate: float
    upload_rate: float
    #: Payload bytes over the torrent's whole life (kept in the resume state).
    downloaded: int
    uploaded: int
    #: uploaded / size, the ratio ``--seed-ratio`` compares against.
    ratio: float
    peers: int
    seeds: int
    #: Seconds until ``wanted`` is done at the current rate; None when unknown or done.
    eta: float | None
    hash_failures: int
    tracker_errors: int
    #: This torrent's own limits in bytes/s (None: unlimited).
    upload_limit: float | None
    download_limit: float | None
    download_dir: str
    private: bool
    files: tuple[FileStatus, ...]
    #: A magnet fetching its metadata: the peers it talked to so far.
    peers_tried: int = 0
    #: Peers the DHT found for this torrent (BEP 5); 0 without a DHT or when private.
    dht_peers: int = 0
    #: "v1", "v2" or "hybrid" (BEP 52); None for a magnet still fetching its metadata.
    format: str | None = None
    #: Hex: the SHA-1 info-hash (None for v2-only) and the full SHA-256 one (None for
    #: v1). ``info_hash`` is the first for v1 and hybrid, the v2 one's first 20 bytes
    #: for v2-only. A magnet shows the hashes its link gave.
    info_hash_v1: str | None = None
    info_hash_v2: str | None = None

    def to_json(self, *, files: bool = True) -> dict[str, Any]:
        """The API's JSON object (``files`` left out of listings of many torrents).

        Field by field rather than ``asdict``, which deep-copies every value: a
        third of the time of a 10,000-torrent listing (the values are immutable).
        """
        data = {name: getattr(self, name) for name in _TORRENT_FIELDS}
        data["state"] = str(self.state)
        if files:
            data["files"] = [{**asdict(f), "priority": str(f.priority)} for f in self.files]
        else:
            del data["files"]
        return data


_TORRENT_FIELDS = tuple(f.name for f in fields(TorrentStatus))


@dataclass(frozen=True, slots=True)
class SessionStatus:
    version: str
    torrents: int
    peers: int
    download_rate: float
    upload_rate: float
    downloaded: int
    uploaded: int
    #: Global limits in bytes/s (None: unlimited).
    upload_limit: float | None
    download_limit: float | None
    #: The port peers reach us on.
    listen_port: int
    #: The DHT (BEP 5): nodes in its routing table, lookups and announce_peers sent;
    #: None when the session runs no DHT (``--no-dht``).
    dht_nodes: int | None = None
    dht_lookups: int | None = None
    dht_announces: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One connected peer of a torrent, as the web page's peer list shows it."""

    #: ``host:port`` (``[v6]:port``).
    address: str
    #: The client as its peer id names it (``-lt2010-``), escaped; "" when unknown.
    client: str
    #: Whether we dialled it (else it dialled us).
    outgoing: bool
    #: Its share of the torrent's pieces, 0.0 .. 1.0.
    progress: float
    download_rate: float
    upload_rate: float
    am_choking: bool
    am_interested: bool
    peer_choking: bool
    peer_interested: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """One tracker (a BEP 12 tier: the tracker it tries first) of a torrent."""

    url: str
    #: Failed announces over the torrent's life in this process.
    errors: int
    #: Failed announces in a row now (0: the last one worked).
    failures: int
    #: Seconds since the last successful announce; None before the first.
    last_announce_ago: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
