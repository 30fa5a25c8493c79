"""HTTP(S) scrape (BEP 48): one GET to the announce URL's scrape twin.

Behaves like :class:`bt.tracker.http.HTTPTracker`: the same header timeout and
then body timeout, the same body cap, every expected failure a
:class:`TrackerError` starting with the (redacted) scrape URL, and bugs passed
through unconverted.

The body reader and the failure conversion below duplicate private helpers of
:mod:`bt.tracker.http` (``_BodyReader``, ``_NETWORK_ERRORS``, ``_was_cancelled``,
``_describe``, ``_redact``); once http.py makes them public, use those instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn
from urllib.parse import urlsplit

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web import error as web_error
from twisted.web.client import (
    PotentialDataLoss,
    RequestGenerationFailed,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
)
from twisted.web.iweb import IResponse

from bt.errors import TrackerError
from bt.tracker.http import DEFAULT_TIMEOUT, MAX_BODY
from bt.tracker.scrape import ScrapeResult, parse_scrape_response, scrape_query, scrape_url

__all__ = ["HTTPScraper"]

#: As in bt.tracker.http: what an unreachable, slow or broken tracker raises.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    defer.CancelledError,
    defer.TimeoutError,
    net_error.ConnectError,
    net_error.ConnectingCancelledError,
    net_error.ConnectionClosed,
    net_error.DNSLookupError,
    ResponseFailed,
    RequestGenerationFailed,
    RequestTransmissionFailed,
    web_error.Error,
    web_error.SchemeNotSupported,
)


class HTTPScraper:
    """Scrapes the tracker behind one HTTP(S) announce URL.

    Raises :class:`TrackerError` up front when the announce URL has no BEP 48
    scrape URL (check with :func:`bt.tracker.scrape.scrape_url` first) or is not
    a usable http(s) URL. ``client`` is the same treq client as the announces'
    (from ``make_http_client``), so scrapes reuse its pooled connections.
    """

    def __init__(
        self,
        announce_url: str,
        client: HTTPClient,
        clock: IReactorTime,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_body: int = MAX_BODY,
    ) -> None:
        url = scrape_url(announce_url)
        if url is None:
            raise TrackerError(f"{_redact(announce_url)}: no scrape URL (BEP 48)")
        try:
            parts = urlsplit(url)
            usable = bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            usable = False
        if not usable or not url.isascii():
            raise TrackerError(f"{_redact(announce_url)}: not a valid http(s) tracker URL")
        self.url = url
        self.display_url = _redact(url)
        self._client = client
        self._clock = clock
        self._timeout = timeout
        self._max_body = max_body

    def __repr__(self) -> str:
        return f"<HTTPScraper {self.display_url}>"

    def scrape(self, info_hashes: Iterable[bytes]) -> defer.Deferred[dict[bytes, ScrapeResult]]:
        """Counts for each hash the tracker knows; fails only with TrackerError (or a bug).

        Hashes the tracker does not list are absent from the result. Cancelling
        the returned Deferred closes the HTTP request.
        """
        hashes = tuple(info_hashes)
        query = scrape_query(self.url, hashes)  # ValueError for bad hashes: a bug in the caller
        started = self._clock.seconds()
        d: defer.Deferred[IResponse] = defer.maybeDeferred(
            self._client.get,
            query,
            timeout=self._timeout,
            reactor=self._clock,
            unbuffered=True,
            allow_redirects=False,
        )
        body = d.addCallback(self._read_body)
        results = body.addCallback(parse_scrape_response, hashes)
        return results.addErrback(self._as_tracker_error, started)

    def _read_body(self, response: IResponse) -> defer.Deferred[bytes]:
        if response.code != 200:
            response.deliverBody(_Discard())
            phrase = response.phrase.decode("latin-1")
            raise TrackerError(f"HTTP status {response.code} {phrase}".rstrip())
        length = response.length
        if isinstance(length, int) and length > self._max_body:  # may be UNKNOWN_LENGTH
            response.deliverBody(_Discard())
            raise TrackerError(f"body of {length} bytes is over the {self._max_body} byte cap")
        reader = _BodyReader(self._max_body)
        response.deliverBody(reader)
        return reader.finished.addTimeout(self._timeout, self._clock)

    def _as_tracker_error(self, failure: Failure, started: float) -> NoReturn:
        """Name the scrape URL in every expected failure; let unexpected ones (bugs) through."""
        if failure.check(TrackerError):
            raise TrackerError(f"{self.display_url}: {failure.value}") from failure.value
        failure.trap(*_NETWORK_ERRORS)
        if _was_cancelled(failure):
            elapsed = self._clock.seconds() - started
            reason = f"timed out after {elapsed:.1f} s" if elapsed >= self._timeout else "cancelled"
        else:
            reason = _describe(failure)
        raise TrackerError(f"{self.display_url}: scrape {reason}") from failure.value


class _BodyReader(Protocol):
    """Collects a body up to ``limit`` bytes; cancelling ``finished`` closes the connection."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.finished: defer.Deferred[bytes] = defer.Deferred(lambda _: self._close())

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self._size += len(data)
        if self._size > self._limit:
            self._close()
            self.finished.errback(TrackerError(f"body is over the {self._limit} byte cap"))
            return
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self._chunks))
        else:
            self.finished.errback(reason)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


class _Discard(Protocol):
    """Drops a body we will not read by closing its connection."""

    def connectionMade(self) -> None:
        self.transport.loseConnection()


def _was_cancelled(failure: Failure) -> bool:
    if failure.check(defer.CancelledError, defer.TimeoutError):
        return True
    reasons = getattr(failure.value, "reasons", None) or []
    return any(r.check(defer.CancelledError) for r in reasons)


def _describe(failure: Failure) -> str:
    reasons = getattr(failure.value, "reasons", None)
    if reasons:
        inner = "; ".join(f"{type(r.value).__name__}: {r.getErrorMessage()}" for r in reasons)
        return f"{type(failure.value).__name__} ({inner})"
    return f"{type(failure.value).__name__}: {failure.getErrorMessage()}"


def _redact(url: str) -> str:
    """``url`` without query, fragment and user info (a passkey must not reach the logs)."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    scheme, separator, rest = base.partition("://")
    if not separator:
        return base
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}"
