"""Announcer timing and events against a scripted tracker and ``task.Clock``."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.logger import LogEvent, capturedLogs, formatEvent

from bt.errors import TrackerError
from bt.tracker.announce import AnnounceRequest, AnnounceResponse, Peer
from bt.tracker.announcer import Announcer


class ScriptedTracker:
    """Records every request; the test answers each one through its pending Deferred."""

    def __init__(self) -> None:
        self.requests: list[AnnounceRequest] = []
        self.pending: list[defer.Deferred[AnnounceResponse]] = []
        self.cancelled = 0

    def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]:
        self.requests.append(request)
        d: defer.Deferred[AnnounceResponse] = defer.Deferred(self._count_cancel)
        self.pending.append(d)
        return d

    def _count_cancel(self, _: object) -> None:
        self.cancelled += 1

    @property
    def events(self) -> list[str | None]:
        return [request.event for request in self.requests]

    def answer(self, **fields: Any) -> None:
        fields.setdefault("interval", 1800)
        self._next().callback(response(**fields))

    def fail(self, reason: str = "tracker down") -> None:
        self._next().errback(TrackerError(reason))

    def _next(self) -> defer.Deferred[AnnounceResponse]:
        waiting = [d for d in self.pending if not d.called]
        assert len(waiting) == 1, f"{len(waiting)} announces in flight"
        return waiting[0]


def response(
    interval: int = 1800,
    min_interval: int | None = None,
    tracker_id: bytes | None = None,
    warning: str | None = None,
    peers: tuple[Peer, ...] = (),
) -> AnnounceResponse:
    return AnnounceResponse(
        interval=interval,
        min_interval=min_interval,
        tracker_id=tracker_id,
        complete=None,
        incomplete=None,
        warning=warning,
        peers=peers,
    )


class Harness:
    def __init__(
        self,
        seed: int = 1,
        on_peers: Callable[[tuple[Peer, ...]], object] | None = None,
        **options: Any,
    ) -> None:
        self.tracker = ScriptedTracker()
        self.clock = task.Clock()
        self.left = 1000
        self.factory_events: list[str | None] = []
        self.peers: list[tuple[Peer, ...]] = []
        self.announcer = Announcer(
            self.tracker,
            self.clock,
            random.Random(seed),
            self.request,
            on_peers or self.peers.append,
            **options,
        )

    def request(self, event: str | None) -> AnnounceRequest:
        self.factory_events.append(event)
        return AnnounceRequest(
            info_hash=b"i" * 20,
            peer_id=b"p" * 20,
            port=6881,
            uploaded=0,
            downloaded=1000 - self.left,
            left=self.left,
            event=event,
            key="key",
        )

    def started(self, **fields: Any) -> None:
        """Start and let the tracker accept ``started``."""
        self.announcer.start()
        self.tracker.answer(**fields)

    def announced_after(self, seconds: float) -> bool:
        """Whether the next announce goes out ``seconds`` from now (to the millisecond)."""
        count = len(self.tracker.requests)
        self.clock.advance(seconds - 0.001)
        if len(self.tracker.requests) != count:
            return False
        self.clock.advance(0.002)
        return len(self.tracker.requests) == count + 1


@pytest.fixture
def logs() -> Iterator[list[LogEvent]]:
    with capturedLogs() as events:
        yield events  # type: ignore[misc]


def messages(events: list[LogEvent]) -> list[str]:
    return [
        formatEvent(event) for event in events if event.get("log_namespace", "").startswith("bt.")
    ]


# --- the regular cycle ---------------------------------------------------------------


def test_start_announces_started_then_every_interval_with_fresh_counters() -> None:
    h = Harness()
    h.started(interval=1800, peers=(("10.0.0.1", 1),))
    assert h.tracker.events == ["started"]
    assert h.peers == [(("10.0.0.1", 1),)]
    h.left = 0
    assert h.announced_after(1800)
    assert h.tracker.events == ["started", None]
    assert h.tracker.requests[-1].left == 0
    assert h.factory_events == ["started", None]


def test_min_interval_longer_than_interval_wins() -> None:
    h = Harness()
    h.started(interval=100, min_interval=300)
    assert h.announced_after(300)


def test_absurd_intervals_are_clamped() -> None:
    h = Harness(min_announce_interval=60.0, max_announce_interval=3600.0)
    h.started(interval=1)
    assert h.announced_after(60)
    h.tracker.answer(interval=10**12)
    assert h.announced_after(3600)


def test_empty_peer_lists_are_not_delivered() -> None:
    h = Harness()
    h.started()
    assert h.peers == []


def test_tracker_id_is_remembered_and_sent_back() -> None:
    h = Harness()
    h.started(tracker_id=b"tid-1")
    assert h.tracker.requests[0].tracker_id is None
    h.clock.advance(1800)
    assert h.tracker.requests[1].tracker_id == b"tid-1"
    h.tracker.answer()  # no tracker id this time: keep the old one
    h.clock.advance(1800)
    assert h.tracker.requests[2].tracker_id == b"tid-1"


def test_warning_message_is_logged(logs: list[LogEvent]) -> None:
    h = Harness()
    h.started(warning="slow down")
    assert any("warns: slow down" in message for message in messages(logs))


# --- failures and backoff -------------------------------------------------------------


def retry_delays(seed: int, failures: int) -> list[float]:
    h = Harness(seed=seed)
    h.announcer.start()
    delays = []
    for _ in range(failures):
        h.tracker.fail()
        (call,) = h.clock.getDelayedCalls()
        delays.append(call.getTime() - h.clock.seconds())
        h.clock.advance(delays[-1])
    return delays


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    delays = retry_delays(seed=7, failures=10)
    bases = [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]
    for delay, base in zip(delays, bases, strict=True):
        assert base / 2 <= delay <= base
    assert delays == retry_delays(seed=7, failures=10)  # the rng is the only randomness
    assert delays != retry_delays(seed=8, failures=10)  # and it does spread retries


def test_failed_started_is_retried_as_started_then_regular(logs: list[LogEvent]) -> None:
    h = Harness()
    h.announcer.start()
    h.tracker.fail("connection refused")
    assert any("failed: connection refused" in message for message in messages(logs))
    h.clock.advance(15)
    h.tracker.fail()
    h.clock.advance(30)
    assert h.tracker.events == ["started", "started", "started"]
    h.tracker.answer(interval=900)
    assert h.announced_after(900)
    assert h.tracker.events[-1] is None


def test_success_resets_the_backoff() -> None:
    h = Harness()
    h.started(interval=600)
    for _ in range(3):
        h.clock.advance(h.clock.getDelayedCalls()[0].getTime() - h.clock.seconds())
        h.tracker.fail()
    h.clock.advance(h.clock.getDelayedCalls()[0].getTime() - h.clock.seconds())
    h.tracker.answer(interval=600)
    assert h.announced_after(600)
    h.tracker.fail()
    (retry,) = h.clock.getDelayedCalls()
    assert retry.getTime() - h.clock.seconds() <= 15


def test_an_unexpected_failure_is_logged_with_traceback_and_retried(
    logs: list[LogEvent],
) -> None:
    h = Harness()
    h.announcer.start()
    h.tracker.pending[0].errback(ZeroDivisionError("bug in a tracker client"))
    (event,) = [e for e in logs if "log_failure" in e]
    assert event["log_failure"].check(ZeroDivisionError)
    assert len(h.clock.getDelayedCalls()) == 1
    h.clock.advance(15)
    assert h.tracker.events == ["started", "started"]


def test_a_raising_on_peers_does_not_stop_announcing(logs: list[LogEvent]) -> None:
    def broken(peers: object) -> None:
        raise RuntimeError("consumer bug")

    h = Harness(on_peers=broken)
    h.started(peers=(("10.0.0.1", 1),))
    assert [e["log_failure"].type for e in logs if "log_failure" in e] == [RuntimeError]
    assert h.announced_after(1800)


# --- completed --------------------------------------------------------------------------


def test_completed_is_sent_at_once_and_only_once() -> None:
    h = Harness()
    h.started()
    h.clock.advance(100)
    h.announcer.completed()
    h.clock.advance(0)
    assert h.tracker.events == ["started", "completed"]
    h.tracker.answer(interval=1800)
    h.announcer.completed()
    h.clock.advance(0)
    assert h.announced_after(1800)
    assert h.tracker.events == ["started", "completed", None]


def test_completed_before_started_is_through_waits_for_it() -> None:
    h = Harness()
    h.announcer.start()
    h.announcer.completed()
    h.clock.advance(0)
    assert h.tracker.events == ["started"]
    h.tracker.answer()
    h.clock.advance(0)
    assert h.tracker.events == ["started", "completed"]


def test_failed_completed_is_retried_as_completed() -> None:
    h = Harness()
    h.started()
    h.announcer.completed()
    h.clock.advance(0)
    h.tracker.fail()
    h.clock.advance(15)
    assert h.tracker.events == ["started", "completed", "completed"]


# --- need_peers ---------------------------------------------------------------------------


def test_need_peers_waits_for_min_interval_then_announces_early() -> None:
    h = Harness()
    h.started(interval=1800, min_interval=300)
    h.clock.advance(100)
    h.announcer.need_peers()
    assert h.announced_after(200)
    assert h.tracker.events == ["started", None]
    h.tracker.answer(interval=1800, min_interval=300)
    h.clock.advance(400)
    h.announcer.need_peers()
    assert len(h.tracker.requests) == 2  # scheduled, not sent inside need_peers
    h.clock.advance(0)
    assert len(h.tracker.requests) == 3


def test_need_peers_does_not_hurry_a_failing_tracker_or_an_answer_in_flight() -> None:
    h = Harness()
    h.announcer.start()
    h.announcer.need_peers()  # started in flight
    h.tracker.fail()
    h.announcer.need_peers()  # backing off
    h.clock.advance(7)
    assert h.tracker.events == ["started"]


# --- stop -----------------------------------------------------------------------------------


def test_stop_sends_stopped_and_leaves_no_timer() -> None:
    h = Harness()
    h.started()
    d = h.announcer.stop()
    assert h.tracker.requests[-1].event == "stopped"
    assert h.tracker.requests[-1].numwant == 0
    h.tracker.answer()
    assert d.called and d.result is None
    assert h.clock.getDelayedCalls() == []
    assert not h.announcer.running


def test_a_second_stop_waits_for_the_first_stopped_announce() -> None:
    """A seeding goal met stops the announcers; the daemon's own stop waits for them."""
    h = Harness()
    h.started()
    first = h.announcer.stop()
    second = h.announcer.stop()
    assert h.tracker.events == ["started", "stopped"], "stopped is sent once"
    assert not first.called and not second.called
    h.tracker.answer()
    assert first.called and second.called and second.result is None
    assert h.announcer.stop().called, "nothing left to wait for"


