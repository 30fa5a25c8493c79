"""Garbage-in properties of every parser a stranger can feed, and of the engine behind the wire.

Whatever bytes arrive, each parser raises only its own error type (never an
IndexError, a struct.error, a RecursionError...), and whatever it accepts is
valid by its own rules. The default example counts keep this file fast; a
longer campaign sets ``BT_FUZZ_EXAMPLES`` (see docs/reliability.rst)::

    BT_FUZZ_EXAMPLES=20000 pytest -q tests/test_fuzz.py --hypothesis-show-statistics

Tracker responses are fuzzed in tests/tracker/test_announce.py, bencode in
tests/test_bencode.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_torrent import DATA, PIECE, FakeDisk, ScriptedPeer, connect, leecher, make_seed
from torrents import handmade_info, handmade_torrent
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import provider

from bt import bencode
from bt.bitfield import Bitfield
from bt.errors import MetainfoError, RemoteProtocolError
from bt.geometry import PieceGeometry
from bt.metainfo import MAX_PIECE_LENGTH, Metainfo, parse_metainfo
from bt.peer import messages as m
from bt.peer.connection import (
    Event,
    HandshakeReceived,
    PeerBitfield,
    PeerConnection,
)
from bt.torrent import Torrent

EXAMPLES = int(os.environ.get("BT_FUZZ_EXAMPLES", "200"))
#: Properties that build a whole Torrent per example run a quarter as many.
ENGINE_EXAMPLES = max(1, EXAMPLES // 4)

fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
engine_fuzz = settings(fuzz, max_examples=ENGINE_EXAMPLES)

HUGE = 0xFFFF_FFFF


# == (a) metainfo =================================================================================

#: Strings a hostile .torrent would use for names and paths, and for fields of every type.
nasty_strings = st.sampled_from(
    [
        b"",
        b".",
        b"..",
        b"/",
        b"/etc/passwd",
        b"../../escape",
        b"a/b",
        b"a\\b",
        b"..\\..\\escape",
        b"C:",
        b"c:\\windows",
        b"nul\x00byte",
        b"\xff\xfe not utf-8",
        b"\xed\xa0\x80",  # an encoded surrogate: invalid UTF-8
        "é".encode(),
        b"x" * 20,
        b"x" * 40,
    ]
)
interesting_keys = st.sampled_from(
    [
        b"info",
        b"name",
        b"name.utf-8",
        b"piece length",
        b"pieces",
        b"length",
        b"files",
        b"path",
        b"path.utf-8",
        b"attr",
        b"private",
        b"announce",
        b"announce-list",
        b"url-list",
        b"comment",
        b"created by",
        b"creation date",
    ]
)
bencodable = st.recursive(
    st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, -1, 16384, MAX_PIECE_LENGTH, MAX_PIECE_LENGTH + 1])
    | nasty_strings
    | st.binary(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(interesting_keys | st.binary(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)

# Joined from a list rather than st.text: it avoids building Hypothesis's unicode charmap.
components = (
    st.lists(st.sampled_from("abz019._- é"), min_size=1, max_size=8)
    .map("".join)
    .filter(lambda s: s not in (".", ".."))
)


@st.composite
def valid_torrents(draw: st.DrawFn) -> bytes:
    """Small torrents bt must accept: single- or multi-file, with optional fields."""
    piece_length = draw(st.sampled_from([16, 1000, 16384, 32768]))
    name = draw(components)
    if draw(st.booleans()):
        info = handmade_info(
            name=name, length=draw(st.integers(1, 8 * piece_length)), piece_length=piece_length
        )
    else:
        files = draw(
            st.lists(
                st.tuples(
                    st.lists(components, min_size=1, max_size=3),
                    st.integers(0, 3 * piece_length),
                ),
                min_size=1,
                max_size=4,
                unique_by=lambda f: tuple(f[0]),
            ).filter(lambda files: _writable([tuple(path) for path, _ in files]))
        )
        if not sum(size for _, size in files):
            files[0] = (files[0][0], 1)
        info = handmade_info(files, name=name, piece_length=piece_length)
    if draw(st.booleans()):
        info["private"] = draw(st.sampled_from([0, 1]))
    top: dict[str, Any] = {}
    if draw(st.booleans()):
        top["announce"] = b"http://tracker.example/announce"
        top["announce-list"] = [[b"http://a/announce", b"udp://b:1"], [b"http://c/"]]
    if draw(st.booleans()):
        top["comment"] = b"a comment"
        top["created by"] = b"hypothesis"
        top["creation date"] = draw(st.integers(0, 2**40))
    return handmade_torrent(info, **top)


def check_metainfo(meta: Metainfo) -> None:
    """What the rest of bt trusts about any Metainfo that parsing let through."""
    assert 0 < meta.piece_length <= MAX_PIECE_LENGTH
    assert meta.total_length > 0
    assert meta.num_pieces == -(-meta.total_length // meta.piece_length)
    assert all(len(h) == 20 for h in meta.piece_hashes)
    assert 0 < meta.piece_size(meta.num_pieces - 1) <= meta.piece_length
    if meta.format == "v2":
        assert meta.info_hash == hashlib.sha256(meta.raw_info).digest()[:20]
    else:
        assert meta.info_hash == hashlib.sha1(meta.raw_info).digest()
    assert isinstance(bencode.decode(meta.raw_info), dict)
    offset = 0
    for entry in meta.files:
        assert entry.length >= 0 and entry.offset == offset
        offset += entry.length
        assert entry.path
        if not entry.padding:  # never written, so pads may share a path
            assert len("/".join(entry.path).encode()) <= 4095
            assert all(len(part.encode()) <= 255 for part in entry.path)
        if meta.is_multi_file:
            assert entry.path[0] == meta.name
        for part in entry.path:
            assert part not in ("", ".", "..")
            assert not any(bad in part for bad in ("/", "\\", "\x00")), part
            assert not (len(part) >= 2 and part[1] == ":" and part[0].isalpha()), part
    assert offset == meta.total_length
    assert _writable([entry.path for entry in meta.files if not entry.padding])
    if meta.format != "v1":
        check_v2(meta)


def check_v2(meta: Metainfo) -> None:
    """What the v2 verifier trusts: aligned files with roots, a V2Piece for every piece."""
    assert meta.info_hash_v2 == hashlib.sha256(meta.raw_info).digest()
    assert meta.piece_length >= 16384 and not meta.piece_length & (meta.piece_length - 1)
    for entry in meta.files:
        if entry.padding or not entry.length:
            assert entry.pieces_root is None
        else:
            assert entry.pieces_root is not None and len(entry.pieces_root) == 32
            assert entry.offset % meta.piece_length == 0
    for index in range(meta.num_pieces):
        piece = meta.v2_piece(index)
        assert piece is not None and len(piece.expected) == 32
        assert 0 < piece.data_length <= meta.piece_size(index)


def _writable(paths: list[tuple[str, ...]]) -> bool:
    """No two files at one path, and no file where another needs a folder."""
    files = set(paths)
    folders = {path[:depth] for path in paths for depth in range(1, len(path))}
    return len(files) == len(paths) and not files & folders


def parses_or_refuses(data: bytes) -> Metainfo | None:
    """Only a Metainfo that passes every check, or a MetainfoError: nothing else."""
    try:
        meta = parse_metainfo(data)
    except MetainfoError as exc:
        message = str(exc)
        assert message
        event(f"refused: {_refusal_kind(message)}")
        return None
    check_metainfo(meta)
    event("accepted")
    return meta


def _refusal_kind(message: str) -> str:
    """A coarse class of refusal, for the statistics of a campaign."""
    if message.startswith("not valid bencode"):
        return "not bencode"
    if "path" in message or "name" in message:
        return "unsafe or bad name/path"
    return "other field"


@fuzz
@given(st.binary(max_size=400))
def test_metainfo_from_arbitrary_bytes_raises_only_metainfo_error(data: bytes) -> None:
    parses_or_refuses(data)


@fuzz
@given(
    st.lists(st.lists(st.sampled_from(["a", "b", "é" * 128]), min_size=1, max_size=3), max_size=5)
)
def test_file_layouts_are_accepted_exactly_when_every_file_can_be_created(
    paths: list[list[str]],
) -> None:
    """Collisions and over-long names among random file trees: refused naming the entry."""
    files = [(path, 1) for path in paths] or [(["only"], 1)]
    data = handmade_torrent(handmade_info(files, piece_length=16))
    writable = _writable([tuple(path) for path, _ in files]) and all(
        len(part.encode()) <= 255 for path, _ in files for part in path
    )
    try:
        meta = parse_metainfo(data)
    except MetainfoError as exc:
        assert not writable, exc
        assert re.match(r"file \d+ 't/", str(exc)), exc
    else:
        assert writable
        check_metainfo(meta)


byte_edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
        st.integers(0, 2**20),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=8,
)


def edit_bytes(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, position, value in edits:
        if kind == "insert":
            buf.insert(position % (len(buf) + 1), value)
            continue
        if not buf:
            continue
        at = position % len(buf)
        if kind == "flip":
            buf[at] ^= 1 << (value % 8)
        elif kind == "set":
            buf[at] = value
        elif kind == "delete":
            del buf[at]
        else:
            del buf[at:]
    return bytes(buf)


@fuzz
@given(valid_torrents(), byte_edits)
def test_metainfo_from_byte_mutated_torrents_raises_only_metainfo_error(
    original: bytes, edits: list[tuple[str, int, int]]
) -> None:
    check_metainfo(parse_metainfo(original))  # the generator makes valid torrents
    parses_or_refuses(edit_bytes(original, edits))


def node_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a decoded bencode value, as a path of keys and list indexes."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from node_paths(child, (*path, key))
    elif isinstance(value, list):
        for number, child in enumerate(value):
            yield from node_paths(child, (*path, number))


def locate(root: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        root = root[step]
    return root


@fuzz
@given(valid_torrents(), st.data())
def test_metainfo_with_replaced_values_raises_only_metainfo_error(
    original: bytes, data: st.DataObject
) -> None:
    """Valid bencode, wrong content: values swapped for anything bencodable, keys
    dropped or added, then encoded again."""
    parses_or_refuses(bencode.encode(replace_values(bencode.decode(original), data)))


def replace_values(
    root: Any,
    data: st.DataObject,
    keys: st.SearchStrategy[bytes] = interesting_keys,
    values: st.SearchStrategy[Any] = bencodable,
) -> Any:
    """1 to 4 edits of a decoded torrent: a value replaced, a key dropped or one added."""
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        path = data.draw(st.sampled_from(sorted(node_paths(root), key=repr)), label="path")
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if not path:
            action = "add"  # the root itself stays a dictionary
        if action == "replace":
            locate(root, path[:-1])[path[-1]] = data.draw(values, label="value")
        elif action == "delete":
            del locate(root, path[:-1])[path[-1]]
        else:
            node = locate(root, path)
            if isinstance(node, dict):
                key = data.draw(keys | st.binary(max_size=6), label="key")
                node[key] = data.draw(values, label="value")
            elif isinstance(node, list):
                node.append(data.draw(values, label="value"))
    return root


# == (b) the peer wire codec =======================================================================

OUR_ID = b"-BT0100-fuzzing00000"
PEER_ID = b"-XX0000-fuzzpeer0000"
INFO_HASH = b"\x11" * 20


@st.composite
def geometries(draw: st.DrawFn) -> PieceGeometry:
    piece_length = draw(st.sampled_from([1, 1000, 16384, 32768, 2**20]) | st.integers(1, 70_000))
    num_pieces = draw(st.integers(1, 40) | st.sampled_from([8 * 65536, 8 * 65536 + 3]))
    last = draw(st.integers(1, piece_length))
    return PieceGeometry(num_pieces, piece_length, piece_length * (num_pieces - 1) + last)


edge_u32 = st.sampled_from(
    [0, 1, 5, 6, 999, 1000, 1001, 16383, 16384, 16385, 32767, 32768, 2**31 - 1, 2**31, HUGE]
) | st.integers(0, HUGE)


def frame(message_id: int, payload: bytes, length: int | None = None) -> bytes:
    declared = 1 + len(payload) if length is None else length
    return declared.to_bytes(4, "big") + bytes([message_id]) + payload


#: Piece indexes: below 64 they are taken modulo (pieces + 2), so that every torrent sees
#: indexes in range and just past its end; edge values are used as they are.
index_seeds = st.integers(0, 63) | edge_u32
block_lengths = st.integers(1, 16384) | edge_u32

#: Units of traffic, drawn once for any geometry and rendered by ``render``.
wire_units = st.one_of(
    st.tuples(st.just("keep-alive")),
    st.tuples(st.just("raw"), st.binary(max_size=40)),
    # A bitfield of the right size (as a pattern: huge torrents have 64 KiB bitfields) or any.
    st.tuples(st.just("bitfield"), st.binary(min_size=1, max_size=4), st.integers(0, 255)),
    st.tuples(st.just("bitfield-any"), st.binary(max_size=8)),
    # Any id with u32 fields, and a true or lying length prefix.
    st.tuples(
        st.just("fields"),
        st.integers(0, 25),
        st.lists(edge_u32, max_size=3),
        st.binary(max_size=6),
        st.none() | edge_u32,
    ),
    st.tuples(
        st.just("message"),
        st.sampled_from([m.Choke(), m.Unchoke(), m.Interested(), m.NotInterested()])
        | st.builds(m.Have, index_seeds)
        | st.builds(m.Request, index_seeds, edge_u32, block_lengths)
        | st.builds(m.Cancel, index_seeds, edge_u32, block_lengths)
        | st.builds(m.Piece, index_seeds, edge_u32, st.binary(max_size=64))
        | st.builds(m.Port, st.integers(0, 65535))
        | st.builds(m.Unknown, st.integers(10, 255), st.binary(max_size=64)),
    ),
)


def render(unit: tuple[Any, ...], geometry: PieceGeometry) -> bytes:
    """The bytes of one unit of traffic for a torrent of ``geometry``."""
    kind = unit[0]
    if kind == "keep-alive":
        return bytes(4)
    if kind == "raw":
        return unit[1]
    if kind == "bitfield":
        size = (geometry.num_pieces + 7) // 8
        return frame(m.MessageId.BITFIELD, (unit[1] * size)[: size - 1] + bytes([unit[2]]))
    if kind == "bitfield-any":
        return frame(m.MessageId.BITFIELD, unit[1])
    if kind == "fields":
        _, message_id, values, tail, length = unit
        payload = b"".join(v.to_bytes(4, "big") for v in values) + tail
        return frame(message_id, payload, length)
    msg = unit[1]
    index = getattr(msg, "index", None)
    if index is not None and index < 64:
        msg = dataclasses.replace(msg, index=index % (geometry.num_pieces + 2))
    return m.encode(msg)


def traffic(geometry: PieceGeometry, units: list[tuple[Any, ...]]) -> bytes:
    handshake = m.encode_handshake(m.Handshake(INFO_HASH, PEER_ID))
    return handshake + b"".join(render(unit, geometry) for unit in units)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def check_events(events: list[Event], geometry: PieceGeometry, handshaken: bool) -> bool:
    """Every event a connection emits is already range-checked; returns the handshake state."""
    n = geometry.num_pieces
    for item in events:
        if isinstance(item, HandshakeReceived):
            assert not handshaken, "one handshake per connection"
            handshaken = True
            continue
        assert handshaken, f"{item!r} before the handshake"
        if isinstance(item, m.Have):
            assert item.index < n
        elif isinstance(item, PeerBitfield):
            assert item.bitfield.length == n
        elif isinstance(item, m.Request | m.Cancel):
            assert item.index < n and 0 < item.length <= m.BLOCK_SIZE
            assert item.begin + item.length <= geometry.piece_size(item.index)
        elif isinstance(item, m.Piece):
            assert item.index < n
            assert item.begin + len(item.block) <= geometry.piece_size(item.index)
        elif isinstance(item, m.Unknown):
            assert item.message_id > m.MessageId.PORT
    return handshaken


def feed(conn: PeerConnection, chunks: list[bytes], geometry: PieceGeometry) -> list[Event]:
    """Feed ``chunks`` as a PeerProtocol would (binding an incoming connection on its
    handshake); returns the events, or raises the connection's RemoteProtocolError."""
    events: list[Event] = []
    handshaken = conn.peer_handshake is not None
    for chunk in chunks:
        received = conn.receive_data(chunk)
        if conn.geometry is None and conn.peer_handshake is not None:
            conn.bind(conn.peer_handshake.info_hash, geometry)
            received += conn.receive_data(b"")
        handshaken = check_events(received, geometry, handshaken)
        events += received
    return events


