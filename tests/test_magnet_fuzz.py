"""Hypothesis on what BEP 9 added: the metadata-only wire, the server, the .torrent built.

Hostile bytes on a metadata-only connection raise only RemoteProtocolError; any
request gets a piece or a reject, never an exception; and the .torrent made of
fetched metadata always keeps the info bytes (so the info-hash) and the trackers.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from bt import bencode
from bt.errors import RemoteProtocolError
from bt.extensions.metadata import MetadataServer, PeerMetadataState
from bt.extensions.metadata_messages import MetadataData, MetadataReject, MetadataRequest
from bt.magnetfetch import NO_PIECES, torrent_from_metadata
from bt.metainfo import parse_metainfo
from bt.peer.connection import PeerConnection
from bt.peer.messages import Handshake, Reserved, encode_handshake

fuzz = settings(max_examples=200, deadline=None)
HASH = bytes(range(20))
BOTH = Reserved.of(Reserved.EXTENSION_PROTOCOL, Reserved.FAST)


@fuzz
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_a_metadata_only_connection_raises_only_protocol_errors(chunks: list[bytes]) -> None:
    connection = PeerConnection(b"-BT0100-ourselves!!!", HASH, NO_PIECES, reserved=BOTH)
    connection.ignore_pieces()
    first = encode_handshake(Handshake(HASH, b"-LT2000-abcdefghijkl", BOTH))
    try:
        for chunk in [first, *chunks]:
            connection.receive_data(chunk)
    except RemoteProtocolError:
        pass


@fuzz
@given(st.binary(min_size=1, max_size=70_000), st.lists(st.integers(0, 10), max_size=30))
def test_the_server_answers_any_request_with_its_piece_or_a_reject(
    raw: bytes, pieces: list[int]
) -> None:
    server, state = MetadataServer(raw), PeerMetadataState()
    for piece in pieces:
        answer = server.answer(state, MetadataRequest(piece))
        assert isinstance(answer, MetadataData | MetadataReject)
        if isinstance(answer, MetadataData):
            assert answer.data == raw[piece * 16384 : (piece + 1) * 16384] and answer.data


urls = st.sampled_from(["http://a/announce", "udp://b:1/announce", "https://c/x?k=1"])


@fuzz
@given(
    st.text(min_size=1, max_size=20).filter(lambda n: n not in (".", "..") and "/" not in n),
    st.integers(1, 1 << 28),
    st.lists(st.lists(urls, min_size=1, max_size=2), max_size=3),
)
def test_the_torrent_made_from_metadata_keeps_its_info_hash_and_trackers(
    name: str, length: int, tiers: list[list[str]]
) -> None:
    raw = bencode.encode(
        {b"length": length, b"name": name.encode(), b"piece length": 1 << 28, b"pieces": bytes(20)}
    )
    try:
        metainfo = parse_metainfo(torrent_from_metadata(raw, tiers))
    except ValueError as exc:
        assert "info.name" in str(exc)  # a name bt will not write (metainfo's own rule)
        return
    assert metainfo.info_hash == hashlib.sha1(raw).digest()
    assert metainfo.trackers == tuple(tuple(t) for t in tiers)
