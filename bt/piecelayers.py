"""The piece layers a v2 magnet still lacks, fetched by hash requests (layer 0: pure).

A .torrent carries the piece layer of every file longer than one piece; a
magnet's info dictionary does not, so after the metadata the fetch asks peers
for them (BEP 52). :func:`layer_requests` plans the requests as libtorrent
makes them: the piece layer (``base_layer`` = log2(blocks per piece)) in
aligned chunks of at most :data:`CHUNK` pieces, each padded to a power of two,
with proofs up to the file's pieces root, so every chunk is checked on its own
against the root the verified metadata names. :class:`PieceLayerAssembler`
keeps the chunks that prove and the ones still missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from bt.merkle import (
    LEAF_SIZE,
    layer_of_piece_length,
    next_power_of_two,
    verify_proof,
)
from bt.peer.hash_messages import Hashes, HashRequest

__all__ = ["CHUNK", "PieceLayerAssembler", "layer_requests"]

#: Pieces per request: libtorrent asks (and accepts) at most 512 at the piece layer.
CHUNK: Final = 512


@dataclass(frozen=True, slots=True)
class _Chunk:
    root: bytes
    #: Real pieces in the chunk (the rest of ``length`` is padding).
    real: int


def layer_requests(
    files: Iterable[tuple[bytes, int]], piece_length: int
) -> dict[HashRequest, _Chunk]:
    """The requests for the piece layers of ``files`` ((pieces root, length) pairs);
    files of one piece or less have none."""
    base = layer_of_piece_length(piece_length)
    plan: dict[HashRequest, _Chunk] = {}
    for root, length in files:
        if length <= piece_length:
            continue
        pieces = -(-length // piece_length)
        # the root is this many layers above the piece layer (proofs reach it)
        height = next_power_of_two(pieces).bit_length() - 1
        for index in range(0, pieces, CHUNK):
            count = min(CHUNK, next_power_of_two(pieces - index))
            request = HashRequest(root, base, index, count, height - 1)
            plan[request] = _Chunk(root, min(count, pieces - index))
    return plan


class PieceLayerAssembler:
    """The chunks of every missing piece layer: asked, proved, joined."""

    def __init__(self, files: Iterable[tuple[bytes, int]], piece_length: int) -> None:
        if piece_length < LEAF_SIZE:
            raise ValueError(f"piece length {piece_length} is under {LEAF_SIZE}")
        self._plan = layer_requests(files, piece_length)
        self._roots = list(dict.fromkeys(chunk.root for chunk in self._plan.values()))
        self._got: dict[HashRequest, tuple[bytes, ...]] = {}

    @property
    def missing(self) -> list[HashRequest]:
        """Requests not answered with a valid proof yet, in file and layer order."""
        return [request for request in self._plan if request not in self._got]

    @property
    def done(self) -> bool:
        return len(self._got) == len(self._plan)

    def accept(self, msg: Hashes) -> bool:
        """Keep ``msg`` if it answers a planned request and proves against its root;
        False for a false proof (the sender lied). Answers we never planned are
        ignored (True: not a lie about anything we trust)."""
        request = msg.request
        chunk = self._plan.get(request)
        if chunk is None or request in self._got:
            return True
        proved = verify_proof(
            msg.hashes,
            request.base_layer,
            request.index,
            request.length,
            request.proof_layers,
            request.pieces_root,
        )
        if not proved:
            return False
        self._got[request] = msg.nodes[: chunk.real]
        return True

    def layers(self) -> Mapping[bytes, bytes]:
        """Pieces root -> the concatenated piece layer, once :attr:`done`."""
        if not self.done:
            raise ValueError(f"{len(self.missing)} piece-layer chunks are still missing")
        joined: dict[bytes, list[bytes]] = {root: [] for root in self._roots}
        for request in sorted(self._got, key=lambda r: (self._roots.index(r.pieces_root), r.index)):
            joined[request.pieces_root].extend(self._got[request])
        return {root: b"".join(nodes) for root, nodes in joined.items()}
