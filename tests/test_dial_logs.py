"""What the log says about outgoing connections that never became peers.

An attempt that ends before the peer's handshake leaves a debug line naming why
(refused, timed out, closed by the peer, a bad handshake); a tracker handing us
our own address is said once, at info, and that address is never dialled again
by any torrent of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_dialer import Rig, addresses, make_rig
from test_torrent import PIECE, _Lookup, make_torrent
from torrents import handmade_info, handmade_torrent
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.error import TimeoutError as ConnectTimeout
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure

from bt.candidates import Address
from bt.logs import set_log_level
from bt.metainfo import parse_metainfo
from bt.peer.incoming import IncomingPeerFactory
from bt.peer.messages import Handshake, encode_handshake
from bt.peer.protocol import HANDSHAKE_TIMEOUT, SELF_CONNECTION
from bt.torrent import Torrent


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    """bt's log events at every level, debug included."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    set_log_level("debug")
    yield events
    globalLogPublisher.removeObserver(events.append)
    set_log_level("info")


def lines(events: list[dict[str, Any]], level: LogLevel | None = None) -> list[str]:
    return [formatEvent(e) for e in events if level is None or e.get("log_level") == level]


def one_dial() -> tuple[Rig, Address]:
    """A dialer that has dialled one candidate, 10.0.0.1:6001."""
    rig = make_rig()
    (address,) = addresses(1)
    rig.dialer.add([address])
    return rig, address


@pytest.mark.parametrize(
    ("end", "reason"),
    [
        (lambda p, clock: p.connectionLost(Failure(ConnectionDone())), "closed by the peer"),
        (
            lambda p, clock: p.connectionLost(Failure(ConnectionLost())),
            "Connection to the other side was lost",
        ),
        (
            lambda p, clock: p.dataReceived(encode_handshake(Handshake(b"\x09" * 20, b"P" * 20))),
            "protocol error: handshake for info-hash 0909",
        ),
        (
            lambda p, clock: p.dataReceived(b"GET / HTTP/1.1\r\n"),
            "handshake protocol name length 71",
        ),
        (lambda p, clock: clock.advance(HANDSHAKE_TIMEOUT), "no handshake within 20 s"),
    ],
    ids=["closed-by-peer", "reset", "other-torrent", "not-bittorrent", "timeout"],
)
def test_an_attempt_closed_before_the_handshake_is_logged_at_debug_with_why(
    logged: list[dict[str, Any]], end: Any, reason: str
) -> None:
    rig, address = one_dial()
    protocol = rig.attempt(address).buildProtocol(None)
    protocol.makeConnection(StringTransport())
    end(protocol, rig.clock)
    if protocol.on_closed is not None:  # our own close: the reactor reports it later
        protocol.connectionLost(Failure(ConnectionDone()))
    debug = [
        line for line in lines(logged, LogLevel.debug) if "closed before the handshake" in line
    ]
    assert len(debug) == 1, lines(logged)
    assert debug[0].startswith("t: connection to 10.0.0.1:6001 closed before the handshake: ")
    assert reason in debug[0]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [(ConnectionRefusedError(), "Connection was refused"), (ConnectTimeout(), "timeout")],
    ids=["refused", "timed-out"],
)
def test_an_attempt_that_never_connects_is_logged_at_debug_with_why(
    logged: list[dict[str, Any]], failure: Exception, reason: str
) -> None:
    rig, address = one_dial()
    rig.attempt(address).clientConnectionFailed(None, Failure(failure))
    (line,) = [line for line in lines(logged, LogLevel.debug) if "cannot connect" in line]
    assert line.startswith("t: cannot connect to 10.0.0.1:6001: ")
    assert reason in line


def test_a_peer_that_joins_leaves_no_closed_before_handshake_line(
    logged: list[dict[str, Any]],
) -> None:
    rig, address = one_dial()
    protocol = rig.attempt(address).buildProtocol(None)
    protocol.makeConnection(StringTransport())
    rig.dialer.arrived(address)  # what the torrent's attach does on the handshake
    protocol.connectionLost(Failure(ConnectionDone()))
    assert not [line for line in lines(logged) if "closed before the handshake" in line]


def dial_ourselves(torrent: Torrent, clock: MemoryReactorClock, address: tuple[str, int]) -> None:
    """Join the dialled attempt to our own listener in memory, as the loopback would."""
    (attempt,) = [f for host, port, f, *_ in clock.tcpClients if (host, port) == address]
    outgoing = attempt.buildProtocol(None)
    incoming = IncomingPeerFactory(torrent.peer_id, _Lookup(torrent), clock).buildProtocol(None)
    assert incoming is not None
    out_wire, in_wire = StringTransport(), StringTransport()
    outgoing.makeConnection(out_wire)
    incoming.makeConnection(in_wire)
    incoming.dataReceived(out_wire.value())  # our handshake reaches our listener
    outgoing.dataReceived(in_wire.value())  # which answers before it hangs up
    assert incoming.close_reason == outgoing.close_reason == SELF_CONNECTION
    incoming.connectionLost(Failure(ConnectionDone()))
    outgoing.connectionLost(Failure(ConnectionDone()))


def test_our_own_address_is_said_once_and_no_torrent_dials_it_again(
    logged: list[dict[str, Any]],
) -> None:
    clock = MemoryReactorClock()
    metainfo = parse_metainfo(handmade_torrent(handmade_info(piece_length=PIECE)))
    first = make_torrent(metainfo, clock)
    first.startService()
    second = make_torrent(metainfo, clock, limits=first.limits)  # same session
    second.startService()
    ours = ("127.0.0.1", 6881)
    first.add_candidates([ours])
    dial_ourselves(first, clock, ours)
    assert first.candidates.is_banned(ours), "the dialling side saw our peer id"
    assert first.limits.connections.used == 0
    said = [line for line in lines(logged, LogLevel.info) if "own address" in line]
    assert said == [
        "t: 127.0.0.1:6881 is our own address (a tracker gave it); no torrent will dial it again"
    ]
    assert not [line for line in lines(logged, LogLevel.info) if SELF_CONNECTION in line]
    # Every later announce of either torrent hands it out again: never dialled, never said.
    for _ in range(3):
        first.add_candidates([ours])
        second.add_candidates([ours])
        clock.advance(3600)
    assert len([c for c in clock.tcpClients if c[:2] == ours]) == 1
    assert len([line for line in lines(logged) if "own address" in line]) == 1
    first.stopService()
    second.stopService()
