"""bt.dht.node: the DatagramProtocol as responder and querier, over an in-memory UDP network.

No sockets: each node's transport hands datagrams to the addressed node
through a task.Clock, so timeouts, retries and lookups run in fake time.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from twisted.internet.task import Clock

from bt import bencode
from bt.dht import krpc
from bt.dht.krpc import ErrorMessage, NodeInfo, Query, Response
from bt.dht.node import MAX_PENDING, QUERY_TIMEOUT, DHTNode, DHTQueryError, DHTTimeout
from bt.dht.nodeid import random_id
from bt.dht.ratelimit import RateLimiter

Address = tuple[str, int]


class Wire:
    """The in-memory UDP of one node: what it writes reaches the addressed node next turn."""

    def __init__(self, net: Net, address: Address) -> None:
        self.net = net
        self.address = address
        self.sent: list[tuple[bytes, Address]] = []

    def write(self, datagram: bytes, address: Address) -> None:
        self.sent.append((datagram, address))
        target = self.net.nodes.get(address)
        if target is not None:
            self.net.clock.callLater(0.01, target.datagramReceived, datagram, self.address)


class Net:
    """Nodes on 127.0.0.N:6881 (distinct loopback addresses), one clock."""

    def __init__(self, seed: int = 7) -> None:
        self.clock = Clock()
        self.rng = random.Random(seed)
        self.nodes: dict[Address, DHTNode] = {}

    def node(self, index: int, **options: Any) -> DHTNode:
        address = (f"127.0.{index >> 8}.{index & 255}", 6881)
        options.setdefault("allow_same_ip", True)
        node = DHTNode(random_id(self.rng), self.clock, random.Random(index), **options)
        node.transport = Wire(self, address)  # type: ignore[assignment]
        self.nodes[address] = node
        return node

    def run(self, seconds: float = 1.0, step: float = 0.01) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)


def address_of(node: DHTNode) -> Address:
    return node.transport.address  # type: ignore[union-attr]


def results(deferred: Any) -> list[Any]:
    out: list[Any] = []
    deferred.addBoth(out.append)
    return out


def raw_query(sender: DHTNode, target: DHTNode, query: Query) -> list[krpc.Message]:
    """Send a hand-made query from ``sender``'s address; return what came back to it."""
    replies: list[krpc.Message] = []
    sender.datagramReceived = lambda data, addr: replies.append(krpc.parse(data))  # type: ignore[method-assign]
    sender.transport.write(krpc.encode(query), address_of(target))  # type: ignore[union-attr]
    return replies


def test_ping_round_trip_teaches_both_tables() -> None:
    net = Net()
    a, b = net.node(1), net.node(2)
    got = results(a.ping(address_of(b)))
    net.run()
    [response] = got
    assert isinstance(response, Response) and response.sender == b.node_id
    assert a.table.get(b.node_id) is not None, "a reply puts the responder in the table"
    assert b.table.get(a.node_id) is not None, "a query puts the querier in the table"
    assert a.pending == {}


def test_find_node_answers_the_closest_nodes_it_knows() -> None:
    net = Net()
    a, b = net.node(1), net.node(2)
    others = [net.node(i) for i in range(3, 20)]
    for other in others:
        b.table.add(NodeInfo(other.node_id, *address_of(other)), 0.0, replied=True)
    target = random_id(net.rng)
    got = results(a.find_node(address_of(b), target))
    net.run()
    [response] = got
    expected = b.table.closest(target, 8)
    assert list(response.nodes) == expected and len(expected) == 8


def test_get_peers_gives_a_token_that_announce_peer_needs() -> None:
    net = Net()
    a, b = net.node(1), net.node(2)
    info_hash = random_id(net.rng)
    got = results(a.get_peers(address_of(b), info_hash))
    net.run()
    [first] = got
    assert first.token and first.values == ()
    announced = results(a.announce_peer(address_of(b), info_hash, 51413, first.token))
    net.run()
    assert isinstance(announced[0], Response)
    again = results(a.get_peers(address_of(b), info_hash))
    net.run()
    assert again[0].values == ((address_of(a)[0], 51413),)


def test_announce_peer_with_a_bad_token_is_refused_with_203() -> None:
    net = Net()
    a, b = net.node(1), net.node(2)
    info_hash = random_id(net.rng)
    refused = results(a.announce_peer(address_of(b), info_hash, 51413, b"forged!!"))
    net.run()
    assert refused[0].check(DHTQueryError) and "203" in str(refused[0].value)
    assert len(b.store) == 0


def test_implied_port_announces_the_source_port() -> None:
    net = Net()
    a, b = net.node(1), net.node(2)
    info_hash = random_id(net.rng)
    token = b.tokens.issue(address_of(a)[0], net.clock.seconds())
    query = Query(b"aa", "announce_peer", a.node_id, info_hash=info_hash, port=1, token=token,
                  implied_port=True)  # fmt: skip
    replies = raw_query(a, b, query)
    net.run()
    assert isinstance(replies[0], Response)
    assert b.store.get(info_hash, net.clock.seconds(), net.rng) == [address_of(a)]


def test_a_silent_node_gets_one_retry_then_a_timeout() -> None:
    net = Net()
    a = net.node(1)
    silent = ("127.0.9.9", 6881)
    got = results(a.ping(silent))
    net.clock.advance(QUERY_TIMEOUT)
    assert [addr for _, addr in a.transport.sent] == [silent, silent]  # type: ignore[union-attr]
    assert got == []
    net.clock.advance(QUERY_TIMEOUT)
    assert got[0].check(DHTTimeout)
    assert a.pending == {} and net.clock.getDelayedCalls() == []


