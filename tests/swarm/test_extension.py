"""The peer extension hook and the BEP 10 wire under it: a toy extension joins a swarm.

It contributes to our extended handshake, gets a state per peer when the peer
attaches, hears the peer's extended handshake, gets its own messages (routed by
the id we gave it) and sends its own (under the id the peer gave it), and gets
its state back when the peer is lost. A peer without the BEP 10 bit hears none
of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_torrent import connect, make_torrent, one_file_metainfo, seeder
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from bt import bencode
from bt.bitfield import Bitfield
from bt.errors import RemoteProtocolError
from bt.extensions.handshake import (
    MAX_EXTENDED_MESSAGE,
    ExtendedHandshake,
    parse_extended_handshake,
)
from bt.peer.messages import BitfieldMessage, Extended, Handshake, Reserved, Unchoke, encode
from bt.peer.messages import encode_handshake as encode_bt_handshake
from bt.swarm.extension import CLIENT_NAME, IPeerExtension, PeerExtensions
from bt.swarm.link import PeerLink
from bt.torrent import Torrent

EXTENDED = Reserved.of(Reserved.EXTENSION_PROTOCOL)


@implementer(IPeerExtension)
class Echo:
    """Keeps every payload a peer sent it and answers it; ``bad`` is a protocol error."""

    def __init__(self, name: str = "bt_echo") -> None:
        self.name = name
        self.events: list[tuple[Any, ...]] = []

    def handshake(self) -> dict[str, Any]:
        return {"upload_only": True}

    def attached(self, link: PeerLink) -> list[bytes]:
        self.events.append(("attached", link.address))
        return []

    def handshake_received(self, link: PeerLink, state: object, shake: ExtendedHandshake) -> None:
        self.events.append(("handshake", shake.client, dict(shake.messages)))

    def message(self, link: PeerLink, state: object, payload: bytes) -> None:
        if payload == b"bad":
            raise RemoteProtocolError("a bad echo")
        state.append(payload)  # type: ignore[attr-defined]
        link.send_extended(self.name, payload)

    def lost(self, link: PeerLink, state: object) -> None:
        self.events.append(("lost", link.address, state))

    def tick(self, now: float) -> None:
        self.events.append(("tick", now))


class Quiet(Echo):
    """A second extension that adds nothing to the handshake."""

    def __init__(self) -> None:
        super().__init__("ut_quiet")

    def handshake(self) -> dict[str, Any]:
        return {}


@pytest.fixture
def torrent() -> Iterator[Torrent]:
    torrent = make_torrent(one_file_metainfo(), MemoryReactorClock())
    torrent.startService()
    yield torrent
    torrent.stopService()


def extended_peer(torrent: Torrent, *messages: Any) -> Any:
    """A seeder that sets the BEP 10 bit and sends ``messages`` after its handshake."""
    peer = connect(torrent, b"-LT2000-extended0001", 8)
    peer.wire.our_reserved = EXTENDED
    full = Bitfield.full(torrent.metainfo.num_pieces)
    handshake = encode_bt_handshake(Handshake(torrent.metainfo.info_hash, peer.peer_id, EXTENDED))
    body = b"".join(encode(m) for m in (*messages, BitfieldMessage(full.to_bytes()), Unchoke()))
    peer.protocol.dataReceived(handshake + body)
    return peer


def heard_extended(peer: Any) -> list[Extended]:
    return [event for event in peer.heard() if isinstance(event, Extended)]


def test_the_toy_extension_provides_the_interface() -> None:
    assert verifyObject(IPeerExtension, Echo())


def test_our_handshake_names_each_extension_by_its_id_and_adds_their_fields() -> None:
    shake = PeerExtensions([Echo(), Quiet()]).handshake(port=6881, your_ip="10.0.0.1")
    assert shake == ExtendedHandshake(
        {"bt_echo": 1, "ut_quiet": 2}, 6881, CLIENT_NAME, "10.0.0.1", 500, upload_only=True
    )


def test_a_name_registers_once() -> None:
    extensions = PeerExtensions([Echo()])
    with pytest.raises(ValueError, match="bt_echo"):
        extensions.register(Echo())


def test_a_peer_with_the_bit_hears_our_extended_handshake_first(torrent: Torrent) -> None:
    torrent.swarm.extensions.register(Echo())
    peer = extended_peer(torrent)
    [greeting] = heard_extended(peer)
    assert peer.wire.extended
    assert greeting.extended_id == 0
    shake = parse_extended_handshake(greeting.payload)
    assert shake.messages == {"bt_echo": 1}
    assert (shake.port, shake.client, shake.your_ip) == (6881, CLIENT_NAME, "10.0.0.1")
    assert shake.upload_only


def test_a_peer_without_the_bit_hears_no_extended_message(torrent: Torrent) -> None:
    torrent.swarm.extensions.register(Echo())
    peer = seeder(torrent, port=7)
    assert not heard_extended(peer)


def test_an_extension_follows_a_peer_from_attach_through_messages_to_lost(
    torrent: Torrent,
) -> None:
    echo = Echo()
    torrent.swarm.extensions.register(echo)
    theirs = {b"m": {b"bt_echo": 5, b"ut_other": 9}, b"v": b"libtorrent 2.0"}
    peer = extended_peer(torrent, Extended(0, bencode.encode(theirs)), Extended(1, b"hello"))
    (link,) = torrent.links
    assert echo.events[-2:] == [
        ("attached", ("10.0.0.1", 8)),
        ("handshake", "libtorrent 2.0", {"bt_echo": 5, "ut_other": 9}),
    ]
    assert link.extensions["bt_echo"] == [b"hello"]
    # The answer goes out under the id the peer gave the extension, not ours.
    assert heard_extended(peer)[-1] == Extended(5, b"hello")
    torrent.reactor.advance(1)
    assert echo.events[-1] == ("tick", 1.0)
    peer.protocol.connectionLost()
    assert echo.events[-1] == ("lost", ("10.0.0.1", 8), [b"hello"])
    assert link.extensions == {}


def test_a_handshake_update_disables_an_extension(torrent: Torrent) -> None:
    echo = Echo()
    torrent.swarm.extensions.register(echo)
    extended_peer(
        torrent,
        Extended(0, bencode.encode({b"m": {b"bt_echo": 5}})),
        Extended(0, bencode.encode({b"m": {b"bt_echo": 0}})),
    )
    (link,) = torrent.links
    assert link.peer_extensions is not None and link.peer_extensions.messages == {}
    assert not link.send_extended("bt_echo", b"x")


def test_ids_never_offered_are_ignored_and_the_peer_stays(torrent: Torrent) -> None:
    torrent.swarm.extensions.register(Echo())
    peer = extended_peer(torrent, Extended(9, b"whatever"))
    assert len(torrent.links) == 1 and not peer.transport.disconnecting


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (Extended(1, b"bad"), "a bad echo"),
        (Extended(0, b"not bencode"), "extended handshake is not bencode"),
        (Extended(1, bytes(MAX_EXTENDED_MESSAGE + 1)), "over 65536"),
    ],
)
def test_a_misused_extension_closes_that_peer(
    torrent: Torrent, message: Extended, why: str
) -> None:
    torrent.swarm.extensions.register(Echo())
    peer = extended_peer(torrent, message)
    assert peer.transport.disconnecting
    assert why in (peer.protocol.close_reason or "")
