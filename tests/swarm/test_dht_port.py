"""BEP 5's PORT message and the DHT reserved bit (byte 7, 0x01), when the session runs a DHT."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from scripted import peer_with_bits, running
from test_torrent import make_torrent, one_file_metainfo
from twisted.internet.testing import MemoryReactorClock

from bt.peer.messages import MessageId, Port, Reserved
from bt.peer.protocol import DHT_RESERVED, OUR_RESERVED, DHTPort
from bt.torrent import Torrent

DHT_BIT = Reserved.of(Reserved.DHT)


@pytest.fixture
def torrent() -> Iterator[Torrent]:
    yield from running(make_torrent(one_file_metainfo(), MemoryReactorClock()))


def with_dht(torrent: Torrent, port: int | None = 7777) -> list[tuple[str, int]]:
    """Give the torrent's outgoing connections a DHT; returns the nodes it is told to ping."""
    pinged: list[tuple[str, int]] = []
    torrent.swarm.factory.dht = DHTPort(lambda: port, pinged.append)
    return pinged


def sent_ports(data: bytes) -> list[int]:
    """The PORT messages in what we wrote, after our 68-byte handshake."""
    ports, pos = [], 68
    while pos + 4 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        if length == 3 and data[pos + 4] == MessageId.PORT:
            ports.append(struct.unpack_from(">H", data, pos + 5)[0])
        pos += 4 + length
    return ports


def test_the_dht_bit_is_set_only_when_the_session_runs_a_dht(torrent: Torrent) -> None:
    assert Reserved.has(DHT_RESERVED, Reserved.DHT) and DHT_RESERVED[7] & 0x01
    assert not Reserved.has(OUR_RESERVED, Reserved.DHT)
    without = peer_with_bits(torrent, DHT_BIT, b"-LT2000-nodhtpeer001", 1)
    assert not Reserved.has(without.transport.value()[20:28], Reserved.DHT)
    with_dht(torrent)
    peer = peer_with_bits(torrent, DHT_BIT, b"-LT2000-dhtpeer00002", 2)
    assert Reserved.has(peer.transport.value()[20:28], Reserved.DHT)
    assert Reserved.has(peer.transport.value()[20:28], Reserved.FAST), "the others stay"


def test_a_peer_with_the_dht_bit_is_sent_our_dht_port(torrent: Torrent) -> None:
    with_dht(torrent, 7777)
    peer = peer_with_bits(torrent, DHT_BIT, b"-LT2000-dhtpeer00003", 3)
    assert sent_ports(peer.transport.value()) == [7777]


def test_a_peer_without_the_dht_bit_is_sent_no_port(torrent: Torrent) -> None:
    with_dht(torrent, 7777)
    peer = peer_with_bits(torrent, bytes(8), b"-LT2000-plainpeer004", 4)
    assert sent_ports(peer.transport.value()) == []


def test_no_port_is_sent_while_our_node_is_not_listening(torrent: Torrent) -> None:
    with_dht(torrent, None)
    peer = peer_with_bits(torrent, DHT_BIT, b"-LT2000-dhtpeer00005", 5)
    assert sent_ports(peer.transport.value()) == []


def test_a_port_from_a_peer_makes_us_ping_its_node(torrent: Torrent) -> None:
    pinged = with_dht(torrent)
    peer = peer_with_bits(torrent, DHT_BIT, b"-LT2000-dhtpeer00006", 6, Port(6999))
    host = peer.transport.getPeer().host
    assert pinged == [(host, 6999)]
    peer.protocol.dataReceived(b"\x00\x00\x00\x03\x09\x00\x00")  # port 0: not a node
    assert pinged == [(host, 6999)]


def test_without_a_dht_a_port_message_is_ignored(torrent: Torrent) -> None:
    peer = peer_with_bits(torrent, DHT_BIT, b"-LT2000-dhtpeer00007", 7, Port(6999))
    assert not peer.transport.disconnecting
