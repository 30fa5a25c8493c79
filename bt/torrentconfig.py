"""A torrent's knobs and what the session's torrents share: plain values, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field

from bt.candidates import Address
from bt.policy.ratelimit import TokenBucket
from bt.policy.slots import ConnectionSlots
from bt.storage.readcache import ReadCachePool

__all__ = ["SharedLimits", "TorrentConfig"]


@dataclass(frozen=True)
class TorrentConfig:
    """Per-torrent knobs; the defaults are what a user gets without options."""

    max_peers: int = 50
    connect_timeout: float = 15.0
    progress_interval: float = 5.0
    seed_progress_interval: float = 60.0
    #: Failed pieces a peer may be the only source of before it is banned.
    ban_strikes: int = 2
    disk_threads: int = 2
    #: Bytes of verified-but-unwritten pieces the disk queue may hold before peers are
    #: paused. In bytes, not pieces, so memory does not grow with the piece size.
    disk_queue_bytes: int = 32 * 1024 * 1024

    def disk_high_water(self, piece_length: int) -> int:
        """The disk queue's bound in pieces for this piece length (at least 4)."""
        return max(4, self.disk_queue_bytes // piece_length)

    #: Regular unchoke slots (plus one optimistic); -1 means unlimited.
    upload_slots: int = 4
    #: This torrent's own rate limits in bytes/s (None: unlimited).
    upload_limit: float | None = None
    download_limit: float | None = None
    #: Stop seeding once uploaded/size reaches this ratio, or after this many seconds.
    seed_ratio: float | None = None
    seed_time: float | None = None

    def seed_goal_reached(
        self, uploaded: int, size: int, since: float | None, now: float
    ) -> str | None:
        """Why seeding is over (the ratio reached, the time served), or None."""
        ratio, seconds = self.seed_ratio, self.seed_time
        if ratio is not None and uploaded >= ratio * size:
            return f"seed ratio {ratio:g} reached"
        if seconds is not None and since is not None and now - since >= seconds:
            return f"seeded for {seconds:g} s"
        return None

    def seed_deadline(self, since: float | None) -> float | None:
        """When the seeding time runs out (None: no such goal, or not seeding)."""
        return None if since is None or self.seed_time is None else since + self.seed_time

    #: Seconds between resume-state saves while pieces complete (also saved on stop).
    resume_interval: float = 5.0
    #: Seconds after a disk error before the data is checked again and the torrent resumes.
    error_retry: float = 60.0


@dataclass
class SharedLimits:
    """What every torrent of a session draws from: global rate buckets and connection slots
    (and the session's own addresses, once a tracker handed one to some torrent)."""

    upload: TokenBucket
    download: TokenBucket
    connections: ConnectionSlots
    own_addresses: set[Address] = field(default_factory=set)
    #: The byte budget of seeding reads held in memory (None: a torrent's own).
    read_cache: ReadCachePool | None = None

    @classmethod
    def unlimited(cls, now: float) -> SharedLimits:
        return cls(TokenBucket(None, now), TokenBucket(None, now), ConnectionSlots(None))
