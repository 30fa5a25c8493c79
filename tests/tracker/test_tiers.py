"""BEP 12 tiers: shuffled once, in-order failover, the answering tracker first, stopped to one."""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import replace
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure

from bt.errors import TrackerError
from bt.tracker.announce import AnnounceRequest, AnnounceResponse
from bt.tracker.announcer import Announcer
from bt.tracker.scrape import ScrapeResult
from bt.tracker.tiers import TrackerTier, build_tiers

INFO_HASH = b"i" * 20
REQUEST = AnnounceRequest(
    info_hash=INFO_HASH,
    peer_id=b"-BT0001-" + b"p" * 12,
    port=6881,
    uploaded=0,
    downloaded=0,
    left=100,
    event="started",
    key="k",
)
TIMEOUT = 30.0


def response(tracker_id: bytes | None = None, peers: tuple[Any, ...] = ()) -> AnnounceResponse:
    return AnnounceResponse(
        interval=1800,
        min_interval=None,
        tracker_id=tracker_id,
        complete=None,
        incomplete=None,
        warning=None,
        peers=peers,
    )


class FakeTracker:
    """A tracker that answers, fails at once ("error"), or never answers and times out ("silent").

    Like HTTPTracker, it names itself (``display_url``) at the start of its errors.
    """

    def __init__(self, name: str, clock: task.Clock, mode: str = "ok") -> None:
        self.display_url = name
        self.clock = clock
        self.mode = mode
        self.requests: list[AnnounceRequest] = []
        self.tracker_id: bytes | None = None
        self.cancelled = 0

    def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]:
        self.requests.append(request)
        if self.mode == "ok":
            return defer.succeed(response(tracker_id=self.tracker_id))
        if self.mode == "error":
            return defer.fail(TrackerError(f"{self.display_url}: connection refused"))
        if self.mode == "bug":
            return defer.fail(ZeroDivisionError("a bug"))
        d: defer.Deferred[AnnounceResponse] = defer.Deferred(self._cancel)
        call = self.clock.callLater(
            TIMEOUT, d.errback, TrackerError(f"{self.display_url}: timed out after 30.0 s")
        )
        d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])
        return d

    def _cancel(self, d: defer.Deferred[AnnounceResponse]) -> None:
        self.cancelled += 1
        d.errback(TrackerError(f"{self.display_url}: announce cancelled"))


class FakeScraper(FakeTracker):
    def __init__(self, name: str, clock: task.Clock, mode: str = "ok") -> None:
        super().__init__(name, clock, mode)
        self.scrapes: list[tuple[bytes, ...]] = []

    def scrape(self, info_hashes: Collection[bytes]) -> defer.Deferred[dict[bytes, ScrapeResult]]:
        self.scrapes.append(tuple(info_hashes))
        if self.mode == "ok":
            return defer.succeed({h: ScrapeResult(1, 2, 3) for h in info_hashes})
        return defer.fail(TrackerError(f"{self.display_url}: scrape refused"))


class InOrder(random.Random):
    """An rng whose shuffle leaves the order alone, so a test can place the dead tracker first."""

    def shuffle(self, x: Any) -> None:  # type: ignore[override]
        return None


def result_of(d: defer.Deferred[Any]) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def tracker_error(d: defer.Deferred[Any]) -> str:
    result = result_of(d)
    assert isinstance(result, Failure), f"expected a failure, got {result!r}"
    result.trap(TrackerError)
    return str(result.value)


def trackers(clock: task.Clock, *modes: str) -> list[FakeTracker]:
    return [FakeTracker(f"http://t{i}/announce", clock, mode) for i, mode in enumerate(modes)]


# --- order ----------------------------------------------------------------------------


def test_trackers_are_shuffled_once_with_the_given_rng() -> None:
    clock = task.Clock()
    fakes = trackers(clock, *["ok"] * 6)
    expected = list(fakes)
    random.Random(7).shuffle(expected)
    rng = random.Random(7)
    tier = TrackerTier(fakes, rng)
    assert tier.trackers == tuple(expected)
    state = rng.getstate()
    for _ in range(3):
        assert isinstance(result_of(tier.announce(REQUEST)), AnnounceResponse)
    assert tier.trackers == tuple(expected), "announces must not reshuffle"
    assert rng.getstate() == state
    assert [len(t.requests) for t in expected] == [3, 0, 0, 0, 0, 0]


def test_an_empty_tier_is_a_bug() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TrackerTier([], random.Random(1))


# --- failover -----------------------------------------------------------------------


