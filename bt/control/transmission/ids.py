"""Transmission's integer torrent ids: stable for the daemon's life, never reused.

Transmission clients name torrents by small integers (``transmission-remote -t 3``)
as well as by hashString. bt's own id is the info-hash, so the RPC hands out
integers in the order it first sees each torrent and keeps them for as long as
the process runs: a torrent removed and added again gets a new id, as in
Transmission. Also remembered: ids removed lately, for ``recently-active``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bt.control.transmission.errors import RpcError

__all__ = ["RECENT_SECONDS", "TorrentIds"]

#: What ``recently-active`` means, as in Transmission: within the last minute.
RECENT_SECONDS = 60.0
#: Removals remembered for ``recently-active`` at most (a bound against churn).
_MAX_REMOVED = 1000
_HASH = re.compile(r"[0-9a-fA-F]{40}")


class TorrentIds:
    """Integer ids for info-hashes, assigned on first sight, and recent removals."""

    def __init__(self) -> None:
        self._by_hash: dict[bytes, int] = {}
        self._by_id: dict[int, bytes] = {}
        self._next = 1
        #: (id, when) of removed torrents, oldest first.
        self._removed: list[tuple[int, float]] = []

    def id_for(self, info_hash: bytes) -> int:
        number = self._by_hash.get(info_hash)
        if number is None:
            number = self._by_hash[info_hash] = self._next
            self._by_id[number] = info_hash
            self._next += 1
        return number

    def knows(self, info_hash: bytes) -> bool:
        return info_hash in self._by_hash

    def hash_for(self, number: int) -> bytes | None:
        return self._by_id.get(number)

    def removed(self, info_hash: bytes, now: float) -> None:
        number = self._by_hash.pop(info_hash, None)
        if number is None:
            return
        del self._by_id[number]
        self._removed.append((number, now))
        del self._removed[:-_MAX_REMOVED]

    def recently_removed(self, now: float) -> list[int]:
        self._removed = [(n, t) for n, t in self._removed if now - t <= RECENT_SECONDS]
        return [n for n, _ in self._removed]

    def select(self, value: Any, known: Iterable[bytes]) -> list[bytes] | None:
        """The torrents an ``ids`` argument names, in the session's order; None: all.

        ``value`` is an id, a hashString, or a list of them (unknown ones are
        left out, as Transmission does); ``"recently-active"`` is resolved by
        the caller. A value of another type is the client's error.
        """
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        wanted: set[bytes] = set()
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int | str):
                raise RpcError(f"ids: expected integers or hashStrings, got {item!r:.60}")
            if isinstance(item, int):
                info_hash = self.hash_for(item)
            elif _HASH.fullmatch(item):
                info_hash = bytes.fromhex(item)
            elif item.isdigit() and len(item) < 10:
                info_hash = self.hash_for(int(item))
            else:
                raise RpcError(f"ids: {item!r:.60} is neither an id nor a 40-hex hashString")
            if info_hash is not None:
                wanted.add(info_hash)
        return [h for h in known if h in wanted]
