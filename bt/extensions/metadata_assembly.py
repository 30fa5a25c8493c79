"""Putting a magnet's info dictionary together from ``ut_metadata`` pieces of several peers.

:class:`MetadataAssembler` decides which piece to ask which peer for, notices
stalls (time is passed in), and checks the whole against the info-hash: the
only thing that makes metadata from strangers trustworthy. It is bounded in
memory by ``max_size`` before the first byte is accepted. Pure: no Twisted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from dataclasses import dataclass

from bt.errors import BtError, RemoteProtocolError
from bt.extensions.metadata_messages import METADATA_PIECE, MetadataData, metadata_pieces

__all__ = ["MAX_METADATA_SIZE", "MetadataAssembler", "MetadataHashError"]

#: Metadata larger than this is refused (libtorrent's default limit is 30 MiB).
MAX_METADATA_SIZE = 32 * 1024 * 1024
#: A peer that has not answered a piece request for this long is asked no more.
REQUEST_TIMEOUT = 20.0
#: Piece requests in flight to one peer.
PER_PEER = 2


class MetadataHashError(BtError):
    """The assembled metadata does not hash to the info-hash; ``peers`` supplied pieces."""

    def __init__(self, peers: frozenset[Hashable]) -> None:
        super().__init__(f"metadata from {len(peers)} peer(s) does not match the info-hash")
        self.peers = peers


@dataclass
class _Ask:
    peer: Hashable
    since: float


class MetadataAssembler:
    """The pieces of one metadata size, gathered until they hash to ``info_hash``."""

    def __init__(
        self,
        info_hash: bytes,
        size: int,
        *,
        max_size: int = MAX_METADATA_SIZE,
        hash_name: str = "sha1",
        also: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        """``hash_name``: how ``info_hash`` was made ("sha256": a BEP 52 v2 hash);
        ``also``: further ``(hash name, digest)`` the metadata must match (a hybrid
        magnet names both its v1 and v2 hashes)."""
        if not 0 < size <= max_size:
            raise RemoteProtocolError(f"metadata_size {size} is not in 1..{max_size}")
        self.info_hash = info_hash
        self.size = size
        self.hash_name = hash_name
        self.checks = ((hash_name, info_hash), *also)
        self.num_pieces = metadata_pieces(size)
        self._pieces: list[bytes | None] = [None] * self.num_pieces
        self._sources: dict[int, Hashable] = {}
        self._asks: dict[int, _Ask] = {}
        self._refused: set[tuple[Hashable, int]] = set()

    @property
    def received(self) -> int:
        return self.num_pieces - self._pieces.count(None)

    def piece_length(self, piece: int) -> int:
        if piece == self.num_pieces - 1:
            return self.size - piece * METADATA_PIECE
        return METADATA_PIECE

    def next_requests(self, peer: Hashable) -> list[int]:
        """Pieces to ask ``peer`` for now (none it refused, at most :data:`PER_PEER` in flight)."""
        room = PER_PEER - sum(1 for ask in self._asks.values() if ask.peer == peer)
        picked: list[int] = []
        for piece, data in enumerate(self._pieces):
            if len(picked) >= room:
                break
            if data is None and piece not in self._asks and (peer, piece) not in self._refused:
                picked.append(piece)
        return picked

    def asked(self, peer: Hashable, piece: int, now: float) -> None:
        self._asks[piece] = _Ask(peer, now)

    def accept(self, peer: Hashable, message: MetadataData) -> bytes | None:
        """Store one piece; the whole metadata once every piece is here and it hashes right.

        A piece of the wrong size or index, or a different ``total_size``, is
        the sender's protocol error; a hash mismatch drops every piece and
        raises :class:`MetadataHashError` naming who sent them.
        """
        piece = message.piece
        if message.total_size != self.size:
            raise RemoteProtocolError(
                f"ut_metadata total_size {message.total_size} differs from {self.size}"
            )
        if piece >= self.num_pieces:
            raise RemoteProtocolError(f"ut_metadata piece {piece} of {self.num_pieces}")
        if len(message.data) != self.piece_length(piece):
            raise RemoteProtocolError(
                f"ut_metadata piece {piece} is {len(message.data)} bytes,"
                f" not {self.piece_length(piece)}"
            )
        ask = self._asks.get(piece)
        if ask is not None and ask.peer == peer:
            del self._asks[piece]
        if self._pieces[piece] is not None:
            return None  # a late answer to a request that timed out
        self._pieces[piece] = message.data
        self._sources[piece] = peer
        if self.received < self.num_pieces:
            return None
        whole = b"".join(data for data in self._pieces if data is not None)
        if all(hashlib.new(name, whole).digest()[: len(h)] == h for name, h in self.checks):
            return whole
        peers = frozenset(self._sources.values())
        self._pieces = [None] * self.num_pieces
        self._sources.clear()
        raise MetadataHashError(peers)

    def rejected(self, peer: Hashable, piece: int) -> None:
        """``peer`` will not send ``piece``: ask someone else."""
        ask = self._asks.get(piece)
        if ask is not None and ask.peer == peer:
            del self._asks[piece]
        self._refused.add((peer, piece))

    def peer_lost(self, peer: Hashable) -> None:
        for piece in [piece for piece, ask in self._asks.items() if ask.peer == peer]:
            del self._asks[piece]
        self._refused = {entry for entry in self._refused if entry[0] != peer}

    def stalled(self, now: float, timeout: float = REQUEST_TIMEOUT) -> set[Hashable]:
        """Peers that left a request unanswered for ``timeout``; their pieces go to others."""
        late = {piece: ask.peer for piece, ask in self._asks.items() if now - ask.since > timeout}
        for piece, peer in late.items():
            del self._asks[piece]
            self._refused.add((peer, piece))
        return set(late.values())
