"""The control API's HTTP server against hostile clients: connection cap, deadlines, bodies.

Unit tests drive ControlSite's channels over ``StringTransport`` with a
``task.Clock``; the last tests use real loopback sockets (a short configured
deadline) to show the same holds on a real listener.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs

from bt.control.api import ControlResource
from bt.control.auth import BearerAuth
from bt.control.site import REQUEST_TIMEOUT, ControlConnections, ControlSite
from bt.logs import set_log_level
from control import TOKEN, FakeSession, Recorder, make_status

CAP = 1024
GET_SESSION = f"GET /api/v1/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)


class Server:
    """A ControlSite behind ControlConnections, over in-memory transports and a clock."""

    def __init__(
        self, limit: int = 4, session: FakeSession | None = None, max_body: int = CAP
    ) -> None:
        self.clock = task.Clock()
        self.session = session or FakeSession()
        resource = ControlResource(
            self.session, max_body=max_body, run_blocking=defer.maybeDeferred
        )
        self.site = ControlSite(BearerAuth(resource, TOKEN), max_body=max_body, reactor=self.clock)
        self.connections = ControlConnections(self.site, limit=limit)

    def connect(self) -> Client:
        wrapper = self.connections.buildProtocol(ADDRESS)
        assert wrapper is not None, "connection refused"
        transport = StringTransport(peerAddress=ADDRESS)
        wrapper.makeConnection(transport)
        return Client(wrapper, transport)


class Client:
    def __init__(self, wrapper: Any, transport: StringTransport) -> None:
        self.wrapper = wrapper
        self.transport = transport

    def send(self, data: str | bytes) -> None:
        self.wrapper.dataReceived(data.encode() if isinstance(data, str) else data)

    def replies(self) -> list[tuple[int, dict[str, str], bytes]]:
        """Every reply written so far: status, headers (lower-case names), body."""
        data = self.transport.value()
        out = []
        while data:
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(
                (name.lower(), value.strip())
                for name, _, value in (line.partition(":") for line in lines[1:])
            )
            length = int(headers.get("content-length", "0"))
            out.append((int(lines[0].split()[1]), headers, rest[:length]))
            data = rest[length:]
        return out

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)

    def lose(self) -> None:
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        self.wrapper.connectionLost(Failure(ConnectionDone()))


@pytest.fixture
def server() -> Any:
    made = Server()
    yield made
    for call in made.clock.getDelayedCalls():
        call.cancel()


def error_message(reply: tuple[int, dict[str, str], bytes]) -> str:
    message: str = json.loads(reply[2])["error"]["message"]
    return message


# -- connections -------------------------------------------------------------------


def test_connections_past_the_cap_are_closed_at_once(server: Server) -> None:
    clients = [server.connect() for _ in range(4)]
    with capturedLogs() as events:
        assert server.connections.buildProtocol(ADDRESS) is None
        assert server.connections.buildProtocol(ADDRESS) is None
    warnings = [e for e in events if e["log_level"] == LogLevel.warn]
    assert len(warnings) == 1, "one warning per burst, not one per connection"
    clients[0].lose()
    again = server.connect()
    again.send(GET_SESSION)
    assert [status for status, _, _ in again.replies()] == [200]


# -- deadlines ---------------------------------------------------------------------


def test_an_idle_connection_is_closed_after_the_deadline(server: Server) -> None:
    client = server.connect()
    server.clock.advance(REQUEST_TIMEOUT - 1)
    assert not client.closed
    server.clock.advance(1)
    assert client.closed and client.transport.disconnected  # aborted
    assert client.replies() == []


def test_a_slow_header_sender_is_closed_although_bytes_keep_coming(server: Server) -> None:
    """Slowloris: a byte every few seconds restarts twisted.web's idle timer, not ours."""
    client = server.connect()
    header = b"GET /api/v1/session HTTP/1.1\r\nX-Padding: " + b"a" * 100
    for byte in header:
        client.send(bytes([byte]))
        server.clock.advance(2)
        if client.closed:
            break
    assert client.closed
    assert server.clock.seconds() <= REQUEST_TIMEOUT


def test_a_slow_body_sender_is_closed_at_the_deadline(server: Server) -> None:
    client = server.connect()
    client.send(
        f"PATCH /api/v1/session HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"
    )
    for _ in range(int(REQUEST_TIMEOUT) - 1):
        client.send(b" ")
        server.clock.advance(1)
    assert not client.closed
    server.clock.advance(1)
    assert client.closed


def test_keep_alive_works_and_each_request_gets_its_own_deadline(server: Server) -> None:
    client = server.connect()
    client.send(GET_SESSION)
    server.clock.advance(REQUEST_TIMEOUT - 1)
    client.send(GET_SESSION)
    server.clock.advance(REQUEST_TIMEOUT - 1)
    assert not client.closed
    assert [status for status, _, _ in client.replies()] == [200, 200]
    server.clock.advance(1)
    assert client.closed


