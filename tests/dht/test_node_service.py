"""bt.dht.service and bt.dht.source: the session's DHT without sockets.

A MemoryReactorClock with a UDP port that records what the node writes; the
peer listener is a stand-in bound to 127.0.0.1:PORT.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from torrents import handmade_info, handmade_torrent
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock

from bt import bencode
from bt.candidates import PeerSource
from bt.dht import persist
from bt.dht.config import DHTConfig
from bt.dht.krpc import NodeInfo
from bt.dht.lookup import LookupResult
from bt.dht.node import QUERY_TIMEOUT
from bt.dht.service import DHTService, dht_counts
from bt.dht.source import INTERVAL, SOONEST, DHTPeerSource
from bt.metainfo import parse_metainfo
from bt.session import Session, SessionConfig


class UDPPort:
    """What listenUDP returns here: it records the datagrams written through it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.stopped = False

    def write(self, datagram: bytes, address: tuple[str, int]) -> None:
        self.sent.append((datagram, address))

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", self.host, self.port)

    def stopListening(self) -> None:
        self.stopped = True


class Reactor(MemoryReactorClock):
    def __init__(self) -> None:
        super().__init__()
        self.udp: list[tuple[int, str, UDPPort]] = []

    def listenUDP(self, port: int, protocol: Any, interface: str = "", **_: Any) -> UDPPort:
        udp = UDPPort(interface, port)
        protocol.transport = udp
        self.udp.append((port, interface, udp))
        return udp


class Listening:
    def __init__(self, host: Any) -> None:
        self.host = host

    def getHost(self) -> Any:
        return self.host


class Listener:
    def __init__(self, host: Any) -> None:
        self.listening = Listening(host)


def blocking(job: Any, *args: Any) -> defer.Deferred[Any]:
    return defer.maybeDeferred(job, *args)


ROUTER = ("127.0.0.9", 6881)


def service(tmp_path: Path, reactor: Reactor, host: Any = None) -> DHTService:
    host = host or IPv4Address("TCP", "127.0.0.1", 51413)
    return DHTService(
        DHTConfig(bootstrap=(ROUTER,)),
        tmp_path,
        Listener(host),  # type: ignore[arg-type]
        reactor,
        random.Random(3),
        blocking,
    )


def queried(udp: UDPPort) -> list[tuple[bytes, tuple[str, int]]]:
    return [(bencode.decode(d)[b"q"], a) for d, a in udp.sent if bencode.decode(d)[b"y"] == b"q"]


def test_the_node_listens_on_the_tcp_listeners_address_and_port(tmp_path: Path) -> None:
    reactor = Reactor()
    dht = service(tmp_path, reactor)
    dht.startService()
    [(port, interface, udp)] = reactor.udp
    assert (port, interface) == (51413, "127.0.0.1") and dht.port == 51413
    assert queried(udp) == [(b"find_node", ROUTER)], "no saved nodes: the bootstrap node"
    dht.stopService()
    assert udp.stopped


def test_ipv6_listening_makes_an_ipv6_node(tmp_path: Path) -> None:
    reactor = Reactor()
    dht = service(tmp_path, reactor, IPv6Address("TCP", "::1", 6000))
    dht.startService()
    assert reactor.udp[0][:2] == (6000, "::1") and dht.node is not None and dht.node.ipv6
    dht.stopService()


def test_stop_saves_our_id_and_a_restart_bootstraps_from_the_saved_nodes_first(
    tmp_path: Path,
) -> None:
    reactor = Reactor()
    first = service(tmp_path, reactor)
    first.startService()
    assert first.node is not None
    node_id = first.node.node_id
    known = NodeInfo(bytes(range(20)), "127.0.0.7", 7000)
    first.node.table.add(known, reactor.seconds(), replied=True)
    first.stopService()
    saved = persist.load(tmp_path / persist.FILENAME)
    assert saved.node_id == node_id and saved.nodes == [known]

    again = Reactor()
    second = service(tmp_path, again)
    second.startService()
    assert second.node is not None and second.node.node_id == node_id
    udp = again.udp[0][2]
    assert queried(udp) == [(b"find_node", known.address)], "the saved node before the router"
    for _ in range(4):  # it never answers: its query times out, with its retry
        again.advance(QUERY_TIMEOUT)
    assert (b"find_node", ROUTER) in queried(udp), "then the bootstrap nodes"
    second.stopService()


def test_damaged_state_means_a_fresh_start(tmp_path: Path) -> None:
    (tmp_path / persist.FILENAME).write_bytes(b"not bencode")
    assert persist.load(tmp_path / persist.FILENAME) == persist.Saved()
    data = bencode.encode({b"id": b"x" * 20, b"nodes": [[b"y" * 20, b"example.com", 1]]})
    assert persist.undump(data) == persist.Saved(b"x" * 20, []), "names are not trusted"


