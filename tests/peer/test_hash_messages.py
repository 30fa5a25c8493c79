"""BEP 52 hash request / hashes / hash reject: the codec, its bounds, round trips and fuzz."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.errors import RemoteProtocolError
from bt.merkle import uncle_count
from bt.peer.connection import PeerConnection
from bt.peer.hash_messages import (
    HASH_HEADER_SIZE,
    MAX_HASH_COUNT,
    Hashes,
    HashReject,
    HashRequest,
    encode_hash_message,
    parse_hash_message,
)
from bt.peer.messages import (
    WITH_BOTH,
    Handshake,
    MessageId,
    Reserved,
    Unknown,
    encode,
    encode_handshake,
    parse,
    payload_table,
)

ROOT = bytes(range(32))
roots = st.binary(min_size=32, max_size=32)
u32 = st.integers(0, 2**32 - 1)
powers = st.integers(0, 13).map(lambda k: 1 << k)


def _body(data: bytes) -> tuple[int, bytes]:
    (length,) = struct.unpack(">I", data[:4])
    assert length == len(data) - 4
    return data[4], data[5:]


@given(roots, u32, u32, u32, u32, st.booleans())
def test_request_and_reject_round_trip(root, base, index, length, proof, reject):
    cls = HashReject if reject else HashRequest
    msg = cls(root, base, index, length, proof)
    data = encode_hash_message(msg)
    assert len(data) == 4 + 1 + HASH_HEADER_SIZE
    ident, payload = _body(data)
    assert ident == (MessageId.HASH_REJECT if reject else MessageId.HASH_REQUEST)
    assert parse_hash_message(ident, payload) == msg
    assert encode(msg) == data  # through the general message table too


@given(roots, u32, u32, st.integers(0, 6).map(lambda k: 1 << k), st.integers(0, 20), roots)
def test_hashes_round_trip(root, base, index, length, proof, seed):
    count = length + uncle_count(length, proof)
    hashes = tuple(bytes([n % 256]) + seed[1:] for n in range(count))
    msg = Hashes(root, base, index, length, proof, hashes)
    wire = encode_hash_message(msg)
    ident, payload = _body(wire)
    parsed = parse_hash_message(ident, payload)
    assert parsed == msg
    assert parsed.nodes == hashes[:length] and parsed.uncles == hashes[length:]
    assert parsed.request == HashRequest(root, base, index, length, proof)


def test_hashes_must_hold_exactly_what_the_header_implies():
    header = struct.pack(">32sIIII", ROOT, 0, 0, 4, 3)  # 4 nodes + 2 uncles
    good = header + bytes(32 * 6)
    assert len(parse_hash_message(22, good).hashes) == 6
    with pytest.raises(RemoteProtocolError, match="7 hashes, its header implies 6"):
        parse_hash_message(22, good + bytes(32))
    with pytest.raises(RemoteProtocolError, match="5 hashes, its header implies 6"):
        parse_hash_message(22, good[:-32])
    with pytest.raises(RemoteProtocolError, match="whole 32-byte hashes"):
        parse_hash_message(22, good + b"x")
    with pytest.raises(RemoteProtocolError, match="48-byte header"):
        parse_hash_message(22, header[:40])


@pytest.mark.parametrize("length", [0, 3, MAX_HASH_COUNT * 2])
def test_hashes_length_is_a_bounded_power_of_two(length):
    header = struct.pack(">32sIIII", ROOT, 0, 0, length, 0)
    with pytest.raises(RemoteProtocolError, match="power of two"):
        parse_hash_message(22, header + bytes(32 * max(length, 1)))


def test_requests_are_exactly_48_bytes():
    payload = struct.pack(">32sIIII", ROOT, 0, 0, 2, 0)
    for ident, name in ((21, "hash-request"), (23, "hash-reject")):
        with pytest.raises(RemoteProtocolError, match=f"{name} message with a 49-byte"):
            parse_hash_message(ident, payload + b"x")
        with pytest.raises(RemoteProtocolError, match=name):
            parse(ident, payload[:47], payload_table(fast=True, extended=True, v2=True))


def test_hash_messages_parse_only_when_v2_was_negotiated():
    payload = struct.pack(">32sIIII", ROOT, 0, 0, 2, 0)
    assert isinstance(parse(21, payload, WITH_BOTH), Unknown)
    v2 = payload_table(fast=True, extended=True, v2=True)
    assert parse(21, payload, v2) == HashRequest(ROOT, 0, 0, 2, 0)


@given(st.integers(21, 23), st.binary(max_size=400))
def test_fuzz_hash_payloads_parse_or_raise_a_protocol_error(ident, payload):
    try:
        msg = parse_hash_message(ident, payload)
    except RemoteProtocolError:
        return
    assert _body(encode_hash_message(msg)) == (ident, payload)


# -- the connection: the v2 bit, the hash a peer may use, the frame cap -------------

V1 = b"\x01" * 20
V2 = b"\x02" * 20
PEER = b"-XX0001-" + b"p" * 12
US = b"-bt0001-" + b"u" * 12


class _Geometry:
    num_pieces = 8

    def piece_size(self, index: int) -> int:
        return 32768


def _connection(**kwargs) -> PeerConnection:
    reserved = Reserved.of(Reserved.EXTENSION_PROTOCOL, Reserved.FAST, Reserved.V2)
    return PeerConnection(US, V1, _Geometry(), reserved=reserved, **kwargs)


def test_a_dialled_hybrid_peer_may_answer_with_the_v2_hash():
    connection = _connection(v2_hash=V2, also_known_as=(V1, V2))
    (event,) = connection.receive_data(encode_handshake(Handshake(V2, PEER)))
    assert event.info_hash == V2
    assert connection.v2  # the truncated v2 hash says so without the bit (libtorrent)
    request = HashRequest(ROOT, 0, 0, 2, 0)
    assert connection.receive_data(encode(request)) == [request]


def test_a_stranger_hash_is_still_refused():
    connection = _connection(v2_hash=V2, also_known_as=(V1, V2))
    with pytest.raises(RemoteProtocolError, match="expected"):
        connection.receive_data(encode_handshake(Handshake(b"\x03" * 20, PEER)))


def test_v2_needs_both_sides():
    plain = PeerConnection(US, V1, _Geometry(), reserved=Reserved.of(Reserved.FAST))
    bit = Reserved.of(Reserved.V2)
    plain.receive_data(encode_handshake(Handshake(V1, PEER, bit)))
    assert not plain.v2
    assert isinstance(plain.receive_data(encode(HashRequest(ROOT, 0, 0, 2, 0)))[0], Unknown)
    ours = _connection(v2_hash=V2)
    ours.receive_data(encode_handshake(Handshake(V1, PEER, bit)))
    assert ours.v2


def test_a_v2_connection_takes_a_hashes_message_of_8192_nodes():
    connection = _connection(v2_hash=V2)
    connection.receive_data(encode_handshake(Handshake(V2, PEER)))
    big = Hashes(ROOT, 0, 0, MAX_HASH_COUNT, 12, (ROOT,) * MAX_HASH_COUNT)
    assert connection.receive_data(encode(big)) == [big]


def test_incoming_binding_answers_a_hybrid_v1_hash_with_the_v2_one():
    connection = PeerConnection(US, reserved=Reserved.of(Reserved.FAST))
    connection.receive_data(encode_handshake(Handshake(V1, PEER, Reserved.of(Reserved.V2))))
    connection.bind(V1, _Geometry(), v2_hash=V2)
    assert connection.handshake_bytes()[28:48] == V2
    assert Reserved.has(connection.our_reserved, Reserved.V2)
    assert connection.v2
    plain = PeerConnection(US, reserved=Reserved.of(Reserved.FAST))
    plain.receive_data(encode_handshake(Handshake(V1, PEER)))
    plain.bind(V1, _Geometry(), v2_hash=V2)
    assert plain.handshake_bytes()[28:48] == V1 and not plain.v2
    with pytest.raises(ValueError, match="binding info-hash"):
        PeerConnection(US, V1).bind(b"\x04" * 20, _Geometry(), v2_hash=V2)


@given(st.lists(st.tuples(st.integers(20, 24), st.binary(max_size=200)), max_size=6))
def test_fuzz_a_v2_connection_takes_frames_or_fails_cleanly(frames):
    connection = _connection(v2_hash=V2)
    connection.receive_data(encode_handshake(Handshake(V2, PEER)))
    wire = b"".join(struct.pack(">IB", len(p) + 1, ident) + p for ident, p in frames)
    try:
        events = connection.receive_data(wire)
    except RemoteProtocolError:
        return
    assert len(events) == len(frames)
