"""HTTP(S) trackers: one announce is one GET over an injected treq client.

Every way an announce can go wrong (refused connection, DNS, TLS, timeout, a
non-200 status, an oversized or malformed body, a ``failure reason``) comes
out of :meth:`HTTPTracker.announce` as a :class:`TrackerError` whose message
starts with the tracker's URL. Only failures we do not know how to expect (a
bug) pass through unconverted, so they are not mistaken for a tracker outage.

URLs in messages have their query and user info removed: private trackers put
the passkey there, and error messages end up in logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web import error as web_error
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    PotentialDataLoss,
    RedirectAgent,
    RequestGenerationFailed,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
    _HTTP11ClientFactory,
)
from twisted.web.iweb import IResponse

from bt.errors import TrackerError
from bt.tracker.announce import AnnounceRequest, AnnounceResponse, announce_url
from bt.tracker.announce import parse_announce_response as _parse
from bt.tracker.scrape import ScrapeResult, parse_scrape_response, scrape_query, scrape_url
from bt.untrusted import shown

_T = TypeVar("_T")

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_BODY",
    "MAX_REDIRECTS",
    "HTTPTracker",
    "make_http_client",
    "redact",
]

#: Seconds to wait for the response headers, then again for the body.
DEFAULT_TIMEOUT = 30.0
#: Largest body we read. A compact answer with 200 peers is about 1.2 KiB and a
#: dictionary list of 200 peers about 15 KiB; 1 MiB leaves room for any honest
#: tracker and bounds what a hostile one can make us buffer.
MAX_BODY = 1024 * 1024
#: Redirects followed before giving up (tracker URLs move, but not in loops).
MAX_REDIRECTS = 5

#: What the network and Twisted's HTTP client raise when a tracker is unreachable,
#: slow or talks broken HTTP. Anything else is a bug and is not converted.
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


def make_http_client(
    reactor: object,
    *,
    connect_timeout: float = 15.0,
    max_redirects: int = MAX_REDIRECTS,
) -> tuple[HTTPClient, HTTPConnectionPool]:
    """A treq client for trackers, with its own connection pool.

    The pool keeps connections to a tracker open between announces; whoever
    owns the client must call ``pool.closeCachedConnections()`` on stop (it
    returns a Deferred), or sockets and their idle timers outlive the session.
    Redirects are followed here, boundedly, so :class:`HTTPTracker` asks treq
    not to add its own (unbounded at 20) redirect layer.
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool._factory = _QuietHTTP11ClientFactory  # type: ignore[attr-defined]
    agent = Agent(reactor, pool=pool, connectTimeout=connect_timeout)
    return HTTPClient(RedirectAgent(agent, redirectLimit=max_redirects)), pool


class _QuietHTTP11ClientFactory(_HTTP11ClientFactory):
    """No "Starting factory" / "Stopping factory" log lines for every announce."""

    noisy = False


