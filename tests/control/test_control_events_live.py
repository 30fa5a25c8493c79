"""The event stream of a real session and control service, on loopback sockets.

One torrent's life through the API (added, checked, paused, removed) arrives
on the stream within 2 s of each call, a progress summary within a second or
two; a client that stops reading is dropped once its buffers are full.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from test_session_registry import album
from treq.client import HTTPClient
from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import capturedLogs
from twisted.web.client import Agent, HTTPConnectionPool

from bt.cli import main
from bt.control.events import EventStreams
from bt.control.files import read_control_info
from bt.control.service import ControlService
from bt.events import Kind
from bt.metainfo import torrent_bytes
from bt.session import Session, SessionConfig

#: Every wait is bounded; the stream must be far quicker than this.
PATIENCE = 15.0


class EventReader(protocol.Protocol):
    """Reads one event stream over raw HTTP/1.1, noting when each event arrived."""

    def __init__(self) -> None:
        self.raw = b""
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.lost: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.raw += data
        # Chunk framing aside, every event is "id: ...\nevent: ...\ndata: ...\n\n".
        for block in self.raw.split(b"\n\n")[len(self.events) :]:
            lines = dict(line.split(b": ", 1) for line in block.splitlines() if line.count(b": "))
            if b"event" in lines and b"data" in lines:
                data_line = lines[b"data"].split(b"\r\n")[0]
                kind = lines[b"event"].decode()
                self.events.append((time.monotonic(), kind, json.loads(data_line)))

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for _, k, data in self.events if k == kind]


async def until(test: Callable[[], Any], what: str) -> Any:
    from twisted.internet import reactor

    deadline = time.monotonic() + PATIENCE
    while not (result := test()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.02, lambda: None)
    return result


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Session, ControlService]]:
    from twisted.internet import reactor

    config = SessionConfig(
        download_dir=tmp_path / "data",
        state_dir=tmp_path / "state",
        listen="tcp:0:interface=127.0.0.1",
    )
    session = Session(config, reactor=reactor)  # no DHTConfig: no DHT
    control = ControlService(session, "tcp:0", config.state_dir, reactor=reactor)
    control.setServiceParent(session)
    session.privilegedStartService()
    session.startService()
    yield session, control
    pytest_twisted.blockon(session.stopService())


def streams_of(control: ControlService) -> EventStreams:
    streams = control.event_streams
    assert streams is not None
    return streams


async def open_stream(url: str, token: str, *headers: str) -> EventReader:
    from twisted.internet import reactor

    host, port = url.removeprefix("http://").rstrip("/").split(":")
    reader = EventReader()
    await TCP4ClientEndpoint(reactor, host, int(port)).connect(
        protocol.Factory.forProtocol(lambda: reader)
    )
    request = [
        "GET /api/v1/events HTTP/1.1",
        f"Host: {host}",
        f"Authorization: Bearer {token}",
        *headers,
    ]
    reader.transport.write(("\r\n".join(request) + "\r\n\r\n").encode())
    await until(lambda: b": connected" in reader.raw, "the stream to open")
    assert reader.raw.startswith(b"HTTP/1.1 200 ")
    return reader


@pytest_twisted.ensureDeferred
async def test_a_torrents_life_arrives_on_the_stream_within_two_seconds(
    tmp_path: Path, daemon: tuple[Session, ControlService]
) -> None:
    from twisted.internet import reactor

    session, _control = daemon
    url, token = read_control_info(session.config.state_dir)
    auth = {"Authorization": f"Bearer {token}"}
    reader = await open_stream(url, token)
    pool = HTTPConnectionPool(reactor, persistent=False)
    client = HTTPClient(Agent(reactor, pool=pool))
    metainfo = album("live")  # its tracker is 127.0.0.1:1: refused, on loopback
    hex_hash = metainfo.info_hash.hex()

    async def call(method: str, path: str, **kwargs: Any) -> float:
        """Send one API call; the moment it was answered."""
        headers = kwargs.pop("headers", auth)
        response = await client.request(method, f"{url}{path}", headers=headers, **kwargs)
        assert response.code in (200, 201), await response.text()
        await response.content()
        return time.monotonic()

    def arrived(kind: str, state: str | None, since: float) -> float:
        found = [
            at
            for at, k, data in reader.events
            if k == kind and (state is None or data.get("state") == state)
        ]
        return found[-1] - since if found else 0.0

    try:
        sent = time.monotonic()
        await call(
            "POST",
            "api/v1/torrents",
            data=torrent_bytes(metainfo),
            headers={**auth, "Content-Type": "application/x-bittorrent"},
        )
        await until(lambda: reader.of("state-changed"), "the check to start")
        await until(
            lambda: any(d["state"] == "downloading" for d in reader.of("state-changed")),
            "the torrent to download",
        )
        added = reader.of("torrent-added")[0]
        assert added == {"info_hash": hex_hash, "name": "live", "state": "stopped", "error": None}
        assert arrived("torrent-added", None, sent) < 2.0
        await until(lambda: reader.of("progress"), "a progress summary")
        [listed] = [t for t in reader.of("progress")[-1]["torrents"] if t["info_hash"] == hex_hash]
        assert listed["name"] == "live" and "files" not in listed

        sent = time.monotonic()
        await call("POST", f"api/v1/torrents/{hex_hash}/pause")
        await until(lambda: arrived("state-changed", "paused", sent), "paused")
        assert arrived("state-changed", "paused", sent) < 2.0

        sent = time.monotonic()
        await call("DELETE", f"api/v1/torrents/{hex_hash}")
        await until(lambda: reader.of("removed"), "removed")
        assert arrived("removed", None, sent) < 2.0
        ids = [
            int(line.split(b": ")[1])
            for line in reader.raw.split(b"\n")
            if line.startswith(b"id: ")
        ]
        assert ids == sorted(ids) and len(ids) == len(set(ids))

        # Reconnecting with the id of the first event replays the rest of the life.
        again = await open_stream(url, token, f"Last-Event-ID: {ids[0]}")
        await until(lambda: again.of("removed"), "the replay")
        replayed = [k for _, k, _ in again.events]
        assert replayed[0] == "state-changed" and "torrent-added" not in replayed
        again.transport.loseConnection()
        await again.lost
    finally:
        reader.transport.loseConnection()
        await reader.lost
        await pool.closeCachedConnections()
    await until(lambda: not session.events.hub.subscribers, "the streams to unsubscribe")


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_reading_is_dropped_on_a_real_socket(
    daemon: tuple[Session, ControlService],
) -> None:
    from twisted.internet import reactor

    session, control = daemon
    url, token = read_control_info(session.config.state_dir)
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.setblocking(False)
    streams = streams_of(control).streams
    try:
        stuck.connect_ex((host, int(port)))
        await task.deferLater(reactor, 0.05, lambda: None)
        request = f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        stuck.send(request.encode())
        await until(lambda: streams, "the stream to open")
        big = {"info_hash": "ab" * 20, "name": "n" * 10_000, "state": "paused", "error": None}
        published = 0
        with capturedLogs() as logged:
            while streams and published < 4_000:  # 40 MB at most: far over every buffer
                for _ in range(50):
                    session.events.hub.publish(Kind.STATE_CHANGED, big)
                published += 50
                await task.deferLater(reactor, 0.005, lambda: None)
        assert not streams, f"still streaming after {published} events of 10 kB"
        [why] = [e["why"] for e in logged if "event stream" in e.get("log_format", "")]
        assert why.startswith("over 1048576 bytes of events waiting")
        assert session.events.hub.subscribers == 0
    finally:
        stuck.close()


@pytest_twisted.ensureDeferred
async def test_bt_events_follows_a_real_daemon_until_it_ends_the_stream(
    daemon: tuple[Session, ControlService], capsys: pytest.CaptureFixture[str]
) -> None:
    from twisted.internet import threads

    session, control = daemon
    url, token = read_control_info(session.config.state_dir)
    following = threads.deferToThread(main, ["events", "--json", "--url", url, "--token", token])
    await until(lambda: streams_of(control).streams, "bt events to connect")
    session.add_torrent(album("followed"))
    out = ""

    def seen(state: str) -> bool:
        nonlocal out
        out += capsys.readouterr().out
        return f'"state": "{state}"' in out

    await until(lambda: seen("downloading"), "bt events to print the download")
    streams_of(control).close()
    assert await following == 1
    rest = capsys.readouterr()
    lines = [json.loads(line) for line in (out + rest.out).splitlines()]
    assert [e["event"] for e in lines[:3]] == ["torrent-added", "state-changed", "state-changed"]
    assert {e["data"]["name"] for e in lines} == {"followed"}
    assert "ended the event stream" in rest.err