def test_a_failing_first_tracker_fails_over_to_the_second_which_moves_to_the_front() -> None:
    clock = task.Clock()
    dead, alive, spare = trackers(clock, "error", "ok", "ok")
    tier = TrackerTier([dead, alive, spare], InOrder())
    assert isinstance(result_of(tier.announce(REQUEST)), AnnounceResponse)
    assert (len(dead.requests), len(alive.requests), len(spare.requests)) == (1, 1, 0)
    assert tier.trackers == (alive, dead, spare)
    result_of(tier.announce(replace(REQUEST, event=None)))
    assert (len(dead.requests), len(alive.requests)) == (1, 2), (
        "the next announce goes first to the one that answered"
    )


def test_a_silent_first_tracker_times_out_then_the_second_answers() -> None:
    clock = task.Clock()
    silent, alive = trackers(clock, "silent", "ok")
    tier = TrackerTier([silent, alive], InOrder())
    d = tier.announce(REQUEST)
    assert not d.called and alive.requests == []
    clock.advance(TIMEOUT)
    assert isinstance(result_of(d), AnnounceResponse)
    assert tier.trackers == (alive, silent)
    assert clock.getDelayedCalls() == []


def test_when_all_trackers_fail_the_error_names_each() -> None:
    clock = task.Clock()
    first, second = trackers(clock, "error", "silent")
    tier = TrackerTier([first, second], InOrder())
    d = tier.announce(REQUEST)
    clock.advance(TIMEOUT)
    message = tracker_error(d)
    assert message == (
        "announce failed on all 2 trackers of the tier: "
        "http://t0/announce: connection refused; http://t1/announce: timed out after 30.0 s"
    )
    assert tier.trackers == (first, second), "no answer, no reordering"


def test_a_tracker_that_does_not_name_itself_is_named_by_the_tier() -> None:
    class Anonymous:
        def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]:
            return defer.fail(TrackerError("nope"))

        def __repr__(self) -> str:
            return "<Anonymous>"

    message = tracker_error(TrackerTier([Anonymous()], InOrder()).announce(REQUEST))
    assert message.endswith("<Anonymous>: nope")


def test_a_bug_in_a_tracker_client_ends_the_announce_instead_of_being_skipped() -> None:
    clock = task.Clock()
    buggy, alive = trackers(clock, "bug", "ok")
    result = result_of(TrackerTier([buggy, alive], InOrder()).announce(REQUEST))
    assert isinstance(result, Failure) and result.check(ZeroDivisionError)
    assert alive.requests == []


def test_cancelling_cancels_the_attempt_in_flight_and_tries_no_other() -> None:
    clock = task.Clock()
    silent, alive = trackers(clock, "silent", "ok")
    d = TrackerTier([silent, alive], InOrder()).announce(REQUEST)
    d.cancel()
    assert silent.cancelled == 1
    assert "announce cancelled" in tracker_error(d)
    assert alive.requests == []
    assert clock.getDelayedCalls() == []


# --- stopped --------------------------------------------------------------------------


def test_stopped_goes_to_the_front_tracker_only() -> None:
    clock = task.Clock()
    dead, alive, spare = trackers(clock, "error", "ok", "ok")
    tier = TrackerTier([dead, alive, spare], InOrder())
    result_of(tier.announce(REQUEST))
    alive.mode = "error"
    message = tracker_error(tier.announce(replace(REQUEST, event="stopped")))
    assert "http://t1/announce: connection refused" in message
    assert [r.event for r in alive.requests] == ["started", "stopped"]
    assert [r.event for r in dead.requests] == ["started"]
    assert spare.requests == []


def test_stopped_to_a_healthy_front_tracker_succeeds() -> None:
    clock = task.Clock()
    first, second = trackers(clock, "ok", "ok")
    tier = TrackerTier([first, second], InOrder())
    assert isinstance(result_of(tier.announce(replace(REQUEST, event="stopped"))), AnnounceResponse)
    assert (len(first.requests), len(second.requests)) == (1, 0)


# --- tracker id -----------------------------------------------------------------------


def test_each_tracker_gets_back_only_its_own_tracker_id() -> None:
    clock = task.Clock()
    first, second = trackers(clock, "ok", "ok")
    first.tracker_id = b"first-id"
    tier = TrackerTier([first, second], InOrder())
    result_of(tier.announce(REQUEST))
    result_of(tier.announce(replace(REQUEST, event=None, tracker_id=b"stale")))
    assert [r.tracker_id for r in first.requests] == [None, b"first-id"]
    first.mode = "error"
    result_of(tier.announce(replace(REQUEST, event=None, tracker_id=b"first-id")))
    assert second.requests[-1].tracker_id is None, "first's id must not leak to second"


