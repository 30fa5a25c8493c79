"""The control API's HTTP server: a twisted.web Site bounded against hostile clients.

twisted.web alone keeps a connection as long as it sends a byte now and then
(its idle timer restarts on every byte, so a slowloris never trips it), reads
a body of any declared length, and keeps a connection open after a 401. Here:

- at most :data:`MAX_CONNECTIONS` connections at once; the next one is closed
  as soon as it is accepted (:class:`ControlConnections`);
- each request, headers and body, must arrive whole within
  :data:`REQUEST_TIMEOUT` seconds of the connection being ready for it (when
  it opens, or when the previous reply was written); bytes trickling in do not
  extend that, and an idle keep-alive connection is closed the same way
  (:class:`ControlChannel`);
- a declared body over the cap is answered 413 at once, without reading it;
  a chunked body is stored only up to the cap (:class:`CappedRequest`) and the
  API answers 413 once it has arrived;
- a reply carrying ``Connection: close`` (every 401 and 413) closes the
  connection once written.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource

from bt.control.api import MAX_BODY
from bt.control.replies import error_reply
from bt.logs import Logger
from bt.untrusted import shown

__all__ = [
    "MAX_CONNECTIONS",
    "REQUEST_TIMEOUT",
    "CappedRequest",
    "ControlChannel",
    "ControlConnections",
    "ControlSite",
]

#: Connections served at once; the CLI needs one, a dashboard a few.
MAX_CONNECTIONS = 64
#: Seconds a connection has to deliver each whole request (headers and body).
REQUEST_TIMEOUT = 30.0

log = Logger()


class CappedRequest(server.Request):
    """A request that stops storing its body past the cap; the API then answers 413.

    twisted.web reads the whole body before a resource sees it; without a cap
    a client could fill the disk with one upload. ``max_body`` defaults to the
    site's cap.
    """

    max_body: int | None = None
    body_too_large = False
    _received = 0

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._cap():
            self.body_too_large = True
            return
        super().handleContentChunk(data)

    def _cap(self) -> int:
        if self.max_body is not None:
            return self.max_body
        site = getattr(self.channel, "site", None)
        return getattr(site, "max_body", MAX_BODY)


class ControlChannel(http.HTTPChannel):
    """HTTP/1.1 with a deadline per request instead of an idle timer, and early 413s.

    ``timeOut`` (set by the site) is armed when the connection is ready for a
    request and disarmed by twisted.web once the request has fully arrived;
    unlike twisted.web's own channel, receiving bytes does not restart it.
    """

    site: ControlSite
    _refused = False

    def resetTimeout(self) -> None:
        """Bytes trickling in do not buy more time: the whole request must arrive in time."""

    def timeoutConnection(self) -> None:
        """Close at once, quietly: a client that sends nothing may read nothing either."""
        log.debug(
            "control API: closing {peer}: no whole request within {seconds:.0f} s",
            peer=str(self.transport.getPeer()),
            seconds=self.timeOut or 0,
        )
        self.transport.abortConnection()

    def allHeadersReceived(self) -> None:
        """Refuse a declared body over the cap before reading it (no ``100 Continue``)."""
        declared = self.length
        cap = self.site.max_body
        if declared is not None and declared > cap:
            self._refused = True
            reply = error_reply(
                413, f"request body of {declared} bytes is over the {cap} byte limit"
            )
            head = (
                b"HTTP/1.1 413 Request Entity Too Large\r\n"
                b"Content-Type: application/json\r\n"
                b"Cache-Control: no-store\r\n"
                b"Connection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(reply.body)
            )
            self.transport.write(head + reply.body)
            self.loseConnection()
            return
        super().allHeadersReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused:
            return  # the body of a refused request, arriving while we close
        super().rawDataReceived(data)

    def writeHeaders(
        self, version: bytes, code: bytes, reason: bytes, headers: Headers | list[Any]
    ) -> None:
        """A reply saying ``Connection: close`` closes the connection once it is written.

        twisted.web decides persistence from the request alone; the API says
        close after refusing a client (401, 413) so it cannot hold the slot.
        """
        if isinstance(headers, Headers):
            values = headers.getRawHeaders(b"connection") or []
        else:
            values = [v for k, v in headers if k.lower() == b"connection"]
        if any(b"close" in value.lower() for value in values):
            self.persistent = False
        super().writeHeaders(version, code, reason, headers)


class ControlSite(server.Site):
    """The API's Site: bounded channels and bodies, and requests kept out of the log."""

    noisy = False
    protocol = ControlChannel
    requestFactory = CappedRequest

    def __init__(
        self,
        resource: IResource,
        *,
        timeout: float = REQUEST_TIMEOUT,
        max_body: int = MAX_BODY,
        reactor: IReactorTime | None = None,
    ) -> None:
        super().__init__(resource, timeout=timeout, reactor=reactor)
        self.max_body = max_body

    def log(self, request: server.Request) -> None:
        """Access lines at debug level only: a polling CLI would flood the daemon log."""
        log.debug(
            "control API: {method} {uri} -> {code}",
            method=shown(request.method),
            uri=shown(request.uri),
            code=request.code,
        )


class _TrackedConnection(ProtocolWrapper):
    def connectionLost(self, reason: Failure) -> None:
        """Let HTTP finish its own cleanup (timers) before the factory counts us gone."""
        wrapped = self.wrappedProtocol
        try:
            wrapped.connectionLost(reason)
        finally:
            self.wrappedProtocol = None
            self.factory.unregisterProtocol(self)


class ControlConnections(WrappingFactory):
    """Caps and tracks open connections, so stopping the service can close them and wait.

    Past ``limit`` a new connection is closed as soon as it is accepted
    (``buildProtocol`` returns None), as twisted.protocols.policies'
    LimitTotalConnectionsFactory does; one warning per burst says so.
    """

    noisy = False
    protocol = _TrackedConnection

    def __init__(self, site: server.Site, limit: int = MAX_CONNECTIONS) -> None:
        super().__init__(site)
        self.limit = limit
        self._full_warned = False
        self._idle: list[defer.Deferred[None]] = []

    def buildProtocol(self, addr: IAddress) -> ProtocolWrapper | None:
        if len(self.protocols) >= self.limit:
            if not self._full_warned:
                self._full_warned = True
                log.warn(
                    "control API: {limit} connections open; closing new ones until some end",
                    limit=self.limit,
                )
            return None
        wrapper: ProtocolWrapper | None = super().buildProtocol(addr)
        return wrapper

    def unregisterProtocol(self, p: ProtocolWrapper) -> None:
        super().unregisterProtocol(p)
        if len(self.protocols) < self.limit // 2:
            self._full_warned = False
        if not self.protocols:
            idle, self._idle = self._idle, []
            for waiting in idle:
                waiting.callback(None)

    def close_all(self) -> defer.Deferred[None]:
        """Close every connection; fires once all are gone."""
        if not self.protocols:
            return defer.succeed(None)
        waiting: defer.Deferred[None] = defer.Deferred()
        self._idle.append(waiting)
        for wrapper in list(self.protocols):
            wrapper.transport.loseConnection()
        return waiting
