"""BEP 15 UDP trackers: connect, then announce or scrape, over one datagram port.

:class:`UDPTracker` is the I/O half; packets are built and checked in
:mod:`bt.tracker.udpcodec`. Every way an operation can fail (no answer after
all retransmissions, an error response, a malformed answer, a name that does
not resolve) comes out as a :class:`TrackerError` whose message starts with
the tracker's URL, like :class:`bt.tracker.http.HTTPTracker`.

Timing follows BEP 15: a request unanswered for ``retry_base * 2**n`` seconds
is sent again, for n = 0..``max_retries``, then the operation gives up. The
count runs over the whole operation (connect and request together), so a
tracker that answers connects but never announces cannot keep us retrying
forever. A connection id is reused for 60 seconds; when it goes stale during
retransmissions, or the tracker rejects a reused one with an error response,
we connect again (the latter once per operation).

Datagrams that do not answer a request in flight (unknown transaction id,
another sender, too short to carry a header) are ignored: anyone can send us
a datagram, and a stray one must not fail an announce.

The port is opened for the first request and closed as soon as no operation
is in flight, so an idle tracker holds no socket and no timer. Literal IP
addresses are used as they are; host names go through ``resolve`` (by default
``reactor.resolve``, which gives IPv4 only).

Gaps: host names that resolve only to IPv6, BEP 41 URL data (the path and
query of a ``udp://`` URL are not sent), and IPv6 scope ids.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.internet.error import CannotListenError, DNSLookupError
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure

from bt.errors import TrackerError
from bt.logs import Logger
from bt.tracker.announce import AnnounceRequest, AnnounceResponse
from bt.tracker.scrape import ScrapeResult
from bt.tracker.udpcodec import (
    ACTION_ERROR,
    MAX_SCRAPE_HASHES,
    encode_announce_request,
    encode_connect_request,
    encode_scrape_request,
    parse_announce_response,
    parse_connect_response,
    parse_scrape_response,
    read_header,
)
from bt.untrusted import shown

__all__ = ["CONNECTION_LIFETIME", "UDPReactor", "UDPTracker"]

_T = TypeVar("_T")
log = Logger()

#: Seconds a connection id may be used after the tracker handed it out (BEP 15: one minute).
CONNECTION_LIFETIME = 60.0

Address = tuple[str, int]


class UDPReactor(Protocol):
    """What :class:`UDPTracker` needs of a reactor (``IReactorUDP`` and ``IReactorTime``)."""

    def listenUDP(
        self, port: int, protocol: DatagramProtocol, interface: str = ..., maxPacketSize: int = ...
    ) -> Any: ...

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: object, **kw: object
    ) -> IDelayedCall: ...

    def seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class _Connection:
    """A connection id, the address it was obtained from, and when."""

    address: Address
    connection_id: int
    obtained: float


@dataclass(slots=True)
class _Pending:
    """One datagram awaiting its answer."""

    deferred: defer.Deferred[bytes | None]
    address: Address
    timer: IDelayedCall


@dataclass(slots=True)
class _Progress:
    """Unanswered sends so far in one operation; drives the retransmission timeout."""

    started: float
    timeouts: int = 0


class _Listener(DatagramProtocol):
    """Hands every datagram to the tracker, which decides whether it answers anything."""

    noisy = False

    def __init__(self, deliver: Callable[[bytes, Any], None]) -> None:
        self._deliver = deliver

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self._deliver(datagram, addr)


class UDPTracker:
    """One ``udp://host:port`` announce URL (BEP 15).

    ``reactor`` provides ``listenUDP``, ``callLater`` and ``seconds``;
    ``rng`` makes transaction ids. ``resolve(name) -> Deferred[str]`` turns a
    host name into an IP literal (default ``reactor.resolve``); ``interface``
    is the local address to bind (default: the wildcard of the tracker's
    address family). Cancelling a returned Deferred stops that operation.
    """

    def __init__(
        self,
        url: str,
        reactor: UDPReactor,
        *,
        rng: random.Random,
        retry_base: float = 15.0,
        max_retries: int = 8,
        resolve: Callable[[str], defer.Deferred[str]] | None = None,
        interface: str | None = None,
    ) -> None:
        self.url = url
        self._host, self._port_number, self.display_url = _parse_url(url)
        try:
            self._literal: str | None = str(ipaddress.ip_address(self._host))
        except ValueError:
            self._literal = None
        if retry_base <= 0 or max_retries < 0:
            raise ValueError("retry_base must be positive and max_retries not negative")
        self._reactor = reactor
        self._rng = rng
        self._retry_base = retry_base
        self._max_retries = max_retries
        self._resolve = resolve
        self._interface = interface
        self._connection: _Connection | None = None
        self._pending: dict[int, _Pending] = {}
        self._ports: dict[bool, Any] = {}
        self._stopping: set[defer.Deferred[None]] = set()
        self._operations: set[defer.Deferred[Any]] = set()
        self._busy = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<UDPTracker {self.display_url}>"

    def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]:
        """Announce ``request``; fails only with :class:`TrackerError` (see the module doc)."""
        return self._start(
            "announce",
            self._run(
                "announce",
                lambda cid, tid: encode_announce_request(cid, tid, request),
                lambda data, tid, ipv6: parse_announce_response(data, tid, ipv6=ipv6),
            ),
        )

    def scrape(self, info_hashes: Collection[bytes]) -> defer.Deferred[dict[bytes, ScrapeResult]]:
        """Counts for each hash, from one request per :data:`MAX_SCRAPE_HASHES` hashes.

        A hash the tracker's answer leaves out (a truncated answer) is absent
        from the result. An empty collection or a hash that is not 20 bytes is
        a bug in the caller: ``ValueError``, raised at once.
        """
        hashes = tuple(dict.fromkeys(info_hashes))
        if not hashes:
            raise ValueError("a scrape needs at least one info hash")
        if any(len(h) != 20 for h in hashes):
            raise ValueError("info_hash must be 20 bytes")
        chunks = [
            hashes[i : i + MAX_SCRAPE_HASHES] for i in range(0, len(hashes), MAX_SCRAPE_HASHES)
        ]
        return self._start("scrape", self._scrape(chunks))

    def close(self) -> defer.Deferred[None] | None:
        """Fail the operations in flight, stop listening; fires once the ports are closed.

        Later operations fail with a TrackerError. Returns None when no port
        is still closing.
        """
        self._closed = True
        for operation in list(self._operations):
            operation.cancel()
        self._release_ports()
        stopping = list(self._stopping)
        if not stopping:
            return None
        return defer.gatherResults(stopping).addCallback(lambda _: None)

    # Operations

    def _start(self, what: str, work: Coroutine[Any, Any, _T]) -> defer.Deferred[_T]:
        """Run ``work`` as a tracked operation whose failures name the URL."""
        if self._closed:
            work.close()
            return defer.fail(TrackerError(f"{self.display_url}: {what} after close()"))
        d = defer.Deferred.fromCoroutine(self._tracked(work))
        if not d.called:
            self._operations.add(d)
            d.addBoth(self._untrack, d)
        return d.addErrback(self._as_tracker_error, what)

    def _untrack(self, result: object, d: defer.Deferred[Any]) -> object:
        self._operations.discard(d)
        return result

    async def _tracked(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Keeps the port open exactly while some operation is in flight."""
        self._busy += 1
        try:
            return await work
        finally:
            self._busy -= 1
            if not self._busy:
                self._release_ports()

    async def _scrape(self, chunks: list[tuple[bytes, ...]]) -> dict[bytes, ScrapeResult]:
        results: dict[bytes, ScrapeResult] = {}
        for chunk in chunks:
            results.update(
                await self._run(
                    "scrape",
                    lambda cid, tid, c=chunk: encode_scrape_request(cid, tid, c),
                    lambda data, tid, _ipv6, c=chunk: parse_scrape_response(data, tid, c),
                )
            )
        return results

    async def _run(
        self,
        what: str,
        encode: Callable[[int, int], bytes],
        parse: Callable[[bytes, int, bool], _T],
    ) -> _T:
        """One request (connecting first when needed) until answered or given up."""
        progress = _Progress(started=self._reactor.seconds())
        may_reconnect = True
        while True:
            connection = self._current_connection()
            reused = connection is not None
            if connection is None:
                connection = await self._connect(progress)
            tid = self._new_transaction_id()
            expires = connection.obtained + CONNECTION_LIFETIME
            packet = encode(connection.connection_id, tid)
            reply = await self._ask(what, connection.address, tid, packet, progress, expires)
            if reply is None:
                continue  # the connection id went stale while we retransmitted
            action, _ = read_header(reply)
            if action == ACTION_ERROR and reused and may_reconnect:
                # Most likely the tracker no longer accepts our cached connection id.
                may_reconnect = False
                if self._connection is connection:
                    self._connection = None
                continue
            return parse(reply, tid, _is_ipv6(connection.address[0]))

    def _current_connection(self) -> _Connection | None:
        connection = self._connection
        if connection is None:
            return None
        if self._reactor.seconds() - connection.obtained >= CONNECTION_LIFETIME:
            self._connection = None
            return None
        return connection

    async def _connect(self, progress: _Progress) -> _Connection:
        address = await self._address()
        tid = self._new_transaction_id()
        reply = await self._ask(
            "connect", address, tid, encode_connect_request(tid), progress, None
        )
        assert reply is not None  # only a request with an expiry returns None
        connection_id = parse_connect_response(reply, tid)
        connection = _Connection(address, connection_id, self._reactor.seconds())
        self._connection = connection
        return connection

    async def _address(self) -> Address:
        if self._literal is not None:
            return self._literal, self._port_number
        try:
            # Looked up only now: a reactor without resolve() is fine for IP literals.
            resolve = self._resolve or self._reactor.resolve  # type: ignore[attr-defined]
            resolved = await resolve(self._host)
        except (DNSLookupError, defer.TimeoutError) as exc:
            raise TrackerError(f"cannot resolve {self._host}: {exc}") from exc
        try:
            return str(ipaddress.ip_address(resolved)), self._port_number
        except ValueError:
            raise TrackerError(f"{self._host} resolved to {resolved!r}, not an IP") from None

    async def _ask(
        self,
        what: str,
        address: Address,
        tid: int,
        packet: bytes,
        progress: _Progress,
        expires: float | None,
    ) -> bytes | None:
        """Send ``packet`` until answered; None when ``expires`` passed first.

        The same transaction id is kept across retransmissions, so a late
        answer to an earlier copy still counts.
        """
        while True:
            timeout = self._retry_base * 2**progress.timeouts
            reply = await self._exchange(address, tid, packet, timeout)
            if reply is not None:
                return reply
            progress.timeouts += 1
            if progress.timeouts > self._max_retries:
                elapsed = self._reactor.seconds() - progress.started
                raise TrackerError(
                    f"{what}: no answer after {progress.timeouts} tries over {elapsed:.0f} s"
                )
            if expires is not None and self._reactor.seconds() >= expires:
                return None

    # Datagrams

    def _exchange(
        self, address: Address, tid: int, packet: bytes, timeout: float
    ) -> defer.Deferred[bytes | None]:
        """Send one datagram; fires with the answer, or None after ``timeout`` seconds."""
        port = self._listening(_is_ipv6(address[0]))
        try:
            port.write(packet, address)
        except OSError as exc:  # no route, or the family is unusable on this host
            raise TrackerError(f"cannot send to {address[0]}: {exc}") from exc
        d: defer.Deferred[bytes | None] = defer.Deferred(lambda _: self._forget(tid))
        timer = self._reactor.callLater(timeout, self._timed_out, tid)
        self._pending[tid] = _Pending(d, address, timer)
        return d

    def _received(self, data: bytes, addr: Any) -> None:
        if len(data) < 8:
            log.debug("{url}: ignored a {n}-byte datagram", url=self.display_url, n=len(data))
            return
        _, tid = read_header(data)
        pending = self._pending.get(tid)
        if pending is None or not _same_address(addr, pending.address):
            log.debug("{url}: ignored a datagram from {addr}", url=self.display_url, addr=addr)
            return
        del self._pending[tid]
        pending.timer.cancel()
        pending.deferred.callback(data)

    def _timed_out(self, tid: int) -> None:
        pending = self._pending.pop(tid, None)
        if pending is not None:
            pending.deferred.callback(None)

    def _forget(self, tid: int) -> None:
        """Cancelling an exchange: stop its timer and stop waiting for its answer."""
        pending = self._pending.pop(tid, None)
        if pending is not None and pending.timer.active():
            pending.timer.cancel()

    def _new_transaction_id(self) -> int:
        while True:
            tid = self._rng.getrandbits(32)
            if tid not in self._pending:
                return tid

    def _listening(self, ipv6: bool) -> Any:
        port = self._ports.get(ipv6)
        if port is None:
            interface = self._interface or ("::" if ipv6 else "0.0.0.0")
            try:
                port = self._reactor.listenUDP(0, _Listener(self._received), interface=interface)
            except CannotListenError as exc:
                raise TrackerError(f"cannot open a UDP port: {exc}") from exc
            self._ports[ipv6] = port
        return port

    def _release_ports(self) -> None:
        ports, self._ports = list(self._ports.values()), {}
        for port in ports:
            stopped = port.stopListening()
            if isinstance(stopped, defer.Deferred):
                self._stopping.add(stopped)
                stopped.addBoth(self._stopped, stopped)

    def _stopped(self, result: object, d: defer.Deferred[None]) -> object:
        self._stopping.discard(d)
        return result

    def _as_tracker_error(self, failure: Failure, what: str) -> Failure:
        """Name the URL in every expected failure; let unexpected ones (bugs) through."""
        if failure.check(TrackerError):
            raise TrackerError(f"{self.display_url}: {failure.value}") from failure.value
        if failure.check(defer.CancelledError):
            reason = " (tracker closed)" if self._closed else ""
            raise TrackerError(f"{self.display_url}: {what} cancelled{reason}") from failure.value
        return failure


def _parse_url(url: str) -> tuple[str, int, str]:
    """Host, port and display form of ``url``.

    The display form is ``udp://host:port``: no user info, path or query, which
    may hold a passkey (BEP 41), since error messages end up in logs.
    """
    base = url.split("#", 1)[0].split("?", 1)[0]
    scheme, separator, rest = base.partition("://")
    display = shown(
        f"{scheme}://{rest.partition('/')[0].rpartition('@')[2]}" if separator else base
    )
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not url.isascii() or scheme.lower() != "udp" or not host or not port:
        raise TrackerError(f"{display}: not a valid udp://host:port tracker URL")
    return host, port, display


def _is_ipv6(host: str) -> bool:
    return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)


def _same_address(addr: Any, expected: Address) -> bool:
    """Whether a datagram's sender is the tracker (IPv6 spellings compared as addresses)."""
    try:
        host, port = addr[0], addr[1]
        return ipaddress.ip_address(host) == ipaddress.ip_address(expected[0]) and (
            port == expected[1]
        )
    except (IndexError, TypeError, ValueError):
        return False
