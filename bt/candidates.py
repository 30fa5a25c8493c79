"""Candidate peers: addresses we know but are not connected to, and when to try them.

Pure policy (no Twisted): the torrent asks for addresses to dial and reports
what happened; failures back off exponentially and banned addresses are never
offered again. Each source but the trackers has its own bound on what it may
put in the pool (:data:`SOURCE_LIMITS`), so a flood from one peer exchange,
say, cannot push out the addresses the trackers gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

Address = tuple[str, int]


class PeerSource(StrEnum):
    """Where a candidate address came from; private torrents accept only TRACKER."""

    TRACKER = "tracker"
    PEX = "pex"
    DHT = "dht"
    LSD = "lsd"
    #: A magnet link's ``x.pe`` peers, and the peers a magnet's metadata came from.
    MAGNET = "magnet"


#: Seconds before retrying an address after its first failure; doubles per failure.
RETRY_BASE = 10.0
RETRY_CAP = 600.0
#: After this many failures in a row an address is forgotten.
MAX_FAILURES = 6
#: Candidates a source may hold in the pool at once; trackers have only the pool's limit.
SOURCE_LIMITS: dict[str, int] = {PeerSource.PEX: 300}


@dataclass(slots=True)
class _Candidate:
    failures: int = 0
    retry_at: float = 0.0
    busy: bool = False  # connecting or connected
    seed: bool = False  # had every piece when last connected
    source: str = PeerSource.TRACKER  # who told us first


class CandidatePool:
    """Known peer addresses with their retry schedule; at most ``limit`` remembered."""

    def __init__(self, limit: int = 2000, source_limits: dict[str, int] | None = None) -> None:
        self.limit = limit
        self.source_limits = SOURCE_LIMITS if source_limits is None else source_limits
        self._known: dict[Address, _Candidate] = {}
        self._banned: set[Address] = set()
        self._by_source: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._known)

    def count(self, source: str) -> int:
        """Candidates in the pool that ``source`` told us of first."""
        return self._by_source.get(source, 0)

    def add(self, address: Address, source: str = PeerSource.TRACKER) -> bool:
        """Remember ``address`` (a host and port: peers sharing an IP are distinct);
        False if it is banned, known already, or the pool or its source's share is full."""
        if address in self._banned or address in self._known or len(self._known) >= self.limit:
            return False
        held = self._by_source.get(source, 0)
        if held >= self.source_limits.get(source, self.limit):
            return False
        self._known[address] = _Candidate(source=source)
        self._by_source[source] = held + 1
        return True

    def _forget(self, address: Address) -> None:
        candidate = self._known.pop(address, None)
        if candidate is not None:
            self._by_source[candidate.source] -= 1

    def take(self, now: float, count: int, *, skip_seeds: bool = False) -> list[Address]:
        """Up to ``count`` addresses due for a connection attempt, now marked busy.

        With ``skip_seeds`` (we are a seed too) addresses known as seeds are left
        alone: both sides would only hang up, as libtorrent's peer list knows.
        """
        chosen: list[Address] = []
        if count <= 0:
            return chosen
        for address, candidate in self._known.items():
            if skip_seeds and candidate.seed:
                continue
            if not candidate.busy and candidate.retry_at <= now:
                candidate.busy = True
                chosen.append(address)
                if len(chosen) >= count:
                    break
        return chosen

    def connected(self, address: Address) -> None:
        """A handshake completed: the address is good; reset its failures."""
        candidate = self._known.get(address)
        if candidate is not None:
            candidate.failures = 0
            candidate.busy = True

    def failed(self, address: Address, now: float) -> None:
        """A connection attempt failed, or a connection ended: retry later, with backoff."""
        candidate = self._known.get(address)
        if candidate is None:
            return
        candidate.busy = False
        candidate.failures += 1
        if candidate.failures >= MAX_FAILURES:
            self._forget(address)
            return
        delay = min(RETRY_CAP, RETRY_BASE * 2 ** (candidate.failures - 1))
        candidate.retry_at = now + delay

    def mark_seed(self, address: Address) -> None:
        """The peer at ``address`` had every piece (a tracker's compact list cannot say)."""
        candidate = self._known.get(address)
        if candidate is not None:
            candidate.seed = True

    def ban(self, address: Address) -> None:
        self._banned.add(address)
        self._forget(address)

    def is_banned(self, address: Address) -> bool:
        return address in self._banned
