"""Peer connections read in large chunks: each read hands the GIL to a waiting disk thread."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from bt.geometry import PieceGeometry
from bt.peer.protocol import READ_SIZE, PeerProtocol, TorrentPeerFactory

GEOMETRY = PieceGeometry(4, 16384, 4 * 16384)


class Attacher:
    """Takes no peer: the test looks only at the transport."""

    def attach(self, protocol: Any, handshake: Any) -> None:
        return None


def peer_factory(clock: Any = reactor) -> TorrentPeerFactory:
    return TorrentPeerFactory(b"-BT0100-ourselves!!!", b"\x07" * 20, GEOMETRY, Attacher(), clock)


@pytest_twisted.inlineCallbacks
def test_a_tcp_peer_connection_reads_up_to_read_size_bytes_at_a_time() -> Any:
    made: defer.Deferred[PeerProtocol] = defer.Deferred()
    peers = peer_factory()

    class Noting(Factory):
        def buildProtocol(self, addr: Any) -> PeerProtocol:
            protocol = peers.buildProtocol(addr)
            reactor.callLater(0, made.callback, protocol)
            return protocol

    port = reactor.listenTCP(0, Noting(), interface="127.0.0.1")
    client_closed: defer.Deferred[None] = defer.Deferred()

    class Client(Protocol):
        def connectionLost(self, reason: Any = None) -> None:
            client_closed.callback(None)

    client = ClientFactory.forProtocol(Client)
    connector = reactor.connectTCP("127.0.0.1", port.getHost().port, client)
    try:
        protocol = yield made.addTimeout(10, reactor)
        assert READ_SIZE == 256 << 10
        assert protocol.transport.bufferSize == READ_SIZE
        assert type(protocol.transport).bufferSize == 1 << 16, "Twisted's own default"
        closed: defer.Deferred[None] = defer.Deferred()
        protocol.on_closed = lambda: closed.callback(None)
        protocol.transport.loseConnection()
        yield closed.addTimeout(10, reactor)
        yield client_closed.addTimeout(10, reactor)
    finally:
        connector.disconnect()
        yield port.stopListening()


@implementer(ITCPTransport)
class TCPLike(StringTransport):
    """Says it is TCP but is not Twisted's: no read size to set."""

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.no_delay = enabled


class TCPLikeWithOddSize(TCPLike):
    bufferSize = "unknown"


def test_a_tcp_transport_without_an_integer_read_size_is_left_as_it_is() -> None:
    for transport in (TCPLike(), TCPLikeWithOddSize()):
        protocol = peer_factory(Clock()).buildProtocol(None)
        protocol.makeConnection(transport)
        assert transport.no_delay, "it was taken for TCP"
        assert getattr(transport, "bufferSize", None) in (None, "unknown")
