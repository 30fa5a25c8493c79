"""TrackerFactory: one client per usable announce URL, tiers for a torrent, one HTTP client."""

from __future__ import annotations

import random

from torrents import handmade_info, handmade_torrent
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent

from bt.metainfo import parse_metainfo
from bt.tracker.factory import TrackerFactory
from bt.tracker.http import HTTPTracker
from bt.tracker.tiers import TrackerTier
from bt.tracker.udp import UDPTracker


def factory() -> TrackerFactory:
    return TrackerFactory(MemoryReactorClock(), random.Random(5))


def test_each_scheme_gets_its_client_and_others_none() -> None:
    trackers = factory()
    assert isinstance(trackers.for_url("http://t.example/announce"), HTTPTracker)
    assert isinstance(trackers.for_url("https://t.example/announce"), HTTPTracker)
    assert isinstance(trackers.for_url("udp://t.example:6969"), UDPTracker)
    assert trackers.for_url("wss://t.example/announce") is None


def test_http_trackers_share_the_one_client() -> None:
    trackers = factory()
    first = trackers.for_url("http://a.example/announce")
    second = trackers.for_url("http://b.example/announce")
    assert isinstance(first, HTTPTracker) and isinstance(second, HTTPTracker)
    assert first._client is second._client is trackers.http_client


def test_a_bad_url_is_skipped_with_a_warning_and_its_tier_kept_when_others_work() -> None:
    announce_list = [[b"http://t.example:port/announce", b"http://good.example/announce"]]
    metainfo = parse_metainfo(
        handmade_torrent(handmade_info(name="tiers"), **{"announce-list": announce_list})
    )
    with capturedLogs() as events:
        tiers = factory().tiers_for(metainfo)
    lines = [formatEvent(e) for e in events]
    assert len(tiers) == 1 and isinstance(tiers[0], TrackerTier)
    assert [line for line in lines if line.startswith("tiers: skipping tracker:")], lines


def test_a_torrent_without_usable_trackers_waits_for_incoming_peers() -> None:
    metainfo = parse_metainfo(
        handmade_torrent(handmade_info(name="lonely"), announce=b"wss://t.example/announce")
    )
    with capturedLogs() as events:
        assert factory().tiers_for(metainfo) == []
    lines = [formatEvent(e) for e in events]
    assert "lonely: no usable tracker; waiting for incoming peers" in lines
