"""Availability: per-piece peer counts and the rarest-first buckets the picker scans."""

from __future__ import annotations

import random

import pytest

from bt.bitfield import Bitfield
from bt.policy.availability import Availability


def bits(n: int, *indexes: int) -> Bitfield:
    field = Bitfield(n)
    for index in indexes:
        field.add(index)
    return field


def test_listed_pieces_come_rarest_first_and_seeds_are_one_counter() -> None:
    available = Availability(4, random.Random(3))
    available.add_peer("a", bits(4, 0, 1, 2))
    available.add_peer("b", bits(4, 0, 1))
    available.add_have("c", 0)
    available.add_peer("seed", bits(4, 0, 1, 2, 3))
    assert list(available.order) == [3, 2, 1, 0]
    assert [available.of(i) for i in range(4)] == [4, 3, 2, 1]
    assert available.is_seed("seed") and available.is_seed("a") is False
    assert available.is_seed("nobody") is None
    available.check_invariants({0, 1, 2, 3})


def test_unlisted_pieces_are_still_counted_and_come_back_in_their_bucket() -> None:
    available = Availability(3, random.Random(1))
    available.remove(1)
    available.add_peer("a", bits(3, 1, 2))
    assert not available.listed(1) and available.of(1) == 1
    available.insert(1)
    assert available.order[0] == 0 and set(available.order[1:]) == {1, 2}, "0 is the rarest"
    available.check_invariants({0, 1, 2})
    available.remove_peer("a", bits(3, 1, 2))
    assert [available.of(i) for i in range(3)] == [0, 0, 0]
    available.check_invariants({0, 1, 2})


def test_a_late_bitfield_moves_only_the_difference_and_a_peer_counts_once() -> None:
    available = Availability(3, random.Random(2))
    available.add_peer("a", bits(3, 0))
    available.replace_peer("a", bits(3, 0), bits(3, 1, 2))
    assert [available.of(i) for i in range(3)] == [0, 1, 1]
    with pytest.raises(ValueError, match="already counted"):
        available.add_peer("a", bits(3))
    available.check_invariants({0, 1, 2})


def test_ties_are_shuffled_by_runs_of_adjacent_pieces() -> None:
    """Runs of 4 stay together, in index order, while the runs come in random order."""
    orders = set()
    for seed in range(20):
        available = Availability(32, random.Random(seed), run_length=4)
        order = list(available.order)
        runs = [order[i : i + 4] for i in range(0, 32, 4)]
        for run in runs:
            assert run == list(range(run[0], run[0] + 4)) and run[0] % 4 == 0
        orders.add(tuple(run[0] for run in runs))
        available.check_invariants(set(range(32)))
    assert len(orders) > 10, "the runs' order is random"


def test_a_peers_pieces_enter_their_bucket_as_runs_too() -> None:
    available = Availability(32, random.Random(5), run_length=8)
    available.add_peer("a", bits(32, *range(8, 24)))
    upper = list(available.order[available.starts[1] :])
    assert sorted(upper) == list(range(8, 24))
    halves = [sorted(upper[:8]), sorted(upper[8:])]
    assert sorted(halves) == [list(range(8, 16)), list(range(16, 24))], "each run in one place"
    available.remove_peer("a", bits(32, *range(8, 24)))
    available.check_invariants(set(range(32)))


def test_a_run_length_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="run length 0"):
        Availability(4, random.Random(0), run_length=0)
