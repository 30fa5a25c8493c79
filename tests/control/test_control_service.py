"""ControlService on a real loopback port: token, control.json, binding, shutdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import task
from twisted.logger import LogEvent, LogLevel, globalLogPublisher
from twisted.web.client import Agent, HTTPConnectionPool

from bt.control.files import CONTROL_INFO, TOKEN_FILE, read_control_info
from bt.control.service import ControlService, loopback_by_default
from bt.errors import BtError
from control import FakeSession, Recorder


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("tcp:0", "tcp:0:interface=127.0.0.1"),
        ("tcp:port=8080:backlog=5", "tcp:port=8080:backlog=5:interface=127.0.0.1"),
        ("8080", "tcp:8080:interface=127.0.0.1"),
        ("tcp6:8080", r"tcp6:8080:interface=\:\:1"),
        ("ssl:8443:privateKey=k.pem", "ssl:8443:privateKey=k.pem:interface=127.0.0.1"),
        ("tcp:8080:interface=0.0.0.0", "tcp:8080:interface=0.0.0.0"),
        (r"tcp6:8080:interface=\:\:", r"tcp6:8080:interface=\:\:"),
        ("unix:/run/bt.sock", "unix:/run/bt.sock"),
    ],
)
def test_tcp_endpoints_listen_on_loopback_unless_told_otherwise(given: str, used: str) -> None:
    assert loopback_by_default(given) == used
    assert ControlService(FakeSession(), given, Path("/nonexistent")).endpoint == used


def test_the_constructor_has_no_side_effects(tmp_path: Path) -> None:
    ControlService(FakeSession(), "tcp:0", tmp_path / "state")
    assert not (tmp_path / "state").exists()


async def started(service: ControlService) -> ControlService:
    service.privilegedStartService()
    service.startService()
    return service


@pytest_twisted.ensureDeferred
async def test_serves_the_api_and_publishes_where(tmp_path: Path) -> None:
    from twisted.internet import reactor

    service = await started(ControlService(FakeSession(), "tcp:0", tmp_path, reactor=reactor))
    pool = HTTPConnectionPool(reactor, persistent=True)
    client = HTTPClient(Agent(reactor, pool=pool))
    try:
        url, token = read_control_info(tmp_path)
        assert url == service.url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        assert token == (tmp_path / TOKEN_FILE).read_text().strip()
        response = await client.get(
            f"{url}api/v1/session", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.code == 200
        assert (await response.json())["listen_port"] == 6881
        refused = await client.get(f"{url}metrics")
        assert refused.code == 401
        await refused.content()
    finally:
        # Stop with the client's keep-alive connection still open: the service closes it.
        await service.stopService()
        await pool.closeCachedConnections()
        # The client closes its side of the 401's connection (Connection: close) a turn later.
        await task.deferLater(reactor, 0.01, lambda: None)
    assert not (tmp_path / CONTROL_INFO).exists()
    assert (tmp_path / TOKEN_FILE).exists()


@pytest_twisted.ensureDeferred
async def test_the_token_is_kept_across_restarts(tmp_path: Path) -> None:
    first = await started(ControlService(FakeSession(), "tcp:0", tmp_path))
    _, token = read_control_info(tmp_path)
    await first.stopService()
    second = await started(ControlService(FakeSession(), "tcp:0", tmp_path))
    try:
        assert read_control_info(tmp_path)[1] == token
    finally:
        await second.stopService()


@pytest_twisted.ensureDeferred
async def test_a_port_in_use_fails_the_start_loudly(tmp_path: Path) -> None:
    first = await started(ControlService(FakeSession(), "tcp:0", tmp_path / "a"))
    try:
        port = first.url.rsplit(":", 1)[1].rstrip("/")  # type: ignore[union-attr]
        second = ControlService(FakeSession(), f"tcp:{port}", tmp_path / "b")
        message = (
            f"--control tcp:{port}:interface=127.0.0.1: "
            f"cannot listen on 127.0.0.1:{port}: Address already in use"
        )
        with pytest.raises(BtError) as raised:
            second.privilegedStartService()
        assert str(raised.value) == message
        with pytest.raises(BtError):
            second.startService()
        assert not (tmp_path / "b" / CONTROL_INFO).exists()
    finally:
        await first.stopService()


@pytest_twisted.ensureDeferred
async def test_the_default_endpoint_taken_falls_back_to_a_free_loopback_port(
    tmp_path: Path,
) -> None:
    """A second daemon with the default --control: another port, one warning, control.json."""
    first = await started(ControlService(FakeSession(), "tcp:0", tmp_path / "a"))
    port = first.url.rsplit(":", 1)[1].rstrip("/")  # type: ignore[union-attr]
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        second = ControlService(FakeSession(), f"tcp:{port}", tmp_path / "b", fallback="tcp:0")
        await started(second)
    finally:
        globalLogPublisher.removeObserver(events.append)
    try:
        assert second.url is not None and second.url != first.url
        assert second.url.startswith("http://127.0.0.1:")
        assert read_control_info(tmp_path / "b")[0] == second.url
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        assert len(warnings) == 1
        assert warnings[0]["endpoint"] == f"tcp:{port}:interface=127.0.0.1"
        assert warnings[0]["url"] == second.url
        assert "Address already in use" in warnings[0]["error"]
    finally:
        await second.stopService()
        await first.stopService()


def test_a_malformed_endpoint_fails_the_start(tmp_path: Path) -> None:
    with pytest.raises(BtError, match="--control nosuchkind:1: not a Twisted endpoint"):
        ControlService(FakeSession(), "nosuchkind:1", tmp_path).startService()


@pytest_twisted.ensureDeferred
async def test_a_public_interface_is_warned_about_and_reached_through_loopback(
    tmp_path: Path,
) -> None:
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        service = await started(ControlService(FakeSession(), "tcp:0:interface=0.0.0.0", tmp_path))
    finally:
        globalLogPublisher.removeObserver(events.append)
    try:
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        assert len(warnings) == 1
        assert "not loopback" in warnings[0]["log_format"]
        assert service.url is not None and service.url.startswith("http://127.0.0.1:")
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_requests_are_not_logged_at_info_level(tmp_path: Path) -> None:
    from twisted.internet import reactor

    service = await started(ControlService(FakeSession(), "tcp:0", tmp_path))
    pool = HTTPConnectionPool(reactor, persistent=True)
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        url, token = read_control_info(tmp_path)
        client = HTTPClient(Agent(reactor, pool=pool))
        response = await client.get(f"{url}metrics", headers={"Authorization": f"Bearer {token}"})
        await response.content()
    finally:
        globalLogPublisher.removeObserver(events.append)
        await pool.closeCachedConnections()
        await service.stopService()
    loud: list[Any] = [
        e
        for e in events
        if e["log_level"] >= LogLevel.info
        and not e["log_namespace"].startswith("twisted.web.client")
    ]
    assert loud == []


@pytest_twisted.ensureDeferred
async def test_the_daemons_api_caps_connections_and_closes_after_a_401(tmp_path: Path) -> None:
    """Connections without the token cannot pile up: the 65th is closed, a 401 closes."""
    from twisted.internet import defer, protocol, reactor

    from bt.control.site import MAX_CONNECTIONS

    service = await started(ControlService(FakeSession(), "tcp:0", tmp_path, reactor=reactor))
    creator = protocol.ClientCreator(reactor, Recorder)
    clients: list[Recorder] = []
    try:
        port = int(service.url.rsplit(":", 1)[1].rstrip("/"))  # type: ignore[union-attr]
        for _ in range(MAX_CONNECTIONS + 1):
            clients.append(await creator.connectTCP("127.0.0.1", port))
        await clients[-1].lost.addTimeout(2, reactor)
        assert clients[-1].data == b""
        assert not any(c.lost.called for c in clients[:-1])
        clients[0].transport.write(b"GET /api/v1/session HTTP/1.1\r\nHost: x\r\n\r\n")
        await clients[0].lost.addTimeout(2, reactor)
        assert clients[0].data.startswith(b"HTTP/1.1 401 ")
        assert b"\r\nConnection: close\r\n" in clients[0].data
    finally:
        await service.stopService()
        await defer.DeferredList([c.lost for c in clients])
