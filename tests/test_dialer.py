"""The dialer on its own: a fake reactor records each dial; room and slots are plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from test_torrent import PIECE, make_torrent
from torrents import handmade_info, handmade_torrent
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from bt.candidates import RETRY_BASE, Address, PeerSource
from bt.dialer import Dialer
from bt.geometry import PieceGeometry
from bt.metainfo import parse_metainfo
from bt.peer.connection import HandshakeReceived
from bt.peer.messages import Handshake, encode_handshake
from bt.peer.protocol import SELF_CONNECTION, PeerProtocol, TorrentPeerFactory
from bt.policy.slots import ConnectionSlots
from bt.torrentconfig import TorrentConfig

OUR_ID = b"-BT0100-ourselves!!!"
INFO_HASH = b"\x07" * 20
GEOMETRY = PieceGeometry(4, 16384, 4 * 16384)
TIMEOUT = 15.0


class _Attacher:
    """Stands for the torrent: records handshakes, never takes a peer (no delegate needed)."""

    def __init__(self) -> None:
        self.handshakes: list[PeerProtocol] = []

    def attach(self, protocol: PeerProtocol, handshake: HandshakeReceived) -> Any:
        self.handshakes.append(protocol)
        return object()


@dataclass
class Rig:
    clock: MemoryReactorClock
    slots: ConnectionSlots
    dialer: Dialer
    wanted: list[int]  # room(): what the torrent would take now

    def dialled(self) -> list[Address]:
        return [(host, port) for host, port, *_ in self.clock.tcpClients]

    def attempt(self, address: Address) -> Any:
        """The per-attempt factory the dialer gave the reactor for ``address``."""
        (factory,) = [f for host, port, f, *_ in self.clock.tcpClients if (host, port) == address]
        return factory


def make_rig(*, room: int = 50, slots: int | None = None, private: bool = False) -> Rig:
    clock = MemoryReactorClock()
    shared = ConnectionSlots(slots)
    peers = TorrentPeerFactory(OUR_ID, INFO_HASH, GEOMETRY, _Attacher(), clock)
    wanted = [room]
    dialer = Dialer(
        clock,
        shared,
        peers,
        lambda: wanted[0],
        connect_timeout=TIMEOUT,
        private=private,
        name="t",
    )
    return Rig(clock, shared, dialer, wanted)


def addresses(count: int) -> list[Address]:
    return [(f"10.0.0.{n}", 6000 + n) for n in range(1, count + 1)]


def test_dials_no_more_than_the_torrent_has_room_for_counting_attempts_in_flight() -> None:
    rig = make_rig(room=2)
    rig.dialer.add(addresses(5))
    assert rig.dialled() == addresses(2)
    assert all(timeout == TIMEOUT for *_, timeout, _bind in rig.clock.tcpClients)
    rig.dialer.connect_more()
    assert len(rig.dialled()) == 2, "the two in flight fill the room"
    rig.wanted[0] = 3
    rig.dialer.connect_more()
    assert rig.dialled() == addresses(3)


def test_no_room_means_no_dialling() -> None:
    rig = make_rig(room=0)
    rig.dialer.add(addresses(3))
    assert rig.dialled() == []
    assert rig.slots.used == 0


def test_the_shared_slots_cap_attempts_and_each_one_holds_a_slot() -> None:
    rig = make_rig(room=10, slots=2)
    rig.dialer.add(addresses(5))
    assert rig.dialled() == addresses(2)
    assert rig.slots.used == 2 and rig.slots.free == 0


def test_a_failed_attempt_gives_its_slot_back_and_backs_off() -> None:
    rig = make_rig(slots=1)
    first, second = addresses(2)
    rig.dialer.add([first, second])
    assert rig.dialled() == [first]
    rig.attempt(first).clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert rig.slots.used == 0 and not rig.dialer.in_flight
    rig.dialer.connect_more()
    assert rig.dialled() == [first, second], "the freed slot goes to the next candidate"
    rig.attempt(second).clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    rig.clock.advance(RETRY_BASE - 1)
    rig.dialer.connect_more()
    assert len(rig.dialled()) == 2, "neither is due before the backoff has passed"
    rig.clock.advance(1)
    rig.dialer.connect_more()
    assert rig.dialled()[2] == first


def test_a_connection_closed_before_its_handshake_gives_its_slot_back_and_backs_off() -> None:
    rig = make_rig()
    (address,) = addresses(1)
    rig.dialer.add([address])
    protocol = rig.attempt(address).buildProtocol(None)
    assert protocol.candidate == address
    protocol.makeConnection(StringTransport())
    protocol.connectionLost()
    assert rig.slots.used == 0 and not rig.dialer.in_flight
    rig.dialer.connect_more()
    assert rig.dialled() == [address], "not again before the backoff"
    rig.clock.advance(RETRY_BASE)
    rig.dialer.connect_more()
    assert rig.dialled() == [address, address]


def test_a_peer_that_joined_and_left_is_retried_with_its_failures_forgotten() -> None:
    rig = make_rig()
    (address,) = addresses(1)
    rig.dialer.add([address])
    protocol = rig.attempt(address).buildProtocol(None)
    protocol.makeConnection(StringTransport())
    rig.dialer.arrived(address)  # what the torrent's attach does first
    rig.dialer.joined(address)
    assert not rig.dialer.in_flight
    protocol.connectionLost()
    assert rig.slots.used == 0
    rig.dialer.left(address)  # the torrent's link_lost
    rig.clock.advance(RETRY_BASE)
    rig.dialer.connect_more()
    assert rig.dialled() == [address, address]


def test_banned_addresses_are_never_dialled() -> None:
    rig = make_rig()
    bad, good = addresses(2)
    assert rig.dialer.ban(bad)
    assert not rig.dialer.ban(bad), "a second ban reports it was banned already"
    rig.dialer.add([bad, good])
    assert rig.dialled() == [good]
    assert rig.dialer.is_banned(bad)
    rig.dialer.left(bad)
    rig.clock.advance(3600)
    rig.dialer.connect_more()
    assert rig.dialled() == [good]


def test_our_own_address_is_banned_once_it_answers_with_our_peer_id() -> None:
    rig = make_rig()
    (address,) = addresses(1)
    rig.dialer.add([address])
    protocol = rig.attempt(address).buildProtocol(None)
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(encode_handshake(Handshake(INFO_HASH, OUR_ID)))
    assert protocol.close_reason == SELF_CONNECTION
    protocol.connectionLost()
    assert rig.dialer.is_banned(address)
    assert rig.slots.used == 0
    rig.clock.advance(3600)
    rig.dialer.add([address])
    assert rig.dialled() == [address]


def test_a_private_torrent_dials_only_what_its_trackers_gave() -> None:
    rig = make_rig(private=True)
    dht, pex, tracker = addresses(3)
    rig.dialer.add([dht], source=PeerSource.DHT)
    rig.dialer.add([pex], source=PeerSource.PEX)
    rig.dialer.add([tracker])
    assert rig.dialled() == [tracker]
    assert len(rig.dialer.candidates) == 1, "ignored addresses are not even remembered"


def test_a_public_torrent_dials_every_source() -> None:
    rig = make_rig()
    dht, pex, tracker = addresses(3)
    rig.dialer.add([dht], source=PeerSource.DHT)
    rig.dialer.add([pex], source=PeerSource.PEX)
    rig.dialer.add([tracker], source=PeerSource.TRACKER)
    assert rig.dialled() == [dht, pex, tracker]


def test_an_address_whose_peer_the_torrent_refused_is_retried_later() -> None:
    """A handshake that attach() refuses (say, too many peers) must not strand the address."""
    clock = MemoryReactorClock()
    metainfo = parse_metainfo(handmade_torrent(handmade_info(piece_length=PIECE)))
    torrent = make_torrent(metainfo, clock, config=TorrentConfig(max_peers=1))
    torrent.startService()
    torrent.add_candidates([("10.0.0.9", 9)])
    factory = clock.tcpClients[-1][2]
    protocol = factory.buildProtocol(None)
    torrent.links[object()] = None  # the torrent is full
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(encode_handshake(Handshake(metainfo.info_hash, b"-XX0000-refusedpeer1")))
    assert protocol.transport.disconnecting
    torrent.links.clear()
    clock.advance(3600)
    dialled = [client for client in clock.tcpClients if client[:2] == ("10.0.0.9", 9)]
    assert len(dialled) == 2, "dialled again after its backoff"
    torrent.stopService()
