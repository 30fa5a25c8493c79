"""Torrents by info-hash, found by any of their hashes (layer 0: pure).

A hybrid torrent (BEP 52) has two 20-byte identities, its v1 info-hash and its
truncated v2 one, and a peer's handshake may name either. :class:`TorrentIndex`
is a dict keyed by the torrent's own ``info_hash`` (what the session, the
registry and the API use) that also finds a value by its other hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

__all__ = ["TorrentIndex"]

V = TypeVar("V")


class TorrentIndex(dict[bytes, V], Generic[V]):
    """``dict`` by primary hash; :meth:`find` by any hash ``hashes(value)`` names."""

    def __init__(self, hashes: Callable[[V], Iterable[bytes]]) -> None:
        super().__init__()
        self._hashes = hashes
        self._aliases: dict[bytes, bytes] = {}

    def __setitem__(self, key: bytes, value: V) -> None:
        super().__setitem__(key, value)
        for alias in self._hashes(value):
            if alias != key:
                self._aliases[alias] = key

    def __delitem__(self, key: bytes) -> None:
        super().__delitem__(key)
        self._aliases = {a: k for a, k in self._aliases.items() if k != key}

    def pop(self, key: bytes, *default: Any) -> Any:
        if key not in self:
            return super().pop(key, *default)
        value = self[key]
        del self[key]
        return value

    def find(self, info_hash: bytes) -> V | None:
        """The value whose primary or other hash is ``info_hash``, or None."""
        value = self.get(info_hash)
        if value is None and info_hash in self._aliases:
            value = self.get(self._aliases[info_hash])
        return value