def test_a_reply_from_another_address_is_ignored() -> None:
    """A spoofed reply (right transaction id, wrong source) does not resolve the query."""
    net = Net()
    a = net.node(1)
    silent = ("127.0.9.9", 6881)
    got = results(a.ping(silent))
    [(datagram, _)] = a.transport.sent  # type: ignore[union-attr]
    tid = bencode.decode(datagram)[b"t"]
    a.datagramReceived(krpc.encode(Response(tid, random_id(net.rng))), ("127.0.9.10", 6881))
    assert got == [] and len(a.pending) == 1
    net.clock.advance(2 * QUERY_TIMEOUT)


def test_pending_queries_are_bounded() -> None:
    net = Net()
    a = net.node(1, max_pending=3)
    outcomes = [results(a.ping(("127.0.9.9", 6881 + i))) for i in range(4)]
    assert outcomes[3] == [], "it fails on the next turn, never before returning"
    net.clock.advance(0)
    assert outcomes[3][0].check(DHTQueryError) and len(a.pending) == 3
    net.clock.advance(2 * QUERY_TIMEOUT)
    assert MAX_PENDING >= 64


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00" * 40, b"d1:ad", b"i42e", b"d1:t2:aa1:y1:qe", b"x" * 5000, b"le"],
)
def test_garbage_is_dropped_without_a_crash(garbage: bytes) -> None:
    net = Net()
    a = net.node(1)
    a.datagramReceived(garbage, ("127.0.9.9", 6881))
    assert a.counters.dropped == 1


def test_a_query_of_an_unknown_method_gets_an_error_reply() -> None:
    net = Net()
    a, b = net.node(1), net.node(2)
    replies: list[krpc.Message] = []
    a.datagramReceived = lambda data, addr: replies.append(krpc.parse(data))  # type: ignore[method-assign]
    datagram = bencode.encode({b"t": b"xy", b"y": b"q", b"q": b"vote", b"a": {b"id": a.node_id}})
    a.transport.write(datagram, address_of(b))  # type: ignore[union-attr]
    net.run()
    [reply] = replies
    assert isinstance(reply, ErrorMessage) and reply.tid == b"xy" and reply.code in (203, 204)


def test_a_flood_from_one_address_is_rate_limited() -> None:
    """Queries past the per-address burst get no answer: bt is no amplifier."""
    net = Net()
    a, b = net.node(1), net.node(2, limiter=RateLimiter(rate=1.0, burst=5.0))
    replies: list[krpc.Message] = []
    a.datagramReceived = lambda data, addr: replies.append(krpc.parse(data))  # type: ignore[method-assign]
    for index in range(50):
        query = Query(index.to_bytes(2, "big"), "ping", a.node_id)
        a.transport.write(krpc.encode(query), address_of(b))  # type: ignore[union-attr]
    net.run(0.1)
    assert len(replies) == 5 and b.counters.dropped == 45


def test_a_lookup_finds_peers_announced_in_a_network_of_a_hundred_nodes() -> None:
    net = Net()
    nodes = [net.node(i) for i in range(1, 101)]
    for node in nodes:  # each knows 10 others: the DHT is connected but not complete
        for other in net.rng.sample(nodes, 10):
            if other is not node:
                node.table.add(NodeInfo(other.node_id, *address_of(other)), 0.0, replied=True)
    info_hash = random_id(net.rng)
    seeder, leecher = nodes[0], nodes[-1]
    announced = results(seeder.announce(info_hash, 7000))
    net.run(30)
    assert announced and announced[0].responded > 0
    assert seeder.counters.announces > 0
    found = results(leecher.lookup(info_hash, get_peers=True))
    net.run(30)
    assert (address_of(seeder)[0], 7000) in found[0].peers
    assert leecher.counters.lookups == 1
    net.clock.advance(60)
    assert all(not n.pending for n in nodes)


def test_a_lookup_whose_every_query_fails_at_once_ends_without_recursing() -> None:
    """No transport (or no route): every send fails; the lookup still ends, turn by turn."""
    net = Net()
    a = net.node(1)
    for index in range(2, 200):
        a.table.add(NodeInfo(random_id(net.rng), f"127.1.{index}.1", 6881), 0.0, replied=True)
    a.transport = None
    found = results(a.lookup(random_id(net.rng)))
    for _ in range(500):
        net.clock.advance(0)
    assert found and found[0].responded == 0 and a.pending == {}


def test_an_address_of_the_other_family_fails_the_query_not_the_node() -> None:
    """An IPv6 node asked to reach an IPv4 router (say): the query fails, nothing raises."""
    from twisted.internet.error import InvalidAddressError

    class V6Only:
        def write(self, datagram: bytes, address: Address) -> None:
            raise InvalidAddressError(address, "not IPv6")

    net = Net()
    a = net.node(1, ipv6=True)
    a.transport = V6Only()  # type: ignore[assignment]
    got = results(a.ping(("127.0.0.5", 6881)))
    net.clock.advance(0)
    assert got[0].check(DHTQueryError) and a.pending == {}


def test_replies_name_only_nodes_that_answered_us() -> None:
    """A querier (maybe with a forged source) is known, but not handed out until it answers."""
    net = Net()
    a, b, c = net.node(1), net.node(2), net.node(3)
    results(a.ping(address_of(b)))  # b now knows a, unverified
    net.run()
    asked = results(c.find_node(address_of(b), a.node_id))
    net.run()
    assert NodeInfo(a.node_id, *address_of(a)) not in asked[0].nodes
    results(b.ping(address_of(a)))  # a answers b: verified
    net.run()
    again = results(c.find_node(address_of(b), a.node_id))
    net.run()
    assert NodeInfo(a.node_id, *address_of(a)) in again[0].nodes
