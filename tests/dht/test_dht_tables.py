"""Tokens, the peer store and the per-address rate limits: rotation, bounds, expiry."""

from __future__ import annotations

import random

from bt.dht.ratelimit import RateLimiter
from bt.dht.store import PeerStore
from bt.dht.tokens import ROTATE_EVERY, Tokens

H1, H2, H3 = b"1" * 20, b"2" * 20, b"3" * 20


def test_token_is_bound_to_the_ip() -> None:
    tokens = Tokens(random.Random(1).randbytes, 0.0)
    token = tokens.issue("10.0.0.1", 0.0)
    assert tokens.check(token, "10.0.0.1", 1.0)
    assert not tokens.check(token, "10.0.0.2", 1.0)
    assert not tokens.check(b"", "10.0.0.1", 1.0)


def test_token_survives_one_rotation_not_two() -> None:
    tokens = Tokens(random.Random(1).randbytes, 0.0)
    token = tokens.issue("10.0.0.1", 10.0)
    assert tokens.check(token, "10.0.0.1", ROTATE_EVERY + 1)  # previous secret
    assert tokens.issue("10.0.0.1", ROTATE_EVERY + 1) != token
    assert not tokens.check(token, "10.0.0.1", 2 * ROTATE_EVERY + 1)


def test_token_after_a_long_silence() -> None:
    tokens = Tokens(random.Random(1).randbytes, 0.0)
    token = tokens.issue("10.0.0.1", 0.0)
    assert not tokens.check(token, "10.0.0.1", 10 * ROTATE_EVERY)
    fresh = tokens.issue("10.0.0.1", 10 * ROTATE_EVERY)
    assert tokens.check(fresh, "10.0.0.1", 11 * ROTATE_EVERY - 1)


def test_store_bounds_peers_per_torrent() -> None:
    store = PeerStore(max_torrents=10, max_peers=3, ttl=100.0)
    for port in range(1, 6):
        store.add(H1, ("10.0.0.1", port), float(port))
    assert store.peer_count == 3
    assert sorted(store.get(H1, 6.0, random.Random(1))) == [("10.0.0.1", p) for p in (3, 4, 5)]


def test_store_bounds_torrents_evicting_the_stalest() -> None:
    store = PeerStore(max_torrents=2, max_peers=3, ttl=100.0)
    store.add(H1, ("10.0.0.1", 1), 0.0)
    store.add(H2, ("10.0.0.1", 1), 1.0)
    store.add(H1, ("10.0.0.2", 1), 2.0)  # H1 is fresher now
    store.add(H3, ("10.0.0.1", 1), 3.0)
    assert len(store) == 2
    rng = random.Random(1)
    assert store.get(H2, 3.0, rng) == []
    assert len(store.get(H1, 3.0, rng)) == 2


def test_store_expiry_and_reannounce() -> None:
    store = PeerStore(ttl=30.0)
    store.add(H1, ("10.0.0.1", 1), 0.0)
    store.add(H1, ("10.0.0.2", 1), 10.0)
    store.add(H1, ("10.0.0.1", 1), 20.0)  # re-announced: lives on
    rng = random.Random(1)
    assert len(store.get(H1, 35.0, rng)) == 2
    assert store.get(H1, 45.0, rng) == [("10.0.0.1", 1)]
    store.expire(60.0)
    assert len(store) == 0


def test_store_reply_is_a_bounded_subset_of_one_family() -> None:
    store = PeerStore(max_peers=500)
    for index in range(200):
        store.add(H1, (f"10.0.{index // 250}.{index % 250}", 1), 0.0)
        store.add(H1, (f"2001:db8::{index:x}", 1), 0.0)
    rng = random.Random(1)
    v4 = store.get(H1, 1.0, rng, limit=50)
    assert len(v4) == 50 == len(set(v4))
    assert all(":" not in host for host, _ in v4)
    v6 = store.get(H1, 1.0, rng, limit=50, ipv6=True)
    assert len(v6) == 50 and all(":" in host for host, _ in v6)
    assert v4 != store.get(H1, 1.0, rng, limit=50)  # random, not always the same subset


def test_rate_limit_per_address() -> None:
    limiter = RateLimiter(rate=1.0, burst=3.0)
    assert [limiter.allow("10.0.0.1", 0.0) for _ in range(5)] == [True] * 3 + [False] * 2
    assert limiter.allow("10.0.0.2", 0.0)  # another address has its own budget
    assert not limiter.allow("10.0.0.1", 0.5)
    assert limiter.allow("10.0.0.1", 1.6)
    assert limiter.allow("10.0.0.1", 100.0)


def test_rate_limit_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1.0, max_addresses=100)
    for index in range(1000):
        limiter.allow(f"10.0.{index // 256}.{index % 256}", 0.0)
    assert len(limiter) == 100


def test_global_rate_limit() -> None:
    limiter = RateLimiter(rate=10.0, burst=10.0, global_rate=2.0, global_burst=4.0)
    answers = [limiter.allow(f"10.0.0.{index}", 0.0) for index in range(10)]
    assert answers == [True] * 4 + [False] * 6
