"""Connection slots: a ceiling on connections, shared; releases balance acquisitions."""

from __future__ import annotations

import pytest

from bt.policy.slots import ConnectionSlots


def test_slots_run_out_and_come_back() -> None:
    slots = ConnectionSlots(2)
    assert slots.acquire() and slots.acquire()
    assert not slots.acquire()
    assert slots.free == 0
    slots.release()
    assert slots.acquire()


def test_no_limit_never_refuses() -> None:
    slots = ConnectionSlots(None)
    assert all(slots.acquire() for _ in range(1000))
    assert slots.free is None


def test_over_release_is_a_bug() -> None:
    with pytest.raises(ValueError, match="released more"):
        ConnectionSlots(1).release()


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        ConnectionSlots(0)