def test_a_slow_answer_is_not_cut_by_the_deadline() -> None:
    """The deadline covers receiving the request, not the session's work on it."""
    session = FakeSession()
    session.hold = True
    server = Server(session=session)
    session.torrents[b"a" * 20] = make_status("61" * 20)
    client = server.connect()
    client.send(
        f"POST /api/v1/torrents/{'61' * 20}/pause HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    server.clock.advance(REQUEST_TIMEOUT * 3)
    assert not client.closed
    session.held[0].callback(None)
    assert [status for status, _, _ in client.replies()] == [200]
    assert not client.closed


# -- refusals close ----------------------------------------------------------------


def test_the_connection_is_closed_after_a_401(server: Server) -> None:
    client = server.connect()
    client.send("GET /api/v1/session HTTP/1.1\r\nHost: x\r\n\r\n" + GET_SESSION)
    ((status, headers, _),) = client.replies()
    assert status == 401
    assert headers["connection"] == "close"
    assert client.closed, "a pipelined request after the 401 is not served"


def test_a_wrong_token_is_closed_too(server: Server) -> None:
    client = server.connect()
    client.send("GET /metrics HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n")
    assert [status for status, _, _ in client.replies()] == [401]
    assert client.closed


def test_a_declared_body_over_the_cap_is_refused_unread(server: Server) -> None:
    client = server.connect()
    client.send(
        f"POST /api/v1/torrents HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Expect: 100-continue\r\nContent-Length: {CAP + 1}\r\n\r\n"
    )
    ((status, headers, _),) = client.replies()  # and no "100 Continue" before it
    assert status == 413
    assert headers["connection"] == "close"
    assert client.closed
    client.send(b"x" * (CAP + 1))
    assert len(client.replies()) == 1
    assert server.session.calls == []


def test_a_chunked_body_over_the_cap_answers_413_and_closes(server: Server) -> None:
    client = server.connect()
    chunk = b"x" * 512
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    client.send(
        f"POST /api/v1/torrents HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/x-bittorrent\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + body
    )
    ((status, headers, _), *_) = replies = client.replies()
    assert len(replies) == 1
    assert status == 413 and "over the limit" in error_message(replies[0])
    assert headers["connection"] == "close"
    assert client.closed


def test_a_body_within_the_cap_is_served(server: Server) -> None:
    client = server.connect()
    body = json.dumps({"upload_limit": "1M"}).encode()
    client.send(
        f"PATCH /api/v1/session HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert [status for status, _, _ in client.replies()] == [200]
    assert not client.closed


# -- on real sockets ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_on_a_real_listener_the_cap_the_deadline_and_401s_close_connections() -> None:
    from twisted.internet import reactor

    resource = ControlResource(FakeSession(), run_blocking=defer.maybeDeferred)
    site = ControlSite(BearerAuth(resource, TOKEN), timeout=0.5)
    port = reactor.listenTCP(0, ControlConnections(site, limit=3), interface="127.0.0.1")
    creator = protocol.ClientCreator(reactor, Recorder)
    clients: list[Recorder] = []
    try:
        number = port.getHost().port
        for _ in range(4):
            clients.append(await creator.connectTCP("127.0.0.1", number))
        idle, slow, unauthenticated, extra = clients
        # The fourth connection is closed at once, with nothing said.
        await extra.lost.addTimeout(2, reactor)
        assert extra.data == b""
        # Without the token: 401, then closed by the server.
        unauthenticated.transport.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await unauthenticated.lost.addTimeout(2, reactor)
        assert unauthenticated.data.startswith(b"HTTP/1.1 401 ")
        # A header byte every 0.1 s does not keep a connection past its deadline.
        started = reactor.seconds()
        trickle = task.LoopingCall(slow.transport.write, b"a")
        trickle.start(0.1)
        try:
            await slow.lost.addTimeout(3, reactor)
        finally:
            trickle.stop()
        assert reactor.seconds() - started < 1.5
        # The idle one went at the same deadline.
        await idle.lost.addTimeout(2, reactor)
        assert idle.data == b""
    finally:
        for client in clients:
            client.transport.abortConnection()
        await defer.DeferredList([c.lost for c in clients])
        await port.stopListening()
        if site._logDateTimeCall is not None and site._logDateTimeCall.active():
            site._logDateTimeCall.cancel()


def test_access_lines_bound_what_the_client_sent(server: Server) -> None:
    client = server.connect()
    set_log_level("debug")
    try:
        with capturedLogs() as events:
            client.send(
                b"GET /api/v1/session?" + b"\x9b" * 5000 + b" HTTP/1.1\r\n"
                b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
            )
    finally:
        set_log_level("info")
    (line,) = [e for e in events if "uri" in e]
    assert line["code"] == 200
    assert line["uri"].startswith("/api/v1/session?\\x9b\\x9b") and len(line["uri"]) < 250
