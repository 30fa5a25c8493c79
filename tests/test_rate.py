"""Rate meters smooth per-tick samples and cost one addition per block."""

from __future__ import annotations

import pytest

from bt.rate import RateMeter


def test_steady_traffic_converges_to_its_rate() -> None:
    meter = RateMeter(0.0)
    for second in range(1, 30):
        meter.add(1000)
        meter.tick(float(second))
    assert meter.rate == pytest.approx(1000, rel=0.01)
    assert meter.total == 29_000


def test_silence_decays_the_rate() -> None:
    meter = RateMeter(0.0)
    meter.add(10_000)
    meter.tick(1.0)
    first = meter.rate
    for second in range(2, 12):
        meter.tick(float(second))
    assert 0 <= meter.rate < first / 10


def test_tick_without_elapsed_time_changes_nothing() -> None:
    meter = RateMeter(5.0)
    meter.add(100)
    assert meter.tick(5.0) == 0.0