def test_status_counts_are_none_without_a_dht(tmp_path: Path) -> None:
    assert dht_counts(None) == {}
    reactor = Reactor()
    dht = service(tmp_path, reactor)
    dht.startService()
    assert dht_counts(dht) == {"dht_nodes": 0, "dht_lookups": 1, "dht_announces": 0}
    dht.stopService()


# -- the peer source --------------------------------------------------------------


class FakeNode:
    def __init__(self) -> None:
        self.announced: list[tuple[bytes, int]] = []
        self.results: list[defer.Deferred[LookupResult]] = []

    def announce(self, info_hash: bytes, port: int) -> defer.Deferred[LookupResult]:
        self.announced.append((info_hash, port))
        self.results.append(defer.Deferred())
        return self.results[-1]


class FakeDHT:
    def __init__(self) -> None:
        self.node = FakeNode()
        self.lookup_turns = defer.DeferredSemaphore(1)

    def bootstrapped(self) -> defer.Deferred[None]:
        return defer.succeed(None)


def result(peers: tuple[tuple[str, int], ...]) -> LookupResult:
    return LookupResult(b"t" * 20, (), peers, 8, 8, 3)


def test_the_source_looks_up_then_hands_peers_to_the_pool_tagged_dht() -> None:
    clock = MemoryReactorClock()
    dht = FakeDHT()
    added: list[tuple[list[tuple[str, int]], str]] = []
    source = DHTPeerSource(dht, b"h" * 20, lambda p, s: added.append((p, s)), lambda: 6881, clock)  # type: ignore[arg-type]
    source.start()
    clock.advance(0)
    assert dht.node.announced == [(b"h" * 20, 6881)]
    dht.node.results[0].callback(result((("127.0.0.2", 7000), ("127.0.0.3", 0))))
    assert added == [([("127.0.0.2", 7000)], PeerSource.DHT)] and source.peers_found == 1
    clock.advance(INTERVAL - 1)
    assert len(dht.node.announced) == 1, "the next lookup in about 15 minutes"
    clock.advance(1)
    assert len(dht.node.announced) == 2
    dht.node.results[1].callback(result((("127.0.0.2", 7000),)))
    assert source.peers_found == 1, "a peer found again is not counted twice"
    clock.advance(SOONEST)
    source.need_peers()
    clock.advance(0)
    assert len(dht.node.announced) == 3, "short of peers: sooner"
    source.stop()
    dht.node.results[2].callback(result((("127.0.0.4", 1),)))
    assert len(added) == 2 and clock.getDelayedCalls() == []


# -- which torrents get one -----------------------------------------------------------


@pytest.mark.parametrize("private", [False, True])
def test_public_torrents_get_a_dht_source_and_private_ones_never(
    tmp_path: Path, private: bool
) -> None:
    config = SessionConfig(
        download_dir=tmp_path, state_dir=tmp_path / "state", dht=DHTConfig(bootstrap=(ROUTER,))
    )
    session = Session(config, reactor=Reactor())
    info = handmade_info(name="p" if private else "q")
    if private:
        info["private"] = 1
    torrent = session.add_torrent(parse_metainfo(handmade_torrent(info)), remember=False)
    tags = [source.tag for source in torrent.sources.sources]
    assert (PeerSource.DHT in tags) is not private
    assert (torrent.swarm.factory.dht is not None) is not private


def test_a_session_without_a_dht_config_has_no_dht(tmp_path: Path) -> None:
    session = Session(SessionConfig(download_dir=tmp_path, state_dir=tmp_path / "s"), Reactor())
    assert session.dht is None and session.status().dht_nodes is None


def test_a_magnet_fetch_finds_peers_through_the_dht(tmp_path: Path) -> None:
    """A magnet without tr= still has a peer source: the DHT (BEP 9 + BEP 5)."""
    from bt.magnet import parse_magnet

    config = SessionConfig(
        download_dir=tmp_path, state_dir=tmp_path / "state", dht=DHTConfig(bootstrap=(ROUTER,))
    )
    session = Session(config, reactor=Reactor())
    magnet = parse_magnet("magnet:?xt=urn:btih:" + "ab" * 20)
    session.add_magnet(magnet, remember=False)
    fetch = session.magnets.fetches[magnet.info_hash]
    assert [s.tag for s in fetch.sources.sources] == [PeerSource.DHT]
    assert fetch.dialer.factory.dht is session.dht.advert  # type: ignore[union-attr]


