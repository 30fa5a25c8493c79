"""GET /api/v1/events: the stream's format, order, replay, bounds and cleanup.

Driven through the daemon's own site and auth over ``StringTransport`` with a
``task.Clock``; the transport's flow control is played by hand (the channel's
``pauseProducing``/``resumeProducing``, as a full socket buffer would call them).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from bt.control.api import ControlResource
from bt.control.auth import BearerAuth
from bt.control.events import KEEP_ALIVE, MAX_STREAMS, STALL_TIMEOUT, encode
from bt.control.site import REQUEST_TIMEOUT, ControlSite
from bt.events import EventHub, Kind, Notice
from bt.sessionevents import SessionEvents
from control import TOKEN, FakeSession

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40001)
HASH = "ab" * 20
ABOUT = {"info_hash": HASH, "name": "ubuntu.iso", "state": "paused", "error": None}


def host(clock: task.Clock) -> Any:
    """What the session's events read of a session: here, one without torrents."""
    return SimpleNamespace(
        reactor=clock, torrents={}, magnets=SimpleNamespace(fetches={}), torrent_statuses=list
    )


class Daemon:
    """The control API as the daemon serves it, on in-memory connections."""

    def __init__(self, *, events: bool = True) -> None:
        self.clock = task.Clock()
        self.events = SessionEvents(host(self.clock))
        session = FakeSession()
        if events:
            session.events = self.events  # type: ignore[attr-defined]
        self.api = ControlResource(session, run_blocking=defer.maybeDeferred)
        self.site = ControlSite(BearerAuth(self.api, TOKEN), reactor=self.clock)

    def connect(self, *headers: str, method: str = "GET", token: str | None = TOKEN) -> Stream:
        channel = self.site.buildProtocol(ADDRESS)
        transport = StringTransport(peerAddress=ADDRESS)
        channel.makeConnection(transport)
        lines = [f"{method} /api/v1/events HTTP/1.1", "Host: localhost", *headers]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
        return Stream(channel, transport)

    @property
    def hub(self) -> EventHub:
        return self.events.hub

    def publish(self, kind: Kind = Kind.STATE_CHANGED, data: Any = None) -> Notice:
        return self.hub.publish(kind, ABOUT if data is None else data)


class Stream:
    def __init__(self, channel: Any, transport: StringTransport) -> None:
        self.channel = channel
        self.transport = transport

    def response(self) -> tuple[int, dict[str, str], bytes]:
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        pairs = (line.split(": ", 1) for line in header_lines)
        headers = {name.lower(): value for name, value in pairs}
        if headers.get("transfer-encoding") == "chunked":
            body = dechunk(body)
        return int(status_line.split()[1]), headers, body

    def events(self) -> list[dict[str, str]]:
        """The stream's events and comments (``{":": text}``), in order."""
        _, _, body = self.response()
        found = []
        for block in body.decode("ascii").split("\n\n"):
            if not block:
                continue
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    fields[":"] = line[1:].strip()
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
            found.append(fields)
        return found

    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events() if "event" in e]

    def ids(self) -> list[int]:
        return [int(e["id"]) for e in self.events() if "id" in e]

    def lose(self) -> None:
        self.channel.connectionLost(Failure(ConnectionDone()))

    @property
    def cut(self) -> bool:
        return bool(self.transport.disconnected)


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


@pytest.fixture
def daemon() -> Daemon:
    return Daemon()


# -- format and order --------------------------------------------------------------


def test_a_stream_is_text_event_stream_and_each_event_is_id_event_and_one_line_of_json(
    daemon: Daemon,
) -> None:
    stream = daemon.connect()
    status, headers, body = stream.response()
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert body == b": connected\n\n", "headers and a comment go out at once"
    notice = daemon.publish(data={**ABOUT, "name": "caf\u00e9\nnext line \udcff"})
    _, _, body = stream.response()
    data = json.dumps({**ABOUT, "name": "caf\u00e9\nnext line \udcff"}, separators=(",", ":"))
    assert body.endswith(f"id: {notice.id}\nevent: state-changed\ndata: {data}\n\n".encode())
    [event] = [e for e in stream.events() if "event" in e]
    assert json.loads(event["data"])["name"] == "caf\u00e9\nnext line \udcff"


