"""BEP 11 peer exchange in a swarm: scripted peers hear of each other, and what they tell us
becomes candidates, bounded, and never for a private torrent.

Each peer sets the BEP 10 bit and offers ``ut_pex`` under id 7 unless told
otherwise; time is a MemoryReactorClock, so the once-a-minute rule is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_torrent import FakeDisk, ScriptedPeer, make_torrent, one_file_metainfo
from torrents import handmade_info, handmade_torrent
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from bt import bencode
from bt.bitfield import Bitfield
from bt.candidates import SOURCE_LIMITS, CandidatePool, PeerSource
from bt.compact import IPV6, pack_peers
from bt.extensions.handshake import ExtendedHandshake, parse_extended_handshake
from bt.extensions.pex import PEX_NAME, PeerExchange, listen_address
from bt.extensions.pex_messages import PexFlags, PexMessage, encode_pex, parse_pex
from bt.extensions.pex_policy import MAX_PEERS_FROM_ONE, PEX_INTERVAL
from bt.extensions.standard import install_standard_extensions
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.messages import BitfieldMessage, Extended, Handshake, Reserved, encode
from bt.peer.messages import encode_handshake as encode_bt_handshake
from bt.torrent import Torrent

EXTENDED = Reserved.of(Reserved.EXTENSION_PROTOCOL)
THEIR_PEX_ID = 7
SEED, REACHABLE = PexFlags.SEED, PexFlags.REACHABLE


def start(metainfo: Metainfo, *, complete: bool = False) -> Torrent:
    disk = FakeDisk(metainfo, complete=complete)
    torrent = make_torrent(metainfo, MemoryReactorClock(), disk)
    install_standard_extensions(torrent)
    torrent.startService()
    return torrent


@pytest.fixture
def torrent() -> Iterator[Torrent]:
    torrent = start(one_file_metainfo())
    yield torrent
    torrent.stopService()


def private_metainfo() -> Metainfo:
    public = one_file_metainfo()
    info = handmade_info([(["data.bin"], public.total_length)], name="t", piece_length=32 * 1024)
    info["private"] = 1
    return parse_metainfo(handmade_torrent(info))


_numbers = iter(range(1, 10_000))


def join(
    torrent: Torrent,
    host: str,
    port: int,
    *,
    outgoing: bool = True,
    listen: int | None = None,
    complete: bool = False,
    upload_only: bool = False,
    pex: bool = True,
) -> ScriptedPeer:
    """A peer we dialled at (host, port), or one that dialled us from there (``outgoing=False``,
    saying it listens on ``listen``), with the BEP 10 bit and an extended handshake."""
    factory = torrent.swarm.factory
    address = (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)
    protocol = (factory.for_candidate((host, port)) if outgoing else factory).buildProtocol(None)
    peer_id = b"-LT2000-pex%09d" % next(_numbers)
    peer = ScriptedPeer(protocol, torrent.metainfo, peer_id, StringTransport(peerAddress=address))
    peer.wire.our_reserved = EXTENDED
    shake = ExtendedHandshake(
        {PEX_NAME: THEIR_PEX_ID} if pex else {"ut_other": 3},
        port=listen,
        upload_only=upload_only,
    )
    bitfield = Bitfield(torrent.metainfo.num_pieces)
    if complete:
        bitfield = Bitfield.full(torrent.metainfo.num_pieces)
    handshake = encode_bt_handshake(Handshake(torrent.metainfo.info_hash, peer_id, EXTENDED))
    body = encode(Extended(0, shake.encode())) + encode(BitfieldMessage(bitfield.to_bytes()))
    protocol.dataReceived(handshake + body)
    return peer


def our_pex_id(peer: ScriptedPeer) -> int:
    """The id our extended handshake gave ut_pex (drains what the peer heard so far)."""
    greetings = [e for e in peer.heard() if isinstance(e, Extended) and e.extended_id == 0]
    return parse_extended_handshake(greetings[0].payload).messages[PEX_NAME]


def pex_heard(peer: ScriptedPeer) -> list[PexMessage]:
    return [
        parse_pex(e.payload)
        for e in peer.heard()
        if isinstance(e, Extended) and e.extended_id == THEIR_PEX_ID
    ]


def added(message: PexMessage) -> dict[tuple[str, int], PexFlags]:
    return dict(message.added)


def tell(peer: ScriptedPeer, ident: int, *peers: tuple[str, int], flags: PexFlags = PexFlags.NONE):
    message = PexMessage(added=tuple((p, flags) for p in peers))
    peer.say(Extended(ident, encode_pex(message)))


def advance(torrent: Torrent, seconds: float) -> None:
    for _ in range(int(seconds)):
        torrent.reactor.advance(1)


# -- what we send ----------------------------------------------------------------


def test_a_public_torrent_offers_ut_pex_in_its_extended_handshake(torrent: Torrent) -> None:
    peer = join(torrent, "10.0.0.1", 1)
    assert PEX_NAME in {e.name for e in torrent.swarm.extensions}
    assert our_pex_id(peer) >= 1


def test_each_peer_hears_of_the_others_by_listen_address_with_flags(torrent: Torrent) -> None:
    """Dialled peers by the address we dialled (REACHABLE), incoming ones by their IP and
    the ``p`` of their extended handshake; an incoming peer without ``p`` is never told of.
    SEED: a complete bitfield, or upload_only. Nobody hears of itself."""
    seed = join(torrent, "10.0.0.1", 1, complete=True)
    incoming = join(torrent, "10.0.0.2", 40000, outgoing=False, listen=6000)
    portless = join(torrent, "10.0.0.3", 40001, outgoing=False)
    partial = join(torrent, "10.0.0.4", 2, upload_only=True)
    advance(torrent, 1)
    everyone = {
        ("10.0.0.1", 1): SEED | REACHABLE,
        ("10.0.0.2", 6000): PexFlags.NONE,
        ("10.0.0.4", 2): SEED | REACHABLE,
    }
    for peer, itself in [
        (seed, ("10.0.0.1", 1)),
        (incoming, ("10.0.0.2", 6000)),
        (portless, None),
        (partial, ("10.0.0.4", 2)),
    ]:
        [message] = pex_heard(peer)
        assert added(message) == {a: f for a, f in everyone.items() if a != itself}
        assert message.dropped == ()


def test_a_peer_hears_at_once_then_at_most_once_a_minute_and_of_peers_that_left(
    torrent: Torrent,
) -> None:
    a = join(torrent, "10.0.0.1", 1)
    advance(torrent, 3)
    assert pex_heard(a) == [], "alone in the swarm: no message, never an empty one"
    b = join(torrent, "10.0.0.2", 2)
    advance(torrent, 1)  # t = 4
    assert [added(m) for m in pex_heard(a)] == [{("10.0.0.2", 2): REACHABLE}]
    assert [added(m) for m in pex_heard(b)] == [{("10.0.0.1", 1): REACHABLE}]
    c = join(torrent, "10.0.0.3", 3)
    advance(torrent, PEX_INTERVAL - 1)  # t = 63: a's and b's minute is not up yet
    assert pex_heard(a) == [] and pex_heard(b) == []
    assert [set(added(m)) for m in pex_heard(c)] == [{("10.0.0.1", 1), ("10.0.0.2", 2)}]
    advance(torrent, 1)  # t = 64
    assert [added(m) for m in pex_heard(a)] == [{("10.0.0.3", 3): REACHABLE}]
    b.protocol.connectionLost()
    advance(torrent, PEX_INTERVAL)
    assert [m.dropped for m in pex_heard(a)] == [(("10.0.0.2", 2),)]
    assert [m.dropped for m in pex_heard(c)] == [(("10.0.0.2", 2),)]


def test_a_peer_that_does_not_offer_ut_pex_hears_none(torrent: Torrent) -> None:
    join(torrent, "10.0.0.1", 1)
    quiet = join(torrent, "10.0.0.2", 2, pex=False)
    advance(torrent, 2)
    assert not [e for e in quiet.heard() if isinstance(e, Extended) and e.extended_id != 0]


def test_the_wire_form_is_what_libtorrent_reads(torrent: Torrent) -> None:
    """Compact IPv4 and IPv6 lists with one flag byte per peer, dropped lists alongside."""
    listener = join(torrent, "127.0.0.1", 6881)
    join(torrent, "127.0.0.1", 6882, complete=True)
    join(torrent, "::1", 6883)
    advance(torrent, 1)
    [payload] = [
        e.payload
        for e in listener.heard()
        if isinstance(e, Extended) and e.extended_id == THEIR_PEX_ID
    ]
    assert bencode.decode(payload) == {
        b"added": pack_peers([("127.0.0.1", 6882)]),
        b"added.f": bytes([SEED | REACHABLE]),
        b"added6": pack_peers([("::1", 6883)], IPV6),
        b"added6.f": bytes([REACHABLE]),
        b"dropped": b"",
        b"dropped6": b"",
    }


def test_listen_addresses_are_ip_addresses_only() -> None:
    def link(host: str, port: int, outgoing: bool, p: int | None = None) -> Any:
        shake = ExtendedHandshake(port=p)
        return SimpleNamespace(address=(host, port), outgoing=outgoing, peer_extensions=shake)

    assert listen_address(link("::ffff:10.0.0.1", 5, True)) == ("10.0.0.1", 5)
    assert listen_address(link("tracker.example", 5, True)) is None
    assert listen_address(link("10.0.0.1", 40000, False, 6881)) == ("10.0.0.1", 6881)
    assert listen_address(link("10.0.0.1", 40000, False)) is None


# -- what we take -----------------------------------------------------------------


def test_peers_from_pex_become_pex_candidates_each_port_its_own(torrent: Torrent) -> None:
    """Several peers behind one IP (loopback, a NAT) are distinct candidates, and get dialled."""
    peer = join(torrent, "10.0.0.1", 1)
    tell(peer, our_pex_id(peer), ("127.0.0.1", 7001), ("127.0.0.1", 7002), ("::1", 7003))
    assert torrent.candidates.count(PeerSource.PEX) == 3
    dialled = {(host, port) for host, port, *_ in torrent.reactor.tcpClients}
    assert {("127.0.0.1", 7001), ("127.0.0.1", 7002), ("::1", 7003)} <= dialled


def test_a_peer_that_sends_pex_too_often_is_not_believed_until_its_minute_is_up(
    torrent: Torrent,
) -> None:
    peer = join(torrent, "10.0.0.1", 1)
    ident = our_pex_id(peer)
    tell(peer, ident, ("127.0.0.1", 7001))
    advance(torrent, 10)
    tell(peer, ident, ("127.0.0.1", 7002))
    assert torrent.candidates.count(PeerSource.PEX) == 1
    advance(torrent, PEX_INTERVAL)
    tell(peer, ident, ("127.0.0.1", 7003))
    assert torrent.candidates.count(PeerSource.PEX) == 2
    assert not peer.transport.disconnecting, "too often is ignored, not a protocol error"


def test_pex_cannot_flood_the_candidate_pool(torrent: Torrent) -> None:
    """Peers together may fill only PEX's share of the pool; trackers' addresses still fit."""
    for number in range(1, 6):
        peer = join(torrent, f"10.0.1.{number}", 1)
        ident = our_pex_id(peer)
        for minute in range(3):
            base = 10_000 + number * 1000 + minute * 100
            tell(peer, ident, *(("127.0.0.1", base + i) for i in range(100)))
            advance(torrent, PEX_INTERVAL)
    assert torrent.candidates.count(PeerSource.PEX) == SOURCE_LIMITS[PeerSource.PEX]
    torrent.add_candidates([("127.0.0.2", 1)], PeerSource.TRACKER)
    assert torrent.candidates.count(PeerSource.TRACKER) == 1


def test_peers_we_are_connected_to_and_bad_addresses_are_not_candidates(
    torrent: Torrent,
) -> None:
    peer = join(torrent, "10.0.0.1", 1)
    join(torrent, "10.0.0.2", 40000, outgoing=False, listen=6000)
    tell(peer, our_pex_id(peer), ("10.0.0.2", 6000), ("0.0.0.0", 5), ("224.0.0.1", 5))
    assert torrent.candidates.count(PeerSource.PEX) == 0


def test_a_seed_does_not_take_seeds_from_pex() -> None:
    seed = start(one_file_metainfo(), complete=True)
    try:
        peer = join(seed, "10.0.0.1", 1)
        ident = our_pex_id(peer)
        peer.say(
            Extended(
                ident,
                encode_pex(
                    PexMessage(added=((("127.0.0.1", 1), SEED), (("127.0.0.1", 2), REACHABLE)))
                ),
            )
        )
        assert seed.candidates.count(PeerSource.PEX) == 1
        dialled = [(host, port) for host, port, *_ in seed.reactor.tcpClients]
        assert dialled == [("127.0.0.1", 2)]
    finally:
        seed.stopService()


def test_a_malformed_pex_message_closes_the_peer(torrent: Torrent) -> None:
    peer = join(torrent, "10.0.0.1", 1)
    peer.say(Extended(our_pex_id(peer), bencode.encode({b"added": b"\x01\x02\x03"})))
    assert peer.transport.disconnecting
    assert "ut_pex" in (peer.protocol.close_reason or "")


# -- private torrents (BEP 27) ----------------------------------------------------


def test_a_private_torrent_has_no_ut_pex_at_all() -> None:
    torrent = start(private_metainfo())
    try:
        a = join(torrent, "10.0.0.1", 1)
        b = join(torrent, "10.0.0.2", 2)
        greetings = [e for e in a.heard() if isinstance(e, Extended)]
        [greeting] = greetings
        offered = parse_extended_handshake(greeting.payload).messages
        assert "ut_pex" not in offered
        # A peer that sends PEX anyway, under any id we did not give another extension,
        # is not believed (nor closed).
        for ident in [i for i in range(1, 8) if i not in offered.values()][:3]:
            tell(b, ident, ("127.0.0.1", 7000 + ident))
        advance(torrent, PEX_INTERVAL + 1)
        assert len(torrent.candidates) == 0
        assert pex_heard(a) == [] and pex_heard(b) == []
        assert not b.transport.disconnecting
    finally:
        torrent.stopService()


def test_the_extension_alone_never_feeds_a_private_pool() -> None:
    """Even registered by mistake, PEX candidates never reach a private torrent's dialer."""
    torrent = make_torrent(private_metainfo(), MemoryReactorClock())
    torrent.swarm.extensions.register(PeerExchange.of(torrent.swarm))
    torrent.startService()
    try:
        peer = join(torrent, "10.0.0.1", 1)
        tell(peer, our_pex_id(peer), ("127.0.0.1", 7001))
        assert len(torrent.candidates) == 0
    finally:
        torrent.stopService()


