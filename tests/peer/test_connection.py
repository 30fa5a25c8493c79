"""PeerConnection: handshake, framing, range checks and flags, on hostile input too."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.bitfield import Bitfield
from bt.errors import RemoteProtocolError
from bt.geometry import PieceGeometry
from bt.peer import messages as m
from bt.peer.connection import (
    MIN_MAX_MESSAGE_LENGTH,
    HandshakeReceived,
    PeerBitfield,
    PeerConnection,
)

OUR_ID = b"-BT0001-ourpeerid000"
PEER_ID = b"-XX0001-theirpeerid0"
INFO_HASH = b"\x11" * 20
OTHER_HASH = b"\x22" * 20
#: Ten pieces of 32 KiB, the last one only 1000 bytes.
GEOMETRY = PieceGeometry(num_pieces=10, piece_length=32768, total_length=9 * 32768 + 1000)
HANDSHAKE = m.encode_handshake(m.Handshake(INFO_HASH, PEER_ID, b"\x00" * 7 + b"\x01"))


def connected(geometry: PieceGeometry = GEOMETRY) -> PeerConnection:
    """An outgoing connection that has received the peer's handshake."""
    conn = PeerConnection(OUR_ID, INFO_HASH, geometry)
    [event] = conn.receive_data(HANDSHAKE)
    assert isinstance(event, HandshakeReceived)
    return conn


def frames(*msgs: m.Message) -> bytes:
    return b"".join(m.encode(msg) for msg in msgs)


def rejected(conn: PeerConnection, data: bytes, text: str) -> None:
    with pytest.raises(RemoteProtocolError, match=text):
        conn.receive_data(data)
    assert conn.failed


# -- geometry -----------------------------------------------------------------


def test_geometry_piece_sizes() -> None:
    assert GEOMETRY.piece_size(0) == 32768
    assert GEOMETRY.piece_size(8) == 32768
    assert GEOMETRY.piece_size(9) == 1000
    exact = PieceGeometry(2, 100, 200)
    assert exact.piece_size(1) == 100
    with pytest.raises(IndexError, match="piece index 10 out of range for 10 pieces"):
        GEOMETRY.piece_size(10)
    with pytest.raises(IndexError):
        GEOMETRY.piece_size(-1)


def test_geometry_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="200 bytes in pieces of 100 make 2 pieces, not 3"):
        PieceGeometry(3, 100, 200)
    with pytest.raises(ValueError, match="must be positive"):
        PieceGeometry(0, 100, 0)


# -- handshake ------------------------------------------------------------------


def test_handshake_event_carries_peer_fields() -> None:
    conn = PeerConnection(OUR_ID, INFO_HASH, GEOMETRY)
    assert conn.receive_data(HANDSHAKE) == [
        HandshakeReceived(INFO_HASH, PEER_ID, b"\x00" * 7 + b"\x01")
    ]
    assert conn.peer_handshake is not None
    assert conn.peer_handshake.peer_id == PEER_ID


def test_handshake_split_into_single_bytes() -> None:
    conn = PeerConnection(OUR_ID, INFO_HASH, GEOMETRY)
    data = HANDSHAKE + frames(m.Unchoke())
    events = []
    for i in range(len(data)):
        events.extend(conn.receive_data(data[i : i + 1]))
    assert [type(e) for e in events] == [HandshakeReceived, m.Unchoke]


def test_handshake_for_another_torrent_is_rejected() -> None:
    conn = PeerConnection(OUR_ID, OTHER_HASH, GEOMETRY)
    rejected(
        conn,
        HANDSHAKE,
        f"handshake for info-hash {INFO_HASH.hex()}, expected {OTHER_HASH.hex()}",
    )


def test_non_bittorrent_client_is_rejected_on_its_first_byte() -> None:
    conn = PeerConnection(OUR_ID, INFO_HASH, GEOMETRY)
    rejected(conn, b"G", "handshake protocol name length 71, expected 19")


def test_wrong_protocol_name_is_rejected_before_68_bytes() -> None:
    conn = PeerConnection(OUR_ID, INFO_HASH, GEOMETRY)
    rejected(conn, b"\x13BitTorrent protocoX", "handshake protocol name b'BitTorrent protocoX'")


def test_outgoing_handshake_bytes() -> None:
    conn = PeerConnection(OUR_ID, INFO_HASH, GEOMETRY, reserved=b"\x00" * 5 + b"\x10\x00\x00")
    data = conn.handshake_bytes()
    assert m.parse_handshake(data) == m.Handshake(INFO_HASH, OUR_ID, b"\x00" * 5 + b"\x10\x00\x00")


