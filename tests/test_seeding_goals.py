"""Seeding goals of zero: ``--seed-ratio 0`` and ``--seed-time 0`` mean "do not seed".

Driven like tests/test_torrent.py: scripted peers over StringTransport, a fake
disk that verifies at once, and a fake clock that the tests never advance, to
show the torrent stops at once rather than at its next tick.
"""

from __future__ import annotations

import pytest
from test_torrent import DATA, PIECE, FakeDisk, connect, leecher, make_torrent, seeder
from test_torrent_controls import RecordingTracker, serve_all
from torrents import handmade_info, handmade_torrent
from twisted.internet.testing import MemoryReactorClock

from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.messages import BitfieldMessage, Piece, Request
from bt.torrentconfig import TorrentConfig

NO_SEEDING = [TorrentConfig(seed_ratio=0.0), TorrentConfig(seed_time=0.0)]


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def metainfo() -> Metainfo:
    info = handmade_info([(["data.bin"], len(DATA))], name="t", piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info))


@pytest.mark.parametrize("config", NO_SEEDING, ids=["ratio-0", "time-0"])
def test_a_goal_of_zero_announces_completed_and_serves_nobody(
    metainfo: Metainfo, clock: MemoryReactorClock, config: TorrentConfig
) -> None:
    tracker = RecordingTracker()
    torrent = make_torrent(metainfo, clock, trackers=[tracker], config=config)
    torrent.startService()
    finished = torrent.when_finished()
    source = seeder(torrent)
    serve_all(source)
    assert finished.called
    assert torrent.state == "finished", "no tick needed: finished with the last piece"
    assert tracker.events == ["started", "completed", "stopped"]
    assert source.transport.disconnecting
    late = leecher(torrent, 2)
    assert late.transport.disconnecting, "a finished torrent takes no peers"
    torrent.stopService()


@pytest.mark.parametrize("config", NO_SEEDING, ids=["ratio-0", "time-0"])
def test_complete_data_with_a_goal_of_zero_never_joins_the_swarm(
    metainfo: Metainfo, clock: MemoryReactorClock, config: TorrentConfig
) -> None:
    tracker = RecordingTracker()
    disk = FakeDisk(metainfo, complete=True)
    torrent = make_torrent(metainfo, clock, disk, trackers=[tracker], config=config)
    torrent.startService()
    assert torrent.state == "finished" and torrent.is_finished
    peer = connect(torrent, b"-LT2000-leecher00001", 7)
    peer.say(handshake=True)
    heard = peer.heard()
    assert peer.transport.disconnecting
    assert not any(isinstance(e, BitfieldMessage | Piece) for e in heard)
    assert tracker.events == [], "nothing to tell a tracker: it never heard of us"
    torrent.stopService()


def test_a_ratio_already_reached_at_start_does_not_seed_again(
    metainfo: Metainfo, clock: MemoryReactorClock
) -> None:
    """As Transmission: a torrent whose ratio is met does not start seeding on restart."""
    torrent = make_torrent(
        metainfo, clock, FakeDisk(metainfo, complete=True), config=TorrentConfig(seed_ratio=1.0)
    )
    torrent.upload_rate.total = metainfo.total_length  # uploaded before the restart
    torrent.startService()
    assert torrent.state == "finished"
    torrent.stopService()


def test_a_positive_ratio_still_seeds(metainfo: Metainfo, clock: MemoryReactorClock) -> None:
    torrent = make_torrent(
        metainfo, clock, FakeDisk(metainfo, complete=True), config=TorrentConfig(seed_ratio=0.5)
    )
    torrent.startService()
    assert torrent.state == "seeding"
    peer = leecher(torrent)
    peer.heard()
    peer.say(Request(0, 0, 16384))
    clock.advance(1)
    assert any(isinstance(e, Piece) for e in peer.heard())
    torrent.stopService()
