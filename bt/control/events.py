"""``GET /api/v1/events``: the session's events as server-sent events (text/event-stream).

Each notice of the session's hub (bt.events) is encoded once and written to
every open stream::

    id: 1733241600123
    event: state-changed
    data: {"info_hash":"...","name":"...","state":"paused","error":null}

A ``: keep-alive`` comment goes out every :data:`KEEP_ALIVE` seconds. A
client sending ``Last-Event-ID`` first gets the notices it missed from the
hub's backlog. Bounded per client: the stream is the transport's push
producer, so twisted tells it when the client reads too slowly (the
transport's buffer is full); notices then wait in the stream's own queue, the
latest progress summary replacing an older one, and a client whose queue
exceeds :data:`MAX_QUEUED` bytes, or that reads nothing for
:data:`STALL_TIMEOUT` seconds, is disconnected. At most :data:`MAX_STREAMS`
streams are open at once (each holds one of the site's connections).
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from twisted.web import server
from zope.interface import implementer

from bt.control.replies import ApiError, Reply, error_reply, finite_json
from bt.events import Kind, Notice, Replay, Subscriber
from bt.logs import Logger
from bt.untrusted import shown

__all__ = [
    "CONTENT_TYPE",
    "KEEP_ALIVE",
    "MAX_QUEUED",
    "MAX_STREAMS",
    "STALL_TIMEOUT",
    "EventSource",
    "EventStreams",
    "encode",
]

CONTENT_TYPE = "text/event-stream"
#: Seconds between ``: keep-alive`` comments (proxies and NATs drop silent connections).
KEEP_ALIVE = 15.0
#: Event streams open at once; the site serves 64 connections, the CLI needs some.
MAX_STREAMS = 16
#: Bytes of notices a client too slow to read may have waiting (the latest progress
#: summary not counted: it replaces the one before); past that it is disconnected.
MAX_QUEUED = 1024 * 1024
#: Seconds a client may leave the transport's buffer full before it is disconnected.
STALL_TIMEOUT = 60.0
_PING = b": keep-alive\n\n"
#: Sent at once, so the client has the response's headers before the first event.
_HELLO = b": connected\n\n"
_GAP = b": some events were missed: only the backlog's are replayed\n\n"

log = Logger()


class EventSource(Protocol):
    """What the stream needs of the session's events (bt.sessionevents.SessionEvents)."""

    clock: IReactorTime

    @property
    def last_id(self) -> int: ...
    def since(self, after: int) -> Replay: ...
    def subscribe(self, subscriber: Subscriber) -> None: ...
    def unsubscribe(self, subscriber: Subscriber) -> None: ...


def encode(notice: Notice) -> bytes:
    """One event of the stream: ``id``, ``event`` and one line of JSON, then a blank line.

    ASCII JSON (``\\uXXXX`` escapes): names with any code point, even an unpaired
    surrogate, give valid UTF-8, and JSON never leaves a newline unescaped.
    """
    data = finite_json(notice.data, separators=(",", ":"))
    return f"id: {notice.id}\nevent: {notice.kind}\ndata: {data}\n\n".encode("ascii")


def last_event_id(request: server.Request) -> int | None:
    """The ``Last-Event-ID`` header as an id; ApiError 400 when it is not one."""
    raw = request.getHeader(b"last-event-id")
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if not text.isdigit() or len(text) > 20:
        raise ApiError(
            400, f"Last-Event-ID: expected an event id (a decimal integer), got {shown(raw)}"
        )
    return int(text)


