"""Who sent bad data: strikes for lone senders, proof by comparison for shared pieces.

A piece that fails its hash may have blocks from several peers. A lone sender is
certainly guilty and gets a strike; with several senders we remember a digest of
each block and, once the piece later verifies, every block that differs from the
good data names its sender for certain (libtorrent's "smart ban"). A v2 piece
needs no waiting: its blocks' leaf hashes, compared with the real ones
(``bad_blocks``), name the bad blocks at once, and only their senders get a strike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Hashable, Iterable, Mapping, Sequence

_ZERO_LEAF = bytes(32)


def bad_blocks(received: Sequence[bytes], reference: Sequence[bytes]) -> list[int]:
    """Blocks whose received leaf hash differs from the real one (``reference``: the
    piece's leaf layer; past its end a block must be padding, a zero leaf)."""
    return [
        n
        for n, leaf in enumerate(received)
        if leaf != (reference[n] if n < len(reference) else _ZERO_LEAF)
    ]


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
            return [sender] if self._strike(sender) else []
        self._suspects[index] = {
            n: (sender, hashlib.sha1(blocks[n]).digest()) for n, sender in sources.items()
        }
        return []

    def blocks_failed(self, senders: Iterable[Hashable]) -> list[Hashable]:
        """Each of ``senders`` sent a block proven bad: a strike; returns those to ban now."""
        return [sender for sender in sorted(set(senders), key=repr) if self._strike(sender)]

    def _strike(self, sender: Hashable) -> bool:
        strikes = self._strikes[sender] = self._strikes.get(sender, 0) + 1
        return strikes >= self.strikes_to_ban

    @property
    def suspected(self) -> Container[int]:
        """Pieces with senders under suspicion: only these need ``piece_verified``
        (live; one test per piece downloaded rather than a call)."""
        return self._suspects.keys()

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
