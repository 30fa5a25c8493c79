"""BEP 6 and BEP 10 messages on the wire: parsed only when both handshakes negotiated them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_connection import GEOMETRY, INFO_HASH, OUR_ID, PEER_ID, frames

from bt.bitfield import Bitfield
from bt.errors import RemoteProtocolError
from bt.peer import messages as m
from bt.peer.connection import PeerBitfield, PeerConnection

BOTH = m.Reserved.of(m.Reserved.FAST, m.Reserved.EXTENSION_PROTOCOL)
FAST_MESSAGES = [
    m.SuggestPiece(9),
    m.RejectRequest(9, 0, 1000),
    m.AllowedFast(0),
]


def negotiated(ours: bytes = BOTH, theirs: bytes = BOTH) -> PeerConnection:
    conn = PeerConnection(OUR_ID, INFO_HASH, GEOMETRY, reserved=ours)
    conn.receive_data(m.encode_handshake(m.Handshake(INFO_HASH, PEER_ID, theirs)))
    return conn


@pytest.mark.parametrize(
    "message",
    [*FAST_MESSAGES, m.HaveAll(), m.HaveNone(), m.Extended(0, b"de"), m.Extended(3, b"")],
)
def test_messages_round_trip(message):
    encoded = m.encode(message)
    assert m.parse(encoded[4], encoded[5:], m.WITH_BOTH) == message


def test_reserved_bits():
    assert BOTH == bytes([0, 0, 0, 0, 0, 0x10, 0, 0x04])
    assert m.Reserved.has(BOTH, m.Reserved.FAST) and not m.Reserved.has(BOTH, m.Reserved.DHT)


def test_negotiated_connections_parse_fast_and_extended_messages():
    conn = negotiated()
    assert conn.fast and conn.extended
    events = conn.receive_data(frames(*FAST_MESSAGES, m.Extended(1, b"d1:ai1ee")))
    assert events == [*FAST_MESSAGES, m.Extended(1, b"d1:ai1ee")]


def test_have_all_and_have_none_arrive_as_a_bitfield():
    conn = negotiated()
    assert conn.receive_data(frames(m.HaveAll(), m.HaveNone())) == [
        PeerBitfield(Bitfield.full(GEOMETRY.num_pieces)),
        PeerBitfield(Bitfield(GEOMETRY.num_pieces)),
    ]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(bytes(8), BOTH), (BOTH, bytes(8)), (m.Reserved.of(m.Reserved.FAST), bytes(8))],
)
def test_one_sided_bits_leave_the_messages_unknown(ours, theirs):
    conn = negotiated(ours, theirs)
    assert not conn.fast and not conn.extended
    data = frames(m.HaveAll(), m.AllowedFast(99), m.Extended(0, b"de"))
    assert conn.receive_data(data) == [
        m.Unknown(14, b""),
        m.Unknown(17, (99).to_bytes(4, "big")),
        m.Unknown(20, b"\x00de"),
    ]


def test_only_the_fast_bit_leaves_extended_messages_unknown():
    conn = negotiated(m.Reserved.of(m.Reserved.FAST), BOTH)
    assert conn.fast and not conn.extended
    assert conn.receive_data(frames(m.Extended(0, b"de"))) == [m.Unknown(20, b"\x00de")]


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (m.SuggestPiece(10), "suggest-piece message for piece 10"),
        (m.AllowedFast(10), "allowed-fast message for piece 10"),
        (m.RejectRequest(9, 0, 1001), "reject-request message for bytes 0..1001 of piece 9"),
        (m.RejectRequest(0, 0, 0), "reject-request message for 0 bytes"),
    ],
)
def test_fast_messages_are_range_checked(message, text):
    with pytest.raises(RemoteProtocolError, match=text):
        negotiated().receive_data(frames(message))


@pytest.mark.parametrize(("message_id", "size"), [(13, 3), (14, 1), (16, 11), (17, 5), (20, 0)])
def test_fast_and_extended_payload_lengths_are_checked(message_id, size):
    with pytest.raises(RemoteProtocolError, match="payload"):
        m.parse(message_id, bytes(size), m.WITH_BOTH)


@given(st.integers(0, 255), st.binary(max_size=40))
def test_garbage_payloads_raise_only_protocol_errors(message_id, payload):
    try:
        m.parse(message_id, payload, m.WITH_BOTH)
    except RemoteProtocolError:
        pass


@given(st.binary(max_size=200))
def test_a_negotiated_connection_fed_garbage_raises_only_protocol_errors(data):
    try:
        negotiated().receive_data(data)
    except RemoteProtocolError:
        pass