def test_questionable_nodes_are_pinged_and_silent_ones_go_bad(tmp_path: Path) -> None:
    reactor = Reactor()
    dht = service(tmp_path, reactor)
    dht.startService()
    assert dht.node is not None
    quiet = NodeInfo(bytes(range(1, 21)), "127.0.0.8", 7000)
    dht.node.table.add(quiet, reactor.seconds(), replied=True)
    udp = reactor.udp[0][2]
    for _ in range(17):  # past GOOD_FOR (15 min) and one refresh check
        reactor.advance(60)
    assert (b"ping", quiet.address) in queried(udp)
    for _ in range(10):
        reactor.advance(60)
    node = dht.node.table.get(quiet.id)
    assert node is None or node.failures > 0, "silence counts against it"
    dht.stopService()


def test_listening_on_every_interface_binds_udp_on_every_interface(tmp_path: Path) -> None:
    """The default ``--listen tcp:6881`` (0.0.0.0): UDP on all interfaces, a random id."""
    reactor = Reactor()
    dht = service(tmp_path, reactor, IPv4Address("TCP", "0.0.0.0", 6881))
    dht.startService()
    assert reactor.udp[0][:2] == (6881, "") and dht.node is not None
    assert len(dht.node.node_id) == 20
    dht.stopService()


def test_the_state_is_saved_every_few_minutes_while_running(tmp_path: Path) -> None:
    from bt.dht.service import SAVE_EVERY

    reactor = Reactor()
    dht = service(tmp_path, reactor)
    dht.startService()
    assert dht.node is not None
    assert not (tmp_path / persist.FILENAME).exists()
    reactor.advance(SAVE_EVERY)
    assert persist.load(tmp_path / persist.FILENAME).node_id == dht.node.node_id
    dht.stopService()


def test_our_id_follows_bep_42_for_the_address_other_nodes_saw_us_at(tmp_path: Path) -> None:
    from bt.dht.nodeid import is_valid_id

    public = "1.2.3.4"  # a global address (documentation ranges count as private); never contacted
    (tmp_path / persist.FILENAME).write_bytes(persist.dump(b"\x00" * 20, [], public))
    reactor = Reactor()
    dht = service(tmp_path, reactor)
    dht.startService()
    assert dht.node is not None
    chosen = dht.node.node_id
    assert chosen != b"\x00" * 20 and is_valid_id(chosen, public)
    dht.stopService()
    assert persist.load(tmp_path / persist.FILENAME).external_ip == public, "kept"
    again = service(tmp_path, Reactor())
    again.startService()
    assert again.node is not None and again.node.node_id == chosen
    again.stopService()


def test_responders_tell_the_node_its_external_address() -> None:
    from bt.dht.krpc import Response, encode
    from bt.dht.node import DHTNode

    reactor = Reactor()
    node = DHTNode(b"n" * 20, reactor, random.Random(1))
    udp = UDPPort("", 6881)
    node.transport = udp  # type: ignore[assignment]
    asked = node.ping(("127.0.0.5", 7000))
    tid = bencode.decode(udp.sent[0][0])[b"t"]
    node.datagramReceived(
        encode(Response(tid, b"r" * 20, ip=("198.51.100.4", 6881))), ("127.0.0.5", 7000)
    )
    assert asked.called and node.external_ip == "198.51.100.4"


def test_torrents_lookups_wait_their_turn() -> None:
    """Many torrents starting at once run their lookups a few at a time."""
    clock = MemoryReactorClock()
    dht = FakeDHT()
    sources = [
        DHTPeerSource(dht, bytes([i]) * 20, lambda p, s: None, lambda: 6881, clock)  # type: ignore[arg-type]
        for i in range(3)
    ]
    for source in sources:
        source.start()
    clock.advance(0)
    assert len(dht.node.announced) == 1, "one turn at a time here"
    dht.node.results[0].callback(result(()))
    assert len(dht.node.announced) == 2
    sources[2].stop()
    dht.node.results[1].callback(result(()))
    assert len(dht.node.announced) == 2, "a source stopped while waiting does not look"
    for source in sources:
        source.stop()


def test_a_taken_udp_port_leaves_the_session_without_a_dht_not_down(tmp_path: Path) -> None:
    from twisted.internet.error import CannotListenError

    class Taken(Reactor):
        def listenUDP(self, port: int, protocol: Any, interface: str = "", **_: Any) -> UDPPort:
            raise CannotListenError(interface, port, OSError("Address already in use"))

    dht = service(tmp_path, Taken())
    dht.startService()
    assert dht.node is None and dht.port is None
    assert dht.bootstrapped().called, "sources waiting for the bootstrap are let go"
    assert dht_counts(dht) == {"dht_nodes": 0, "dht_lookups": 0, "dht_announces": 0}
    dht.stopService()