def test_every_kind_arrives_at_once_in_the_order_published(daemon: Daemon) -> None:
    stream = daemon.connect()
    sent = [
        daemon.publish(kind, {"torrents": []} if kind is Kind.PROGRESS else ABOUT) for kind in Kind
    ]
    assert stream.kinds() == [
        "torrent-added",
        "metadata-received",
        "state-changed",
        "finished",
        "removed",
        "progress",
    ]
    assert stream.ids() == [n.id for n in sent] == sorted(stream.ids())
    progress = [e for e in stream.events() if e.get("event") == "progress"]
    assert json.loads(progress[0]["data"]) == {"torrents": []}


def test_non_finite_numbers_are_null_as_in_the_api(daemon: Daemon) -> None:
    notice = Notice(7, Kind.PROGRESS, {"torrents": [{"eta": float("inf")}]})
    assert b'data: {"torrents":[{"eta":null}]}\n' in encode(notice)


def test_keep_alive_comments_and_the_request_deadline_does_not_cut_a_stream(
    daemon: Daemon,
) -> None:
    stream = daemon.connect()
    daemon.clock.advance(KEEP_ALIVE)
    assert stream.events()[-1] == {":": "keep-alive"}
    intervals = int(REQUEST_TIMEOUT * 10 / KEEP_ALIVE)
    daemon.clock.pump([KEEP_ALIVE] * intervals)
    assert not stream.transport.disconnecting and not stream.cut
    assert sum(1 for e in stream.events() if e == {":": "keep-alive"}) == intervals + 1
    daemon.publish()
    assert set(stream.kinds()) == {"progress", "state-changed"}, "an idle session's summaries"
    assert stream.kinds()[-1] == "state-changed"


def test_head_answers_the_headers_and_opens_no_stream(daemon: Daemon) -> None:
    stream = daemon.connect(method="HEAD")
    status, headers, body = stream.response()
    assert (status, headers["content-type"], body) == (200, "text/event-stream", b"")
    assert daemon.api.events.streams == [] and daemon.hub.subscribers == 0


# -- auth ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong"])
def test_without_the_token_there_is_no_stream(daemon: Daemon, token: str | None) -> None:
    stream = daemon.connect(token=token)
    status, headers, _ = stream.response()
    assert status == 401 and headers["content-type"] == "application/json"
    assert headers["www-authenticate"].startswith("Bearer")
    assert daemon.hub.subscribers == 0 and daemon.api.events.streams == []
    daemon.publish()
    assert b"state-changed" not in stream.transport.value()


# -- Last-Event-ID -------------------------------------------------------------------


def test_last_event_id_replays_what_was_missed_then_goes_on_live(daemon: Daemon) -> None:
    first, *missed = [
        daemon.publish(kind) for kind in (Kind.TORRENT_ADDED, Kind.STATE_CHANGED, Kind.FINISHED)
    ]
    stream = daemon.connect(f"Last-Event-ID: {first.id}")
    live = daemon.publish(Kind.REMOVED)
    assert stream.ids() == [n.id for n in missed] + [live.id]
    assert stream.kinds() == ["state-changed", "finished", "removed"]
    assert not any(":" in e and "missed" in e[":"] for e in stream.events())


def test_without_last_event_id_only_live_events_come(daemon: Daemon) -> None:
    daemon.publish(Kind.TORRENT_ADDED)
    stream = daemon.connect()
    assert stream.kinds() == []


def test_an_id_older_than_the_backlog_gets_what_is_left_and_a_comment_saying_so() -> None:
    daemon = Daemon()
    daemon.events.hub = EventHub(backlog=2)
    for _ in range(5):
        daemon.publish()
    stream = daemon.connect("Last-Event-ID: 1")
    assert stream.ids() == [4, 5]
    assert any("missed" in e.get(":", "") for e in stream.events())


@pytest.mark.parametrize("value", ["abc", "-3", "1.5", "9" * 30])
def test_a_malformed_last_event_id_is_a_400_naming_the_header(daemon: Daemon, value: str) -> None:
    stream = daemon.connect(f"Last-Event-ID: {value}")
    status, _, body = stream.response()
    assert status == 400 and "Last-Event-ID" in json.loads(body)["error"]["message"]
    assert daemon.hub.subscribers == 0


# -- bounds --------------------------------------------------------------------------


