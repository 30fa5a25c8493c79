"""bt's tracker clients against a real opentracker on loopback: announce, peers, scrape."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import pytest_twisted
from swarm import BtDaemon, OpenTracker, scrape_counts, wait_for
from test_download import assert_same_tree
from torrents import libtorrent_torrent, write_files

from bt.metainfo import parse_metainfo
from bt.tracker.announce import AnnounceRequest
from bt.tracker.http import HTTPTracker, make_http_client
from bt.tracker.tiers import TrackerTier
from bt.tracker.udp import UDPTracker

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

INFO_HASH = bytes(range(20))


def request(peer_id: bytes, port: int, left: int, event: str | None = "started") -> AnnounceRequest:
    return AnnounceRequest(
        info_hash=INFO_HASH,
        peer_id=peer_id,
        port=port,
        uploaded=0,
        downloaded=0,
        left=left,
        event=event,
        key="1234abcd",
    )


@pytest_twisted.ensureDeferred
async def test_http_announce_peers_and_scrape(opentracker: OpenTracker) -> None:
    from twisted.internet import reactor

    opentracker.start([INFO_HASH])
    client, pool = make_http_client(reactor)
    try:
        tracker = HTTPTracker(opentracker.announce_url, client, reactor, timeout=10)
        first = await tracker.announce(request(b"-BT0100-aaaaaaaaaaaa", 40001, left=0))
        assert first.interval > 0
        second = await tracker.announce(request(b"-BT0100-bbbbbbbbbbbb", 40002, left=100))
        assert ("127.0.0.1", 40001) in second.peers
        counts = (await tracker.scrape([INFO_HASH]))[INFO_HASH]
        assert (counts.complete, counts.incomplete) == (1, 1)
        await tracker.announce(request(b"-BT0100-aaaaaaaaaaaa", 40001, 0, event="stopped"))
        await tracker.announce(request(b"-BT0100-bbbbbbbbbbbb", 40002, 100, event="stopped"))
    finally:
        await pool.closeCachedConnections()


@pytest_twisted.ensureDeferred
async def test_a_tier_whose_first_tracker_is_dead_still_announces(
    opentracker: OpenTracker,
) -> None:
    from twisted.internet import reactor

    opentracker.start([INFO_HASH])
    client, pool = make_http_client(reactor, connect_timeout=2)
    try:
        dead = HTTPTracker("http://127.0.0.1:9/announce", client, reactor, timeout=2)
        alive = HTTPTracker(opentracker.announce_url, client, reactor, timeout=10)
        tier = TrackerTier([dead, alive], random.Random(0))
        tier._trackers = [dead, alive]
        answer = await tier.announce(request(b"-BT0100-cccccccccccc", 40003, left=0))
        assert answer.interval > 0
        assert tier.trackers[0] is alive, "the tracker that answered moves to the front"
    finally:
        await pool.closeCachedConnections()


@pytest_twisted.ensureDeferred
async def test_udp_announce_peers_and_scrape(opentracker: OpenTracker) -> None:
    from twisted.internet import reactor

    opentracker.start([INFO_HASH])
    tracker = UDPTracker(
        f"udp://127.0.0.1:{opentracker.port}/announce",
        reactor,
        rng=random.Random(1),
        retry_base=0.5,
        max_retries=4,
        interface="127.0.0.1",
    )
    try:
        first = await tracker.announce(request(b"-BT0100-dddddddddddd", 40004, left=0))
        assert first.interval > 0
        second = await tracker.announce(request(b"-BT0100-eeeeeeeeeeee", 40005, left=100))
        assert ("127.0.0.1", 40004) in second.peers
        counts = (await tracker.scrape([INFO_HASH]))[INFO_HASH]
        assert (counts.complete, counts.incomplete) == (1, 1)
        await tracker.announce(request(b"-BT0100-dddddddddddd", 40004, 0, event="stopped"))
        await tracker.announce(request(b"-BT0100-eeeeeeeeeeee", 40005, 100, event="stopped"))
    finally:
        closing = tracker.close()
        if closing is not None:
            await closing


def test_two_bt_processes_find_each_other_over_udp(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    seed_dir = tmp_path / "seed"
    write_files(seed_dir, {"udp.bin": 2_000_000})
    provisional = libtorrent_torrent(seed_dir / "udp.bin", 65536)
    opentracker.start([parse_metainfo(provisional).info_hash])
    torrent = tmp_path / "udp.torrent"
    udp_url = f"udp://127.0.0.1:{opentracker.port}/announce"
    torrent.write_bytes(libtorrent_torrent(seed_dir / "udp.bin", 65536, tracker=udp_url))
    (tmp_path / "seeder").mkdir()
    (tmp_path / "leecher").mkdir()
    seeder = BtDaemon(tmp_path / "seeder", torrent, seed_dir)
    leecher = BtDaemon(tmp_path / "leecher", torrent, tmp_path / "leecher" / "downloads")
    seeder.start()
    try:
        seeder.wait_for_log("pieces already on disk", 60)
        wait_for(
            lambda: scrape_counts(opentracker, parse_metainfo(torrent.read_bytes()).info_hash) >= 1,
            30,
            "the bt seeder at the tracker over UDP",
        )
        leecher.start()
        leecher.wait_for_log("udp.bin: download complete", 60)
        assert_same_tree(seed_dir / "udp.bin", leecher.download_dir / "udp.bin")
    finally:
        leecher.stop()
        seeder.stop()
    assert "Traceback" not in seeder.log() + leecher.log()
