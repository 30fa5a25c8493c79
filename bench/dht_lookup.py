"""DHT lookups in a simulated network of 10,000 in-memory nodes: hops, queries, time, memory.

Run: python bench/dht_lookup.py [--nodes 10000] [--lookups 200] [--dead 0.1] [--seed 1]
Pure and offline: the nodes are bt.dht RoutingTables in one process (tests/dht/simnet.py),
queries are delivered through a task.Clock with 10-200 ms of random latency, and a
fraction of the nodes is dead (each query to one costs a 2 s timeout). A benchmark,
not a test: it prints the figures recorded in docs/performance.rst.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "dht"), str(ROOT)]

from simnet import SimNetwork  # noqa: E402

from bt.dht.nodeid import random_id  # noqa: E402
from bt.dht.routing import RoutingTable  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_lookups(net: SimNetwork, count: int) -> dict[str, list[float]]:
    """``count`` find_node lookups from random live nodes to random targets."""
    plans = []
    for _ in range(count):
        start = net.random_node()
        while not start.alive:
            start = net.random_node()
        plans.append((start, random_id(net.rng)))
    for start, target in plans:  # warm: build the tables these lookups touch
        net.lookup(start, target)
    figures: dict[str, list[float]] = {
        "hops": [],
        "queries": [],
        "sim_s": [],
        "cpu_ms": [],
        "found": [],
    }
    for start, target in plans:
        truth = set(net.closest_ids(target, 8))
        began, cpu = net.clock.seconds(), time.process_time()
        result = net.lookup(start, target)
        figures["cpu_ms"].append((time.process_time() - cpu) * 1000)
        figures["sim_s"].append(net.clock.seconds() - began)
        figures["hops"].append(result.hops)
        figures["queries"].append(result.queried)
        figures["found"].append(len(truth & {info.id for info, _ in result.closest}) / 8)
    return figures


def run_get_peers(net: SimNetwork, count: int) -> dict[str, list[float]]:
    """``count`` torrents: a seeder announces to the closest nodes that gave tokens,
    then another node's get_peers lookup must find it."""
    figures: dict[str, list[float]] = {"queries": [], "sim_s": [], "found": []}
    for index in range(count):
        info_hash = random_id(net.rng)
        seeder, leecher = net.random_node(), net.random_node()
        while not (seeder.alive and leecher.alive) or seeder is leecher:
            seeder, leecher = net.random_node(), net.random_node()
        peer = (seeder.info.host, 10_000 + index)
        for info, token in net.lookup(seeder, info_hash, get_peers=True).closest:
            net.announce(info.id, info_hash, peer, token)
        began = net.clock.seconds()
        result = net.lookup(leecher, info_hash, get_peers=True)
        figures["sim_s"].append(net.clock.seconds() - began)
        figures["queries"].append(result.queried)
        figures["found"].append(1.0 if peer in result.peers else 0.0)
    return figures


def table_memory(net: SimNetwork) -> tuple[int, int, int]:
    """Bytes, nodes and buckets of one table offered every node of the network."""
    own = net.random_node().info.id
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    table = RoutingTable(own)
    for node_id in net.ids:
        table.add(net.nodes[node_id].info, 0.0, replied=True)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    # Only what bt.dht allocated (the network already holds the NodeInfo objects).
    mine = [tracemalloc.Filter(True, str(ROOT / "bt" / "dht" / "*"))]
    grown = sum(
        stat.size_diff
        for stat in after.filter_traces(mine).compare_to(before.filter_traces(mine), "filename")
    )
    return grown, len(table), len(table.buckets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--dead", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    built = time.perf_counter()
    net = SimNetwork(args.nodes, args.seed, dead_fraction=args.dead)
    figures = run_lookups(net, args.lookups)
    peers = run_get_peers(net, args.lookups // 4)
    elapsed = time.perf_counter() - built
    memory, nodes, buckets = table_memory(net)
    print(f"python {platform.python_version()} on {platform.machine()}; {elapsed:.1f} s in all")
    print(
        f"{args.nodes} nodes ({args.dead:.0%} dead), {args.lookups} find_node lookups, "
        "k=8, alpha=3, latency 10-200 ms, timeout 2 s"
    )
    print(f"{'per lookup':<30} {'mean':>8} {'median':>8} {'p95':>8} {'max':>8}")
    for name, label in (
        ("hops", "hops (depth of the k closest)"),
        ("queries", "queries sent"),
        ("sim_s", "simulated time (s)"),
        ("cpu_ms", "CPU ms (querier + responders)"),
        ("found", "share of true 8 closest found"),
    ):
        values = figures[name]
        print(
            f"{label:<30} {statistics.mean(values):>8.2f} {statistics.median(values):>8.2f} "
            f"{percentile(values, 0.95):>8.2f} {max(values):>8.2f}"
        )
    print(
        f"get_peers after an announce ({len(peers['found'])} torrents): seeder found "
        f"{statistics.mean(peers['found']):.0%}, queries {statistics.mean(peers['queries']):.1f}, "
        f"simulated time {statistics.mean(peers['sim_s']):.2f} s (means)"
    )
    print(
        f"full routing table (offered all {args.nodes} nodes): {nodes} nodes in {buckets} "
        f"buckets, {memory / 1024:.1f} KiB ({memory / max(nodes, 1):.0f} bytes a node)"
    )


if __name__ == "__main__":
    main()