def test_incoming_connection_pauses_after_handshake_until_bound() -> None:
    """Incoming peers name the torrent; parsing waits while the caller looks it up."""
    conn = PeerConnection(OUR_ID)
    with pytest.raises(ValueError, match="bind"):
        conn.handshake_bytes()
    rest = frames(m.BitfieldMessage(b"\xff\xc0"), m.Unchoke())
    [event] = conn.receive_data(HANDSHAKE + rest)
    assert isinstance(event, HandshakeReceived)
    assert conn.info_hash == INFO_HASH
    assert conn.receive_data(frames(m.Have(1))) == []  # still paused, still buffered
    conn.bind(event.info_hash, GEOMETRY)
    assert m.parse_handshake(conn.handshake_bytes()).info_hash == INFO_HASH
    events = conn.receive_data(b"")
    assert events == [PeerBitfield(Bitfield.full(10)), m.Unchoke(), m.Have(1)]
    assert not conn.peer_choking


def test_bind_refuses_another_torrent_and_rebinding() -> None:
    conn = PeerConnection(OUR_ID)
    conn.receive_data(HANDSHAKE)
    with pytest.raises(ValueError, match="binding info-hash 2222"):
        conn.bind(OTHER_HASH, GEOMETRY)
    conn.bind(INFO_HASH, GEOMETRY)
    with pytest.raises(ValueError, match="already bound"):
        conn.bind(INFO_HASH, GEOMETRY)


def test_constructor_checks_sizes() -> None:
    with pytest.raises(ValueError, match="peer id must be 20 bytes"):
        PeerConnection(b"short")
    with pytest.raises(ValueError, match="info-hash must be 20 bytes"):
        PeerConnection(OUR_ID, b"short")


# -- framing --------------------------------------------------------------------


def test_many_messages_in_one_call_update_peer_flags() -> None:
    conn = connected()
    events = conn.receive_data(
        frames(
            m.KeepAlive(),
            m.Unchoke(),
            m.Interested(),
            m.Have(3),
            m.Request(1, 16384, 16384),
            m.Piece(9, 0, b"x" * 1000),
            m.Cancel(1, 16384, 16384),
            m.Port(6881),
            m.Unknown(20, b"d1:md"),
            m.NotInterested(),
            m.Choke(),
        )
    )
    assert events == [
        m.KeepAlive(),
        m.Unchoke(),
        m.Interested(),
        m.Have(3),
        m.Request(1, 16384, 16384),
        m.Piece(9, 0, b"x" * 1000),
        m.Cancel(1, 16384, 16384),
        m.Port(6881),
        m.Unknown(20, b"d1:md"),
        m.NotInterested(),
        m.Choke(),
    ]
    assert conn.peer_choking
    assert not conn.peer_interested


def test_peer_flags_follow_each_message() -> None:
    conn = connected()
    assert conn.peer_choking and not conn.peer_interested
    conn.receive_data(frames(m.Unchoke(), m.Interested()))
    assert not conn.peer_choking and conn.peer_interested


def test_partial_message_waits_for_the_rest() -> None:
    conn = connected()
    data = frames(m.Piece(0, 0, b"y" * 16384))
    assert conn.receive_data(data[:3]) == []
    assert conn.receive_data(data[3:100]) == []
    [piece] = conn.receive_data(data[100:] + frames(m.Have(0))[:2])
    assert isinstance(piece, m.Piece)
    assert type(piece.block) is bytes
    assert piece.block == b"y" * 16384
    assert conn.receive_data(frames(m.Have(0))[2:]) == [m.Have(0)]


def test_oversized_length_is_rejected_before_the_body_arrives() -> None:
    conn = connected()
    length = MIN_MAX_MESSAGE_LENGTH + 1
    rejected(
        conn,
        length.to_bytes(4, "big"),
        f"message length {length} exceeds the maximum of {MIN_MAX_MESSAGE_LENGTH} bytes",
    )


def test_message_limit_grows_for_a_huge_bitfield() -> None:
    pieces = 8 * 100_000
    geometry = PieceGeometry(pieces, 16384, pieces * 16384)
    conn = connected(geometry)
    assert conn.max_message_length == 100_001
    [event] = conn.receive_data(frames(m.BitfieldMessage(b"\xff" * 100_000)))
    assert isinstance(event, PeerBitfield)
    assert event.bitfield.is_complete()
    rejected(conn, (100_002).to_bytes(4, "big"), "message length 100002 exceeds")


def test_a_failed_connection_stays_failed() -> None:
    conn = connected()
    rejected(conn, frames(m.Have(10)), "have message for piece 10")
    rejected(conn, frames(m.Have(1)), "connection already failed: have message for piece 10")
    rejected(conn, b"", "connection already failed")


