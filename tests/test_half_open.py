"""Incoming connections without a handshake: the half-open budget at the listener.

The real IncomingPeerFactory, PeerProtocol and a seeding Torrent in memory.
``one_pass(clock)`` is one pass of a real reactor's loop, which runs the
calls that were due when it began; ``clock.advance`` would also run the
calls those schedule, all the turns at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_torrent import _Lookup, make_seed, metainfo  # noqa: F401 (metainfo is a fixture)
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs

from bt.logs import set_log_level
from bt.metainfo import Metainfo
from bt.peer.incoming import HALF_OPEN_TIMEOUT, HALF_OPEN_TURN, IncomingPeerFactory
from bt.peer.messages import Handshake, encode_handshake
from bt.peer.protocol import PeerProtocol
from bt.policy.slots import ConnectionSlots
from bt.torrent import Torrent

EVICTED = "half-open budget full: oldest of 4 without a handshake"


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def seed(metainfo: Metainfo, clock: MemoryReactorClock) -> Iterator[Torrent]:  # noqa: F811
    torrent = make_seed(metainfo, clock)
    torrent.startService()
    yield torrent
    torrent.stopService()


@pytest.fixture
def slots() -> ConnectionSlots:
    return ConnectionSlots(2)


@pytest.fixture
def factory(
    seed: Torrent, clock: MemoryReactorClock, slots: ConnectionSlots
) -> IncomingPeerFactory:
    """A listener with 2 connection slots and a half-open budget of 4 (+20 while unread)."""
    return IncomingPeerFactory(
        seed.peer_id, _Lookup(seed), clock, slots, half_open_limit=4, half_open_overflow=20
    )


def one_pass(clock: MemoryReactorClock) -> None:
    """One turn later, run the calls due, not those they schedule: what runUntilCurrent does."""
    clock.rightNow += HALF_OPEN_TURN
    due = [call for call in clock.calls if call.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)


def accept(factory: IncomingPeerFactory, count: int = 1) -> list[PeerProtocol]:
    """``count`` connections accepted in one batch, as Twisted's port does on one wake-up."""
    accepted = []
    for _ in range(count):
        protocol = factory.buildProtocol(None)
        number = len(factory.half_open) + 1000 * factory.half_open.turn
        protocol.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "10.9.0.1", number)))
        accepted.append(protocol)
    return accepted


def handshake(seed: Torrent, protocol: PeerProtocol, number: int) -> None:
    protocol.dataReceived(encode_handshake(Handshake(seed.info_hash, b"-LT2000-real%08d" % number)))


def closed(protocols: list[PeerProtocol]) -> list[PeerProtocol]:
    """Those told to close; Twisted would then call connectionLost, so do that here."""
    gone = [p for p in protocols if p.transport.disconnecting]
    for protocol in gone:
        if protocol.on_closed is not None:
            protocol.connectionLost()
    return gone


def test_half_open_connections_beyond_the_budget_evict_the_oldest(
    factory: IncomingPeerFactory, clock: MemoryReactorClock
) -> None:
    first = accept(factory, 4)
    one_pass(clock)
    one_pass(clock)
    later = accept(factory, 2)
    assert closed(first + later) == first[:2]
    assert {p.close_reason for p in first[:2]} == {EVICTED}
    assert len(factory.half_open) == 4


def test_a_real_peer_in_a_flood_batch_is_read_before_it_can_be_evicted(
    factory: IncomingPeerFactory, seed: Torrent, clock: MemoryReactorClock
) -> None:
    """A batch bigger than the budget, the real peer its oldest, the next batch before its read."""
    batch = accept(factory, 10)
    real = batch[0]
    one_pass(clock)
    batch += accept(factory, 10)  # the listening socket comes first in the next poll
    assert closed(batch) == [], "connections evicted before they were ever read"
    handshake(seed, real, 1)
    one_pass(clock)
    one_pass(clock)
    assert not real.transport.disconnecting
    assert len(seed.links) == 1 and factory.slots.used == 1
    # Once polled, the flood is trimmed back to the budget, oldest first.
    assert closed(batch) == batch[1:16]
    assert len(factory.half_open) == 4


