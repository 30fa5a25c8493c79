"""Keeps one torrent announcing to a tracker, through failures, until it stops.

The :class:`Announcer` owns the timing rules (BEP 3 ``interval``, the common
``min interval`` extension, backoff after failures) and the event sequence
(``started`` until the tracker acknowledges it, ``completed`` once, ``stopped``
on the way out). It talks to anything with ``announce(request) -> Deferred``,
so HTTP and UDP trackers fit alike, and the per-tracker facts live in a
:class:`_TrackerState` so BEP 12 tiers can later hold one per tracker.

A tracker failure must never stop a torrent: every failure of an announce,
including ones that are not :class:`TrackerError` (a bug in a tracker client
or in the request factory), is logged and retried with backoff. That is the
one deliberately wide net here; it logs unexpected failures with their
traceback so they are not hidden.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from bt.candidates import PeerSource
from bt.errors import TrackerError
from bt.logs import Logger
from bt.peersources import IPeerSource
from bt.tracker.announce import AnnounceRequest, AnnounceResponse, Peer

__all__ = ["Announcer", "Tracker", "tracker_name"]

log = Logger()


class Tracker(Protocol):
    """What the announcer needs from a tracker client (HTTP, UDP, ...)."""

    def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]: ...


def tracker_name(tracker: object) -> str:
    """How a tracker is named in messages: its (redacted) URL, never an object's repr
    when it has one; a BEP 12 tier is named by the tracker it tries first."""
    url = getattr(tracker, "display_url", None)
    return url if isinstance(url, str) else repr(tracker)


@dataclass(slots=True)
class _TrackerState:
    """What we have learnt about one tracker."""

    tracker: Tracker
    tracker_id: bytes | None = None
    min_interval: float = 0.0
    """Seconds the tracker wants between any two of our announces."""
    last_announce: float | None = None
    """When the tracker last answered an announce successfully."""
    failures: int = 0
    """Failed announces in a row; drives the backoff."""


@implementer(IPeerSource)
class Announcer:
    """Announces one torrent to one tracker on the tracker's schedule.

    ``request_factory(event)`` is called for every announce so the counters
    (uploaded, downloaded, left) are fresh; ``on_peers(peers)`` receives the
    candidates of every successful answer that has any.

    Timing: after a success the next announce comes ``interval`` later (never
    before ``min interval``), both clamped to ``[min_announce_interval,
    max_announce_interval]`` so a tracker cannot make us spin or go silent.
    After a failure the retry comes after a backoff doubling from
    ``retry_delay`` to ``max_retry_delay``, with jitter so that many torrents
    on one failed tracker do not retry in lockstep.

    It is the torrent's first peer source (``bt.peersources``).
    """

    #: What its candidates are: a private torrent takes no others.
    tag = PeerSource.TRACKER

    def __init__(
        self,
        tracker: Tracker,
        clock: IReactorTime,
        rng: random.Random,
        request_factory: Callable[[str | None], AnnounceRequest],
        on_peers: Callable[[tuple[Peer, ...]], object],
        *,
        min_announce_interval: float = 60.0,
        max_announce_interval: float = 24 * 3600.0,
        retry_delay: float = 15.0,
        max_retry_delay: float = 30 * 60.0,
    ) -> None:
        self._state = _TrackerState(tracker)
        self._clock = clock
        self._rng = rng
        self._request_factory = request_factory
        self._on_peers = on_peers
        self._min_announce_interval = min_announce_interval
        self._max_announce_interval = max_announce_interval
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay

        self._running = False
        self._started_sent = False
        self._completed_pending = False
        self._completed_sent = False
        self._timer: IDelayedCall | None = None
        self._in_flight: defer.Deferred[Any] | None = None
        #: The ``stopped`` announce under way, so a later stop() waits for it too.
        self._stopping: defer.Deferred[None] | None = None
        #: Failed announces over the announcer's life (for status and metrics).
        self.errors = 0

    @property
    def running(self) -> bool:
        return self._running

    @property
    def tracker(self) -> Tracker:
        return self._state.tracker

    @property
    def failures(self) -> int:
        """Failed announces in a row now (0: the last one worked)."""
        return self._state.failures

    @property
    def last_announce(self) -> float | None:
        """When the tracker last answered an announce (the clock's seconds)."""
        return self._state.last_announce

    def start(self) -> None:
        """Announce ``started`` now, then keep announcing until :meth:`stop`."""
        if self._running:
            return
        self._running = True
        self._started_sent = False
        self._state.failures = 0
        self._announce()

    def completed(self) -> None:
        """The download finished: tell the tracker once, as soon as ``started`` is through."""
        if self._completed_sent or self._completed_pending:
            return
        self._completed_pending = True
        if self._running and self._idle_and_healthy():
            self._schedule(0)

    def need_peers(self) -> None:
        """Ask for peers early, but never sooner than the tracker's ``min interval``.

        Does nothing while an announce is in flight or a failed one waits for
        its retry: hurrying a failing tracker would only defeat the backoff.
        """
        if not self._running or not self._idle_and_healthy():
            return
        state = self._state
        now = self._clock.seconds()
        last = now if state.last_announce is None else state.last_announce
        delay = max(0.0, last + state.min_interval - now)
        if self._timer is not None and self._timer.getTime() <= now + delay:
            return
        self._schedule(delay)

    def stop(self, timeout: float = 5.0) -> defer.Deferred[None]:
        """Cancel timers and any announce in flight, then send ``stopped``.

        The returned Deferred fires with None within ``timeout`` seconds and
        never errbacks: a dead tracker must not hold up shutdown. ``stopped`` is
        only sent when the tracker may know about us.
        """
        if not self._running:
            return self._after_stopping()
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        known = self._started_sent or self._in_flight is not None
        if self._in_flight is not None:
            self._in_flight.cancel()  # _failed sees we are not running and stays quiet
            self._in_flight = None
        self._started_sent = False
        if not known:
            return defer.succeed(None)
        if self._completed_pending:
            # The download finished just before we leave (a seeding goal of 0, a stop
            # right after the last piece): the tracker still counts it, then we go.
            d: defer.Deferred[Any] = defer.maybeDeferred(self._send, "completed")
            d.addCallbacks(self._completed_at_stop, self._completed_at_stop_failed)
            d.addCallback(lambda _: self._send("stopped"))
        else:
            d = defer.maybeDeferred(self._send, "stopped")
        d.addTimeout(timeout, self._clock)
        d.addCallbacks(self._stopped, self._stop_failed)
        self._stopping = d
        d.addBoth(self._stop_done)
        return d

    def _after_stopping(self) -> defer.Deferred[None]:
        """A stop() after another: fires once that one's ``stopped`` announce is over.

        A seeding goal met stops the announcers; the daemon stopping a moment
        later (``--exit-when-done``) must still wait for that ``stopped``.
        """
        if self._stopping is None:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._stopping.addBoth(lambda result: (waiter.callback(None), result)[1])
        return waiter

    def _stop_done(self, result: object) -> object:
        self._stopping = None
        return result

    def _completed_at_stop(self, _: AnnounceResponse) -> None:
        self._completed_sent = True
        self._completed_pending = False

    def _completed_at_stop_failed(self, failure: Failure) -> None:
        failure.trap(TrackerError)  # anything else is a bug: stop() logs it
        log.warn(
            "announce (completed) to {tracker} failed: {reason}",
            tracker=self._state.tracker,
            reason=failure.getErrorMessage(),
        )

    def _idle_and_healthy(self) -> bool:
        return self._started_sent and self._in_flight is None and self._state.failures == 0

    def _next_event(self) -> str | None:
        if not self._started_sent:
            return "started"  # until the tracker has acknowledged it, even on retries
        if self._completed_pending:
            return "completed"
        return None

    def _schedule(self, delay: float) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self._clock.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._announce()

    def _announce(self) -> None:
        if not self._running or self._in_flight is not None:
            return
        event = self._next_event()
        d = defer.maybeDeferred(self._send, event)
        self._in_flight = d
        d.addCallbacks(self._announced, self._failed, callbackArgs=(event,), errbackArgs=(event,))
        # Errors raised by _announced itself (on_peers) are bugs elsewhere: log, carry on.
        d.addErrback(lambda f: log.failure("handling a tracker answer failed", f))

    def _send(self, event: str | None) -> defer.Deferred[AnnounceResponse]:
        request = replace(
            self._request_factory(event), event=event, tracker_id=self._state.tracker_id
        )
        if event == "stopped":
            request = replace(request, numwant=0)
        return self._state.tracker.announce(request)

    def _announced(self, response: AnnounceResponse, event: str | None) -> None:
        self._in_flight = None
        state = self._state
        state.failures = 0
        state.last_announce = self._clock.seconds()
        if response.tracker_id is not None:
            state.tracker_id = response.tracker_id
        state.min_interval = self._clamp(response.min_interval or 0)
        if response.warning is not None:
            log.warn(
                "tracker {tracker} warns: {warning}",
                tracker=tracker_name(state.tracker),
                warning=response.warning,
            )
        if response.malformed_peers:
            log.info(
                "tracker {tracker} sent {count} unusable peer entries",
                tracker=tracker_name(state.tracker),
                count=response.malformed_peers,
            )
        if event == "started":
            self._started_sent = True
        elif event == "completed":
            self._completed_sent = True
            self._completed_pending = False
        if self._running:
            if self._next_event() == "completed":
                self._schedule(0)
            else:
                self._schedule(max(self._clamp(response.interval), state.min_interval))
        if response.peers:
            self._on_peers(response.peers)

    def _failed(self, failure: Failure, event: str | None) -> None:
        self._in_flight = None
        if not self._running:
            return  # stop() cancelled this announce
        state = self._state
        state.failures += 1
        self.errors += 1
        delay = self._backoff(state.failures)
        if failure.check(TrackerError):
            log.warn(
                "announce ({event}) to {tracker} failed: {reason}; retry in {delay:.0f} s",
                event=event or "regular",
                tracker=tracker_name(state.tracker),
                reason=failure.getErrorMessage(),
                delay=delay,
            )
        else:
            log.failure(
                "announce ({event}) to {tracker} failed unexpectedly; retry in {delay:.0f} s",
                failure,
                event=event or "regular",
                tracker=tracker_name(state.tracker),
                delay=delay,
            )
        self._schedule(delay)

    def _stopped(self, _: AnnounceResponse) -> None:
        log.info("announced stopped to {tracker}", tracker=tracker_name(self._state.tracker))

    def _stop_failed(self, failure: Failure) -> None:
        if failure.check(TrackerError, defer.TimeoutError):
            log.warn(
                "announce (stopped) to {tracker} failed: {reason}",
                tracker=tracker_name(self._state.tracker),
                reason=failure.getErrorMessage() or "timed out",
            )
        else:
            log.failure(
                "announce (stopped) to {tracker} failed unexpectedly",
                failure,
                tracker=tracker_name(self._state.tracker),
            )

    def _clamp(self, seconds: float) -> float:
        return min(max(float(seconds), self._min_announce_interval), self._max_announce_interval)

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with "equal jitter": a delay in [base/2, base]."""
        base = min(self._max_retry_delay, self._retry_delay * 2.0 ** min(failures - 1, 32))
        return base / 2 + self._rng.uniform(0, base / 2)
