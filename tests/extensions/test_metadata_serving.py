"""BEP 9 served: a peer holding only the magnet gets the info dictionary from us.

Our handshake says the metadata's size, each request is answered with its 16 KiB
piece, a piece out of range is rejected, a peer asking in a loop is cut off,
and without metadata (a magnet still fetching) every request is rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_torrent import connect, make_torrent, one_file_metainfo
from twisted.internet.testing import MemoryReactorClock

from bt import bencode
from bt.bitfield import Bitfield
from bt.extensions.handshake import parse_extended_handshake
from bt.extensions.metadata import SERVE_ROUNDS, MetadataServer, PeerMetadataState
from bt.extensions.metadata_messages import (
    METADATA_PIECE,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    encode_metadata_message,
    parse_metadata_message,
)
from bt.extensions.standard import install_standard_extensions
from bt.peer.messages import BitfieldMessage, Extended, Handshake, Reserved, encode
from bt.peer.messages import encode_handshake as encode_bt_handshake
from bt.torrent import Torrent

EXTENDED = Reserved.of(Reserved.EXTENSION_PROTOCOL)
THEIR_ID = 7  # the id the scripted peer gives ut_metadata


@pytest.fixture
def torrent() -> Iterator[Torrent]:
    torrent = make_torrent(one_file_metainfo(), MemoryReactorClock())
    install_standard_extensions(torrent)
    torrent.startService()
    yield torrent
    torrent.stopService()


def our_id(torrent: Torrent) -> int:
    """The message id we give ut_metadata (its place among the standard extensions)."""
    return torrent.swarm.extensions.handshake().messages["ut_metadata"]


def magnet_peer(torrent: Torrent, *requests: int) -> Any:
    """A peer with only the magnet: BEP 10 bit, empty bitfield, then ``requests``."""
    peer = connect(torrent, b"-LT2000-magnetpeer01", 9)
    peer.wire.our_reserved = EXTENDED
    shake = bencode.encode({b"m": {b"ut_metadata": THEIR_ID}})
    ours = our_id(torrent)
    messages = [
        Extended(0, shake),
        BitfieldMessage(Bitfield(torrent.metainfo.num_pieces).to_bytes()),
        *(Extended(ours, encode_metadata_message(MetadataRequest(p))) for p in requests),
    ]
    handshake = encode_bt_handshake(Handshake(torrent.metainfo.info_hash, peer.peer_id, EXTENDED))
    peer.protocol.dataReceived(handshake + b"".join(encode(m) for m in messages))
    return peer


def answers(peer: Any) -> list[Any]:
    return [
        parse_metadata_message(e.payload)
        for e in peer.heard()
        if isinstance(e, Extended) and e.extended_id == THEIR_ID
    ]


def test_our_handshake_offers_ut_metadata_with_its_size(torrent: Torrent) -> None:
    peer = magnet_peer(torrent)
    [greeting] = [e for e in peer.heard() if isinstance(e, Extended) and e.extended_id == 0]
    shake = parse_extended_handshake(greeting.payload)
    assert shake.messages["ut_metadata"] == our_id(torrent)
    assert shake.metadata_size == len(torrent.metainfo.raw_info)


def test_a_request_is_answered_with_the_piece_and_out_of_range_is_rejected(
    torrent: Torrent,
) -> None:
    raw = torrent.metainfo.raw_info
    assert len(raw) < METADATA_PIECE  # one piece
    peer = magnet_peer(torrent, 0, 1)
    assert answers(peer) == [MetadataData(0, len(raw), raw), MetadataReject(1)]
    assert not peer.transport.disconnecting


def test_pieces_are_16_kib_slices_and_the_last_is_short() -> None:
    raw = bytes(range(256)) * 100  # 25,600 bytes: two pieces
    server, state = MetadataServer(raw), PeerMetadataState()
    assert server.handshake() == {"metadata_size": len(raw)}
    assert server.answer(state, MetadataRequest(0)) == MetadataData(
        0, len(raw), raw[:METADATA_PIECE]
    )
    assert server.answer(state, MetadataRequest(1)) == MetadataData(
        1, len(raw), raw[METADATA_PIECE:]
    )
    assert server.answer(state, MetadataRequest(2)) == MetadataReject(2)


def test_a_peer_asking_in_a_loop_is_rejected_after_a_few_rounds() -> None:
    server, state = MetadataServer(b"d4:name1:xe"), PeerMetadataState()
    served = [server.answer(state, MetadataRequest(0)) for _ in range(SERVE_ROUNDS + 5)]
    assert all(isinstance(a, MetadataData) for a in served[:SERVE_ROUNDS])
    assert all(a == MetadataReject(0) for a in served[SERVE_ROUNDS:])
    assert MetadataServer(b"d4:name1:xe").answer(PeerMetadataState(), MetadataRequest(0))


def test_without_metadata_every_request_is_rejected_and_no_size_is_offered() -> None:
    server = MetadataServer(None)
    assert server.handshake() == {}
    assert server.answer(PeerMetadataState(), MetadataRequest(0)) == MetadataReject(0)


def test_data_and_rejects_sent_to_a_server_are_ignored(torrent: Torrent) -> None:
    peer = magnet_peer(torrent)
    peer.heard()
    payload = encode_metadata_message(MetadataReject(0))
    peer.protocol.dataReceived(encode(Extended(our_id(torrent), payload)))
    assert answers(peer) == [] and not peer.transport.disconnecting