def test_a_peer_that_turns_ut_pex_off_hears_no_more(torrent: Torrent) -> None:
    peer = join(torrent, "10.0.0.1", 1)
    peer.say(Extended(0, ExtendedHandshake({PEX_NAME: 0}).encode()))
    join(torrent, "10.0.0.2", 2)
    advance(torrent, 2)
    assert pex_heard(peer) == []


# -- the bounds hold whatever peers send ------------------------------------------


class FakeLink:
    """Just what peer exchange reads of a link."""

    def __init__(self, port: int) -> None:
        self.address = ("10.9.0.1", port)
        self.outgoing, self.closed = True, False
        self.peer_extensions = ExtendedHandshake({PEX_NAME: 1})
        self.extensions: dict[str, object] = {}
        self.bitfield = Bitfield(8)


PEX_ADDRESSES = st.tuples(
    st.sampled_from(["127.0.0.1", "10.9.0.1", "::1", "0.0.0.0"]), st.integers(1, 400)
)
#: (which of 3 peers, seconds later, the peers it names)
PEX_SENDS = st.lists(
    st.tuples(st.integers(0, 2), st.floats(0, 120), st.lists(PEX_ADDRESSES, max_size=100)),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(PEX_SENDS)
def test_no_sequence_of_messages_floods_the_pool_or_names_a_connected_peer(sends) -> None:
    pool = CandidatePool(source_limits={PeerSource.PEX: 120})
    now = [0.0]

    def add(peers, source) -> None:
        for peer in peers:
            pool.add(peer, source)

    links = [FakeLink(port) for port in (1, 2, 3)]
    exchange = PeerExchange(lambda: links, add, lambda: now[0])
    for link in links:
        link.extensions[PEX_NAME] = exchange.attached(link)  # type: ignore[arg-type]
    taken_from = [0, 0, 0]
    for sender, later, peers in sends:
        now[0] += later
        before = len(pool)
        message = PexMessage(added=tuple((p, PexFlags.NONE) for p in dict.fromkeys(peers)))
        link = links[sender]
        exchange.message(link, link.extensions[PEX_NAME], encode_pex(message))  # type: ignore[arg-type]
        taken_from[sender] += len(pool) - before
    assert pool.count(PeerSource.PEX) == len(pool) <= 120
    assert all(taken <= MAX_PEERS_FROM_ONE for taken in taken_from)
    remembered = set(pool.take(now[0], len(pool)))
    assert not remembered & {link.address for link in links}, "connected peers are not candidates"
    assert all(host != "0.0.0.0" for host, _ in remembered)