def refused_only_by_protocol_error(
    conn: PeerConnection, chunks: list[bytes], geometry: PieceGeometry
) -> list[Event] | None:
    try:
        events = feed(conn, chunks, geometry)
    except RemoteProtocolError as exc:
        assert conn.failed and str(exc)
        event("refused")
    else:
        event("accepted")
        return events
    try:
        conn.receive_data(b"\x00\x00\x00\x00")
    except RemoteProtocolError:
        return None
    raise AssertionError("a failed connection must stay failed")


@fuzz
@given(geometries(), st.lists(st.binary(max_size=100), max_size=10), st.booleans())
def test_peer_connection_without_a_handshake_raises_only_remote_protocol_error(
    geometry: PieceGeometry, chunks: list[bytes], incoming: bool
) -> None:
    conn = PeerConnection(OUR_ID) if incoming else PeerConnection(OUR_ID, INFO_HASH, geometry)
    refused_only_by_protocol_error(conn, chunks, geometry)


@fuzz
@given(geometries(), st.data())
def test_peer_connection_after_a_handshake_raises_only_remote_protocol_error(
    geometry: PieceGeometry, data: st.DataObject
) -> None:
    incoming = data.draw(st.booleans(), label="incoming")
    conn = PeerConnection(OUR_ID) if incoming else PeerConnection(OUR_ID, INFO_HASH, geometry)
    stream = traffic(geometry, data.draw(st.lists(wire_units, max_size=12), label="traffic"))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts")
    refused_only_by_protocol_error(conn, split(stream, cuts), geometry)