def test_a_slow_reader_over_the_queue_bound_is_dropped_and_the_others_go_on(
    daemon: Daemon,
) -> None:
    daemon.api.events.max_queued = 2_000
    slow, fast = daemon.connect(), daemon.connect()
    slow.channel.pauseProducing()  # its socket buffer is full
    written = len(slow.transport.value())
    for _ in range(10):
        daemon.publish()
    assert not slow.cut and len(slow.transport.value()) == written, "queued, not written"
    for _ in range(20):
        daemon.publish()
    assert slow.cut, "over the bound: disconnected"
    assert len(daemon.api.events.streams) == 1 and daemon.hub.subscribers == 1
    assert len(slow.transport.value()) == written, "the queue is not flushed into it"
    slow.lose()
    assert len(fast.kinds()) == 30
    fast.lose()
    assert daemon.hub.subscribers == 0


def test_a_paused_reader_keeps_only_the_latest_progress_and_catches_up_on_resume(
    daemon: Daemon,
) -> None:
    stream = daemon.connect()
    stream.channel.pauseProducing()
    daemon.publish(Kind.PROGRESS, {"torrents": [1]})
    added = daemon.publish(Kind.TORRENT_ADDED)
    for n in range(2, 200):
        daemon.publish(Kind.PROGRESS, {"torrents": [n]})
    assert stream.kinds() == [] and not stream.cut
    stream.channel.resumeProducing()
    assert stream.kinds() == ["torrent-added", "progress"]
    assert stream.ids()[0] == added.id
    assert json.loads(stream.events()[-1]["data"]) == {"torrents": [199]}
    daemon.publish()
    assert stream.kinds()[-1] == "state-changed"


def test_a_stream_opened_on_a_full_socket_starts_paused(daemon: Daemon) -> None:
    channel = daemon.site.buildProtocol(ADDRESS)
    transport = StringTransport(peerAddress=ADDRESS)
    channel.makeConnection(transport)
    channel.pauseProducing()  # say, a pipelined request's reply still unsent
    request = f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    channel.dataReceived(request.encode())
    stream = Stream(channel, transport)
    [opened] = daemon.api.events.streams
    assert opened.paused
    daemon.publish()
    assert stream.kinds() == []
    channel.resumeProducing()
    assert stream.kinds() == ["state-changed"]


def test_a_reader_that_reads_nothing_for_the_stall_timeout_is_dropped(daemon: Daemon) -> None:
    stream = daemon.connect()
    stream.channel.pauseProducing()
    daemon.clock.advance(STALL_TIMEOUT - 1)
    stream.channel.resumeProducing()  # it read something: the clock starts again
    stream.channel.pauseProducing()
    daemon.clock.advance(STALL_TIMEOUT - 1)
    assert not stream.cut
    daemon.clock.advance(1)
    assert stream.cut and daemon.api.events.streams == []


def test_streams_are_capped_and_the_next_is_a_503_with_retry_after(daemon: Daemon) -> None:
    streams = [daemon.connect() for _ in range(MAX_STREAMS)]
    refused = daemon.connect()
    status, headers, _ = refused.response()
    assert status == 503 and headers["retry-after"] == "30"
    streams[0].lose()
    assert daemon.connect().response()[0] == 200


def test_a_session_without_events_answers_503() -> None:
    stream = Daemon(events=False).connect()
    status, _, body = stream.response()
    assert status == 503 and "no events" in json.loads(body)["error"]["message"]


# -- cleanup -------------------------------------------------------------------------


def test_a_client_going_away_unsubscribes_and_stops_its_timers(daemon: Daemon) -> None:
    stream = daemon.connect()
    stream.channel.pauseProducing()  # the stall timer runs too
    assert daemon.hub.subscribers == 1 and daemon.clock.getDelayedCalls()
    stream.lose()
    assert daemon.hub.subscribers == 0 and daemon.api.events.streams == []
    assert daemon.clock.getDelayedCalls() == []
    daemon.publish()  # nobody to write to
    daemon.clock.advance(KEEP_ALIVE * 2)


def test_closing_ends_readable_streams_and_cuts_stalled_ones(daemon: Daemon) -> None:
    readable, stalled = daemon.connect(), daemon.connect()
    stalled.channel.pauseProducing()
    daemon.api.events.close()
    assert readable.transport.value().endswith(b"0\r\n\r\n"), "the chunked body is ended"
    assert stalled.cut and not readable.cut
    assert daemon.api.events.streams == [] and daemon.hub.subscribers == 0
