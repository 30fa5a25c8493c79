"""bt.peer.sender: writes straight to the socket while the transport is idle, in order,
the rest through the transport, and the upload queue paused until that is written."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.internet.testing import StringTransport

from bt.peer.sender import DirectWriter, _unsent, as_bytes, for_transport, piece_parts


class FakeTransport:
    """The parts of Twisted's tcp.Connection the writer reads, with a scripted socket."""

    connected = 1
    disconnecting = 0

    def __init__(self, takes: list[int | type[Exception]]) -> None:
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.producer: Any = None
        self.streamingProducer = True
        self.producerPaused = False
        self.written: list[bytes] = []
        self.sock = FakeSocket(takes)

    def writeSequence(self, parts: list[bytes]) -> None:
        assert all(type(p) is bytes for p in parts), "Twisted takes bytes only"
        self.written += parts
        self._tempDataLen += sum(map(len, parts))


class FakeSocket:
    def __init__(self, takes: list[int | type[Exception]]) -> None:
        self.takes = takes
        self.sent: list[bytes] = []

    def sendmsg(self, parts: list[Any]) -> int:
        take = self.takes.pop(0)
        if not isinstance(take, int):
            raise take()
        data = b"".join(bytes(p) for p in parts)[:take]
        self.sent.append(data)
        return len(data)


def writer(takes: list[int | type[Exception]]) -> tuple[DirectWriter, FakeTransport]:
    transport = FakeTransport(takes)
    return DirectWriter(transport, transport.sock), transport  # type: ignore[arg-type]


def test_an_idle_transport_is_bypassed_and_views_go_uncopied() -> None:
    direct, transport = writer([10])
    direct.write([b"head", memoryview(b"abcdef")])
    assert transport.sock.sent == [b"headabcdef"] and transport.written == []
    assert direct.bytes_direct == 10 and direct.bytes_queued == 0


def test_what_the_kernel_does_not_take_goes_to_the_transport_as_bytes_in_order() -> None:
    direct, transport = writer([6, 100])
    pauses: list[str] = []
    transport.producer = type("P", (), {"pauseProducing": lambda self: pauses.append("p")})()
    data = memoryview(b"0123456789")
    direct.write([b"head", data[:5], data[5:]])
    assert transport.sock.sent == [b"head01"]
    assert transport.written == [b"234", b"56789"]
    assert transport.producerPaused and pauses == ["p"], "paused until the transport drains"
    # The transport holds bytes now: the next write queues behind them, no sendmsg.
    direct.write([b"next"])
    assert transport.written[-1] == b"next" and len(transport.sock.sent) == 1


@pytest.mark.parametrize("error", [BlockingIOError, ConnectionResetError])
def test_a_full_or_broken_socket_leaves_everything_to_the_transport(error: type) -> None:
    direct, transport = writer([error])
    direct.write([b"head", memoryview(b"body")])
    assert transport.written == [b"head", b"body"]


def test_a_transport_with_data_waiting_is_not_overtaken() -> None:
    direct, transport = writer([])
    transport.dataBuffer, transport.offset = b"xyz", 1
    direct.write([b"late"])
    assert transport.written == [b"late"] and transport.sock.sent == []


def test_unsent_parts_are_cut_at_the_byte_sent() -> None:
    parts = [b"ab", memoryview(b"cde"), b"f"]
    assert as_bytes(_unsent(parts, 0)) == [b"ab", b"cde", b"f"]
    assert as_bytes(_unsent(parts, 3)) == [b"de", b"f"]
    assert as_bytes(_unsent(parts, 5)) == [b"f"]
    assert _unsent(parts, 6) == []


def test_piece_parts_frame_each_block_without_copying_it() -> None:
    data = memoryview(b"x" * 20)[4:8]
    header, body = piece_parts([(3, 16384, data)])
    assert header == b"\x00\x00\x00\x0d\x07\x00\x00\x00\x03\x00\x00\x40\x00" and body is data


def test_in_memory_and_non_tcp_transports_write_as_before() -> None:
    assert for_transport(StringTransport()) is None
    assert for_transport(object()) is None


class Sink(Protocol):
    """Reads everything until the other side closes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any = None) -> None:
        self.done.callback(bytes(self.data))


class Pusher(Protocol):
    """Writes numbered chunks through a DirectWriter as a streaming producer would."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.paused = False
        self.pauses = 0
        self.writer: DirectWriter | None = None

    def connectionMade(self) -> None:
        self.writer = for_transport(self.transport)
        assert self.writer is not None, "a plain TCP connection qualifies"
        self.transport.registerProducer(self, True)
        self.resumeProducing()

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.paused = False
        assert self.writer is not None
        while self.chunks and not self.paused:
            chunk = self.chunks.pop(0)
            self.writer.write([chunk[:100], memoryview(chunk)[100:]])
        if not self.chunks and not self.paused:
            self.transport.unregisterProducer()
            self.transport.loseConnection()

    def stopProducing(self) -> None:
        self.chunks = []


@pytest_twisted.inlineCallbacks
def test_a_real_socket_gets_every_byte_in_order_under_flow_control() -> Any:
    chunks = [bytes([n % 251]) * 65536 for n in range(200)]  # 12.5 MiB: fills the socket
    expected = b"".join(chunks)
    pusher = Pusher(list(chunks))
    server = Factory.forProtocol(lambda: pusher)
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    sink = Sink()
    client = ClientFactory.forProtocol(lambda: sink)
    try:
        reactor.connectTCP("127.0.0.1", port.getHost().port, client)
        received = yield sink.done
    finally:
        yield port.stopListening()
    assert received == expected
    assert pusher.writer is not None and pusher.writer.bytes_direct > 0
    assert pusher.pauses > 0, "the socket filled at least once: flow control was exercised"
    assert pusher.writer.bytes_direct + pusher.writer.bytes_queued == len(expected)