@fuzz
@given(geometries(), st.data())
def test_peer_connection_verdict_does_not_depend_on_how_tcp_splits_the_stream(
    geometry: PieceGeometry, data: st.DataObject
) -> None:
    stream = traffic(geometry, data.draw(st.lists(wire_units, max_size=12), label="traffic"))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts")
    whole = refused_only_by_protocol_error(
        PeerConnection(OUR_ID, INFO_HASH, geometry), [stream], geometry
    )
    pieces = refused_only_by_protocol_error(
        PeerConnection(OUR_ID, INFO_HASH, geometry), split(stream, cuts), geometry
    )
    assert whole == pieces


# == (d) the engine behind the wire ================================================================

NUM_PIECES = 6
LAST_PIECE = len(DATA) - (NUM_PIECES - 1) * PIECE


def _metainfo() -> Metainfo:
    info = handmade_info([(["data.bin"], len(DATA))], name="t", piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info))


METAINFO = _metainfo()


@st.composite
def engine_messages(draw: st.DrawFn) -> bytes:
    """What a hostile peer of our 6-piece torrent sends: mostly well framed, sometimes
    out of range, blocks that are right, wrong or misplaced, and noise."""
    index = st.integers(0, NUM_PIECES)
    begin = st.sampled_from([0, m.BLOCK_SIZE, 100, PIECE, HUGE])
    length = st.sampled_from([m.BLOCK_SIZE, LAST_PIECE, 1, 0, m.BLOCK_SIZE + 1])
    kind = draw(st.sampled_from(["message", "block", "block", "noise"]))
    if kind == "noise":
        return draw(st.binary(max_size=12))
    if kind == "block":
        piece = draw(st.integers(0, NUM_PIECES - 1))
        offset = draw(st.sampled_from([0, m.BLOCK_SIZE]))
        start = piece * PIECE + offset
        block = DATA[start : min(start + m.BLOCK_SIZE, (piece + 1) * PIECE)]
        if draw(st.booleans()):
            block = bytes(b ^ 0x5A for b in block)  # corrupt: fails the piece's hash
        return m.encode(m.Piece(piece, offset, block))
    bitfield = st.integers(0, 63).map(lambda bits: bytes([bits << 2]))
    msg = draw(
        st.sampled_from([m.Choke(), m.Unchoke(), m.Interested(), m.NotInterested(), m.KeepAlive()])
        | st.builds(m.Have, index)
        | st.builds(m.BitfieldMessage, bitfield | st.binary(max_size=2))
        | st.builds(m.Request, index, begin, length)
        | st.builds(m.Cancel, index, begin, length)
        | st.builds(m.Piece, index, begin, st.binary(max_size=20))
        | st.builds(m.Unknown, st.integers(10, 255), st.binary(max_size=8))
    )
    return m.encode(msg)


