"""Peer sources: the tracker announcer is one, and a new source joins a torrent by
registering, fed candidates with its own tag; the torrent starts and stops it."""

from __future__ import annotations

import random
from typing import Any

from test_torrent import make_torrent, one_file_metainfo
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from bt.candidates import PeerSource
from bt.peersources import IPeerSource
from bt.tracker.announcer import Announcer


@implementer(IPeerSource)
class ToySource:
    """Hands the torrent one address when started, tagged as PEX."""

    tag = PeerSource.PEX

    def __init__(self, add: Any) -> None:
        self.add = add
        self.running = False
        self.calls: list[str] = []

    def start(self) -> None:
        self.running = True
        self.calls.append("start")
        self.add([("10.0.0.5", 5)], self.tag)

    def completed(self) -> None:
        self.calls.append("completed")

    def need_peers(self) -> None:
        self.calls.append("need_peers")

    def stop(self) -> Deferred[None]:
        self.running = False
        self.calls.append("stop")
        return defer.succeed(None)


def test_the_tracker_announcer_is_a_peer_source() -> None:
    clock = MemoryReactorClock()
    announcer = Announcer(object(), clock, random.Random(1), lambda e: None, lambda p: None)  # type: ignore[arg-type]
    assert verifyObject(IPeerSource, announcer)
    assert announcer.tag == PeerSource.TRACKER


def test_a_registered_source_is_started_feeds_candidates_and_is_stopped() -> None:
    clock = MemoryReactorClock()
    torrent = make_torrent(one_file_metainfo(), clock)
    source = ToySource(torrent.add_candidates)
    assert verifyObject(IPeerSource, source)
    torrent.sources.register(source)
    torrent.startService()
    assert source.calls == ["start"]
    assert [(host, port) for host, port, *_ in clock.tcpClients] == [("10.0.0.5", 5)]
    clock.advance(1)  # a tick with few peers asks every source for more
    assert source.calls == ["start", "need_peers"]
    torrent.pause()
    assert source.calls[-1] == "stop" and not source.running
    torrent.stopService()
