"""The KRPC codec: round trips, strict parsing, the errors a node must answer, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt import bencode
from bt.dht.krpc import (
    MAX_DATAGRAM,
    ErrorCode,
    ErrorMessage,
    KrpcError,
    NodeInfo,
    Query,
    Response,
    encode,
    pack_nodes,
    parse,
    unpack_nodes,
)

ID = b"i" * 20
OTHER = b"o" * 20


def test_ping_wire_format_is_bep5s() -> None:
    """BEP 5's own example ping query and reply."""
    query = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
    assert parse(query) == Query(b"aa", "ping", b"abcdefghij0123456789")
    assert encode(parse(query)) == query
    reply = b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"
    assert parse(reply) == Response(b"aa", b"mnopqrstuvwxyz123456")


def test_error_wire_format_is_bep5s() -> None:
    error = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"
    assert parse(error) == ErrorMessage(b"aa", 201, "A Generic Error Ocurred")
    assert encode(parse(error)) == error


@pytest.mark.parametrize(
    "message",
    [
        Query(b"t1", "ping", ID),
        Query(b"t2", "find_node", ID, target=OTHER, want=(b"n4", b"n6")),
        Query(b"t3", "get_peers", ID, info_hash=OTHER, read_only=True),
        Query(b"t4", "announce_peer", ID, info_hash=OTHER, port=6881, token=b"tok"),
        Query(b"t5", "announce_peer", ID, info_hash=OTHER, token=b"t", implied_port=True),
        Query(b"t6", "ping", ID, version=b"BT01"),
        Response(b"r1", ID, nodes=(NodeInfo(OTHER, "127.0.0.2", 6881),)),
        Response(b"r2", ID, nodes6=(NodeInfo(OTHER, "::1", 6881),), token=b"x"),
        Response(b"r3", ID, values=(("1.2.3.4", 1), ("2001:db8::1", 2)), token=b"x"),
        Response(b"r4", ID, ip=("8.8.8.8", 6881)),
        ErrorMessage(b"e1", ErrorCode.PROTOCOL, "bad token"),
    ],
)
def test_round_trip(message: Query | Response | ErrorMessage) -> None:
    assert parse(encode(message)) == message


def test_compact_nodes() -> None:
    nodes = (NodeInfo(ID, "10.0.0.1", 1), NodeInfo(OTHER, "10.0.0.2", 65535))
    packed = pack_nodes(nodes)
    assert len(packed) == 52
    assert unpack_nodes(packed) == nodes
    six = (NodeInfo(ID, "2001:db8::2", 7),)
    assert len(pack_nodes(six, ipv6=True)) == 38
    assert unpack_nodes(pack_nodes(six, ipv6=True), ipv6=True) == six
    with pytest.raises(ValueError):
        unpack_nodes(packed[:-1])


def _query(args: dict[bytes, object], method: bytes = b"find_node") -> bytes:
    return bencode.encode({b"t": b"aa", b"y": b"q", b"q": method, b"a": args})


@pytest.mark.parametrize(
    ("datagram", "code"),
    [
        (_query({b"id": ID, b"target": OTHER}, b"vote"), ErrorCode.METHOD_UNKNOWN),
        (_query({b"id": ID}), ErrorCode.PROTOCOL),  # find_node without target
        (_query({b"id": ID[:19], b"target": OTHER}), ErrorCode.PROTOCOL),
        (_query({b"id": ID, b"target": 5}), ErrorCode.PROTOCOL),
        (_query({b"id": ID, b"info_hash": OTHER}, b"announce_peer"), ErrorCode.PROTOCOL),
        (
            _query(
                {b"id": ID, b"info_hash": OTHER, b"port": 70000, b"token": b"t"}, b"announce_peer"
            ),
            ErrorCode.PROTOCOL,
        ),
        (_query({b"id": ID, b"target": OTHER, b"want": [1]}), ErrorCode.PROTOCOL),
        (bencode.encode({b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": b"x"}), ErrorCode.PROTOCOL),
    ],
)
def test_bad_queries_are_answerable_errors(datagram: bytes, code: ErrorCode) -> None:
    """A malformed query with a readable tid gets an error reply (203, or 204 for the method)."""
    with pytest.raises(KrpcError) as raised:
        parse(datagram)
    assert raised.value.answerable
    assert raised.value.tid == b"aa"
    assert raised.value.code == code


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"garbage",
        b"d1:t2:aae",  # no type
        b"li1ee",
        b"d1:q4:ping1:y1:qe",  # no tid
        b"d1:t0:1:y1:qe",  # empty tid
        bencode.encode({b"t": b"x" * 33, b"y": b"q"}),
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re" + b"x",  # trailing data
        b"d1:y1:r1:t2:aa1:rd2:id20:mnopqrstuvwxyz123456ee",  # unsorted keys
        bencode.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID, b"nodes": b"x" * 27}}),
        bencode.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID, b"values": [b"x" * 7]}}),
        bencode.encode({b"t": b"aa", b"y": b"e", b"e": [b"201", b"x"]}),
        bencode.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID}, b"pad": b"x" * MAX_DATAGRAM}),
    ],
)
def test_garbage_and_bad_replies_are_not_answerable(datagram: bytes) -> None:
    with pytest.raises(KrpcError) as raised:
        parse(datagram)
    assert not raised.value.answerable