class HTTPTracker:
    """One HTTP(S) announce URL.

    ``timeout`` bounds the wait for the response headers (treq's ``timeout=``)
    and then, separately, the wait for the whole body, so a tracker that
    trickles its answer cannot hold an announce open: the worst case is twice
    ``timeout``. ``max_body`` caps the decoded body (after gzip) in bytes.
    """

    def __init__(
        self,
        url: str,
        client: HTTPClient,
        clock: IReactorTime,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_body: int = MAX_BODY,
    ) -> None:
        try:
            parts = urlsplit(url)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            usable = False
        if not usable:
            raise TrackerError(f"{redact(url)}: not a valid http(s) tracker URL")
        if not url.isascii():
            raise TrackerError(f"{redact(url)}: non-ASCII tracker URLs are not supported")
        self.url = url
        self.display_url = redact(url)
        self._client = client
        self._clock = clock
        self._timeout = timeout
        self._max_body = max_body

    def __repr__(self) -> str:
        return f"<HTTPTracker {self.display_url}>"

    def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]:
        """Announce ``request``; fails only with :class:`TrackerError` (see the module doc).

        Cancelling the returned Deferred closes the HTTP request.
        """
        return self.get(announce_url(self.url, request), _parse, self.display_url, "")

    def scrape(self, info_hashes: Iterable[bytes]) -> defer.Deferred[dict[bytes, ScrapeResult]]:
        """BEP 48 counts for each hash the tracker knows (absent when it does not list it)."""
        url = scrape_url(self.url)
        if url is None:
            return defer.fail(TrackerError(f"{self.display_url}: no scrape URL (BEP 48)"))
        hashes = tuple(info_hashes)
        return self.get(
            scrape_query(url, hashes),
            lambda body: parse_scrape_response(body, hashes),
            redact(url),
            "scrape ",
        )

    def get(
        self, url: str, parse: Callable[[bytes], _T], display_url: str, what: str
    ) -> defer.Deferred[_T]:
        """GET ``url`` and ``parse`` its body, with the header and body timeouts and the cap.

        Every expected failure is a TrackerError starting with ``display_url``
        (``what`` prefixes timeouts: "scrape timed out ..."); bugs pass through.
        """
        started = self._clock.seconds()
        d: defer.Deferred[IResponse] = defer.maybeDeferred(
            self._client.get,
            url,
            timeout=self._timeout,
            reactor=self._clock,
            unbuffered=True,
            allow_redirects=False,
        )
        body = d.addCallback(self._read_body)
        parsed = body.addCallback(parse)
        return parsed.addErrback(self._as_tracker_error, started, display_url, what)

    def _read_body(self, response: IResponse) -> defer.Deferred[bytes]:
        if response.code != 200:
            _discard(response)
            phrase = shown(response.phrase)
            raise TrackerError(f"HTTP status {response.code} {phrase}".rstrip())
        length = response.length
        if isinstance(length, int) and length > self._max_body:  # may be UNKNOWN_LENGTH
            _discard(response)
            raise TrackerError(f"body of {length} bytes is over the {self._max_body} byte cap")
        reader = _BodyReader(self._max_body)
        response.deliverBody(reader)
        return reader.finished.addTimeout(self._timeout, self._clock)

    def _as_tracker_error(
        self, failure: Failure, started: float, display_url: str, what: str
    ) -> NoReturn:
        """Name the URL in every expected failure; let unexpected ones (bugs) through."""
        if failure.check(TrackerError):
            raise TrackerError(f"{display_url}: {failure.value}") from failure.value
        failure.trap(*_NETWORK_ERRORS)
        if _was_cancelled(failure):
            elapsed = self._clock.seconds() - started
            if elapsed >= self._timeout:
                reason = f"{what}timed out after {elapsed:.1f} s"
            else:
                reason = f"{what or 'announce '}cancelled"
        else:
            reason = f"{what}{_describe(failure)}"
        raise TrackerError(f"{display_url}: {reason}") from failure.value


class _BodyReader(Protocol):
    """Collects a response body up to ``limit`` bytes.

    Not ``treq.collect``: its Deferred has no canceller, so a body timeout could
    only stop waiting, leaving a stalled connection open. Cancelling
    :attr:`finished` here closes the connection; so does going over the cap.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.finished: defer.Deferred[bytes] = defer.Deferred(self._cancel)

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
        # PotentialDataLoss: the body ended with the connection (no length given).
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self._chunks))
        else:
            self.finished.errback(reason)

    def _cancel(self, _: defer.Deferred[bytes]) -> None:
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


class _Discard(Protocol):
    """Drops a body we will not read by closing its connection (it cannot go back to the pool)."""

    def connectionMade(self) -> None:
        self.transport.loseConnection()


def _discard(response: IResponse) -> None:
    response.deliverBody(_Discard())


def _was_cancelled(failure: Failure) -> bool:
    """True for a timeout or cancel, including treq's header timeout wrapped by the Agent."""
    if failure.check(defer.CancelledError, defer.TimeoutError):
        return True
    reasons = getattr(failure.value, "reasons", None) or []
    return any(r.check(defer.CancelledError) for r in reasons)


def _describe(failure: Failure) -> str:
    """One line for a network failure; Twisted's HTTP errors wrap their causes in ``reasons``."""
    reasons = getattr(failure.value, "reasons", None)
    if reasons:
        inner = "; ".join(f"{type(r.value).__name__}: {r.getErrorMessage()}" for r in reasons)
        return f"{type(failure.value).__name__} ({inner})"
    return f"{type(failure.value).__name__}: {failure.getErrorMessage()}"


def redact(url: str) -> str:
    """``url`` without its query, fragment and user info, which may hold a passkey.

    Plain string surgery: it must work on URLs too malformed for ``urlsplit``.
    The URL comes from a .torrent file, so it is bounded and escaped like any
    remote text (:func:`bt.untrusted.shown`).
    """
    base = url.split("#", 1)[0].split("?", 1)[0]
    scheme, separator, rest = base.partition("://")
    if not separator:
        return shown(base)
    netloc, slash, path = rest.partition("/")
    return shown(f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}")
