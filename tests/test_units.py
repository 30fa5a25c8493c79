"""What users type for rates and durations, and the errors for what they mistype."""

from __future__ import annotations

import pytest

from bt.units import parse_duration, parse_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("0", None),
        ("100", 100),
        ("500K", 500 * 1024),
        ("2M", 2 << 20),
        ("1.5MiB", 1.5 * 2**20),
        ("1g", 2**30),
        ("64kb", 64 * 1024),
    ],
)
def test_rates(text: str, rate: float | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "-5", "5X", "1.2.3M"])
def test_bad_rates_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a rate such as 500K"):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30m", 1800), ("2h", 7200), ("1d12h", 129600), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "-3m"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
