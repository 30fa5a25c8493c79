"""Serving the block hashes of one piece (BEP 52 hash request, base layer 0).

A .torrent carries piece layers, not block hashes, so a peer asking for the
leaves of a piece (to find the bad blocks of a piece that failed, as
libtorrent and bt do) is answered from the data: the piece is read and its
16 KiB blocks hashed in the disk threads (``leaves_of``), checked against the
piece's hash (data that no longer matches is not vouched for: a reject), and
the uncles above the piece come from the piece-layer tree. Only whole-piece
requests for pieces we have are served this way, one at a time per peer and
at most :data:`MAX_READING` at once for the torrent (a slow disk must not pile
up piece-sized reads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed

from bt.merkle import HASH_SIZE, LEAF_SIZE, subtree_root, uncle_count
from bt.metainfo import Metainfo
from bt.peer.hash_messages import Hashes, HashReject, HashRequest

__all__ = ["MAX_READING", "BlockHashServer"]

#: Pieces read for block hashes at once, per torrent; more requests are rejected.
MAX_READING = 2

_ZERO = bytes(HASH_SIZE)


class BlockHashServer:
    """Answers base-layer-0 requests for one whole piece from the data on disk."""

    def __init__(
        self,
        metainfo: Metainfo,
        tree: Callable[[bytes], Any],
        leaves_of: Callable[[int, int], Deferred[list[bytes]]],
        has: Callable[[int], bool],
    ) -> None:
        """``tree(root)``: the file's piece-layer tree or None; ``leaves_of(index,
        data_length)``: the leaf hashes of the piece's data, hashed off the reactor;
        ``has(index)``: the piece is verified here."""
        self.metainfo = metainfo
        self.tree = tree
        self.leaves_of = leaves_of
        self.has = has
        self._starts: dict[bytes, int] | None = None
        self._busy: set[Any] = set()

    def _piece_at(self, root: bytes, first_leaf: int) -> int | None:
        """The piece whose first leaf is ``first_leaf`` of the file ``root`` names, if any.

        From the files, not the pieces: a torrent may have 0x200000 pieces, and a
        peer's first request must not make the reactor walk them all."""
        if self._starts is None:  # once: pieces root -> the file's first piece
            self._starts = {}
            piece_length = self.metainfo.piece_length
            for entry in self.metainfo.files:
                if entry.pieces_root is not None and not entry.padding:
                    self._starts.setdefault(entry.pieces_root, entry.offset // piece_length)
        first = self._starts.get(root)
        per_piece = self.metainfo.piece_length // LEAF_SIZE
        if first is None or first_leaf % per_piece:
            return None
        index = first + first_leaf // per_piece
        try:
            piece = self.metainfo.v2_piece(index)
        except (IndexError, LookupError):
            return None
        if piece is None or piece.first_leaf != first_leaf:
            return None
        if self.metainfo.files[piece.file_index].pieces_root != root:
            return None  # past the file's end, in the next file
        return index

    def answer(self, peer: Any, request: HashRequest) -> Deferred[Hashes | HashReject] | None:
        """The answer to come, or None when ``request`` is not one this serves."""
        if request.base_layer != 0 or peer in self._busy or len(self._busy) >= MAX_READING:
            return None
        index = self._piece_at(request.pieces_root, request.index)
        if index is None or not self.has(index):
            return None
        piece = self.metainfo.v2_piece(index)
        assert piece is not None
        if piece.leaves != request.length or piece.leaves == 1:
            return None
        uncles = self._uncles(request)
        if uncles is None:
            return succeed(request.reject())
        self._busy.add(peer)
        hashed = self.leaves_of(index, piece.data_length)

        def prove(leaves: list[bytes]) -> Hashes | HashReject:
            nodes = [*leaves, *[_ZERO] * (request.length - len(leaves))]
            if (
                len(nodes) != request.length
                or subtree_root(nodes, request.length) != piece.expected
            ):
                return request.reject()  # the data changed under us: vouch for nothing
            return request.answer([*nodes, *uncles])

        def done(result: Any) -> Any:
            self._busy.discard(peer)
            return result

        hashed.addCallback(prove)
        hashed.addErrback(lambda _: request.reject())
        return hashed.addBoth(done)

    def _uncles(self, request: HashRequest) -> list[bytes] | None:
        """The uncles above the piece's node up to ``proof_layers``; None if out of range."""
        height = request.length.bit_length() - 1
        wanted = uncle_count(request.length, request.proof_layers)
        if not wanted:
            return []
        tree = self.tree(request.pieces_root)
        if tree is None:
            return None  # a file of one piece: its node is the root, nothing above it
        try:
            proof = tree.proof(height, request.index >> height, 1, request.proof_layers - height)
        except ValueError:
            return None
        return list(proof[1:])