def test_unknown_keys_are_ignored() -> None:
    """Extensions (BEP 44, 51 ...) add keys; a ping is still a ping."""
    datagram = bencode.encode(
        {b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": {b"id": ID, b"zz": 1}, b"x": b""}
    )
    assert parse(datagram) == Query(b"aa", "ping", ID)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=MAX_DATAGRAM + 10))
def test_fuzz_raw_bytes(data: bytes) -> None:
    """Whatever arrives, parse returns a message or raises KrpcError, nothing else."""
    try:
        parse(data)
    except KrpcError:
        pass


_values = st.recursive(
    st.integers(-(10**6), 10**6) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.binary(max_size=12), children, max_size=5)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        b"t",
        b"y",
        b"q",
        b"a",
        b"r",
        b"e",
        b"id",
        b"target",
        b"info_hash",
        b"port",
        b"token",
        b"implied_port",
        b"want",
        b"nodes",
        b"nodes6",
        b"values",
        b"ip",
        b"v",
        b"ro",
    ]
)
_structured = st.fixed_dictionaries(
    {b"t": st.binary(min_size=1, max_size=4), b"y": st.sampled_from([b"q", b"r", b"e"])},
    optional={
        b"q": st.sampled_from([b"ping", b"find_node", b"get_peers", b"announce_peer", b"x"]),
        b"a": st.dictionaries(_keys, _values | st.binary(min_size=20, max_size=20), max_size=6),
        b"r": st.dictionaries(_keys, _values | st.binary(min_size=20, max_size=20), max_size=6),
        b"e": _values,
        b"ip": st.binary(max_size=20),
    },
)


@settings(max_examples=400, deadline=None)
@given(_structured)
def test_fuzz_near_valid_messages(body: dict[bytes, object]) -> None:
    """The right skeleton with wrong details: a message that round-trips, or KrpcError."""
    try:
        message = parse(bencode.encode(body))
    except KrpcError:
        return
    assert parse(encode(message)) == message


_node_ids = st.binary(min_size=20, max_size=20)
_v4 = st.ip_addresses(v=4).map(str)
_ports = st.integers(1, 65535)


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        Response,
        tid=st.binary(min_size=1, max_size=8),
        sender=_node_ids,
        nodes=st.lists(st.builds(NodeInfo, _node_ids, _v4, _ports), max_size=8).map(tuple),
        values=st.lists(st.tuples(_v4, _ports), max_size=20).map(tuple),
        token=st.none() | st.binary(min_size=1, max_size=20),
    )
)
def test_fuzz_response_round_trip(response: Response) -> None:
    assert parse(encode(response)) == response


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        Query,
        tid=st.binary(min_size=1, max_size=8),
        method=st.sampled_from(["ping", "find_node", "get_peers", "announce_peer"]),
        sender=_node_ids,
        target=_node_ids,
        info_hash=_node_ids,
        port=_ports,
        token=st.binary(min_size=1, max_size=20),
        implied_port=st.booleans(),
        want=st.lists(st.sampled_from([b"n4", b"n6"]), max_size=2).map(tuple),
        read_only=st.booleans(),
    )
)
def test_fuzz_query_round_trip(query: Query) -> None:
    """Each method keeps exactly the arguments it has; they survive the wire."""
    kept = {
        "ping": {},
        "find_node": {"target": query.target},
        "get_peers": {"info_hash": query.info_hash},
        "announce_peer": {
            "info_hash": query.info_hash,
            "port": query.port,
            "token": query.token,
            "implied_port": query.implied_port,
        },
    }[query.method]
    shaped = Query(
        query.tid, query.method, query.sender, want=query.want, read_only=query.read_only, **kept
    )
    assert parse(encode(shaped)) == shaped
