"""Who sent bad data: strikes for lone senders, proof by comparison for shared pieces.

A piece that fails its hash may have blocks from several peers. A lone sender is
certainly guilty and gets a strike; with several senders we remember a digest of
each block and, once the piece later verifies, every block that differs from the
good data names its sender for certain (libtorrent's "smart ban").
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence


class Blame:
    """Decides which peer addresses to ban for sending data that failed verification."""

    def __init__(self, strikes_to_ban: int = 2) -> None:
        self.strikes_to_ban = strikes_to_ban
        self._strikes: dict[Hashable, int] = {}
        self._suspects: dict[int, dict[int, tuple[Hashable, bytes]]] = {}

    def piece_failed(
        self, index: int, sources: Mapping[int, Hashable], blocks: Sequence[bytes]
    ) -> list[Hashable]:
        """``sources`` maps block number to sender; returns the addresses to ban now."""
        senders = set(sources.values())
        if len(senders) == 1:
            (sender,) = senders
            strikes = self._strikes.get(sender, 0) + 1
            self._strikes[sender] = strikes
            return [sender] if strikes >= self.strikes_to_ban else []
        self._suspects[index] = {
            n: (sender, hashlib.sha1(blocks[n]).digest()) for n, sender in sources.items()
        }
        return []

    def piece_verified(self, index: int, blocks: Sequence[bytes]) -> list[Hashable]:
        """The piece passed: senders of blocks that differed from the good data are liars."""
        suspects = self._suspects.pop(index, None)
        if not suspects:
            return []
        liars = {
            sender
            for n, (sender, digest) in suspects.items()
            if hashlib.sha1(blocks[n]).digest() != digest
        }
        return sorted(liars, key=repr)

    def strikes(self, sender: Hashable) -> int:
        return self._strikes.get(sender, 0)
