"""The lookup state machine, step by step and against a simulated network of hundreds of nodes."""

from __future__ import annotations

import random

import pytest
from simnet import SimNetwork, target_near

from bt.dht.krpc import NodeInfo
from bt.dht.lookup import Lookup
from bt.dht.nodeid import distance, int_to_id, random_id

TARGET = b"\x00" * 20


def at(value: int) -> NodeInfo:
    """A node at XOR distance ``value`` from TARGET."""
    return NodeInfo(int_to_id(value), f"10.0.{value >> 8 & 255}.{value & 255}", 6881)


def test_starts_with_alpha_closest_first() -> None:
    lookup = Lookup(TARGET, [at(v) for v in (50, 10, 40, 20, 30)], 0.0)
    assert lookup.start() == [at(10), at(20), at(30)]
    assert lookup.in_flight == 3 and not lookup.done


def test_replies_bring_closer_nodes_and_keep_alpha_in_flight() -> None:
    lookup = Lookup(TARGET, [at(v) for v in (50, 10, 40, 20, 30)], 0.0, k=3)
    lookup.start()
    assert lookup.on_response(at(10), [at(5), at(3)], 1.0) == [at(3)]
    assert lookup.on_response(at(3), [at(1)], 1.0) == [at(1)]
    assert lookup.on_timeout(at(20), 2.0) == [at(5)]
    assert lookup.on_response(at(1), [], 2.0) == []
    assert lookup.on_response(at(5), [], 2.0) == []
    # The 3 closest live nodes (1, 3, 5) answered: done, though 30 is still out.
    assert lookup.done
    result = lookup.result()
    assert [info for info, _ in result.closest] == [at(1), at(3), at(5)]
    assert result.queried == 6 and result.responded == 4  # 10, 20, 30, 3, 1, 5
    assert result.hops == 3  # 1 was learned from 3, learned from 10, a seed


def test_tokens_and_values_are_kept() -> None:
    lookup = Lookup(TARGET, [at(1), at(2)], 0.0)
    lookup.start()
    lookup.on_response(at(1), [], 0.0, values=[("10.9.0.1", 1)], token=b"t1")
    lookup.on_response(at(2), [], 0.0, values=[("10.9.0.1", 1), ("10.9.0.2", 2)], token=b"t2")
    result = lookup.result()
    assert result.closest == ((at(1), b"t1"), (at(2), b"t2"))
    assert result.peers == (("10.9.0.1", 1), ("10.9.0.2", 2))


def test_unasked_or_repeated_replies_are_ignored() -> None:
    lookup = Lookup(TARGET, [at(10)], 0.0)
    lookup.start()
    assert lookup.on_response(at(99), [at(1)], 0.0) == []  # never asked
    assert lookup.on_response(NodeInfo(at(10).id, "10.7.7.7", 1), [at(1)], 0.0) == []  # spoofed
    assert lookup.in_flight == 1
    assert lookup.on_response(at(10), [at(2)], 0.0) == [at(2)]
    assert lookup.on_response(at(10), [at(1)], 0.0) == []  # twice
    assert lookup.result().responded == 1


def test_a_late_reply_after_timeout_still_counts() -> None:
    lookup = Lookup(TARGET, [at(10), at(20)], 0.0)
    lookup.start()
    lookup.on_timeout(at(10), 1.0)
    lookup.on_response(at(10), [], 1.5)
    assert lookup.in_flight == 1
    lookup.on_response(at(20), [], 2.0)
    assert lookup.done
    assert [info for info, _ in lookup.result().closest] == [at(10), at(20)]


def test_never_queries_ourselves_duplicates_or_port_zero() -> None:
    lookup = Lookup(TARGET, [at(10)], 0.0, own_id=at(1).id)
    lookup.start()
    same_address = NodeInfo(int_to_id(2), at(10).host, at(10).port)
    port_zero = NodeInfo(int_to_id(3), "10.0.0.3", 0)
    sent = lookup.on_response(at(10), [at(1), same_address, at(10), port_zero, at(4)], 0.0)
    assert sent == [at(4)]


def test_bounded_by_queries_and_by_time() -> None:
    lookup = Lookup(TARGET, [at(1000 - v) for v in range(10)], 0.0, max_queries=4)
    sent = lookup.start()
    sent += lookup.on_response(sent[0], [at(v) for v in range(1, 20)], 0.0)
    assert len(sent) == 4
    for node in sent[1:]:
        assert lookup.on_timeout(node, 0.0) == []
    assert lookup.done
    timed = Lookup(TARGET, [at(1)], 0.0, duration=10.0)
    timed.start()
    assert not timed.check(9.9)
    assert timed.check(10.0) and timed.done
    assert timed.on_response(at(1), [at(0)], 11.0) == []


def test_no_seeds_is_done_at_once() -> None:
    lookup = Lookup(TARGET, [], 0.0)
    assert lookup.start() == []
    assert lookup.done and lookup.result().closest == ()


@pytest.mark.parametrize("dead", [0.0, 0.25])
def test_lookups_converge_in_a_simulated_network(dead: float) -> None:
    """300 nodes, a quarter possibly dead: lookups find the true closest live nodes."""
    net = SimNetwork(300, seed=11, dead_fraction=dead)
    found = total = 0
    for _ in range(30):
        start = net.random_node()
        if not start.alive:
            continue
        target = random_id(net.rng)
        result = net.lookup(start, target)
        truth = set(net.closest_ids(target, 8))
        got = [info.id for info, _ in result.closest]
        assert got == sorted(got, key=lambda node_id: distance(node_id, target))
        assert got[0] == min(truth, key=lambda node_id: distance(node_id, target))
        found += len(truth & set(got))
        total += 8
        assert result.queried < 60
        assert result.hops <= 6
    assert found / total >= 0.95


def test_lookup_for_a_nodes_own_neighbourhood() -> None:
    """A target sharing many bits with a node: the lookup ends at its neighbours."""
    net = SimNetwork(300, seed=3)
    start = net.random_node()
    other = net.random_node()
    target = target_near(other.info.id, random.Random(1), 40)
    result = net.lookup(start, target)
    assert result.closest[0][0] == other.info


def test_announce_then_get_peers_through_tokens() -> None:
    """get_peers collects tokens; announce_peer with them stores us; another node finds us."""
    net = SimNetwork(300, seed=5, dead_fraction=0.1)
    info_hash = random_id(net.rng)
    seeder = net.random_node()
    while not seeder.alive:
        seeder = net.random_node()
    found = net.lookup(seeder, info_hash, get_peers=True)
    assert found.peers == ()
    assert all(token is not None for _, token in found.closest)
    announced = [
        net.announce(info.id, info_hash, (seeder.info.host, 7000), token)
        for info, token in found.closest
    ]
    assert all(announced)
    assert not net.announce(found.closest[0][0].id, info_hash, ("10.250.0.1", 1), b"forged")
    net.clock.advance(60.0)
    leecher = net.random_node()
    while not leecher.alive or leecher is seeder:
        leecher = net.random_node()
    assert (seeder.info.host, 7000) in net.lookup(leecher, info_hash, get_peers=True).peers