def test_a_burst_of_peers_is_kept_until_their_handshakes_come_within_a_turn(
    factory: IncomingPeerFactory, seed: Torrent, clock: MemoryReactorClock
) -> None:
    """200 peers connecting at once send their handshakes a few ms after the accept:
    the reactor passes many times meanwhile, but no turn does, so nobody is evicted."""
    burst = accept(factory, 20)
    clock.advance(HALF_OPEN_TURN / 2)
    for number, peer in enumerate(burst):
        handshake(seed, peer, number)
    closed(burst)
    assert EVICTED not in {p.close_reason for p in burst}
    assert len(seed.links) == 2 and len(factory.half_open) == 0


def test_a_completed_handshake_moves_out_of_the_budget_into_a_connection_slot(
    factory: IncomingPeerFactory, seed: Torrent, slots: ConnectionSlots
) -> None:
    (protocol,) = accept(factory)
    assert protocol in factory.half_open and slots.used == 0
    handshake(seed, protocol, 1)
    assert protocol not in factory.half_open and slots.used == 1
    assert len(seed.links) == 1
    protocol.connectionLost()
    assert slots.used == 0 and not seed.links


def test_the_short_half_open_timeout_closes_a_silent_connection(
    factory: IncomingPeerFactory, clock: MemoryReactorClock
) -> None:
    (protocol,) = accept(factory)
    clock.advance(HALF_OPEN_TIMEOUT - 1)
    assert not protocol.transport.disconnecting
    clock.advance(2)
    assert closed([protocol]) == [protocol]
    assert protocol.close_reason == f"no handshake within {HALF_OPEN_TIMEOUT:g} s"
    assert len(factory.half_open) == 0


def test_a_flood_takes_no_connection_slot_and_peers_still_get_in(
    factory: IncomingPeerFactory, seed: Torrent, slots: ConnectionSlots, clock: MemoryReactorClock
) -> None:
    flood: list[PeerProtocol] = []
    for _ in range(20):  # 20 turns of 10 silent connections, each re-opened when closed
        flood += accept(factory, 10)
        closed(flood)
        one_pass(clock)
    assert slots.used == 0 and len(closed(flood)) == len(flood) - len(factory.half_open)
    peers = accept(factory, 3)
    flood += accept(factory, 10)
    for number, peer in enumerate(peers):
        handshake(seed, peer, number)
    assert slots.used == 2 and len(seed.links) == 2
    assert peers[2].close_reason == "all 2 connection slots are taken"
    for _ in range(5):
        flood += accept(factory, 10)
        closed(flood)
        one_pass(clock)
    assert not any(p.transport.disconnecting for p in peers[:2])
    one_pass(clock)
    one_pass(clock)
    assert len(factory.half_open) == 4 and slots.used == 2


def test_an_unknown_info_hash_takes_no_slot(
    factory: IncomingPeerFactory, slots: ConnectionSlots
) -> None:
    (protocol,) = accept(factory)
    protocol.dataReceived(encode_handshake(Handshake(b"\x07" * 20, b"-LT2000-real00000001")))
    assert closed([protocol]) == [protocol] and slots.used == 0
    assert len(factory.half_open) == 0


def test_evictions_are_logged_once_a_minute_with_their_count(
    factory: IncomingPeerFactory, clock: MemoryReactorClock
) -> None:
    set_log_level("debug")
    try:
        with capturedLogs() as events:
            for _ in range(3):  # three minutes of a flood: 6 evictions a turn, a turn a second
                for _ in range(60):
                    accept(factory, 6)
                    clock.advance(1)
    finally:
        set_log_level("info")
    warnings = [e for e in events if e["log_level"] == LogLevel.warn]
    assert [e["count"] for e in warnings] == [6, 360, 360]
    # Each eviction itself is a debug line: a flood must not fill the log.
    drops = [e for e in events if e.get("reason") == EVICTED]
    assert drops and {e["log_level"] for e in drops} == {LogLevel.debug}


def test_the_listener_going_away_leaves_no_timer(
    factory: IncomingPeerFactory, clock: MemoryReactorClock
) -> None:
    accept(factory, 10)
    factory.doStart()
    factory.doStop()
    assert not [c for c in clock.getDelayedCalls() if c.func == factory._next_turn]
