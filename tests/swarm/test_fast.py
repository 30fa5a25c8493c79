"""The fast extension (BEP 6) with scripted peers that set its bit, as libtorrent does.

What a fast peer hears first (HAVE ALL / HAVE NONE / BITFIELD), which of its
requests get a REJECT (choked, a piece we lack or lost, queued at our choke,
cancelled), the allowed-fast sets both ways, and what a REJECT or a CHOKE from
it does to our requests. Plain BEP 3 peers keep the old behaviour: see
tests/test_torrent.py, unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scripted import peer_with_bits, running
from test_torrent import (
    DATA,
    PIECE,
    FakeDisk,
    ScriptedPeer,
    connect,
    make_seed,
    make_torrent,
    one_file_metainfo,
)
from torrents import handmade_info, handmade_torrent, pseudo_random_bytes
from twisted.internet.testing import MemoryReactorClock

from bt.bitfield import Bitfield
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.messages import (
    AllowedFast,
    BitfieldMessage,
    Cancel,
    Choke,
    HaveAll,
    HaveNone,
    Interested,
    Message,
    MessageId,
    Piece,
    RejectRequest,
    Request,
    Reserved,
    SuggestPiece,
    Unchoke,
)
from bt.peer.protocol import OUR_RESERVED
from bt.policy.allowedfast import allowed_fast_set
from bt.swarm.fast import (
    MAX_ALLOWED_FAST,
    MAX_REFUSED,
    MAX_SUGGESTIONS,
    FastPeer,
    opening_message,
)
from bt.swarm.link import SNUB_SECONDS
from bt.torrent import Torrent

FAST = Reserved.of(Reserved.FAST)


def fast_peer(torrent: Torrent, *messages: Message, port: int = 8) -> ScriptedPeer:
    """A peer that sets the FAST bit (only) and says ``messages`` after its handshake."""
    return peer_with_bits(torrent, FAST, b"-LT2000-fastpeer%04d" % port, port, *messages)


def message_ids(data: bytes) -> list[tuple[int, bytes]]:
    """The (id, payload) of each message in ``data``, after the 68-byte handshake."""
    found, pos = [], 68
    while pos + 4 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        if length:
            found.append((data[pos + 4], data[pos + 5 : pos + 4 + length]))
        pos += 4 + length
    return found


def rejects(peer: ScriptedPeer) -> list[RejectRequest]:
    return [e for e in peer.heard() if isinstance(e, RejectRequest)]


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def seed(clock: MemoryReactorClock) -> Iterator[Torrent]:
    yield from running(make_seed(one_file_metainfo(), clock))


@pytest.fixture
def torrent(clock: MemoryReactorClock) -> Iterator[Torrent]:
    yield from running(make_torrent(one_file_metainfo(), clock))


def many_pieces() -> tuple[Metainfo, bytes]:
    """A torrent of 40 pieces of 16 KiB: more than an allowed-fast set."""
    data = pseudo_random_bytes(40 * 16384, seed=3)
    info = handmade_info([(["d.bin"], len(data))], name="m", piece_length=16384, data=data)
    return parse_metainfo(handmade_torrent(info)), data


@pytest.fixture
def big_seed(clock: MemoryReactorClock) -> Iterator[Torrent]:
    """A seed of 40 one-block pieces."""
    metainfo, data = many_pieces()
    disk = FakeDisk(metainfo)
    disk.written = {i: data[i * 16384 : (i + 1) * 16384] for i in range(40)}
    torrent = make_torrent(metainfo, clock, disk, peer_id=b"-BT0100-seedingpeer!")
    torrent.startService()
    assert torrent.state == "seeding"
    yield torrent
    torrent.stopService()


def half_leecher(seed: Torrent, *more: Message) -> ScriptedPeer:
    """A fast peer with half the pieces of ``big_seed``: too many for an allowed-fast set."""
    half = Bitfield(40)
    for index in range(20):
        half.add(index)
    return fast_peer(seed, BitfieldMessage(half.to_bytes()), *more)


def partial(clock: MemoryReactorClock, pieces: list[int]) -> Torrent:
    """A started torrent whose disk holds ``pieces`` of DATA."""
    metainfo = one_file_metainfo()
    disk = FakeDisk(metainfo)
    for index in pieces:
        disk.written[index] = DATA[index * PIECE : (index + 1) * PIECE]
    torrent = make_torrent(metainfo, clock, disk)
    torrent.startService()
    return torrent


# -- what we send first -----------------------------------------------------------


def test_our_handshake_sets_the_fast_bit_beside_bep_10s() -> None:
    assert Reserved.has(OUR_RESERVED, Reserved.FAST)
    assert Reserved.has(OUR_RESERVED, Reserved.EXTENSION_PROTOCOL)


def test_a_seed_tells_a_fast_peer_have_all_instead_of_a_bitfield(seed: Torrent) -> None:
    peer = fast_peer(seed)
    sent = message_ids(peer.transport.value())
    assert sent[0] == (MessageId.HAVE_ALL, b"")
    assert MessageId.BITFIELD not in [ident for ident, _ in sent]


def test_an_empty_torrent_tells_a_fast_peer_have_none(torrent: Torrent) -> None:
    peer = fast_peer(torrent)
    assert message_ids(peer.transport.value())[0] == (MessageId.HAVE_NONE, b"")


def test_a_partial_torrent_sends_a_fast_peer_its_bitfield(clock: MemoryReactorClock) -> None:
    torrent = partial(clock, [0, 3])
    try:
        peer = fast_peer(torrent)
        ident, payload = message_ids(peer.transport.value())[0]
        assert ident == MessageId.BITFIELD
        assert set(Bitfield.from_bytes(payload, 6)) == {0, 3}
    finally:
        torrent.stopService()


def test_opening_message_picks_the_shortest_that_says_it() -> None:
    assert opening_message(Bitfield.full(9)) == HaveAll()
    assert opening_message(Bitfield(9)) == HaveNone()
    some = Bitfield(9)
    some.add(4)
    assert opening_message(some) == BitfieldMessage(some.to_bytes())


def test_a_plain_peer_hears_no_fast_message(seed: Torrent) -> None:
    peer = connect(seed, b"-CT0001-plainpeer001", 9)
    peer.say(Request(0, 0, 16384), handshake=True)
    sent = message_ids(peer.transport.value())
    assert sent[0][0] == MessageId.BITFIELD
    assert not {ident for ident, _ in sent} & {13, 14, 15, 16, 17}


# -- requests we will not serve ------------------------------------------------


def test_a_request_while_choked_is_rejected(big_seed: Torrent) -> None:
    peer = half_leecher(big_seed)
    assert not [e for e in peer.heard() if isinstance(e, AllowedFast)]
    peer.say(Request(30, 0, 16384))
    assert rejects(peer) == [RejectRequest(30, 0, 16384)]
    assert not peer.transport.disconnecting


def test_a_request_for_a_piece_we_lack_is_rejected(clock: MemoryReactorClock) -> None:
    torrent = partial(clock, [0])
    try:
        peer = fast_peer(torrent, HaveNone(), Interested())
        (link,) = torrent.links
        link.unchoke(clock.seconds())
        peer.heard()
        peer.say(Request(1, 0, 16384), Request(0, 0, 16384))
        events = peer.heard()
        assert [e for e in events if isinstance(e, RejectRequest)] == [RejectRequest(1, 0, 16384)]
        assert [(e.index, e.begin) for e in events if isinstance(e, Piece)] == [(0, 0)]
    finally:
        torrent.stopService()


def test_requests_queued_when_we_choke_are_rejected_not_dropped(
    big_seed: Torrent, clock: MemoryReactorClock
) -> None:
    seed = big_seed
    disk = seed.disk
    disk.held_reads = []  # type: ignore[attr-defined]
    peer = half_leecher(seed, Interested())
    (link,) = seed.links
    assert not link.am_choking
    asked = [Request(index, 0, 16384) for index in range(20, 26)]
    peer.say(*asked)
    peer.heard()
    link.choke(clock.seconds())
    events = peer.heard()
    assert events[0] == Choke()
    assert events[1:] == [RejectRequest(r.index, r.begin, r.length) for r in asked]
    for held, data in disk.held_reads:  # type: ignore[attr-defined]
        held.callback(data)
    assert not [e for e in peer.heard() if isinstance(e, Piece)]


def test_a_cancelled_request_is_answered_with_a_reject(big_seed: Torrent) -> None:
    disk = big_seed.disk
    disk.held_reads = []  # type: ignore[attr-defined]
    peer = half_leecher(big_seed, Interested())
    peer.say(*[Request(index, 0, 16384) for index in range(20, 26)])
    peer.heard()
    peer.say(Cancel(25, 0, 16384), Cancel(20, 0, 16384))  # queued, then being read
    assert rejects(peer) == [RejectRequest(25, 0, 16384), RejectRequest(20, 0, 16384)]
    for held, data in disk.held_reads:  # type: ignore[attr-defined]
        held.callback(data)
    served = [e.index for e in peer.heard() if isinstance(e, Piece)]
    assert served == [21, 22, 23, 24]
    peer.say(Cancel(21, 0, 16384))  # already sent: nothing to answer
    assert rejects(peer) == []


def test_requests_for_lost_pieces_are_rejected_and_the_fast_peer_stays(
    big_seed: Torrent,
) -> None:
    disk = big_seed.disk
    disk.held_reads = []  # type: ignore[attr-defined]
    peer = half_leecher(big_seed, Interested())
    peer.say(*[Request(index, 0, 16384) for index in range(20, 26)])
    peer.heard()
    big_seed.swarm.lose([25])
    assert rejects(peer) == [RejectRequest(25, 0, 16384)]
    peer.say(Request(25, 0, 16384))
    assert rejects(peer) == [RejectRequest(25, 0, 16384)]
    assert not peer.transport.disconnecting


# -- allowed fast: what we give ------------------------------------------------


def test_a_fast_peer_with_nothing_gets_its_allowed_fast_set_served_while_choked(
    big_seed: Torrent,
) -> None:
    seed = big_seed
    metainfo = seed.metainfo
    peer = fast_peer(seed, HaveNone())
    allowed = allowed_fast_set("10.0.0.1", metainfo.info_hash, 40)
    events = peer.heard()
    assert [e.index for e in events if isinstance(e, AllowedFast)] == allowed
    outside = next(i for i in range(40) if i not in allowed)
    peer.say(Request(allowed[0], 0, 16384), Request(outside, 0, 16384))
    events = peer.heard()
    assert [e.index for e in events if isinstance(e, Piece)] == [allowed[0]]
    assert [e.index for e in events if isinstance(e, RejectRequest)] == [outside]


def test_a_seed_and_a_fast_seed_part_at_once(seed: Torrent) -> None:
    peer = fast_peer(seed, HaveAll())
    assert peer.transport.disconnecting
    assert peer.protocol.close_reason == "both sides are seeds"


def test_the_set_is_offered_once_and_is_bep_6s() -> None:
    fast = FastPeer()
    info_hash = bytes(20)
    nothing = Bitfield(1313)
    assert fast.offer("80.4.4.200", info_hash, nothing) == allowed_fast_set(
        "80.4.4.200", info_hash, 1313
    )
    assert fast.offer("80.4.4.200", info_hash, nothing) == []
    assert all(fast.serves_choked(i) for i in fast.we_allow)
    assert FastPeer().offer("peer.example", info_hash, nothing) == []


# -- what a fast peer's REJECT, CHOKE and ALLOWED FAST do to our requests ----------


def fast_seeder(torrent: Torrent, *more: Message) -> ScriptedPeer:
    return fast_peer(torrent, HaveAll(), *more, port=1)


def test_a_reject_frees_that_block_only_and_a_stray_reject_is_ignored(torrent: Torrent) -> None:
    peer = fast_seeder(torrent, Unchoke())
    asked = peer.requests(peer.heard())
    (link,) = torrent.links
    before = torrent.picker.outstanding_count(link)
    first = asked[0]
    peer.say(RejectRequest(first.index, first.begin, first.length))
    assert torrent.picker.outstanding_count(link) == before - 1
    assert first not in peer.requests(peer.heard()), "not asked again at once"
    peer.say(RejectRequest(first.index, first.begin, first.length))  # again: not asked now
    assert torrent.picker.outstanding_count(link) == before - 1
    assert not peer.transport.disconnecting


def test_a_fast_peers_choke_keeps_our_requests_until_the_snub_timer(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    peer = fast_seeder(torrent, Unchoke())
    assert peer.requests(peer.heard())
    (link,) = torrent.links
    outstanding = torrent.picker.outstanding_count(link)
    peer.say(Choke())
    assert torrent.picker.outstanding_count(link) == outstanding, "each gets a PIECE or REJECT"
    for _ in range(int(SNUB_SECONDS) + 2):
        clock.advance(1)
        peer.say()  # still talking (keep-alives), but never answering
        peer.transport.clear()
    assert link.snubbed
    assert torrent.picker.outstanding_count(link) == 0


def test_while_choked_we_ask_only_for_the_pieces_a_fast_peer_allows(torrent: Torrent) -> None:
    peer = fast_seeder(torrent, AllowedFast(2), AllowedFast(4))
    events = peer.heard()
    assert Interested() in events
    assert {r.index for r in peer.requests(events)} == {2, 4}
    peer.say(Unchoke())
    assert {r.index for r in peer.requests(peer.heard())} - {2, 4}, "unchoked: any piece"


def test_a_peer_allows_at_most_a_bounded_set() -> None:
    fast = FastPeer()
    assert all(fast.peer_allows(i) for i in range(MAX_ALLOWED_FAST))
    assert not fast.peer_allows(MAX_ALLOWED_FAST)
    assert fast.peer_allows(0), "one it allowed already stays allowed"
    assert len(fast.they_allow) == MAX_ALLOWED_FAST
    has = Bitfield(100)
    has.add(3)
    assert fast.requestable_while_choked(has) == has
    assert FastPeer().requestable_while_choked(has) is None


def test_suggestions_are_hints_kept_among_the_newest(torrent: Torrent) -> None:
    peer = fast_seeder(torrent, SuggestPiece(3), SuggestPiece(1), SuggestPiece(3))
    (link,) = torrent.links
    assert link.fast is not None and list(link.fast.suggested) == [1, 3]
    assert not peer.transport.disconnecting


@given(st.lists(st.tuples(st.sampled_from(["allow", "suggest"]), st.integers(0, 10_000))))
def test_a_peer_cannot_grow_our_fast_state_without_bound(events: list[tuple[str, int]]) -> None:
    fast = FastPeer()
    for kind, index in events:
        fast.peer_allows(index) if kind == "allow" else fast.suggest(index)
    assert len(fast.they_allow) <= MAX_ALLOWED_FAST
    assert len(fast.suggested) <= MAX_SUGGESTIONS
    assert len(set(fast.suggested)) == len(fast.suggested)


def test_fast_messages_out_of_range_close_the_peer(torrent: Torrent) -> None:
    peer = fast_seeder(torrent, AllowedFast(6))
    assert peer.transport.disconnecting
    assert "allowed-fast message for piece 6" in (peer.protocol.close_reason or "")


def test_a_peer_that_asks_on_and_on_while_choked_is_closed(big_seed: Torrent) -> None:
    peer = half_leecher(big_seed)
    peer.say(*[Request(30, 0, 16384)] * MAX_REFUSED)
    assert len(rejects(peer)) == MAX_REFUSED and not peer.transport.disconnecting
    peer.say(Request(30, 0, 16384))
    assert peer.transport.disconnecting
    assert "requests refused" in (peer.protocol.close_reason or "")


def test_an_unchoke_starts_the_count_of_refused_requests_again(
    big_seed: Torrent, clock: MemoryReactorClock
) -> None:
    peer = half_leecher(big_seed)
    peer.say(*[Request(30, 0, 16384)] * MAX_REFUSED)
    (link,) = big_seed.links
    link.unchoke(clock.seconds())
    link.choke(clock.seconds())
    peer.say(Request(30, 0, 16384))
    assert not peer.transport.disconnecting
