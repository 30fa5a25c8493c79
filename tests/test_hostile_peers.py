"""Hostile peers, one case per test, through the real PeerProtocol and Torrent in memory.

Every case connects a good peer first and checks three things: the hostile peer
is closed with a logged reason (``protocol.close_reason``) that names the
problem, the good peer's connection stays open, and the torrent keeps working
(a downloading torrent completes with the right bytes; a seed still serves).
Some inputs must *not* close the peer (unknown message ids, unrequested
blocks): those tests check that the peer stays.

docs/reliability.rst points here; the wire checks themselves live in
bt/peer/connection.py and are tested in isolation in tests/peer/.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from test_torrent import (
    DATA,
    PIECE,
    FakeDisk,
    ScriptedPeer,
    _Lookup,
    connect,
    leecher,
    make_seed,
    seeder,
)
from torrents import handmade_info, handmade_torrent
from twisted.internet.testing import MemoryReactorClock, StringTransport

from bt.bitfield import Bitfield
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.connection import MIN_MAX_MESSAGE_LENGTH
from bt.peer.incoming import HALF_OPEN_TIMEOUT, IncomingPeerFactory
from bt.peer.messages import (
    BLOCK_SIZE,
    BitfieldMessage,
    Cancel,
    Choke,
    Handshake,
    Have,
    Interested,
    Message,
    NotInterested,
    Piece,
    Port,
    Request,
    Unchoke,
    Unknown,
    encode,
    encode_handshake,
)
from bt.peer.protocol import HANDSHAKE_TIMEOUT, PeerProtocol
from bt.swarm.link import IDLE_SECONDS, MIN_PIPELINE, SNUB_SECONDS, PeerLink
from bt.torrent import Torrent

GOOD_ID = b"-LT2000-goodpeer0001"
BAD_ID = b"-XX0000-hostile00001"
NUM_PIECES = 6
LAST_PIECE = len(DATA) - (NUM_PIECES - 1) * PIECE  # 1000 bytes
HUGE = 0xFFFF_FFFF  # a "negative" 32-bit field read as unsigned


@pytest.fixture
def metainfo() -> Metainfo:
    info = handmade_info([(["data.bin"], len(DATA))], name="t", piece_length=PIECE, data=DATA)
    meta = parse_metainfo(handmade_torrent(info))
    assert meta.num_pieces == NUM_PIECES and meta.piece_size(NUM_PIECES - 1) == LAST_PIECE
    return meta


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def torrent(metainfo: Metainfo, clock: MemoryReactorClock) -> Iterator[Torrent]:
    """A torrent with no data yet: it downloads."""
    torrent = Torrent(
        metainfo,
        FakeDisk(metainfo),  # type: ignore[arg-type]
        peer_id=b"-BT0100-ourselves!!!",
        port=6881,
        reactor=clock,
        rng=random.Random(1),
    )
    torrent.startService()
    yield torrent
    torrent.stopService()


@pytest.fixture
def seed(metainfo: Metainfo, clock: MemoryReactorClock) -> Iterator[Torrent]:
    """A torrent with all its data: it seeds."""
    torrent = make_seed(metainfo, clock)
    torrent.startService()
    assert torrent.state == "seeding"
    yield torrent
    torrent.stopService()


@pytest.fixture
def good_seeder(torrent: Torrent) -> ScriptedPeer:
    """A well-behaved seeder; it has been asked for every block and has not answered yet."""
    return seeder(torrent, GOOD_ID, 1)


@pytest.fixture
def good_leecher(seed: Torrent) -> ScriptedPeer:
    """A well-behaved, interested, unchoked leecher of the seed."""
    peer = leecher(seed, 1)
    peer.heard()
    assert not peer.protocol.connection.am_choking
    return peer


def hostile(torrent: Torrent, *, bitfield: bool = False) -> ScriptedPeer:
    """A second peer, connected and past its handshake; optionally it has every piece."""
    peer = connect(torrent, BAD_ID, 2)
    first: list[Message] = []
    if bitfield:
        first.append(BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes()))
    peer.say(*first, handshake=True)
    assert not peer.transport.disconnecting
    return peer


def hostile_leecher(seed: Torrent) -> ScriptedPeer:
    peer = leecher(seed, 2)
    peer.heard()
    return peer


def send_raw(peer: ScriptedPeer | PeerProtocol, data: bytes) -> None:
    protocol = peer.protocol if isinstance(peer, ScriptedPeer) else peer
    protocol.dataReceived(data)


def frames(*messages: Message) -> bytes:
    return b"".join(encode(m) for m in messages)


# -- what every test checks ---------------------------------------------------------


def assert_only_it_was_closed(
    torrent: Torrent, bad: ScriptedPeer | PeerProtocol, good: ScriptedPeer, *reason: str
) -> None:
    """``bad`` is closed with a reason naming each of ``reason``; ``good`` is untouched."""
    protocol = bad.protocol if isinstance(bad, ScriptedPeer) else bad
    transport = protocol.transport
    assert transport.disconnecting, "the hostile peer must be closed"
    logged = protocol.close_reason or ""
    for part in reason:
        assert part in logged, f"{part!r} not in the logged reason {logged!r}"
    assert not good.transport.disconnecting, "a good peer must stay connected"
    protocol.connectionLost()  # what the reactor reports once the socket is closed
    assert [link.protocol for link in torrent.links] == [good.protocol]


def assert_it_stays(torrent: Torrent, peer: ScriptedPeer, good: ScriptedPeer) -> None:
    for each in (peer, good):
        assert not each.transport.disconnecting, each.protocol.close_reason
        assert each.protocol.close_reason is None
    assert {link.protocol for link in torrent.links} == {peer.protocol, good.protocol}


def assert_download_completes(torrent: Torrent, good: ScriptedPeer) -> None:
    good.serve()
    assert torrent.is_finished
    written = torrent.disk.written  # type: ignore[attr-defined]
    assert b"".join(written[i] for i in range(NUM_PIECES)) == DATA


def assert_seed_serves(seed: Torrent, good: ScriptedPeer) -> None:
    good.heard()
    good.say(Request(1, BLOCK_SIZE, BLOCK_SIZE))
    pieces = [e for e in good.heard() if isinstance(e, Piece)]
    assert pieces == [Piece(1, BLOCK_SIZE, DATA[PIECE + BLOCK_SIZE : 2 * PIECE])]


# -- framing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        HUGE.to_bytes(4, "big"),
        (MIN_MAX_MESSAGE_LENGTH + 1).to_bytes(4, "big"),
        # A second handshake is read as a frame of 0x13426974 bytes.
        encode_handshake(Handshake(b"\x00" * 20, BAD_ID)),
    ],
    ids=["0xFFFFFFFF", "max+1", "second-handshake"],
)
def test_oversized_length_prefix_closes_only_that_peer_before_the_body_arrives(
    torrent: Torrent, good_seeder: ScriptedPeer, prefix: bytes
) -> None:
    bad = hostile(torrent)
    assert bad.protocol.connection.max_message_length == MIN_MAX_MESSAGE_LENGTH
    length = int.from_bytes(prefix[:4], "big")
    send_raw(bad, prefix)
    assert_only_it_was_closed(
        torrent,
        bad,
        good_seeder,
        f"message length {length} exceeds the maximum of {MIN_MAX_MESSAGE_LENGTH} bytes",
    )
    assert_download_completes(torrent, good_seeder)


def test_frame_of_exactly_the_maximum_length_is_accepted(
    torrent: Torrent, good_seeder: ScriptedPeer
) -> None:
    bad = hostile(torrent)
    send_raw(bad, frames(Unknown(20, bytes(MIN_MAX_MESSAGE_LENGTH - 1))))
    assert_it_stays(torrent, bad, good_seeder)
    assert_download_completes(torrent, good_seeder)


# -- message ids ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        Unknown(10, b""),
        Unknown(13, (0).to_bytes(4, "big")),  # BEP 6 suggest piece
        Unknown(14, b""),  # BEP 6 have all
        Unknown(15, b""),  # BEP 6 have none
        Unknown(16, bytes(12)),  # BEP 6 reject request
        Unknown(20, b"\x00d1:md11:ut_metadatai1eee"),  # BEP 10 extension handshake
        Unknown(21, bytes(48)),  # BEP 52 hash request
        Unknown(255, bytes(1000)),
        Port(6881),  # BEP 5: known, and ignored without DHT
    ],
    ids=lambda m: f"id-{getattr(m, 'message_id', 9)}",
)
def test_unknown_message_ids_are_ignored_and_the_peer_stays(
    torrent: Torrent, good_seeder: ScriptedPeer, message: Message
) -> None:
    """BEP 3: unknown ids must be ignored so that extensions cannot break old peers."""
    bad = connect(torrent, BAD_ID, 2)
    full = Bitfield.full(NUM_PIECES)
    # Extension messages may come before the bitfield (libtorrent sends them first).
    bad.say(message, BitfieldMessage(full.to_bytes()), message, handshake=True)
    assert_it_stays(torrent, bad, good_seeder)
    assert torrent.picker.availability(0) == 2, "the bitfield after it was still understood"
    assert_download_completes(torrent, good_seeder)


# -- bitfields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "bitfield of 0 bytes for 6 pieces, expected 1 bytes"),
        (b"\xfc\x00", "bitfield of 2 bytes for 6 pieces, expected 1 bytes"),
        (b"\xff" * 1000, "bitfield of 1000 bytes for 6 pieces, expected 1 bytes"),
    ],
    ids=["empty", "one-byte-long", "huge"],
)
def test_malformed_bitfield_closes_only_that_peer(
    torrent: Torrent, good_seeder: ScriptedPeer, payload: bytes, reason: str
) -> None:
    bad = hostile(torrent)
    bad.say(BitfieldMessage(payload))
    assert_only_it_was_closed(torrent, bad, good_seeder, "bad bitfield message", reason)
    assert_download_completes(torrent, good_seeder)


def test_spare_bits_of_a_bitfield_are_ignored_and_the_peer_stays(
    torrent: Torrent, good_seeder: ScriptedPeer
) -> None:
    """BEP 3 asks for a close; libtorrent ignores the bits, which name no piece."""
    bad = hostile(torrent)
    bad.say(BitfieldMessage(b"\xff"))  # six pieces and two spare bits set
    assert_it_stays(torrent, bad, good_seeder)
    assert [torrent.picker.availability(i) for i in range(NUM_PIECES)] == [2] * NUM_PIECES
    torrent.picker.check_invariants()
    assert_download_completes(torrent, good_seeder)


@pytest.mark.parametrize(
    "before",
    [
        Have(0),
        Choke(),
        Unchoke(),
        Interested(),
        NotInterested(),
        BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes()),
    ],
    ids=lambda m: type(m).__name__,
)
def test_bitfield_after_other_messages_is_accepted(
    torrent: Torrent, good_seeder: ScriptedPeer, before: Message
) -> None:
    """aria2 sends BITFIELD again after some HAVEs: libtorrent accepts it, so do we."""
    bad = hostile(torrent)
    bad.say(before, BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes()))
    assert_it_stays(torrent, bad, good_seeder)
    assert torrent.picker.availability(3) == 2
    torrent.picker.check_invariants()
    assert_download_completes(torrent, good_seeder)


def pieces(*indexes: int) -> BitfieldMessage:
    bitfield = Bitfield(NUM_PIECES)
    for index in indexes:
        bitfield.add(index)
    return BitfieldMessage(bitfield.to_bytes())


def test_a_late_bitfield_replaces_the_peers_pieces_in_the_availability(
    torrent: Torrent, good_seeder: ScriptedPeer
) -> None:
    """Old counts removed, new ones added: HAVE 0, HAVE 1, then BITFIELD {1, 2, 3}."""
    peer = hostile(torrent)
    peer.say(Have(0), Have(1), pieces(1, 2, 3))
    assert [torrent.picker.availability(i) for i in range(NUM_PIECES)] == [1, 2, 2, 2, 1, 1]
    torrent.picker.check_invariants()
    (link,) = [link for link in torrent.links if link.protocol is peer.protocol]
    assert list(link.bitfield) == [1, 2, 3]
    peer.say(pieces(), Have(5))  # an empty bitfield, then a HAVE on top of it
    assert [torrent.picker.availability(i) for i in range(NUM_PIECES)] == [1, 1, 1, 1, 1, 2]
    torrent.picker.check_invariants()
    peer.protocol.connectionLost()
    assert [torrent.picker.availability(i) for i in range(NUM_PIECES)] == [1] * NUM_PIECES
    torrent.picker.check_invariants()


def test_a_late_bitfield_from_a_seed_or_to_a_seed_moves_the_seed_count(torrent: Torrent) -> None:
    peer = hostile(torrent, bitfield=True)  # a seed: one counter, not per-piece counts
    assert torrent.picker.availability(0) == 1
    peer.say(pieces(0))
    assert [torrent.picker.availability(i) for i in range(NUM_PIECES)] == [1, 0, 0, 0, 0, 0]
    peer.say(BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes()))
    assert [torrent.picker.availability(i) for i in range(NUM_PIECES)] == [1] * NUM_PIECES
    torrent.picker.check_invariants()
    assert not peer.transport.disconnecting


def test_a_late_bitfield_decides_interest_again(torrent: Torrent) -> None:
    peer = hostile(torrent)
    peer.heard()
    peer.say(Have(2))
    assert Interested() in peer.heard()
    peer.say(pieces())
    assert NotInterested() in peer.heard(), "nothing left that we want: say so"
    peer.say(pieces(4))
    assert Interested() in peer.heard()
    assert not peer.transport.disconnecting


def test_a_late_full_bitfield_to_a_seed_closes_the_redundant_connection(seed: Torrent) -> None:
    peer = hostile_leecher(seed)
    peer.say(pieces(0), Have(1))
    assert not peer.transport.disconnecting
    peer.say(BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes()))
    assert peer.protocol.close_reason == "both sides are seeds"


def test_a_seed_keeps_serving_a_leecher_that_repeats_its_bitfield(
    seed: Torrent, good_leecher: ScriptedPeer
) -> None:
    """aria2's pattern from a seed's side: BITFIELD, some HAVEs, BITFIELD again."""
    peer = hostile_leecher(seed)
    peer.say(pieces(0), Have(1), Have(2), pieces(0, 1, 2))
    assert not peer.transport.disconnecting
    peer.say(Request(3, 0, BLOCK_SIZE))
    served = [e for e in peer.heard() if isinstance(e, Piece)]
    assert served == [Piece(3, 0, DATA[3 * PIECE : 3 * PIECE + BLOCK_SIZE])]
    assert_seed_serves(seed, good_leecher)


# -- have -----------------------------------------------------------------------------------


def test_a_repeated_have_counts_once_and_the_peer_stays(
    torrent: Torrent, good_seeder: ScriptedPeer
) -> None:
    """libtorrent logs a redundant HAVE and carries on; so do we."""
    bad = hostile(torrent)
    bad.say(Have(2), Have(2), Have(2))
    assert_it_stays(torrent, bad, good_seeder)
    assert torrent.picker.availability(2) == 2
    torrent.picker.check_invariants()
    assert_download_completes(torrent, good_seeder)


@pytest.mark.parametrize("index", [NUM_PIECES, HUGE], ids=["one-past-the-end", "0xFFFFFFFF"])
def test_have_out_of_range_closes_only_that_peer(
    torrent: Torrent, good_seeder: ScriptedPeer, index: int
) -> None:
    bad = hostile(torrent)
    bad.say(Have(index))
    assert_only_it_was_closed(
        torrent, bad, good_seeder, f"have message for piece {index}, but the torrent has 6 pieces"
    )
    assert_download_completes(torrent, good_seeder)


# -- harmless ordering: accepted, never a close ------------------------------------------------


@pytest.mark.parametrize(
    "messages",
    [
        [Interested(), Interested(), Interested()],
        [NotInterested(), NotInterested(), Interested(), Interested()],
        [Choke(), Choke(), Unchoke(), Unchoke(), Choke()],
        [Cancel(0, 0, BLOCK_SIZE), Cancel(1, BLOCK_SIZE, BLOCK_SIZE)],
    ],
    ids=["interested-thrice", "not-interested-twice", "choke-twice", "cancel-unrequested"],
)
def test_repeated_flags_and_stray_cancels_keep_the_peer(
    seed: Torrent, good_leecher: ScriptedPeer, messages: list[Message]
) -> None:
    bad = hostile_leecher(seed)
    bad.say(*messages)
    assert_it_stays(seed, bad, good_leecher)
    assert_seed_serves(seed, good_leecher)


def test_requests_while_choked_are_dropped_and_the_peer_stays(
    seed: Torrent, good_leecher: ScriptedPeer
) -> None:
    """BEP 3 without the fast extension: requests from a choked peer are ignored."""
    bad = connect(seed, BAD_ID, 2)
    bad.say(Request(0, 0, BLOCK_SIZE), handshake=True)  # not interested, so still choked
    assert bad.protocol.connection.am_choking
    assert not [e for e in bad.heard() if isinstance(e, Piece)]
    assert_it_stays(seed, bad, good_leecher)
    assert_seed_serves(seed, good_leecher)


def test_requests_for_a_piece_we_lack_are_dropped_and_the_peer_stays(
    torrent: Torrent, good_seeder: ScriptedPeer
) -> None:
    bad = hostile(torrent)
    bad.say(Interested(), Request(0, 0, BLOCK_SIZE))
    assert not [e for e in bad.heard() if isinstance(e, Piece)]
    assert_it_stays(torrent, bad, good_seeder)
    assert_download_completes(torrent, good_seeder)


# -- requests and cancels (to a seed) -----------------------------------------------------------

BAD_BLOCKS = [
    pytest.param(
        NUM_PIECES, 0, BLOCK_SIZE, "for piece 6, but the torrent has 6 pieces", id="index"
    ),
    pytest.param(HUGE, 0, BLOCK_SIZE, "for piece 4294967295, but", id="huge-index"),
    pytest.param(0, 0, BLOCK_SIZE + 1, "for 16385 bytes, outside 1..16384", id="over-16KiB"),
    pytest.param(0, 0, 0, "for 0 bytes, outside 1..16384", id="zero-length"),
    pytest.param(0, 0, HUGE, "for 4294967295 bytes, outside 1..16384", id="huge-length"),
    pytest.param(
        0, HUGE, BLOCK_SIZE, "for bytes 4294967295..4294983679 of piece 0", id="huge-begin"
    ),
    pytest.param(
        0,
        PIECE - 100,
        BLOCK_SIZE,
        "for bytes 32668..49052 of piece 0, which has 32768 bytes",
        id="past-piece-end",
    ),
    pytest.param(
        NUM_PIECES - 1,
        0,
        LAST_PIECE + 1,
        "for bytes 0..1001 of piece 5, which has 1000 bytes",
        id="past-last-piece-end",
    ),
]


@pytest.mark.parametrize("kind", [Request, Cancel], ids=["request", "cancel"])
@pytest.mark.parametrize(("index", "begin", "length", "reason"), BAD_BLOCKS)
def test_request_or_cancel_out_of_range_closes_only_that_peer(
    seed: Torrent,
    good_leecher: ScriptedPeer,
    kind: type[Request] | type[Cancel],
    index: int,
    begin: int,
    length: int,
    reason: str,
) -> None:
    bad = hostile_leecher(seed)
    bad.say(kind(index, begin, length))
    name = kind.__name__.lower()
    assert_only_it_was_closed(seed, bad, good_leecher, f"{name} message {reason}")
    assert_seed_serves(seed, good_leecher)


def test_requests_beyond_the_queue_cap_close_only_that_peer(
    seed: Torrent, good_leecher: ScriptedPeer
) -> None:
    disk = seed.disk
    disk.held_reads = []  # type: ignore[attr-defined]  # nothing is served: requests pile up
    bad = hostile_leecher(seed)
    bad.say(*[Request(0, begin, 1) for begin in range(500)])
    assert not bad.transport.disconnecting, "500 queued requests are allowed (libtorrent's cap)"
    bad.say(Request(0, 500, 1))
    assert_only_it_was_closed(seed, bad, good_leecher, "more than 500 requests queued")
    for held, data in disk.held_reads:  # type: ignore[attr-defined]
        held.callback(data)
    disk.held_reads = None  # type: ignore[attr-defined]
    assert_seed_serves(seed, good_leecher)


# -- piece data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "piece",
    [
        Piece(0, 100, DATA[100:200]),
        Piece(0, 0, DATA[:BLOCK_SIZE]),
        Piece(0, 0, DATA[:100]),
        Piece(0, 0, DATA[:PIECE]),
        Piece(0, 0, b""),
        Piece(0, PIECE, b""),
        Piece(NUM_PIECES - 1, 0, DATA[-LAST_PIECE:]),
    ],
    ids=[
        "off-block-boundary",
        "whole-block",
        "short-block",
        "whole-piece",
        "empty",
        "empty-at-piece-end",
        "whole-last-piece",
    ],
)
def test_unrequested_piece_data_is_ignored_and_the_peer_stays(
    torrent: Torrent, good_seeder: ScriptedPeer, piece: Piece
) -> None:
    """A block may cross our cancel, so unasked-for data is dropped, never stored, not fatal."""
    bad = hostile(torrent, bitfield=True)  # it chokes us, so we never ask it for anything
    assert not [e for e in bad.heard() if isinstance(e, Request)]
    bad.say(piece)
    assert_it_stays(torrent, bad, good_seeder)
    assert torrent.download_rate.total == 0
    assert torrent.disk.written == {}  # type: ignore[attr-defined]
    assert_download_completes(torrent, good_seeder)


@pytest.mark.parametrize(
    ("piece", "reason"),
    [
        (Piece(NUM_PIECES, 0, DATA[:16]), "piece message for piece 6, but the torrent has 6"),
        (Piece(HUGE, 0, DATA[:16]), "piece message for piece 4294967295, but the torrent has 6"),
        (Piece(0, HUGE, DATA[:16]), "piece message for bytes 4294967295..4294967311 of piece 0"),
        (
            Piece(0, PIECE - 10, DATA[:100]),
            "piece message for bytes 32758..32858 of piece 0, which has 32768 bytes",
        ),
        (
            Piece(NUM_PIECES - 1, 0, DATA[: LAST_PIECE + 1]),
            "piece message for bytes 0..1001 of piece 5, which has 1000 bytes",
        ),
    ],
    ids=["index", "huge-index", "huge-begin", "past-piece-end", "past-last-piece-end"],
)
def test_piece_data_out_of_range_closes_only_that_peer(
    torrent: Torrent, good_seeder: ScriptedPeer, piece: Piece, reason: str
) -> None:
    bad = hostile(torrent, bitfield=True)
    bad.say(piece)
    assert_only_it_was_closed(torrent, bad, good_seeder, reason)
    assert torrent.disk.written == {}  # type: ignore[attr-defined]
    assert_download_completes(torrent, good_seeder)


def junk_sender(torrent: Torrent) -> tuple[ScriptedPeer, ScriptedPeer, PeerLink]:
    """A choking good seeder, and a hostile seeder that was asked for every block."""
    good = connect(torrent, GOOD_ID, 1)
    good.say(BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes()), handshake=True)
    bad = seeder(torrent, BAD_ID, 2)
    assert len(bad.requests(bad.heard())) == 11  # every block: 5 pieces of 2, and 1
    (link,) = (link for link in torrent.links if link.protocol is bad.protocol)
    return good, bad, link


def test_unrequested_blocks_do_not_keep_a_peer_from_being_snubbed(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    good, bad, link = junk_sender(torrent)
    for second in range(1, int(SNUB_SECONDS) + 6):
        clock.advance(1)
        if second % 5 == 0:
            bad.say(Piece(0, 100, DATA[100:200]))  # never requested: off a block boundary
            send_raw(good, bytes(4))
    assert link.snubbed
    assert torrent.picker.outstanding_count(link) <= 1, "its requests went back to the pool"


def test_unrequested_blocks_do_not_count_toward_a_peers_download_rate(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    _good, bad, link = junk_sender(torrent)
    for _tenth in range(50):
        bad.say(Piece(0, 1, DATA[1 : 1 + BLOCK_SIZE]))  # never requested: off a block boundary
        clock.advance(0.1)
    assert torrent.download_rate.total == 0
    assert link.download_meter.rate == 0
    assert link.pipeline == MIN_PIPELINE


def test_pipeline_grows_by_one_per_block_until_the_first_rate_tick(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    # TCP-like slow start: a short download's first second need not stay 16 requests deep.
    _good, bad, link = junk_sender(torrent)
    bad.say(Piece(0, 0, DATA[:BLOCK_SIZE]), Piece(0, BLOCK_SIZE, DATA[BLOCK_SIZE:PIECE]))
    assert link.pipeline == MIN_PIPELINE + 2
    clock.advance(1)  # the first tick: from now on the depth follows the measured rate
    assert not link.slow_start
    depth = link.pipeline
    bad.say(Piece(1, 0, DATA[PIECE : PIECE + BLOCK_SIZE]))
    assert link.pipeline == depth


def test_banned_peer_is_refused_when_it_reconnects(torrent: Torrent) -> None:
    # The good seeder chokes us at first, so the liar is the lone source of what fails.
    good = connect(torrent, GOOD_ID, 1)
    good.say(BitfieldMessage(Bitfield.full(NUM_PIECES).to_bytes()), handshake=True)
    liar = seeder(torrent, BAD_ID, 2)
    liar.serve(corrupt=True)
    assert_only_it_was_closed(torrent, liar, good, "banned: sent 2 pieces alone that failed")
    again = connect(torrent, BAD_ID, 2)  # same address: 10.0.0.1:2
    again.say(handshake=True)
    assert_only_it_was_closed(torrent, again, good, "peer is banned for sending bad data")
    good.say(Unchoke())
    assert_download_completes(torrent, good)


# -- handshakes ---------------------------------------------------------------------------------


def new_connection(torrent: Torrent, clock: MemoryReactorClock, direction: str) -> PeerProtocol:
    """A fresh connection before any handshake: one we dialled, or one that dialled us."""
    if direction == "outgoing":
        protocol = torrent.swarm.factory.for_candidate(("10.0.0.1", 2)).buildProtocol(None)
    else:
        factory = IncomingPeerFactory(torrent.peer_id, _Lookup(torrent), clock)
        protocol = factory.buildProtocol(None)
        assert protocol is not None
    protocol.makeConnection(StringTransport())
    return protocol


directions = pytest.mark.parametrize("direction", ["outgoing", "incoming"])


@directions
def test_handshake_for_another_torrent_closes_only_that_peer(
    torrent: Torrent, clock: MemoryReactorClock, good_seeder: ScriptedPeer, direction: str
) -> None:
    bad = new_connection(torrent, clock, direction)
    other = b"\x01" * 20
    send_raw(bad, encode_handshake(Handshake(other, BAD_ID)))
    reason = (
        f"handshake for info-hash {other.hex()}, expected {torrent.info_hash.hex()}"
        if direction == "outgoing"
        else f"unknown info-hash {other.hex()}"
    )
    assert_only_it_was_closed(torrent, bad, good_seeder, reason)
    assert_download_completes(torrent, good_seeder)


@directions
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x13BitTorrent protocoL", "handshake protocol name b'BitTorrent protocoL'"),
        (b"\x13bittorrent", "handshake protocol name b'bittorrent', expected"),
        (b"GET /announce HTTP/1.1\r\n", "handshake protocol name length 71, expected 19"),
        (b"\x00", "handshake protocol name length 0, expected 19"),
    ],
    ids=["last-letter", "lower-case-prefix", "http", "empty-name"],
)
def test_wrong_protocol_string_closes_only_that_peer_at_once(
    torrent: Torrent,
    clock: MemoryReactorClock,
    good_seeder: ScriptedPeer,
    direction: str,
    data: bytes,
    reason: str,
) -> None:
    bad = new_connection(torrent, clock, direction)
    send_raw(bad, data)  # fewer than 68 bytes: refused without waiting for the rest
    assert_only_it_was_closed(torrent, bad, good_seeder, reason)
    assert_download_completes(torrent, good_seeder)


@directions
@pytest.mark.parametrize(
    "sent",
    [b"", encode_handshake(Handshake(b"\x00" * 20, BAD_ID))[:40]],
    ids=["nothing", "half-a-handshake"],
)
def test_no_handshake_within_the_timeout_closes_only_that_peer(
    torrent: Torrent,
    clock: MemoryReactorClock,
    good_seeder: ScriptedPeer,
    direction: str,
    sent: bytes,
) -> None:
    """Incoming connections get the shorter half-open timeout: a real peer speaks first, at once."""
    timeout = HANDSHAKE_TIMEOUT if direction == "outgoing" else HALF_OPEN_TIMEOUT
    bad = new_connection(torrent, clock, direction)
    send_raw(bad, sent)
    clock.advance(timeout - 1)
    assert not bad.transport.disconnecting
    clock.advance(2)
    assert_only_it_was_closed(torrent, bad, good_seeder, f"no handshake within {timeout:g} s")
    assert_download_completes(torrent, good_seeder)


@directions
def test_connection_to_ourselves_closes_only_that_connection(
    torrent: Torrent, clock: MemoryReactorClock, good_seeder: ScriptedPeer, direction: str
) -> None:
    bad = new_connection(torrent, clock, direction)
    send_raw(bad, encode_handshake(Handshake(torrent.info_hash, torrent.peer_id)))
    assert_only_it_was_closed(torrent, bad, good_seeder, "connected to ourselves")
    assert_download_completes(torrent, good_seeder)


# -- silence after the handshake ------------------------------------------------------------------


def test_peer_silent_after_its_handshake_is_closed_while_a_talking_peer_stays(
    torrent: Torrent, clock: MemoryReactorClock, good_seeder: ScriptedPeer
) -> None:
    """A silent peer would hold one of the torrent's connection slots forever."""
    bad = hostile(torrent)
    for second in range(1, int(IDLE_SECONDS) + 3):
        clock.advance(1)
        if second % 60 == 0:
            send_raw(good_seeder, bytes(4))  # the good peer sends keep-alives
        if second == IDLE_SECONDS - 1:
            assert not bad.transport.disconnecting
    assert_only_it_was_closed(torrent, bad, good_seeder, f"nothing received for {IDLE_SECONDS:g} s")
    assert_download_completes(torrent, good_seeder)