def test_bad_payload_length_is_rejected() -> None:
    conn = connected()
    rejected(
        conn,
        b"\x00\x00\x00\x04\x04\x00\x00\x00",
        "have message with a 3-byte payload, expected 4 bytes",
    )


# -- bitfield ---------------------------------------------------------------------


def test_bitfield_becomes_a_peer_bitfield_event() -> None:
    conn = connected()
    [event] = conn.receive_data(frames(m.BitfieldMessage(b"\xa0\x40")))
    assert isinstance(event, PeerBitfield)
    assert list(event.bitfield) == [0, 2, 9]
    assert event.bitfield.length == 10


def test_bitfield_of_wrong_length_is_rejected() -> None:
    rejected(
        connected(),
        frames(m.BitfieldMessage(b"\xff")),
        "bad bitfield message: bitfield of 1 bytes for 10 pieces, expected 2 bytes",
    )


def test_spare_bits_of_a_bitfield_are_cleared_not_refused() -> None:
    """libtorrent ignores the bits after the last piece: they name no piece, so harmless."""
    [event] = connected().receive_data(frames(m.BitfieldMessage(b"\xff\xff")))
    assert isinstance(event, PeerBitfield)
    assert event.bitfield == Bitfield.full(10)
    assert event.bitfield.count() == 10
    assert event.bitfield.to_bytes() == b"\xff\xc0"


@pytest.mark.parametrize(
    "before",
    [
        m.Have(1),
        m.Unchoke(),
        m.Interested(),
        m.Request(0, 0, 16384),
        m.BitfieldMessage(b"\xff\xc0"),
    ],
    ids=lambda msg: type(msg).__name__,
)
def test_a_late_bitfield_is_accepted_and_replaces_the_first(before: m.Message) -> None:
    """aria2 sends BITFIELD again after some HAVEs; libtorrent accepts it at any time."""
    conn = connected()
    events = conn.receive_data(frames(before, m.BitfieldMessage(b"\x80\x40")))
    assert not conn.failed
    assert isinstance(events[-1], PeerBitfield)
    assert list(events[-1].bitfield) == [0, 9]


def test_a_late_bitfield_of_the_wrong_length_is_still_refused() -> None:
    conn = connected()
    conn.receive_data(frames(m.Have(1)))
    rejected(conn, frames(m.BitfieldMessage(b"\xff")), "bitfield of 1 bytes for 10 pieces")


@pytest.mark.parametrize(
    "repeated",
    [m.Choke(), m.Unchoke(), m.Interested(), m.NotInterested(), m.Have(3)],
    ids=lambda msg: type(msg).__name__,
)
def test_repeated_flags_and_haves_are_accepted(repeated: m.Message) -> None:
    """A second CHOKE, INTERESTED or HAVE of the same piece says nothing new: no error."""
    conn = connected()
    events = conn.receive_data(frames(repeated, repeated, repeated))
    assert events == [repeated] * 3
    assert not conn.failed


def test_bitfield_may_follow_keep_alive_port_and_extension_messages() -> None:
    """Some clients send their BEP 10 handshake or DHT port before the bitfield."""
    conn = connected()
    events = conn.receive_data(
        frames(
            m.KeepAlive(), m.Unknown(20, b"\x00de"), m.Port(6881), m.BitfieldMessage(b"\x00\x00")
        )
    )
    assert isinstance(events[-1], PeerBitfield)


# -- range checks -------------------------------------------------------------------


def test_have_out_of_range() -> None:
    rejected(
        connected(),
        frames(m.Have(10)),
        "have message for piece 10, but the torrent has 10 pieces",
    )


@pytest.mark.parametrize(("cls", "name"), [(m.Request, "request"), (m.Cancel, "cancel")])
def test_block_request_checks(cls: type[m.Request] | type[m.Cancel], name: str) -> None:
    conn = connected()
    assert conn.receive_data(frames(cls(8, 16384, 16384), cls(9, 0, 1000))) == [
        cls(8, 16384, 16384),
        cls(9, 0, 1000),
    ]
    rejected(connected(), frames(cls(10, 0, 16384)), f"{name} message for piece 10, but the")
    rejected(connected(), frames(cls(0, 0, 0)), f"{name} message for 0 bytes, outside 1..16384")
    rejected(
        connected(), frames(cls(0, 0, 16385)), f"{name} message for 16385 bytes, outside 1..16384"
    )
    rejected(
        connected(),
        frames(cls(9, 0, 1001)),
        f"{name} message for bytes 0..1001 of piece 9, which has 1000 bytes",
    )
    rejected(
        connected(),
        frames(cls(0, 2**32 - 1, 16384)),
        f"{name} message for bytes {2**32 - 1}..",
    )


