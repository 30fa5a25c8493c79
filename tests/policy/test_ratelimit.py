"""Token buckets shape traffic to their rate, bound bursts, combine, and change at run time.

Time is plain floats; a few tests drive senders from ``twisted.internet.task.Clock``
the way layer 1 will, with ``callLater(wait, ...)``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from bt.policy.ratelimit import (
    MAX_BURST_SECONDS,
    MIN_BURST,
    UNLIMITED,
    RateLimit,
    TokenBucket,
    default_burst,
)

KiB = 1024
MiB = 1024 * KiB
BLOCK = 16 * KiB
#: The bucket lets waits under a microsecond pass early; its debt absorbs them.
SLACK = 1e-6


def saturate(
    limit: RateLimit | TokenBucket, amount: int, duration: float, start: float = 0.0
) -> list[float]:
    """A sender that always has ``amount`` bytes ready; returns the time of each pass."""
    passes: list[float] = []
    now = start
    end = start + duration
    while now <= end:
        wait = limit.try_consume(amount, now)
        if wait:
            now += wait
        else:
            passes.append(now)
    return passes


def max_in_window(passes: list[float], amount: int, window: float) -> int:
    """Most bytes passed in any ``window`` seconds (windows starting at a pass are the worst)."""
    return max(amount * (bisect_right(passes, t + window) - i) for i, t in enumerate(passes))


# -- unlimited ---------------------------------------------------------------------------------


def test_unlimited_bucket_never_delays_and_keeps_no_debt() -> None:
    bucket = TokenBucket(UNLIMITED, 0.0)
    assert bucket.unlimited and bucket.rate is None
    for step in range(1000):
        assert bucket.try_consume(100 * MiB, float(step) * 1e-3) == 0.0
    bucket.consume(10**12, 1.0)
    assert bucket.delay(10**12, 1.0) == 0.0
    assert bucket.debt_delay(1.0) == 0.0


def test_chain_of_unlimited_buckets_is_unlimited_and_empty_chain_too() -> None:
    limit = RateLimit(TokenBucket(None, 0.0), TokenBucket(None, 0.0))
    assert limit.unlimited
    assert limit.try_consume(10**9, 0.0) == 0.0
    assert RateLimit().try_consume(10**9, 0.0) == 0.0
    assert not RateLimit(TokenBucket(None, 0.0), TokenBucket(KiB, 0.0)).unlimited


@pytest.mark.parametrize("rate", [0, 0.0, -1.0, math.nan, math.inf])
def test_rate_must_be_none_or_positive_and_finite(rate: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, 0.0)
    bucket = TokenBucket(KiB, 0.0)
    with pytest.raises(ValueError):
        bucket.set_rate(rate, 1.0)
    assert bucket.rate == KiB  # a rejected change leaves the bucket as it was


def test_burst_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(KiB, 0.0, burst=0)


# -- shaping a saturating sender ---------------------------------------------------------------

SHAPING_CASES = [
    # (rate, amount): 1-byte blocks only at rates the loop can step through quickly.
    (10 * KiB, 1),
    (10 * KiB, BLOCK),
    (10 * KiB, MiB),  # far bigger than the 10 KiB burst: passes by going into debt
    (1 * MiB, 64),
    (1 * MiB, BLOCK),
    (1 * MiB, MiB),  # bigger than the 256 KiB burst
    (100 * MiB, BLOCK),
    (100 * MiB, MiB),
    (100 * MiB, 64 * MiB),  # bigger than the 25 MiB burst
]


@pytest.mark.parametrize(("rate", "amount"), SHAPING_CASES)
def test_saturating_sender_gets_the_rate_and_no_more(rate: int, amount: int) -> None:
    """Over the run the sender gets the rate, within one burst or one amount; never stalls."""
    bucket = TokenBucket(rate, 0.0)
    # Ten seconds, or long enough for 20 passes when amounts are huge for the rate.
    duration = max(10.0, 20 * amount / rate)
    passes = saturate(bucket, amount, duration)
    sent = amount * len(passes)
    excess = max(bucket.burst, amount)
    assert sent <= rate * duration + excess + rate * SLACK
    assert sent >= rate * duration - rate * SLACK  # shaping, not stalling
    assert sent / duration == pytest.approx(rate, rel=0.10)
    # The same bound holds for every window inside the run, not just the whole.
    assert max_in_window(passes, amount, 10.0) <= rate * 10.0 + excess + rate * SLACK


@pytest.mark.parametrize(
    ("rate", "amount"),
    [(r, a) for r, a in SHAPING_CASES if a <= default_burst(r)],
)
def test_any_ten_second_window_is_within_ten_percent_when_blocks_fit_the_burst(
    rate: int, amount: int
) -> None:
    """The default burst is at most 1 s of traffic, so 10 s windows stay within 10%.

    (An amount bigger than the burst, e.g. a 16 KiB block at 10 KiB/s, is itself
    more than 10% of a 10 s window, so no shaper can promise that for it.)
    """
    passes = saturate(TokenBucket(rate, 0.0), amount, 30.0)
    assert max_in_window(passes, amount, 10.0) <= 1.10 * rate * 10.0


@pytest.mark.parametrize("rate", [1.0, 10 * KiB, 100 * KiB, 1 * MiB, 100 * MiB, 10 * 1024 * MiB])
def test_default_burst_is_bounded_by_one_second_and_floored_at_four_blocks(rate: float) -> None:
    burst = default_burst(rate)
    assert burst <= rate * MAX_BURST_SECONDS
    assert burst >= min(MIN_BURST, rate * MAX_BURST_SECONDS)
    assert TokenBucket(rate, 0.0).burst == burst


def test_one_block_passes_eventually_even_at_one_byte_per_second() -> None:
    bucket = TokenBucket(1.0, 0.0)
    assert bucket.try_consume(BLOCK, 0.0) == 0.0  # full bucket: passes, leaving debt
    wait = bucket.delay(BLOCK, 0.0)
    assert wait == pytest.approx(BLOCK, rel=1e-9)  # it waits out its debt, then the next passes
    assert bucket.try_consume(BLOCK, wait) == 0.0


def test_late_timers_do_not_lose_throughput_when_the_burst_has_room() -> None:
    """Reactor timers fire a little late; the burst keeps the tokens earned meanwhile."""
    rate = 1 * MiB
    bucket = TokenBucket(rate, 0.0)
    now, sent, lateness = 0.0, 0, 0.005
    while now <= 10.0:
        wait = bucket.try_consume(BLOCK, now)
        if wait:
            now += wait + lateness
        else:
            sent += BLOCK
    # Everything earned is used: at least the rate (the initial burst comes on top).
    assert sent >= rate * 10.0 - BLOCK


# -- bursts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [1, 1000, BLOCK])
def test_after_a_long_idle_at_most_one_burst_passes_at_once(amount: int) -> None:
    bucket = TokenBucket(1 * MiB, 0.0)
    bucket.consume(1 * MiB, 0.0)
    now = 3600.0
    sent = 0
    while bucket.try_consume(amount, now) == 0.0:
        sent += amount
    assert bucket.burst - amount < sent <= bucket.burst + bucket.rate * SLACK


def test_explicit_burst_is_used_and_replaced_by_the_default_on_set_rate() -> None:
    bucket = TokenBucket(10 * KiB, 0.0, burst=BLOCK)
    assert bucket.burst == BLOCK
    assert bucket.try_consume(BLOCK, 0.0) == 0.0
    bucket.set_rate(1 * MiB, 0.0)
    assert bucket.burst == default_burst(1 * MiB)
    bucket.set_rate(1 * MiB, 0.0, burst=MiB)
    assert bucket.burst == MiB


# -- combined limits ---------------------------------------------------------------------------


def test_combined_limits_obey_the_smaller_whichever_it_is() -> None:
    for torrent_rate, global_rate in [(1 * MiB, 100 * KiB), (100 * KiB, 1 * MiB)]:
        torrent, global_ = TokenBucket(torrent_rate, 0.0), TokenBucket(global_rate, 0.0)
        passes = saturate(RateLimit(torrent, global_), BLOCK, 20.0)
        assert BLOCK * len(passes) / 20.0 == pytest.approx(100 * KiB, rel=0.10)


def run_senders(clock: Clock, senders: list[tuple[RateLimit, int]], duration: float) -> list[int]:
    """Saturating senders driven by ``callLater``, as layer 1 will; bytes sent by each."""
    sent = [0] * len(senders)

    def sender(index: int, limit: RateLimit, amount: int) -> Callable[[], None]:
        def step() -> None:
            while True:
                wait = limit.try_consume(amount, clock.seconds())
                if wait:
                    clock.callLater(wait, step)
                    return
                sent[index] += amount

        return step

    for index, (limit, amount) in enumerate(senders):
        clock.callLater(0, sender(index, limit, amount))
    while clock.getDelayedCalls() and clock.seconds() < duration:
        due = min(call.getTime() for call in clock.getDelayedCalls())
        clock.advance(max(0.0, due - clock.seconds()))
    for call in clock.getDelayedCalls():
        call.cancel()
    return sent


def test_torrents_sharing_the_global_bucket_stay_within_it_together() -> None:
    clock = Clock()
    global_ = TokenBucket(1 * MiB, clock.seconds())
    fast = RateLimit(TokenBucket(None, clock.seconds()), global_)
    slow = RateLimit(TokenBucket(200 * KiB, clock.seconds()), global_)
    sent_fast, sent_slow = run_senders(clock, [(fast, BLOCK), (slow, BLOCK)], 20.0)
    assert (sent_fast + sent_slow) / 20.0 == pytest.approx(1 * MiB, rel=0.10)
    assert sent_slow / 20.0 <= 200 * KiB * 1.10


def test_download_consumes_what_arrived_and_pauses_while_in_debt() -> None:
    """Reads cannot be refused, so the reader consumes, then pauses for the debt."""
    rate, read_size = 100 * KiB, 64 * KiB
    limit = RateLimit(TokenBucket(None, 0.0), TokenBucket(rate, 0.0))
    now, received = 0.0, 0
    while now <= 20.0:
        limit.consume(read_size, now)  # a socket read arrived
        received += read_size
        now += limit.debt_delay(now)  # paused; the link could deliver at once otherwise
    assert received / 20.0 == pytest.approx(rate, rel=0.10)
    assert limit.debt_delay(now) == 0.0


# -- changing limits at run time ---------------------------------------------------------------


def test_set_rate_mid_stream_changes_the_rate_from_then_on() -> None:
    bucket = TokenBucket(1 * MiB, 0.0)
    first = saturate(bucket, BLOCK, 10.0)
    switch = first[-1]
    bucket.set_rate(100 * KiB, switch)
    second = saturate(bucket, BLOCK, 10.0, start=switch)
    assert BLOCK * len(first) / 10.0 == pytest.approx(1 * MiB, rel=0.10)
    assert BLOCK * len(second) / 10.0 == pytest.approx(100 * KiB, rel=0.10)
    bucket.set_rate(1 * MiB, second[-1])
    third = saturate(bucket, BLOCK, 10.0, start=second[-1])
    assert BLOCK * len(third) / 10.0 == pytest.approx(1 * MiB, rel=0.10)


def test_set_rate_keeps_debt_and_repays_it_at_the_new_rate() -> None:
    bucket = TokenBucket(1 * MiB, 0.0)
    bucket.consume(bucket.burst + 1 * MiB, 0.0)  # one MiB of debt
    assert bucket.debt_delay(0.0) == pytest.approx(1.0)
    bucket.set_rate(2 * MiB, 0.25)  # a quarter second repaid at the old rate
    assert bucket.debt_delay(0.25) == pytest.approx(0.75 * MiB / (2 * MiB))


def test_set_rate_keeps_earned_tokens_up_to_the_new_burst() -> None:
    bucket = TokenBucket(1 * MiB, 0.0)
    bucket.set_rate(100 * KiB, 10.0)  # the full old burst is cut to the new one
    assert bucket.burst < default_burst(1 * MiB)
    sent = 0
    while bucket.try_consume(KiB, 10.0) == 0.0:
        sent += KiB
    assert sent == bucket.burst


def test_to_unlimited_forgives_debt_and_back_starts_full() -> None:
    bucket = TokenBucket(10 * KiB, 0.0)
    bucket.consume(10 * MiB, 0.0)
    assert bucket.debt_delay(0.0) > 100.0
    bucket.set_rate(None, 1.0)
    assert bucket.unlimited
    assert bucket.try_consume(100 * MiB, 1.0) == 0.0
    bucket.set_rate(10 * KiB, 2.0)
    assert bucket.debt_delay(2.0) == 0.0
    assert bucket.try_consume(int(bucket.burst), 2.0) == 0.0
    assert bucket.delay(1, 2.0) > 0.0


def test_a_clock_stepping_back_neither_stalls_nor_credits() -> None:
    bucket = TokenBucket(10 * KiB, 1000.0)
    bucket.consume(bucket.burst + 10 * KiB, 1000.0)  # one second of debt
    assert bucket.debt_delay(0.0) == pytest.approx(1.0)  # not 1001 s
    assert bucket.debt_delay(0.5) == pytest.approx(0.5)


# -- properties --------------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4 * BLOCK),  # amount
        st.floats(min_value=0.0, max_value=2.0),  # time advance before the attempt
    ),
    max_size=200,
)


@settings(max_examples=200)
@given(rate=st.floats(min_value=1.0, max_value=200 * MiB), ops=OPS, start=st.floats(0, 2e9))
def test_bytes_allowed_by_t_never_exceed_rate_t_plus_burst(
    rate: float, ops: list[tuple[int, float]], start: float
) -> None:
    """Whatever the sender does, by time T at most rate*T + max(burst, largest amount) passed.

    And when told to wait, waiting exactly that long lets the same amount through.
    """
    bucket = TokenBucket(rate, start)
    now, allowed, largest = start, 0, 0
    for amount, advance in ops:
        now += advance
        wait = bucket.try_consume(amount, now)
        if wait:
            assert bucket.try_consume(amount, now + wait) == 0.0  # waiting is enough
            now += wait
        allowed += amount
        largest = max(largest, amount)
        elapsed = now - start
        # Float time at ~2e9 s is precise to ~0.5 us: allow the slack plus that rounding.
        tolerance = rate * (SLACK + 1e-6) + 1e-6 * allowed
        assert allowed <= rate * elapsed + max(bucket.burst, largest) + tolerance
        if largest <= bucket.burst:
            assert allowed <= rate * elapsed + bucket.burst + tolerance


RATES = st.one_of(st.none(), st.floats(min_value=1.0, max_value=100 * MiB))


@settings(max_examples=200)
@given(
    first=RATES,
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("send"), st.integers(0, 4 * BLOCK), st.floats(0.0, 2.0)),
            st.tuples(st.just("rate"), RATES, st.floats(0.0, 2.0)),
        ),
        max_size=100,
    ),
)
def test_rate_changes_including_unlimited_keep_the_bound(
    first: float | None, ops: list[tuple[str, object, float]]
) -> None:
    """Across set_rate calls, limited traffic stays within the burst plus the integral of rate.

    Each limited stretch that follows an unlimited one starts afresh from a full bucket.
    """
    bucket = TokenBucket(first, 0.0)
    now = 0.0
    allowance = bucket.burst  # tokens to start with plus everything earned since
    allowed = 0
    excess = 0.0  # amounts bigger than the burst may overdraw by their surplus
    for kind, value, advance in ops:
        if bucket.rate is not None:
            allowance += bucket.rate * advance
        now += advance
        if kind == "rate":
            assert value is None or isinstance(value, float)
            was_unlimited = bucket.unlimited
            bucket.set_rate(value, now)
            if was_unlimited and value is not None:
                allowance, allowed, excess = bucket.burst, 0, 0.0
            continue
        assert isinstance(value, int)
        wait = bucket.try_consume(value, now)
        if bucket.unlimited:
            assert wait == 0.0
            continue
        if wait == 0.0:
            allowed += value
            excess = max(excess, value - bucket.burst)
            tolerance = bucket.rate * 2 * SLACK + 1e-9 * allowance
            assert allowed <= allowance + excess + tolerance
