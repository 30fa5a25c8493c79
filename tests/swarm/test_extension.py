"""The peer extension hook: a toy extension joins a swarm without editing it.

It contributes to the extended handshake, gets a state per peer when the peer
attaches, its own messages with that state, and the state back when the peer
is lost. (The BEP 10 wire that will call ``received`` is issue 14's.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_torrent import make_torrent, one_file_metainfo, seeder
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from bt.errors import RemoteProtocolError
from bt.swarm.extension import IPeerExtension, PeerExtensions
from bt.swarm.link import PeerLink
from bt.torrent import Torrent


@implementer(IPeerExtension)
class Echo:
    """Keeps every payload a peer sent it; a payload of ``bad`` is a protocol error."""

    def __init__(self, name: str = "bt_echo") -> None:
        self.name = name
        self.events: list[tuple[Any, ...]] = []

    def handshake(self) -> dict[str, Any]:
        return {"echo_version": 1}

    def attached(self, link: PeerLink) -> list[bytes]:
        self.events.append(("attached", link.address))
        return []

    def lost(self, link: PeerLink, state: object) -> None:
        self.events.append(("lost", link.address, state))

    def message(self, link: PeerLink, state: object, payload: bytes) -> None:
        if payload == b"bad":
            raise RemoteProtocolError("a bad echo")
        state.append(payload)  # type: ignore[attr-defined]


class Quiet:
    """A second extension that adds nothing to the handshake."""

    name = "ut_quiet"

    def handshake(self) -> dict[str, Any]:
        return {}

    def attached(self, link: PeerLink) -> None:
        return None

    def lost(self, link: PeerLink, state: object) -> None:
        pass

    def message(self, link: PeerLink, state: object, payload: bytes) -> None:
        pass


@pytest.fixture
def torrent() -> Iterator[Torrent]:
    torrent = make_torrent(one_file_metainfo(), MemoryReactorClock())
    torrent.startService()
    yield torrent
    torrent.stopService()


def test_the_toy_extension_provides_the_interface() -> None:
    assert verifyObject(IPeerExtension, Echo())


def test_the_handshake_names_each_extension_by_its_id_and_adds_their_keys() -> None:
    extensions = PeerExtensions([Echo(), Quiet()])
    assert extensions.handshake() == {"m": {"bt_echo": 1, "ut_quiet": 2}, "echo_version": 1}


def test_a_name_registers_once() -> None:
    extensions = PeerExtensions([Echo()])
    with pytest.raises(ValueError, match="bt_echo"):
        extensions.register(Echo())


def test_an_extension_follows_a_peer_from_attach_through_messages_to_lost(
    torrent: Torrent,
) -> None:
    echo = Echo()
    torrent.swarm.extensions.register(echo)
    peer = seeder(torrent, port=7)
    (link,) = torrent.links
    assert echo.events == [("attached", ("10.0.0.1", 7))]
    assert link.extensions == {"bt_echo": []}
    torrent.swarm.extensions.received(link, 1, b"hello")
    torrent.swarm.extensions.received(link, 1, b"again")
    assert link.extensions["bt_echo"] == [b"hello", b"again"]
    peer.protocol.connectionLost()
    assert echo.events[-1] == ("lost", ("10.0.0.1", 7), [b"hello", b"again"])
    assert link.extensions == {}


def test_a_message_id_never_offered_or_a_bad_message_is_the_peers_error(
    torrent: Torrent,
) -> None:
    torrent.swarm.extensions.register(Echo())
    seeder(torrent)
    (link,) = torrent.links
    with pytest.raises(RemoteProtocolError, match="never offered"):
        torrent.swarm.extensions.received(link, 9, b"")
    with pytest.raises(RemoteProtocolError, match="bad echo"):
        torrent.swarm.extensions.received(link, 1, b"bad")
