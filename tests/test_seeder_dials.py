"""A seed keeps asking its trackers for peers and dials the leechers it learns.

Some leechers never dial the addresses a tracker gives them (Transmission drops
loopback ones); they are served only by a seed that dials them, as libtorrent's
does. Driven in memory: a fake tracker, MemoryReactorClock's recorded dials.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_torrent import DATA, PIECE, FakeDisk, ScriptedPeer, make_seed, make_torrent
from torrents import handmade_info, handmade_torrent
from twisted.internet import defer
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from bt.bitfield import Bitfield
from bt.candidates import RETRY_BASE, Address
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.messages import BLOCK_SIZE, BitfieldMessage, Interested, Piece, Request, Unchoke
from bt.ticker import IDLE_SEED_TICK_INTERVAL
from bt.torrent import Torrent
from bt.tracker.announce import AnnounceRequest, AnnounceResponse
from bt.tracker.sources import NUMWANT

LEECHER: Address = ("10.0.0.5", 51413)
LEECHER_ID = b"-TR3000-leecher00001"


class FakeTracker:
    """Answers every announce at once with ``peers``; records the requests."""

    def __init__(self, peers: tuple[Address, ...]) -> None:
        self.peers = peers
        self.requests: list[AnnounceRequest] = []

    def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]:
        self.requests.append(request)
        return defer.succeed(AnnounceResponse(1800, None, None, 1, 1, None, self.peers))


@pytest.fixture
def metainfo() -> Metainfo:
    info = handmade_info([(["data.bin"], len(DATA))], name="t", piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info))


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def tracker() -> FakeTracker:
    return FakeTracker((LEECHER,))


@pytest.fixture
def seed(metainfo: Metainfo, clock: MemoryReactorClock, tracker: FakeTracker) -> Iterator[Torrent]:
    torrent = make_torrent(
        metainfo,
        clock,
        FakeDisk(metainfo, complete=True),
        peer_id=b"-BT0100-seedingpeer!",
        trackers=[tracker],
    )
    torrent.startService()
    assert torrent.state == "seeding"
    yield torrent
    torrent.stopService()


def dials_to(clock: MemoryReactorClock, address: Address) -> list[Any]:
    """The per-attempt factories of every dial to ``address`` so far."""
    return [factory for host, port, factory, *_ in clock.tcpClients if (host, port) == address]


def test_a_seed_asks_its_tracker_for_peers(seed: Torrent, tracker: FakeTracker) -> None:
    (started,) = tracker.requests
    assert started.event == "started" and started.left == 0
    assert started.numwant == NUMWANT > 0, "libtorrent keeps a normal numwant while seeding"


def test_a_seed_dials_the_leecher_its_tracker_named_and_serves_it(
    seed: Torrent, clock: MemoryReactorClock
) -> None:
    (attempt,) = dials_to(clock, LEECHER)
    protocol = attempt.buildProtocol(None)
    leecher = ScriptedPeer(protocol, seed.metainfo, LEECHER_ID)
    leecher.say(BitfieldMessage(Bitfield(seed.metainfo.num_pieces).to_bytes()), handshake=True)
    leecher.say(Interested())
    assert Unchoke() in leecher.heard()
    leecher.say(Request(2, 0, BLOCK_SIZE))
    assert Piece(2, 0, DATA[2 * PIECE : 2 * PIECE + BLOCK_SIZE]) in leecher.heard()
    assert [link.address for link in seed.links] == [LEECHER]


def test_an_idle_seed_dials_its_candidates_again_at_its_idle_tick(
    seed: Torrent, clock: MemoryReactorClock
) -> None:
    """1,000 idle seeds share one timer; a tracker's answer dials at once, later
    retries wait for the idle tick (every 30 s)."""
    for _ in range(6):  # past the start-up save (the resume state is dirty until then)
        clock.advance(1)
    (attempt,) = dials_to(clock, LEECHER)
    attempt.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert not seed.links
    for _ in range(int(RETRY_BASE + IDLE_SEED_TICK_INTERVAL) + 1):
        clock.advance(1)
    assert len(dials_to(clock, LEECHER)) == 2, "a finished idle torrent dials what is due"


def test_a_seed_does_not_dial_a_peer_it_found_to_be_a_seed(
    metainfo: Metainfo, clock: MemoryReactorClock
) -> None:
    other_seed: Address = ("10.0.0.6", 6881)
    torrent = make_seed(metainfo, clock)
    torrent.startService()
    torrent.add_candidates([other_seed])
    (attempt,) = dials_to(clock, other_seed)
    peer = ScriptedPeer(attempt.buildProtocol(None), metainfo, b"-LT2000-otherseed001")
    peer.say(BitfieldMessage(Bitfield.full(metainfo.num_pieces).to_bytes()), handshake=True)
    assert peer.protocol.close_reason == "both sides are seeds"
    peer.protocol.connectionLost()
    clock.advance(3600)
    for _ in range(3):
        clock.advance(IDLE_SEED_TICK_INTERVAL)
    assert len(dials_to(clock, other_seed)) == 1, "seed-to-seed would only hang up again"
    torrent.stopService()


def test_a_downloading_torrent_still_dials_a_known_seed(
    metainfo: Metainfo, clock: MemoryReactorClock
) -> None:
    """The seed mark matters only while we are a seed ourselves."""
    torrent = make_torrent(metainfo, clock)
    torrent.startService()
    address: Address = ("10.0.0.7", 6881)
    torrent.add_candidates([address])
    torrent.candidates.mark_seed(address)
    (attempt,) = dials_to(clock, address)
    attempt.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    for _ in range(int(RETRY_BASE) + 10):
        clock.advance(1)
    assert len(dials_to(clock, address)) == 2
    torrent.stopService()
