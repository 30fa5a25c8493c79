"""session-get, session-set and session-stats: bt's session in Transmission's names.

session-set changes what bt can change (the global rate limits, and their
``-enabled`` flags); a key bt has no such setting for is accepted when it
asks for what bt already does (so a client writing back the whole
session-get answer works) and refused, naming it, when it asks for more.
Speeds are in kB/s of 1000 bytes, as ``units`` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bt import __version__
from bt.control.transmission.errors import RpcError
from bt.sessionprefs import session_seed_ratio
from bt.status import SessionStatus

__all__ = [
    "RPC_VERSION",
    "RPC_VERSION_MINIMUM",
    "SessionFacts",
    "refused_keys",
    "session_fields",
    "stats",
]

#: The RPC version spoken (Transmission 4.0's), and the oldest clients it serves.
RPC_VERSION = 17
RPC_VERSION_MINIMUM = 14
RPC_VERSION_SEMVER = "5.3.0"
#: Transmission clients read this to tell a 3.00 from a 4.0 daemon.
VERSION = f"3.00 (bt {__version__})"
UNITS = {
    "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
    "speed-bytes": 1000,
    "size-units": ["kB", "MB", "GB", "TB"],
    "size-bytes": 1000,
    "memory-units": ["KiB", "MiB", "GiB", "TiB"],
    "memory-bytes": 1024,
}


@dataclass(frozen=True)
class SessionFacts:
    """The session's settings that its status does not carry (from its SessionConfig)."""

    download_dir: str = ""
    config_dir: str = ""
    seed_ratio: float | None = None
    #: The seed ratio kept while the limit is off (session-set), shown as seedRatioLimit.
    kept_seed_ratio: float | None = None
    seed_time: float | None = None
    max_connections: int | None = None
    max_peers: int = 50

    @classmethod
    def of(cls, session: Any) -> SessionFacts:
        config = getattr(session, "config", None)
        torrent = getattr(config, "torrent", None)
        if config is None or torrent is None:
            return cls()
        return cls(
            download_dir=str(Path(config.download_dir)),
            config_dir=str(Path(config.state_dir)),
            seed_ratio=torrent.seed_ratio,
            kept_seed_ratio=session_seed_ratio(session) if hasattr(session, "memory") else None,
            seed_time=torrent.seed_time,
            max_connections=config.max_connections,
            max_peers=torrent.max_peers,
        )


def _kb(rate: float | None) -> int:
    return 0 if rate is None else int(rate // 1000)


def session_fields(
    status: SessionStatus,
    facts: SessionFacts,
    session_id: str,
    free: int | None,
    kept: Mapping[str, float] | None = None,
    start_added: bool = True,
) -> dict[str, Any]:
    """Every session-get key, with bt's values."""
    kept = kept or {}
    idle_minutes = int(facts.seed_time // 60) if facts.seed_time is not None else 30
    fields: dict[str, Any] = {
        "alt-speed-down": 50,
        "alt-speed-enabled": False,
        "alt-speed-time-begin": 540,
        "alt-speed-time-day": 127,
        "alt-speed-time-enabled": False,
        "alt-speed-time-end": 1020,
        "alt-speed-up": 50,
        "blocklist-enabled": False,
        "blocklist-size": 0,
        "blocklist-url": "",
        "cache-size-mb": 32,
        "config-dir": facts.config_dir,
        "default-trackers": "",
        "dht-enabled": status.dht_nodes is not None,
        "download-dir": facts.download_dir,
        "download-queue-enabled": False,
        "download-queue-size": 0,
        "encryption": "tolerated",
        "idle-seeding-limit": idle_minutes,
        "idle-seeding-limit-enabled": facts.seed_time is not None,
        "incomplete-dir": facts.download_dir,
        "incomplete-dir-enabled": False,
        "lpd-enabled": False,
        "peer-limit-global": facts.max_connections or 0,
        "peer-limit-per-torrent": facts.max_peers,
        "peer-port": status.listen_port,
        "peer-port-random-on-start": False,
        "pex-enabled": True,
        "port-forwarding-enabled": False,
        "queue-stalled-enabled": False,
        "queue-stalled-minutes": 30,
        "rename-partial-files": False,
        "rpc-version": RPC_VERSION,
        "rpc-version-minimum": RPC_VERSION_MINIMUM,
        "rpc-version-semver": RPC_VERSION_SEMVER,
        "script-torrent-added-enabled": False,
        "script-torrent-added-filename": "",
        "script-torrent-done-enabled": False,
        "script-torrent-done-filename": "",
        "script-torrent-done-seeding-enabled": False,
        "script-torrent-done-seeding-filename": "",
        "seed-queue-enabled": False,
        "seed-queue-size": 0,
        "seedRatioLimit": next(
            (r for r in (facts.seed_ratio, facts.kept_seed_ratio) if r is not None), 2
        ),
        "seedRatioLimited": facts.seed_ratio is not None,
        "session-id": session_id,
        "speed-limit-down": _kb(status.download_limit) or int(kept.get("download", 100)),
        "speed-limit-down-enabled": status.download_limit is not None,
        "speed-limit-up": _kb(status.upload_limit) or int(kept.get("upload", 100)),
        "speed-limit-up-enabled": status.upload_limit is not None,
        "start-added-torrents": start_added,
        "trash-original-torrent-files": False,
        "units": UNITS,
        "utp-enabled": False,
        "version": VERSION,
    }
    if free is not None:
        fields["download-dir-free-space"] = free
    return fields


SETTABLE = frozenset(
    {
        "speed-limit-down",
        "speed-limit-down-enabled",
        "speed-limit-up",
        "speed-limit-up-enabled",
        "start-added-torrents",
        "download-dir",
        "seedRatioLimit",
        "seedRatioLimited",
    }
)


def refused_keys(arguments: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """RpcError naming the keys that ask bt for a setting it does not have."""
    refused = sorted(
        key
        for key, value in arguments.items()
        if key not in SETTABLE and key in current and value != current[key]
    )
    if refused:
        raise RpcError(
            "bt cannot change "
            + ", ".join(f"{key} (it is {current[key]!r:.40})" for key in refused)
            + "; the speed limits, download-dir, seedRatioLimit(ed) and start-added-torrents "
            "are what this RPC can set"
        )


def stats(
    status: SessionStatus,
    torrents: int,
    active: int,
    paused: int,
    seconds_active: int,
    lifetime: tuple[int, int],
) -> dict[str, Any]:
    """``current-stats`` are this process's; ``cumulative-stats`` the torrents' whole lives."""
    current = {
        "uploadedBytes": status.uploaded,
        "downloadedBytes": status.downloaded,
        "filesAdded": 0,
        "sessionCount": 1,
        "secondsActive": seconds_active,
    }
    cumulative = {**current, "downloadedBytes": lifetime[0], "uploadedBytes": lifetime[1]}
    return {
        "activeTorrentCount": active,
        "downloadSpeed": int(status.download_rate),
        "pausedTorrentCount": paused,
        "torrentCount": torrents,
        "uploadSpeed": int(status.upload_rate),
        "cumulative-stats": cumulative,
        "current-stats": current,
    }
