"""Peer wire codec: every message round-trips, and every bad payload length is named."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.errors import RemoteProtocolError
from bt.peer import messages as m

u32 = st.integers(min_value=0, max_value=2**32 - 1)

#: Every message type, with arbitrary field values.
any_message = st.one_of(
    st.just(m.KeepAlive()),
    st.just(m.Choke()),
    st.just(m.Unchoke()),
    st.just(m.Interested()),
    st.just(m.NotInterested()),
    st.builds(m.Have, u32),
    st.builds(m.BitfieldMessage, st.binary(max_size=64)),
    st.builds(m.Request, u32, u32, u32),
    st.builds(m.Piece, u32, u32, st.binary(max_size=256)),
    st.builds(m.Cancel, u32, u32, u32),
    st.builds(m.Port, st.integers(min_value=0, max_value=65535)),
    st.builds(m.Unknown, st.integers(min_value=10, max_value=255), st.binary(max_size=64)),
)


def split_frame(data: bytes) -> tuple[int | None, bytes]:
    """(message id, payload) of one frame; no id for a keep-alive."""
    (length,) = struct.unpack_from(">I", data)
    assert length == len(data) - 4
    if not length:
        return None, b""
    return data[4], data[5:]


@given(any_message)
def test_every_message_round_trips(msg: m.Message) -> None:
    message_id, payload = split_frame(m.encode(msg))
    if message_id is None:
        assert msg == m.KeepAlive()
    else:
        assert m.parse(message_id, payload) == msg


@given(any_message, st.binary(max_size=8), st.binary(max_size=8))
def test_parse_from_reads_in_place_in_a_larger_buffer(
    msg: m.Message, before: bytes, after: bytes
) -> None:
    """parse_from must read only its own span of a framing buffer."""
    frame = m.encode(msg)
    if len(frame) == 4:
        return
    buffer = bytearray(before + frame + after)
    offset = len(before) + 5
    assert m.parse_from(buffer, offset, frame[4], len(frame) - 5) == msg
    del buffer[:1]  # no view left behind: the buffer can still be resized


def test_known_encodings() -> None:
    assert m.encode(m.KeepAlive()) == b"\x00\x00\x00\x00"
    assert m.encode(m.Choke()) == b"\x00\x00\x00\x01\x00"
    assert m.encode(m.NotInterested()) == b"\x00\x00\x00\x01\x03"
    assert m.encode(m.Have(258)) == b"\x00\x00\x00\x05\x04\x00\x00\x01\x02"
    assert m.encode(m.Request(1, 2, 16384)) == (
        b"\x00\x00\x00\x0d\x06" + struct.pack(">III", 1, 2, 16384)
    )
    assert m.encode(m.Port(6881)) == b"\x00\x00\x00\x03\x09\x1a\xe1"
    assert m.encode(m.Unknown(20, b"xy")) == b"\x00\x00\x00\x03\x14xy"


@given(u32, u32, st.binary(max_size=100))
def test_piece_header_plus_block_is_the_piece_encoding(
    index: int, begin: int, block: bytes
) -> None:
    header = m.encode_piece_header(index, begin, len(block))
    assert len(header) == 13
    assert header + block == m.encode(m.Piece(index, begin, block))


@given(
    st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
        max_size=40,
    )
)
def test_encode_requests_is_the_request_encodings_joined(
    blocks: list[tuple[int, int, int]],
) -> None:
    assert m.encode_requests(blocks) == b"".join(m.encode(m.Request(*b)) for b in blocks)


def test_encode_refuses_non_messages() -> None:
    with pytest.raises(TypeError, match="not a peer wire message"):
        m.encode("choke")  # type: ignore[arg-type]


def test_field_less_messages_parse_to_equal_values() -> None:
    assert m.parse(m.MessageId.CHOKE, b"") == m.Choke()
    assert m.parse(m.MessageId.INTERESTED, b"") == m.Interested()


def test_piece_block_is_bytes_not_a_view() -> None:
    msg = m.parse(m.MessageId.PIECE, bytearray(b"\x00" * 8 + b"abc"))
    assert isinstance(msg, m.Piece)
    assert type(msg.block) is bytes
    assert msg.block == b"abc"


@pytest.mark.parametrize(
    ("message_id", "size", "text"),
    [
        (0, 1, "choke message with a 1-byte payload, expected 0 bytes"),
        (1, 4, "unchoke message with a 4-byte payload, expected 0 bytes"),
        (2, 1, "interested message with a 1-byte payload, expected 0 bytes"),
        (3, 2, "not-interested message with a 2-byte payload, expected 0 bytes"),
        (4, 3, "have message with a 3-byte payload, expected 4 bytes"),
        (4, 5, "have message with a 5-byte payload, expected 4 bytes"),
        (6, 11, "request message with a 11-byte payload, expected 12 bytes"),
        (6, 13, "request message with a 13-byte payload, expected 12 bytes"),
        (7, 7, "piece message with a 7-byte payload, expected at least 8 bytes"),
        (8, 0, "cancel message with a 0-byte payload, expected 12 bytes"),
        (9, 3, "port message with a 3-byte payload, expected 2 bytes"),
    ],
)
def test_bad_payload_length_names_message_and_length(message_id: int, size: int, text: str) -> None:
    with pytest.raises(RemoteProtocolError, match=f"^{text}$"):
        m.parse(message_id, bytes(size))


def test_unknown_ids_are_kept_not_refused() -> None:
    assert m.parse(20, b"\x00d1:md") == m.Unknown(20, b"\x00d1:md")
    assert m.parse(13, b"") == m.Unknown(13, b"")


@given(st.integers(min_value=0, max_value=255), st.binary(max_size=40))
def test_parse_garbage_raises_only_remote_protocol_error(message_id: int, payload: bytes) -> None:
    try:
        msg = m.parse(message_id, payload)
    except RemoteProtocolError:
        return
    assert m.encode(msg) == struct.pack(">IB", 1 + len(payload), message_id) + payload


# -- handshake ---------------------------------------------------------------

hash20 = st.binary(min_size=20, max_size=20)


@given(hash20, hash20, st.binary(min_size=8, max_size=8))
def test_handshake_round_trips(info_hash: bytes, peer_id: bytes, reserved: bytes) -> None:
    handshake = m.Handshake(info_hash, peer_id, reserved)
    data = m.encode_handshake(handshake)
    assert len(data) == m.HANDSHAKE_LENGTH
    assert data[:20] == b"\x13BitTorrent protocol"
    assert m.parse_handshake(data) == handshake


def test_handshake_reserved_defaults_to_zero() -> None:
    assert m.Handshake(b"i" * 20, b"p" * 20).reserved == bytes(8)


def test_handshake_field_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="handshake info_hash must be 20 bytes, got 19"):
        m.Handshake(b"i" * 19, b"p" * 20)
    with pytest.raises(ValueError, match="handshake reserved must be 8 bytes, got 7"):
        m.Handshake(b"i" * 20, b"p" * 20, bytes(7))


def test_handshake_with_wrong_protocol_length_names_what_was_received() -> None:
    data = b"GET / HTTP/1.1\r\n" + bytes(52)
    with pytest.raises(
        RemoteProtocolError,
        match=r"handshake protocol name length 71, expected 19 \(received b'GET / HTTP/1.1",
    ):
        m.parse_handshake(data)


def test_handshake_with_wrong_protocol_name_names_what_was_received() -> None:
    data = b"\x13BitTorrent protocoX" + bytes(48)
    with pytest.raises(
        RemoteProtocolError,
        match=r"handshake protocol name b'BitTorrent protocoX', expected b'BitTorrent protocol'",
    ):
        m.parse_handshake(data)


def test_handshake_of_wrong_size() -> None:
    with pytest.raises(RemoteProtocolError, match="handshake of 67 bytes, expected 68 bytes"):
        m.parse_handshake(m.encode_handshake(m.Handshake(b"i" * 20, b"p" * 20))[:67])


def test_handshake_prefix_check_fails_early_and_accepts_partial_prefixes() -> None:
    good = m.encode_handshake(m.Handshake(b"i" * 20, b"p" * 20))
    for end in range(len(good) + 1):
        m.check_handshake_prefix(good[:end])
    with pytest.raises(RemoteProtocolError, match="protocol name length 71"):
        m.check_handshake_prefix(b"G")
    with pytest.raises(RemoteProtocolError, match=r"protocol name b'Bx', expected"):
        m.check_handshake_prefix(b"\x13Bx")