#: One step of a hostile peer: bytes it sends, or seconds that pass (ticks, choking, snubbing).
steps = st.lists(engine_messages() | st.floats(0.1, 40.0), max_size=25)

ALLOWED_CLOSE_REASONS = (
    "protocol error: ",
    "banned: ",
    "both sides are seeds",
    "nothing received for ",
)


@contextmanager
def no_logged_failures() -> Iterator[list[LogEvent]]:
    """Collect log events carrying a traceback (``log.failure``): there must be none."""
    failures: list[LogEvent] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if "log_failure" in event:
            failures.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield failures
    finally:
        globalLogPublisher.removeObserver(observe)
    assert not failures, [e["log_failure"].getTraceback() for e in failures]


def drive(
    hostile: ScriptedPeer,
    good: ScriptedPeer,
    clock: MemoryReactorClock,
    script: list[bytes | float],
) -> None:
    for step in script:
        if isinstance(step, float):
            clock.advance(step)
            good.protocol.dataReceived(bytes(4))  # a keep-alive: the good peer is never idle
        elif not hostile.transport.disconnecting:
            hostile.protocol.dataReceived(step)  # an exception here fails the property
        hostile.transport.clear()


def check_swarm(torrent: Torrent, hostile: ScriptedPeer, good: ScriptedPeer) -> None:
    """Only the hostile peer may have been closed, for a reason bt gives on purpose.

    (Should the hostile peer have sent every block right, the torrent is complete
    and a downloader drops seeders as "both sides are seeds"; that is allowed.)
    """
    if hostile.transport.disconnecting:
        reason = hostile.protocol.close_reason or ""
        assert reason.startswith(ALLOWED_CLOSE_REASONS), reason
        event(f"hostile peer closed: {reason.split(':')[0]}")
    else:
        event("hostile peer stayed")
    if torrent.hash_failures:
        event("a piece failed its hash")
    if good.transport.disconnecting:
        assert torrent.is_finished and good.protocol.close_reason == "both sides are seeds"
        good.protocol.connectionLost()
    hostile.protocol.connectionLost()  # the hostile peer leaves, closed or not
    expected = [] if good.transport.disconnecting else [good.protocol]
    assert [link.protocol for link in torrent.links] == expected
    torrent.picker.check_invariants()
    for index in range(NUM_PIECES):
        holders = sum(index in link.bitfield for link in torrent.links if link.bitfield_counted)
        assert torrent.picker.availability(index) == holders, "availability leaked"


