"""Downloading a .torrent that a torrent-add names by URL: bounded in size and time.

A client may name any URL, so the download is capped (:data:`MAX_SIZE`; a
declared ``Content-Length`` over it is refused before reading) and must end
within :data:`TIMEOUT` seconds, redirects included.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss

from bt.control.transmission.errors import RpcError
from bt.untrusted import shown

__all__ = ["MAX_SIZE", "TIMEOUT", "TorrentFetcher"]

MAX_SIZE = 16 * 1024 * 1024
TIMEOUT = 30.0


class _Capped(Protocol):
    def __init__(self, done: defer.Deferred[bytes], limit: int, url: str) -> None:
        self.done, self.limit, self.url = done, limit, url
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.transport.stopProducing()
            if not self.done.called:
                self.done.errback(RpcError(f"filename: {self.url} is over {self.limit} bytes"))
            return
        self.parts.append(data)

    def connectionLost(self, reason: Failure = ResponseDone) -> None:  # type: ignore[assignment]
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(RpcError(f"filename: {self.url}: the download broke off"))


class TorrentFetcher:
    """``fetch(url)`` fires with the body, or fails with an RpcError saying why."""

    def __init__(self, reactor: Any, *, max_size: int = MAX_SIZE, timeout: float = TIMEOUT):
        self.reactor, self.max_size, self.timeout = reactor, max_size, timeout

    def __call__(self, url: str) -> defer.Deferred[bytes]:
        import treq

        shown_url = shown(url, 200)
        # Not persistent: a client's URL is fetched once, no connection is kept for later.
        requested = treq.get(url, reactor=self.reactor, timeout=self.timeout, persistent=False)
        # treq's timeout covers the headers; the whole body has the same deadline.
        call = self.reactor.callLater(self.timeout, requested.cancel)

        def body(response: Any) -> defer.Deferred[bytes]:
            if response.code != 200:
                raise RpcError(f"filename: {shown_url} answered HTTP {response.code}")
            length = response.length
            if isinstance(length, int) and length > self.max_size:
                response.deliverBody(Protocol())  # discard it
                raise RpcError(f"filename: {shown_url} is over {self.max_size} bytes")
            done: defer.Deferred[bytes] = defer.Deferred()
            response.deliverBody(_Capped(done, self.max_size, shown_url))
            return done

        def failed(failure: Failure) -> Failure:
            if failure.check(RpcError):
                return failure
            reasons = getattr(failure.value, "reasons", None) or [failure]
            if any(reason.check(defer.CancelledError) for reason in reasons):
                raise RpcError(f"filename: {shown_url} took over {self.timeout:.0f} s")
            raise RpcError(f"filename: cannot fetch {shown_url}: {failure.getErrorMessage()}")

        def finished(result: Any) -> Any:
            if call.active():
                call.cancel()
            return result

        requested.addCallback(body)
        requested.addErrback(failed)
        return requested.addBoth(finished)
