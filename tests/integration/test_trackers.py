"""bt's tracker clients against a real opentracker on loopback: announce, peers, scrape."""

from __future__ import annotations

import random

import pytest
import pytest_twisted
from swarm import OpenTracker

from bt.tracker.announce import AnnounceRequest
from bt.tracker.http import HTTPTracker, make_http_client
from bt.tracker.tiers import TrackerTier

pytestmark = pytest.mark.integration

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