@engine_fuzz
@given(st.booleans(), steps)
def test_a_hostile_seeder_never_breaks_the_download(
    unchokes: bool, script: list[bytes | float]
) -> None:
    """Whatever a peer sends, only it is closed, and an honest seeder still completes the
    download with exactly the right bytes."""
    clock = MemoryReactorClock()
    torrent = Torrent(
        METAINFO,
        FakeDisk(METAINFO),  # type: ignore[arg-type]
        peer_id=b"-BT0100-ourselves!!!",
        port=6881,
        reactor=clock,
        rng=random.Random(1),
    )
    with no_logged_failures():
        torrent.startService()
        # The honest seeder chokes us until the hostile peer is done, so the hostile
        # one gets every request and its (maybe corrupt) blocks reach the disk queue.
        good = connect(torrent, b"-LT2000-goodpeer0001", 1)
        good.say(m.BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes()), handshake=True)
        hostile = connect(torrent, b"-XX0000-hostile00001", 2)
        first = [m.BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes())]
        hostile.say(*first, *([m.Unchoke()] if unchokes else []), handshake=True)
        drive(hostile, good, clock, script)
        check_swarm(torrent, hostile, good)
        good.say(m.Unchoke())
        good.serve()
        assert torrent.is_finished
        written = torrent.disk.written  # type: ignore[attr-defined]
        assert b"".join(written[i] for i in range(NUM_PIECES)) == DATA
        torrent.stopService()


@engine_fuzz
@given(steps)
def test_a_hostile_leecher_never_stops_the_seed_serving_others(
    script: list[bytes | float],
) -> None:
    clock = MemoryReactorClock()
    seed = make_seed(METAINFO, clock)
    with no_logged_failures():
        seed.startService()
        good = leecher(seed, 1)
        hostile = leecher(seed, 2)
        drive(hostile, good, clock, script)
        check_swarm(seed, hostile, good)
        good.heard()
        good.say(m.Request(NUM_PIECES - 1, 0, LAST_PIECE))
        pieces = [e for e in good.heard() if isinstance(e, m.Piece)]
        assert m.Piece(NUM_PIECES - 1, 0, DATA[-LAST_PIECE:]) in pieces
        seed.stopService()
