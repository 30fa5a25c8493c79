"""BEP 12 multitracker: one tier of trackers that acts as a single tracker.

A :class:`TrackerTier` has ``announce(request) -> Deferred`` like any tracker,
so one :class:`~bt.tracker.announcer.Announcer` drives one tier unchanged.
Give each tier its own Announcer: that announces to one tracker per tier, as
the reference clients do.

BEP 12 rules: the tier's trackers are shuffled once, when the tier is made;
an announce tries them in order until one answers; the one that answers moves
to the front, so later announces go to it first. ``stopped`` goes only to the
front tracker (the one that last answered): a departing torrent should not
walk a whole tier of dead trackers on the way out.

Only :class:`TrackerError` moves on to the next tracker. Any other failure is
a bug in a tracker client and ends the announce with that failure, so the
Announcer logs it with its traceback instead of the tier hiding it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

from bt.errors import TrackerError
from bt.tracker.announce import AnnounceRequest, AnnounceResponse
from bt.tracker.announcer import Tracker, tracker_name
from bt.tracker.scrape import ScrapeResult

__all__ = ["Scraper", "TrackerTier", "build_tiers"]

_T = TypeVar("_T")


class Scraper(Protocol):
    """A tracker client that can also scrape (BEP 48 over HTTP, BEP 15 over UDP)."""

    def scrape(
        self, info_hashes: Collection[bytes]
    ) -> defer.Deferred[dict[bytes, ScrapeResult]]: ...


class TrackerTier:
    """One tier of an ``announce-list``; a :class:`Tracker` itself.

    ``trackers`` must not be empty (:func:`build_tiers` drops empty tiers).
    The tier also keeps each tracker's ``tracker id``: the one the Announcer
    passes in belongs to whichever tracker answered last, so it is replaced
    with the id the tracker being tried gave us (or none).
    """

    def __init__(self, trackers: Sequence[Tracker], rng: random.Random) -> None:
        if not trackers:
            raise ValueError("a tracker tier needs at least one tracker")
        self._trackers: list[Tracker] = list(trackers)
        rng.shuffle(self._trackers)
        self._tracker_ids: dict[int, bytes] = {}

    @property
    def trackers(self) -> tuple[Tracker, ...]:
        """The trackers in the order the next announce tries them."""
        return tuple(self._trackers)

    @property
    def display_url(self) -> str:
        """The URL of the tracker tried first (the one that answered last), for logs."""
        return tracker_name(self._trackers[0])

    def __repr__(self) -> str:
        return f"<TrackerTier {', '.join(map(tracker_name, self._trackers))}>"

    def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]:
        """Announce to the first tracker that answers; ``stopped`` only to the front one.

        Fails with a :class:`TrackerError` naming every tracker's failure when
        none answers. Cancelling the Deferred cancels the attempt in flight and
        tries no further tracker.
        """
        candidates = self._trackers[:1] if request.event == "stopped" else list(self._trackers)

        def attempt(tracker: Tracker) -> defer.Deferred[AnnounceResponse]:
            own = replace(request, tracker_id=self._tracker_ids.get(id(tracker)))
            return tracker.announce(own)

        return _Failover(candidates, attempt, self._answered, "announce").start()

    def close(self) -> defer.Deferred[None]:
        """Close the trackers that hold resources (UDP sockets); fires when all are closed."""
        closing = [t.close() for t in self._trackers if hasattr(t, "close")]
        waits = [d for d in closing if d is not None]
        return defer.gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)

    def scrape(self, info_hashes: Collection[bytes]) -> defer.Deferred[dict[bytes, ScrapeResult]]:
        """Scrape through the first tracker of the tier that can and answers.

        Trackers without a ``scrape`` method are skipped; a scrape does not
        reorder the tier (a working scrape says nothing about announces).
        """
        scrapers: list[Any] = [t for t in self._trackers if hasattr(t, "scrape")]
        if not scrapers:
            return defer.fail(TrackerError(f"no tracker of {self!r} supports scrape"))
        hashes = tuple(info_hashes)
        return _Failover(scrapers, lambda t: t.scrape(hashes), None, "scrape").start()

    def _answered(self, tracker: Tracker, response: AnnounceResponse) -> None:
        if response.tracker_id is not None:
            self._tracker_ids[id(tracker)] = response.tracker_id
        if tracker in self._trackers:
            self._trackers.remove(tracker)
            self._trackers.insert(0, tracker)


class _Failover:
    """One walk down a list of trackers: the next one is asked only after a TrackerError."""

    def __init__(
        self,
        trackers: list[Any],
        attempt: Callable[[Any], defer.Deferred[_T]],
        on_success: Callable[[Any, _T], object] | None,
        what: str,
    ) -> None:
        self._pending = list(reversed(trackers))
        self._attempt = attempt
        self._on_success = on_success
        self._what = what
        self._failures: list[str] = []
        self._count = len(trackers)
        self._current: defer.Deferred[Any] | None = None
        self._cancelled = False
        self.result: defer.Deferred[Any] = defer.Deferred(self._cancel)

    def start(self) -> defer.Deferred[Any]:
        self._next()
        return self.result

    def _next(self) -> None:
        if not self._pending:
            detail = "; ".join(self._failures)
            self.result.errback(
                TrackerError(
                    f"{self._what} failed on all {self._count} trackers of the tier: {detail}"
                )
            )
            return
        tracker = self._pending.pop()
        d = defer.maybeDeferred(self._attempt, tracker)
        self._current = d
        d.addCallbacks(
            self._succeeded, self._failed, callbackArgs=(tracker,), errbackArgs=(tracker,)
        )

    def _succeeded(self, value: Any, tracker: Any) -> None:
        self._current = None
        if self.result.called:
            return  # cancelled meanwhile
        if self._on_success is not None:
            self._on_success(tracker, value)
        self.result.callback(value)

    def _failed(self, failure: Failure, tracker: Any) -> None:
        self._current = None
        if self.result.called:
            return  # cancelled meanwhile: the outcome no longer matters
        if self._cancelled or not failure.check(TrackerError):
            self.result.errback(failure)
            return
        message = str(failure.value)
        name = tracker_name(tracker)
        self._failures.append(message if message.startswith(name) else f"{name}: {message}")
        self._next()

    def _cancel(self, _: defer.Deferred[Any]) -> None:
        self._cancelled = True
        if self._current is not None:
            self._current.cancel()


def build_tiers(
    announce_list: Sequence[Sequence[str]],
    make_tracker: Callable[[str], Tracker | None],
    rng: random.Random,
) -> list[TrackerTier]:
    """The tiers of a torrent's ``announce-list``, in order.

    ``make_tracker(url)`` returns None for a URL bt cannot use (an unsupported
    scheme); such URLs are skipped, and a tier left with no tracker is dropped.
    """
    tiers: list[TrackerTier] = []
    for urls in announce_list:
        trackers = [t for t in map(make_tracker, urls) if t is not None]
        if trackers:
            tiers.append(TrackerTier(trackers, rng))
    return tiers