def test_stop_is_bounded_when_the_tracker_never_answers() -> None:
    h = Harness()
    h.started()
    d = h.announcer.stop(timeout=5)
    h.clock.advance(4.9)
    assert not d.called
    h.clock.advance(0.1)
    assert d.called and d.result is None
    assert h.tracker.cancelled == 1
    assert h.clock.getDelayedCalls() == []


def test_stop_never_errbacks_when_stopped_fails() -> None:
    h = Harness()
    h.started()
    d = h.announcer.stop()
    h.tracker.fail("gone")
    assert d.called and d.result is None


def test_stop_cancels_an_announce_in_flight_and_still_says_stopped() -> None:
    h = Harness()
    h.announcer.start()
    d = h.announcer.stop()
    assert h.tracker.cancelled == 1
    assert h.tracker.events == ["started", "stopped"]
    h.tracker.answer()
    assert d.result is None
    assert h.clock.getDelayedCalls() == []


def test_stop_right_after_the_download_sends_completed_then_stopped() -> None:
    """A seeding goal of 0 stops at once: the tracker must still count the download."""
    h = Harness()
    h.started()
    h.announcer.completed()  # scheduled, not sent yet
    d = h.announcer.stop()
    assert h.tracker.events == ["started", "completed"]
    h.tracker.answer()
    assert h.tracker.events == ["started", "completed", "stopped"]
    h.tracker.answer()
    assert d.result is None
    assert h.clock.getDelayedCalls() == []