# --- with the Announcer ---------------------------------------------------------------


def test_an_announcer_drives_a_tier_through_a_dead_tracker() -> None:
    clock = task.Clock()
    dead, alive = trackers(clock, "silent", "ok")
    found: list[Any] = []
    announcer = Announcer(
        TrackerTier([dead, alive], InOrder()),
        clock,
        random.Random(1),
        lambda event: replace(REQUEST, event=event),
        found.append,
    )
    announcer.start()
    clock.advance(TIMEOUT)
    assert [r.event for r in alive.requests] == ["started"]
    stopped = announcer.stop()
    assert result_of(stopped) is None
    assert [r.event for r in alive.requests] == ["started", "stopped"]
    assert [r.event for r in dead.requests] == ["started"]
    assert clock.getDelayedCalls() == []


def test_announcer_logs_name_a_tier_by_its_tracker_url_not_its_repr() -> None:
    """'announced stopped to <TrackerTier http://...>' was an object's repr in the log."""
    clock = task.Clock()
    dead, alive = trackers(clock, "silent", "ok")
    tier = TrackerTier([dead, alive], InOrder())
    announcer = Announcer(
        tier, clock, random.Random(1), lambda event: replace(REQUEST, event=event), list
    )
    with capturedLogs() as events:
        announcer.start()
        clock.advance(TIMEOUT)
        result_of(announcer.stop())
    lines = [formatEvent(e) for e in events if e.get("log_namespace", "").startswith("bt.")]
    assert tier.display_url == alive.display_url, "the tracker that answered comes first"
    assert f"announced stopped to {alive.display_url}" in lines
    assert not [line for line in lines if "<" in line], lines


# --- scrape ---------------------------------------------------------------------------


def test_scrape_fails_over_across_trackers_that_can_scrape_and_keeps_the_order() -> None:
    clock = task.Clock()
    plain = FakeTracker("http://plain/announce", clock)
    broken = FakeScraper("http://broken/announce", clock, "error")
    good = FakeScraper("http://good/announce", clock)
    tier = TrackerTier([plain, broken, good], InOrder())
    assert result_of(tier.scrape([INFO_HASH])) == {INFO_HASH: ScrapeResult(1, 2, 3)}
    assert broken.scrapes == [(INFO_HASH,)] and good.scrapes == [(INFO_HASH,)]
    assert tier.trackers == (plain, broken, good)


def test_scrape_errors_name_each_tracker_or_say_none_can_scrape() -> None:
    clock = task.Clock()
    broken = FakeScraper("http://broken/announce", clock, "error")
    assert tracker_error(TrackerTier([broken], InOrder()).scrape([INFO_HASH])) == (
        "scrape failed on all 1 trackers of the tier: http://broken/announce: scrape refused"
    )
    plain = FakeTracker("http://plain/announce", clock)
    assert "supports scrape" in tracker_error(TrackerTier([plain], InOrder()).scrape([INFO_HASH]))


# --- build_tiers ----------------------------------------------------------------------


def test_build_tiers_skips_unsupported_urls_and_drops_empty_tiers() -> None:
    clock = task.Clock()
    made: list[str] = []

    def make(url: str) -> FakeTracker | None:
        made.append(url)
        return FakeTracker(url, clock) if url.startswith("http") else None

    announce_list = (
        ("http://a/announce", "wss://a/announce", "https://b/announce"),
        ("dht://nothing", "wss://also-nothing"),
        (),
        ("http://c/announce",),
    )
    tiers = build_tiers(announce_list, make, random.Random(3))
    assert [sorted(t.display_url for t in tier.trackers) for tier in tiers] == [  # type: ignore[attr-defined]
        ["http://a/announce", "https://b/announce"],
        ["http://c/announce"],
    ]
    assert made == [url for tier in announce_list for url in tier]


def test_build_tiers_shuffles_each_tier_with_the_rng() -> None:
    clock = task.Clock()
    urls = tuple(f"http://t{i}/announce" for i in range(8))
    first = build_tiers((urls,), lambda url: FakeTracker(url, clock), random.Random(5))
    again = build_tiers((urls,), lambda url: FakeTracker(url, clock), random.Random(5))
    names = [t.display_url for t in first[0].trackers]  # type: ignore[attr-defined]
    assert names == [t.display_url for t in again[0].trackers]  # type: ignore[attr-defined]
    assert sorted(names) == sorted(urls)
