"""Candidate addresses: offered once at a time, retried with backoff, bans are final."""

from __future__ import annotations

from bt.candidates import MAX_FAILURES, RETRY_BASE, SOURCE_LIMITS, CandidatePool, PeerSource


def test_take_offers_each_address_once_until_it_fails() -> None:
    pool = CandidatePool()
    assert pool.add(("127.0.0.1", 1))
    assert not pool.add(("127.0.0.1", 1))
    assert pool.take(0.0, 5) == [("127.0.0.1", 1)]
    assert pool.take(0.0, 5) == []


def test_failures_back_off_exponentially_then_forget() -> None:
    pool = CandidatePool()
    address = ("127.0.0.1", 2)
    pool.add(address)
    now = 0.0
    for failure in range(1, MAX_FAILURES):
        assert pool.take(now, 1) == [address]
        pool.failed(address, now)
        delay = RETRY_BASE * 2 ** (failure - 1)
        assert pool.take(now + delay - 0.1, 1) == []
        now += delay
    assert pool.take(now, 1) == [address]
    pool.failed(address, now)
    assert len(pool) == 0


def test_a_good_connection_resets_the_failure_count() -> None:
    pool = CandidatePool()
    address = ("127.0.0.1", 3)
    pool.add(address)
    pool.take(0.0, 1)
    pool.failed(address, 0.0)
    pool.take(RETRY_BASE, 1)
    pool.connected(address)
    pool.failed(address, 100.0)
    assert pool.take(100.0 + RETRY_BASE, 1) == [address]


def test_banned_addresses_are_never_offered_again() -> None:
    pool = CandidatePool()
    address = ("127.0.0.1", 4)
    pool.add(address)
    pool.ban(address)
    assert pool.is_banned(address)
    assert not pool.add(address)
    assert pool.take(0.0, 10) == []


def test_pool_is_bounded() -> None:
    pool = CandidatePool(limit=2)
    assert pool.add(("a", 1)) and pool.add(("b", 1))
    assert not pool.add(("c", 1))


def test_known_seeds_are_skipped_only_when_asked() -> None:
    """A seeding torrent leaves seeds alone; a downloading one still dials them."""
    pool = CandidatePool()
    seed, leecher = ("127.0.0.1", 1), ("127.0.0.1", 2)
    pool.add(seed)
    pool.add(leecher)
    pool.mark_seed(seed)
    pool.mark_seed(("127.0.0.1", 3))  # unknown: nothing to mark
    assert pool.take(0.0, 5, skip_seeds=True) == [leecher]
    assert pool.take(0.0, 5) == [seed]


def test_a_peer_is_its_address_and_port_so_peers_sharing_an_ip_are_distinct() -> None:
    pool = CandidatePool()
    assert all(pool.add(("127.0.0.1", port)) for port in range(6881, 6886))
    assert len(pool.take(0.0, 10)) == 5


def test_each_source_but_the_trackers_has_a_bounded_share() -> None:
    pool = CandidatePool(limit=10, source_limits={PeerSource.PEX: 3})
    added = [pool.add(("10.0.0.1", port), PeerSource.PEX) for port in range(1, 6)]
    assert added == [True, True, True, False, False]
    assert pool.count(PeerSource.PEX) == 3
    assert all(pool.add(("10.0.0.2", port)) for port in range(1, 8))
    assert pool.count(PeerSource.TRACKER) == 7 and len(pool) == 10
    assert not pool.add(("10.0.0.3", 1)), "the pool's own limit still holds"


def test_a_forgotten_or_banned_candidate_frees_its_sources_share() -> None:
    pool = CandidatePool(source_limits={PeerSource.PEX: 2})
    first, second, third = ("10.0.0.1", 1), ("10.0.0.1", 2), ("10.0.0.1", 3)
    pool.add(first, PeerSource.PEX)
    pool.add(second, PeerSource.PEX)
    pool.ban(first)
    for _ in range(MAX_FAILURES):
        pool.failed(second, 0.0)
    assert pool.count(PeerSource.PEX) == 0
    assert pool.add(third, PeerSource.PEX)


def test_pex_has_a_share_by_default() -> None:
    assert 0 < SOURCE_LIMITS[PeerSource.PEX] < CandidatePool().limit
