"""BEP 9 ``ut_metadata`` served: peers holding only a magnet fetch the info dictionary from us.

:class:`MetadataServer` is a peer extension (see :mod:`bt.swarm.extension`).
It tells peers the metadata's size in our extended handshake, answers each
request with the 16 KiB piece asked for, and rejects a piece out of range, or
every piece while the metadata is not known (a magnet still fetching). A peer
that asks again and again is bounded: each peer gets :data:`SERVE_ROUNDS`
times the whole metadata, then only rejects, so a loop costs it, not us.
Private torrents serve metadata too (libtorrent does): it finds no peers.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from bt.extensions.handshake import ExtendedHandshake
from bt.extensions.metadata_messages import (
    METADATA_PIECE,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    encode_metadata_message,
    metadata_pieces,
    parse_metadata_message,
)
from bt.swarm.extension import IPeerExtension

__all__ = ["METADATA_EXTENSION", "SERVE_ROUNDS", "MetadataServer", "PeerMetadataState"]

#: The extension's message name in the extended handshake.
METADATA_EXTENSION = "ut_metadata"
#: A peer is served the whole metadata at most this many times over.
SERVE_ROUNDS = 3


class PeerMetadataState:
    """What one peer asked of us: pieces served so far (the bound)."""

    __slots__ = ("served",)

    def __init__(self) -> None:
        self.served = 0


@implementer(IPeerExtension)
class MetadataServer:
    """Serves ``raw_info`` (the exact bencoded info dictionary) in ``ut_metadata`` pieces."""

    name = METADATA_EXTENSION

    def __init__(self, raw_info: bytes | None) -> None:
        """``raw_info`` None: we have no metadata yet, every request is rejected."""
        self.raw_info = raw_info

    @property
    def num_pieces(self) -> int:
        return metadata_pieces(len(self.raw_info)) if self.raw_info else 0

    def handshake(self) -> dict[str, Any]:
        return {"metadata_size": len(self.raw_info)} if self.raw_info else {}

    def attached(self, link: Any) -> PeerMetadataState:
        return PeerMetadataState()

    def handshake_received(self, link: Any, state: object, handshake: ExtendedHandshake) -> None:
        pass

    def message(self, link: Any, state: object, payload: bytes) -> None:
        request = parse_metadata_message(payload)
        if isinstance(request, MetadataRequest):
            assert isinstance(state, PeerMetadataState)
            link.send_extended(self.name, encode_metadata_message(self.answer(state, request)))
        # Data and rejects are answers to requests a server never sends: ignored.

    def answer(
        self, state: PeerMetadataState, request: MetadataRequest
    ) -> MetadataData | MetadataReject:
        """The piece asked for, or a reject (out of range, unknown, or over the bound)."""
        piece = request.piece
        if self.raw_info is None or piece >= self.num_pieces:
            return MetadataReject(piece)
        if state.served >= SERVE_ROUNDS * self.num_pieces:
            return MetadataReject(piece)
        state.served += 1
        start = piece * METADATA_PIECE
        return MetadataData(
            piece, len(self.raw_info), self.raw_info[start : start + METADATA_PIECE]
        )

    def lost(self, link: Any, state: object) -> None:
        pass

    def tick(self, now: float) -> None:
        pass
