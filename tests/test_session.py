"""The session: the address it advertises, and torrents told about its port."""

from __future__ import annotations

from pathlib import Path

import pytest
from torrents import handmade_info, handmade_torrent
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock

from bt.listener import LISTEN_BACKLOG, with_backlog
from bt.metainfo import parse_metainfo
from bt.session import Session, SessionConfig


class FakePort:
    def __init__(self, address: IPv4Address | IPv6Address) -> None:
        self.address = address

    def getHost(self) -> IPv4Address | IPv6Address:
        return self.address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (IPv6Address("TCP", "::1", 7000), "::1"),
        (IPv6Address("TCP", "::", 7000), None),
        (IPv4Address("TCP", "127.0.0.1", 7000), None),
    ],
)
def test_only_a_specific_ipv6_listen_address_is_announced(
    tmp_path: Path, address: IPv4Address | IPv6Address, expected: str | None
) -> None:
    session = Session(SessionConfig(tmp_path, tmp_path), reactor=MemoryReactorClock())
    session.listener.listening = FakePort(address)  # type: ignore[assignment]
    assert session.port == 7000
    assert session.announce_ipv6 == expected


def test_torrents_learn_the_listening_port(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    session = Session(
        SessionConfig(tmp_path, tmp_path, listen="tcp:7001:interface=127.0.0.1"), reactor=reactor
    )
    torrent = session.add_torrent(parse_metainfo(handmade_torrent(handmade_info())))
    session.privilegedStartService()
    assert reactor.tcpServers[0][0] == 7001
    assert torrent.port == session.port


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("tcp:6881", "tcp:6881:backlog=511"),
        ("tcp6:6881:interface=\\:\\:1", "tcp6:6881:interface=\\:\\:1:backlog=511"),
        ("tcp:6881:backlog=8", "tcp:6881:backlog=8"),
        ("unix:/tmp/peers", "unix:/tmp/peers"),
    ],
)
def test_tcp_listeners_get_a_deep_accept_backlog(given: str, used: str) -> None:
    assert with_backlog(given) == used


def test_the_backlog_reaches_the_listening_port(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    session = Session(SessionConfig(tmp_path, tmp_path, listen="tcp:7002"), reactor=reactor)
    session.privilegedStartService()
    port, _factory, backlog, _interface = reactor.tcpServers[0]
    assert (port, backlog) == (7002, LISTEN_BACKLOG)