def test_piece_checks() -> None:
    conn = connected()
    assert conn.receive_data(frames(m.Piece(0, 32768 - 5, b"12345"))) == [
        m.Piece(0, 32768 - 5, b"12345")
    ]
    rejected(connected(), frames(m.Piece(10, 0, b"x")), "piece message for piece 10, but the")
    rejected(
        connected(),
        frames(m.Piece(9, 999, b"xy")),
        "piece message for bytes 999..1001 of piece 9, which has 1000 bytes",
    )


def test_pieces_are_parsed_in_order_whatever_the_reads_and_each_block_is_its_own_bytes() -> None:
    """PIECE has a parse path of its own (the download's hot path): cut anywhere, mixed
    with other messages, it gives the same events as one read, each block a bytes copy
    that later reads cannot change."""
    msgs = [
        m.Piece(0, 0, bytes(range(200)) * 80),
        m.Piece(0, 16384, b"\x01" * 16384),
        m.Have(3),
        m.Piece(9, 0, b"last" * 250),
        m.KeepAlive(),
        m.Piece(1, 32767, b"!"),
    ]
    data = frames(*msgs)
    whole = connected().receive_data(data)
    assert whole == msgs
    for cut in (1, 7, 13, 100, 16397, 20000):
        conn = connected()
        events = []
        for start in range(0, len(data), cut):
            events += conn.receive_data(data[start : start + cut])
        assert events == msgs, cut
        pieces = [e for e in events if isinstance(e, m.Piece)]
        assert all(type(p.block) is bytes for p in pieces)


def test_a_piece_too_short_for_its_header_is_named() -> None:
    rejected(
        connected(),
        struct.pack(">IBI", 5, 7, 0),
        "piece message with a 4-byte payload, expected at least 8 bytes",
    )


def test_pieces_are_dropped_in_metadata_mode_even_on_their_own_parse_path() -> None:
    conn = connected()
    conn.ignore_pieces()
    assert conn.receive_data(frames(m.Piece(0, 0, b"x" * 10), m.Have(1))) == [m.KeepAlive()] * 2


# -- sending ------------------------------------------------------------------------


def test_send_encodes_and_tracks_our_flags() -> None:
    conn = connected()
    assert conn.am_choking and not conn.am_interested
    assert conn.send(m.Unchoke()) == m.encode(m.Unchoke())
    assert not conn.am_choking
    conn.send(m.Interested())
    assert conn.am_interested
    conn.send(m.Have(1))
    conn.send(m.NotInterested())
    conn.send(m.Choke())
    assert conn.am_choking and not conn.am_interested


# -- properties ------------------------------------------------------------------------

valid_messages = st.one_of(
    st.just(m.KeepAlive()),
    st.sampled_from([m.Choke(), m.Unchoke(), m.Interested(), m.NotInterested()]),
    st.builds(m.Have, st.integers(0, 9)),
    st.builds(m.Request, st.integers(0, 8), st.integers(0, 16384), st.integers(1, 16384)),
    st.builds(m.Piece, st.integers(0, 8), st.integers(0, 100), st.binary(max_size=300)),
    st.builds(m.Port, st.integers(0, 65535)),
    st.builds(m.Unknown, st.integers(10, 255), st.binary(max_size=50)),
)


@given(st.lists(valid_messages, max_size=30), st.lists(st.integers(0, 2000), max_size=10))
def test_any_split_of_valid_traffic_gives_the_same_events(
    msgs: list[m.Message], cuts: list[int]
) -> None:
    data = HANDSHAKE + frames(*msgs)
    points = sorted({min(c, len(data)) for c in cuts})
    conn = PeerConnection(OUR_ID, INFO_HASH, GEOMETRY)
    events = []
    start = 0
    for point in [*points, len(data)]:
        events.extend(conn.receive_data(data[start:point]))
        start = point
    assert events[0] == HandshakeReceived(INFO_HASH, PEER_ID, b"\x00" * 7 + b"\x01")
    assert events[1:] == msgs


@given(st.lists(st.binary(max_size=80), max_size=10))
def test_garbage_raises_only_remote_protocol_error(chunks: list[bytes]) -> None:
    conn = PeerConnection(OUR_ID, INFO_HASH, GEOMETRY)
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
    except RemoteProtocolError:
        assert conn.failed


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            # Plausible frames with small lengths and known ids reach the range checks.
            st.tuples(st.integers(0, 20), st.integers(0, 12), st.binary(max_size=20)).map(
                lambda t: t[0].to_bytes(4, "big") + bytes([t[1]]) + t[2]
            ),
        ),
        max_size=12,
    )
)
def test_garbage_after_a_good_handshake_raises_only_remote_protocol_error(
    chunks: list[bytes],
) -> None:
    conn = connected()
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
    except RemoteProtocolError:
        assert conn.failed