def test_a_failed_completed_at_stop_still_says_stopped() -> None:
    h = Harness()
    h.started()
    h.announcer.completed()
    d = h.announcer.stop()
    h.tracker.fail("refused")
    assert h.tracker.events == ["started", "completed", "stopped"]
    h.tracker.answer()
    assert d.result is None


def test_stop_without_a_known_announce_sends_nothing() -> None:
    h = Harness()
    assert h.announcer.stop().result is None  # never started
    h.announcer.start()
    h.tracker.fail()
    assert h.announcer.stop().result is None  # the tracker never heard of us
    assert h.tracker.events == ["started"]
    assert h.clock.getDelayedCalls() == []


def test_restart_announces_started_again() -> None:
    h = Harness()
    h.started(tracker_id=b"tid")
    h.announcer.stop()
    h.tracker.answer()
    h.announcer.start()
    assert h.tracker.events == ["started", "stopped", "started"]
    assert h.tracker.requests[-1].tracker_id == b"tid"


# --- what a hostile tracker says ---------------------------------------------------------


def test_a_megabyte_failure_reason_is_logged_cut_and_escaped(logs: list[LogEvent]) -> None:
    """A tracker's text reaches the log bounded and without its terminal escapes."""
    from test_http_tracker import FakeTracker
    from treq.testing import StubTreq

    from bt import bencode
    from bt.tracker.http import HTTPTracker
    from bt.tracker.tiers import TrackerTier

    reason = b"\x1b[2J\x1b[31mpwned\r\n" + b"r" * 1_000_000
    stub = StubTreq(FakeTracker(lambda request: bencode.encode({b"failure reason": reason})))
    clock = task.Clock()
    long_url = "http://tracker.example/announce/" + "u" * 10_000
    tracker = HTTPTracker(long_url, stub, clock)  # type: ignore[arg-type]
    tier = TrackerTier([tracker], random.Random(1))
    h = Harness()
    announcer = Announcer(tier, clock, random.Random(1), h.request, h.peers.append)
    announcer.start()
    stub.flush()
    assert announcer.errors == 1
    (line,) = [m for m in messages(logs) if "failed" in m]
    assert len(line) < 1_000, line[:300]
    assert line.isprintable()
    assert "\\x1b[2J\\x1b[31mpwned\\r\\nrrr" in line
    assert f"({len(reason)} bytes)" in line
    assert "(10032 characters)" in line
    announcer.stop()
    stub.flush()
    for call in clock.getDelayedCalls():
        call.cancel()