class EventStreams:
    """Every open event stream of one control API: opens them and fans notices out.

    Subscribed to ``source`` only while a stream is open (so the session sums
    up progress only while someone listens). ``source`` None: the session
    publishes no events, and the route answers 503.
    """

    def __init__(
        self,
        source: EventSource | None,
        *,
        max_streams: int = MAX_STREAMS,
        max_queued: int = MAX_QUEUED,
        keep_alive: float = KEEP_ALIVE,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self.source = source
        self.max_streams = max_streams
        self.max_queued = max_queued
        self.keep_alive = keep_alive
        self.stall_timeout = stall_timeout
        self.streams: list[_Stream] = []

    def open(self, request: server.Request) -> Reply | None:
        """Start streaming to ``request``; a Reply when it is refused (None: streaming)."""
        source = self.source
        if source is None:
            return error_reply(503, "this session publishes no events")
        after = last_event_id(request)
        if len(self.streams) >= self.max_streams:
            return error_reply(
                503,
                f"{self.max_streams} event streams are open already; try again later",
                [("Retry-After", "30")],
            )
        request.setResponseCode(200)
        request.setHeader(b"content-type", CONTENT_TYPE.encode("ascii"))
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-accel-buffering", b"no")  # a proxy in front: do not buffer
        if request.method == b"HEAD":
            request.finish()
            return None
        stream = _Stream(request, self, source.clock)
        if not self.streams:
            source.subscribe(self._tell)
        self.streams.append(stream)
        stream.start(source.since(after) if after is not None else None)
        return None

    def _tell(self, notice: Notice) -> None:
        data = encode(notice)
        progress = notice.kind is Kind.PROGRESS
        for stream in tuple(self.streams):
            stream.send(data, progress=progress)

    def closed(self, stream: _Stream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)
            if not self.streams and self.source is not None:
                self.source.unsubscribe(self._tell)

    def close(self) -> None:
        """End every stream (the service stops): finished if readable, else cut."""
        for stream in tuple(self.streams):
            stream.end()


@implementer(IPushProducer)
class _Stream:
    """One client's stream, and the push producer twisted pauses when the client lags."""

    def __init__(self, request: server.Request, streams: EventStreams, clock: IReactorTime):
        self.request = request
        self._streams = streams
        self._clock = clock
        self.paused = False
        #: Notices waiting while paused: (is progress, bytes).
        self.queue: list[tuple[bool, bytes]] = []
        self.queued = 0
        self._stall: IDelayedCall | None = None
        self._ping = LoopingCall(self._keep_alive)
        self._ping.clock = clock
        self._done = False

    def start(self, replay: Replay | None) -> None:
        self.request.registerProducer(self, True)
        if getattr(self.request.channel, "_waitingForTransport", False):
            self.pauseProducing()  # the socket is full already (a pipelined request's reply)
        self.request.notifyFinish().addBoth(self._gone)
        self._write(_HELLO)
        if replay is not None:
            if not replay.complete:
                self._write(_GAP)
            for notice in replay.notices:
                self.send(encode(notice), progress=False)
        self._ping.start(self._streams.keep_alive, now=False)

    # -- writing ------------------------------------------------------------------------

    def send(self, data: bytes, *, progress: bool) -> None:
        if self._done:
            return
        if not self.paused:
            self._write(data)
            return
        if progress:  # only the latest summary is worth sending late
            self.queue = [entry for entry in self.queue if not entry[0]]
        else:
            self.queued += len(data)
        self.queue.append((progress, data))
        if self.queued > self._streams.max_queued:
            self.drop(f"over {self._streams.max_queued} bytes of events waiting")

    def _write(self, data: bytes) -> None:
        self.request.write(data)

    def _keep_alive(self) -> None:
        if not self.paused and not self._done:
            self._write(_PING)

    # -- IPushProducer: twisted's flow control -------------------------------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: queue from now on, and start the stall clock."""
        self.paused = True
        if self._stall is None and not self._done:
            self._stall = self._clock.callLater(
                self._streams.stall_timeout,
                self.drop,
                f"read nothing for {self._streams.stall_timeout:g} s",
            )

    def resumeProducing(self) -> None:
        self.paused = False
        self._cancel_stall()
        while self.queue and not self.paused and not self._done:
            progress, data = self.queue.pop(0)
            if not progress:
                self.queued -= len(data)
            self._write(data)

    def stopProducing(self) -> None:
        self._finish()

    # -- ending -------------------------------------------------------------------------

    def drop(self, why: str) -> None:
        """Disconnect a client too slow to read; its queue is dropped with it."""
        if self._done:
            return
        log.info(
            "control API: event stream to {peer} dropped: {why}",
            peer=str(self.request.getClientAddress()),
            why=why,
        )
        self._finish()
        self._abort()

    def end(self) -> None:
        """End the response (the service stops); a client that does not read is cut."""
        if self._done:
            return
        stalled = self.paused
        self._finish()
        if stalled:
            self._abort()
        elif not self.request.finished and self.request.channel is not None:
            self.request.finish()

    def _abort(self) -> None:
        channel = self.request.channel
        if channel is not None and channel.transport is not None:
            channel.transport.abortConnection()

    def _gone(self, result: Failure | None) -> None:
        """The response is over: finished, or the client went away."""
        self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.queue, self.queued = [], 0
        self._cancel_stall()
        if self._ping.running:
            self._ping.stop()
        self._streams.closed(self)
        if self.request.channel is not None and self.request.producer is self:
            self.request.unregisterProducer()

    def _cancel_stall(self) -> None:
        stall, self._stall = self._stall, None
        if stall is not None and stall.active():
            stall.cancel()
