"""The half-open budget on its own: who is evicted, when, and never past the ceiling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.policy.halfopen import HalfOpenBudget


def settled(budget: HalfOpenBudget[str]) -> list[str]:
    """Two turns of the event loop: everyone waiting has been polled once."""
    return budget.next_turn() + budget.next_turn()


def test_under_the_limit_nobody_is_evicted() -> None:
    budget: HalfOpenBudget[str] = HalfOpenBudget(3)
    assert [budget.admit(k) for k in "abc"] == [[], [], []]
    assert len(budget) == 3 and "a" in budget and not budget.over
    assert settled(budget) == []


def test_beyond_the_limit_the_oldest_polled_connection_makes_room() -> None:
    budget: HalfOpenBudget[str] = HalfOpenBudget(3, overflow=10)
    for key in "abc":
        budget.admit(key)
    settled(budget)
    assert budget.admit("d") == ["a"]
    assert budget.admit("e") == ["b"]
    assert "a" not in budget and "d" in budget and len(budget) == 3
    assert budget.evicted == 2


def test_connections_not_yet_polled_are_kept_over_the_limit_then_trimmed_oldest_first() -> None:
    """One accept batch larger than the budget: nobody is evicted before a read could happen."""
    budget: HalfOpenBudget[str] = HalfOpenBudget(2, overflow=10)
    assert [budget.admit(k) for k in "abcde"] == [[]] * 5
    assert budget.over and len(budget) == 5
    # The next batch comes first in the next poll: still nobody from the first batch.
    assert budget.next_turn() == []
    assert budget.admit("f") == []
    budget.leave("b")  # read in that poll: its handshake arrived
    # Two turns on, the first batch has been polled: the oldest go, down to the limit.
    assert budget.next_turn() == ["a", "c", "d"]
    assert not budget.over and list("ef") == [k for k in "abcdef" if k in budget]


def test_past_the_ceiling_the_oldest_goes_even_unpolled() -> None:
    budget: HalfOpenBudget[str] = HalfOpenBudget(2, overflow=2)
    assert [budget.admit(k) for k in "abcd"] == [[]] * 4
    assert budget.admit("e") == ["a"]
    assert len(budget) == budget.ceiling == 4


def test_a_completed_handshake_leaves_the_budget_and_frees_a_place() -> None:
    budget: HalfOpenBudget[str] = HalfOpenBudget(2)
    budget.admit("a")
    budget.admit("b")
    settled(budget)
    assert budget.leave("a") is True
    assert budget.admit("c") == []  # room again: nobody evicted
    assert budget.leave("a") is False  # twice over, or after an eviction: no error


def test_admitting_one_connection_twice_is_a_bug() -> None:
    budget: HalfOpenBudget[str] = HalfOpenBudget(2)
    budget.admit("a")
    with pytest.raises(ValueError, match="half-open already"):
        budget.admit("a")


@pytest.mark.parametrize(("limit", "overflow"), [(0, 0), (1, -1)])
def test_nonsense_limits_are_refused(limit: int, overflow: int) -> None:
    with pytest.raises(ValueError, match="half-open"):
        HalfOpenBudget(limit, overflow)


@given(
    limit=st.integers(1, 5),
    overflow=st.integers(0, 5),
    steps=st.lists(st.sampled_from(["admit", "turn", "leave"]), max_size=60),
)
def test_the_budget_never_passes_its_ceiling_and_evicts_oldest_first(
    limit: int, overflow: int, steps: list[str]
) -> None:
    budget: HalfOpenBudget[int] = HalfOpenBudget(limit, overflow)
    alive: list[int] = []  # oldest first
    for number, step in enumerate(steps):
        if step == "admit":
            evicted = budget.admit(number)
            alive.append(number)
        elif step == "turn":
            evicted = budget.next_turn()
        else:
            evicted = []
            if alive:
                assert budget.leave(alive.pop(len(alive) // 2))
        assert evicted == alive[: len(evicted)], "evicted out of age order"
        del alive[: len(evicted)]
        assert len(budget) == len(alive) <= budget.ceiling
    evicted = settled(budget)
    assert len(budget) <= limit and evicted == alive[: len(evicted)]
