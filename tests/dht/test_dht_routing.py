"""The routing table: splits around our id, liveness, replacements, IP and BEP 42 rules."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bt.dht.krpc import NodeInfo
from bt.dht.nodeid import ID_BITS, distance, generate_id, id_to_int, int_to_id
from bt.dht.routing import GOOD_FOR, MAX_FAILURES, Liveness, RoutingTable

OWN = b"\x00" * 20


def node(value: int, host: str, port: int = 6881) -> NodeInfo:
    """A node whose id is the integer ``value`` (so it lands in a chosen bucket)."""
    return NodeInfo(int_to_id(value), host, port)


def far(index: int) -> NodeInfo:
    """Nodes with the top bit set: all in the half of the space away from OWN."""
    return node((1 << 159) | index, f"10.1.0.{index}")


def test_first_bucket_fills_then_splits_around_our_id() -> None:
    table = RoutingTable(OWN)
    for index in range(8):
        assert table.add(far(index), 0.0, replied=True)
    assert len(table.buckets) == 1
    near = node(1 << 100, "10.2.0.1")
    assert table.add(near, 0.0, replied=True)
    # The one bucket covered our id, so it split: the far half keeps its 8 nodes.
    assert len(table.buckets) >= 2
    assert len(table) == 9
    top = table.buckets[-1]
    assert top.lo == 1 << 159 and len(top.nodes) == 8


def test_a_full_bucket_far_from_us_does_not_split() -> None:
    table = RoutingTable(OWN)
    for index in range(8):
        table.add(far(index), 0.0, replied=True)
    table.add(node(1 << 100, "10.2.0.1"), 0.0, replied=True)  # split once
    buckets = len(table.buckets)
    assert not table.add(far(100), 0.0, replied=True)
    assert len(table.buckets) == buckets
    assert table.get(far(100).id) is None
    assert far(100).id in [n.id for n in table.buckets[-1].replacements]


def test_table_of_many_nodes_keeps_k_per_bucket_and_closest_is_exact() -> None:
    rng = random.Random(5)
    own = int_to_id(rng.getrandbits(ID_BITS))
    table = RoutingTable(own, allow_same_ip=True)
    infos = [
        NodeInfo(int_to_id(rng.getrandbits(ID_BITS)), "127.0.0.1", 1000 + index)
        for index in range(3000)
    ]
    for info in infos:
        table.add(info, 0.0, replied=True)
    assert all(len(bucket.nodes) <= 8 for bucket in table.buckets)
    assert all(bucket.lo < bucket.hi for bucket in table.buckets)
    assert sum(bucket.hi - bucket.lo for bucket in table.buckets) == 1 << ID_BITS
    # The bucket around our id never fills (it would split), so it holds every node in its range.
    mine = next(bucket for bucket in table.buckets if bucket.covers(id_to_int(own)))
    in_range = {info.id for info in infos if mine.covers(id_to_int(info.id))}
    assert {entry.id for entry in mine.nodes} == in_range
    assert table.closest(own, len(in_range)) == sorted(
        (info for info in infos if info.id in in_range), key=lambda info: distance(info.id, own)
    )
    target = int_to_id(rng.getrandbits(ID_BITS))
    found = table.closest(target, 8)
    assert found == sorted(found, key=lambda info: distance(info.id, target))
    assert 8 * 6 < len(table) < 8 * 12  # about k * log2(n / k)


def test_liveness_good_questionable_bad() -> None:
    table = RoutingTable(OWN)
    table.add(far(1), 0.0, replied=True)
    table.add(far(2), 0.0)  # only queried us: never replied
    entry = table.get(far(1).id)
    assert entry is not None and entry.liveness(1.0) is Liveness.GOOD
    assert entry.liveness(GOOD_FOR + 1) is Liveness.QUESTIONABLE
    assert table.questionable(1.0) == [far(2)]
    assert table.good_nodes(1.0) == [far(1)]
    for _ in range(MAX_FAILURES):
        table.failed(far(1).id, 2.0)
    assert entry.liveness(2.0) is Liveness.BAD
    assert far(1) not in table.closest(far(1).id)
    table.add(far(1), 3.0, replied=True)  # a reply forgives
    assert entry.liveness(3.0) is Liveness.GOOD


def test_bad_node_is_replaced_from_the_cache() -> None:
    table = RoutingTable(OWN)
    for index in range(8):
        table.add(far(index), 0.0, replied=True)
    table.add(node(1 << 100, "10.2.0.1"), 0.0, replied=True)
    assert not table.add(far(50), 1.0, replied=True)
    for _ in range(MAX_FAILURES):
        table.failed(far(3).id, 2.0)
    assert table.get(far(3).id) is None
    assert table.get(far(50).id) is not None
    assert table.buckets[-1].replacements == []


def test_a_newcomer_takes_a_bad_nodes_place_when_there_is_no_replacement() -> None:
    table = RoutingTable(OWN)
    for index in range(8):
        table.add(far(index), 0.0, replied=True)
    table.add(node(1 << 100, "10.2.0.1"), 0.0, replied=True)
    for _ in range(MAX_FAILURES):
        table.failed(far(0).id, 1.0)
    assert table.get(far(0).id) is not None  # nothing to replace it with yet
    assert table.add(far(60), 2.0, replied=True)
    assert table.get(far(0).id) is None


def test_one_node_per_ip_unless_allowed() -> None:
    table = RoutingTable(OWN)
    assert table.add(node(1 << 159, "10.9.9.9", 1), 0.0, replied=True)
    assert not table.add(node(1 << 158, "10.9.9.9", 2), 0.0, replied=True)
    loopback = RoutingTable(OWN, allow_same_ip=True)
    assert loopback.add(node(1 << 159, "127.0.0.1", 1), 0.0, replied=True)
    assert loopback.add(node(1 << 158, "127.0.0.1", 2), 0.0, replied=True)
    assert len(loopback) == 2


def test_refuses_our_id_port_zero_and_a_moved_id() -> None:
    table = RoutingTable(OWN)
    assert not table.add(NodeInfo(OWN, "10.0.0.1", 1), 0.0, replied=True)
    assert not table.add(node(1 << 150, "10.0.0.2", 0), 0.0, replied=True)
    assert table.add(node(1 << 150, "10.0.0.3", 5), 0.0, replied=True)
    table.add(node(1 << 150, "10.0.0.4", 5), 1.0, replied=True)  # same id, new address: ignored
    entry = table.get(int_to_id(1 << 150))
    assert entry is not None and entry.info.host == "10.0.0.3" and entry.last_reply == 0.0


def test_bep42_enforcement_is_optional() -> None:
    rng = random.Random(2)
    good = NodeInfo(generate_id("8.8.8.8", rng), "8.8.8.8", 6881)
    forged = NodeInfo(b"\x80" + good.id[1:], "8.8.4.4", 6881)
    local = NodeInfo(int_to_id(5 << 150), "127.0.0.1", 6881)
    strict = RoutingTable(OWN, enforce_node_id=True)
    assert strict.add(good, 0.0, replied=True)
    assert not strict.add(forged, 0.0, replied=True)
    assert strict.add(local, 0.0, replied=True)  # exempt
    assert RoutingTable(OWN).add(forged, 0.0, replied=True)


def test_refresh_targets_fall_in_stale_buckets() -> None:
    rng = random.Random(1)
    table = RoutingTable(OWN)
    for index in range(8):
        table.add(far(index), 0.0, replied=True)
    table.add(node(1 << 100, "10.2.0.1"), 0.0, replied=True)
    assert table.refresh_targets(100.0, rng) == []
    targets = table.refresh_targets(16 * 60.0, rng)
    assert len(targets) == len(table.buckets)
    for target, bucket in zip(targets, table.buckets, strict=True):
        assert bucket.lo <= id_to_int(target) < bucket.hi
    table.touch(far(0).id, 16 * 60.0)
    assert len(table.refresh_targets(16 * 60.0, rng)) == len(table.buckets) - 1


def test_remove_promotes_a_replacement() -> None:
    table = RoutingTable(OWN)
    for index in range(8):
        table.add(far(index), 0.0, replied=True)
    table.add(node(1 << 100, "10.2.0.1"), 0.0, replied=True)
    table.add(far(77), 0.0, replied=True)
    table.remove(far(2).id)
    assert table.get(far(2).id) is None and table.get(far(77).id) is not None
    assert {entry.id for entry in table} >= {far(77).id}


_operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "reply", "fail", "remove"]),
        st.integers(0, 2**160 - 1) | st.integers(1, 2**12),  # near OWN: deep splits
        st.integers(0, 40),  # few addresses, so IPs collide
        st.floats(0, 5000),
    ),
    max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(_operations, st.booleans())
def test_table_invariants_under_any_sequence(operations: list, same_ip: bool) -> None:
    """Whatever happens, buckets partition the id space, hold at most k nodes, and the
    table's indexes agree with them (one node per IP unless allowed)."""
    table = RoutingTable(OWN, allow_same_ip=same_ip)
    known: list[bytes] = []
    for kind, value, host, now in operations:
        info = NodeInfo(int_to_id(value), f"10.3.0.{host}", 6881 + host)
        if kind in ("add", "reply"):
            table.add(info, now, replied=kind == "reply")
            known.append(info.id)
        elif known:
            victim = known[value % len(known)]
            if kind == "fail":
                table.failed(victim, now)
            else:
                table.remove(victim)
    buckets = table.buckets
    assert buckets[0].lo == 0 and buckets[-1].hi == 1 << ID_BITS
    assert all(a.hi == b.lo for a, b in itertools.pairwise(buckets))
    members = [entry for bucket in buckets for entry in bucket.nodes]
    assert all(len(bucket.nodes) <= 8 for bucket in buckets)
    assert all(bucket.covers(id_to_int(n.id)) for bucket in buckets for n in bucket.nodes)
    assert len(members) == len(table) == len({entry.id for entry in members})
    assert {entry.id for entry in table} == {entry.id for entry in members}
    if not same_ip:
        assert len({entry.info.host for entry in members}) == len(members)


def test_a_node_that_replied_displaces_one_that_never_did() -> None:
    """Nodes heard only through their queries are unverified: they give way, and
    ``verified_only`` keeps them out of what we tell others."""
    table = RoutingTable(OWN)
    for index in range(7):
        table.add(far(index), 0.0, replied=True)
    table.add(far(7), 0.0)  # only queried us
    table.add(node(1 << 100, "10.2.0.1"), 0.0, replied=True)  # split: far half is full
    assert far(7) in table.closest(far(7).id)
    assert far(7) not in table.closest(far(7).id, verified_only=True)
    assert not table.add(far(8), 1.0)  # another unverified one waits
    assert table.add(far(9), 1.0, replied=True)
    assert table.get(far(7).id) is None and table.get(far(9).id) is not None
