"""Peer extensions (BEP 10 style): how metadata exchange, PEX and the like join a swarm.

An extension is a small object with a name (its message name in the extended
handshake's ``m`` dictionary), a contribution to that handshake, and callbacks
for a peer attached, a peer lost and a message of its own received. Each peer
keeps one state object per extension (``link.extensions[name]``), made by
``attached``. The swarm calls :class:`PeerExtensions`; an extension never
edits the swarm or the torrent to join. The BEP 10 wire itself (the reserved
bit, message 20) is the next step: it will call :meth:`PeerExtensions.received`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from zope.interface import Attribute, Interface

from bt.errors import RemoteProtocolError

if TYPE_CHECKING:
    from bt.swarm.link import PeerLink

__all__ = ["IPeerExtension", "PeerExtensions"]


class IPeerExtension(Interface):
    """One extension protocol spoken with peers."""

    name = Attribute("Its message name in the extended handshake, such as 'ut_pex'.")

    def handshake() -> dict[str, Any]:
        """Keys this extension adds to our extended handshake (besides ``m``)."""

    def attached(link: PeerLink) -> object:
        """A peer joined the swarm: return this extension's state for it."""

    def lost(link: PeerLink, state: object) -> None:
        """The peer left; ``state`` is what ``attached`` returned."""

    def message(link: PeerLink, state: object, payload: bytes) -> None:
        """The peer sent one of this extension's messages; a bad one raises
        ``RemoteProtocolError`` (that peer is dropped)."""


class PeerExtensions:
    """The extensions plugged into one swarm, with the message ids we give them."""

    def __init__(self, extensions: Iterable[Any] = ()) -> None:
        self._by_id: dict[int, Any] = {}
        for extension in extensions:
            self.register(extension)

    def register(self, extension: Any) -> None:
        """Add an extension; its id is its place in the order of registration (from 1)."""
        if any(e.name == extension.name for e in self._by_id.values()):
            raise ValueError(f"peer extension {extension.name!r} registered twice")
        self._by_id[len(self._by_id) + 1] = extension

    def handshake(self) -> dict[str, Any]:
        """Our extended handshake: ``m`` maps each name to its id, plus each contribution."""
        found: dict[str, Any] = {"m": {e.name: n for n, e in self._by_id.items()}}
        for extension in self._by_id.values():
            found.update(extension.handshake())
        return found

    def attached(self, link: PeerLink) -> None:
        for extension in self._by_id.values():
            link.extensions[extension.name] = extension.attached(link)

    def lost(self, link: PeerLink) -> None:
        for extension in self._by_id.values():
            extension.lost(link, link.extensions.pop(extension.name, None))

    def received(self, link: PeerLink, message_id: int, payload: bytes) -> None:
        """A message with one of our ids came from ``link``: to its extension."""
        extension = self._by_id.get(message_id)
        if extension is None:
            raise RemoteProtocolError(f"extension message {message_id} was never offered")
        extension.message(link, link.extensions.get(extension.name), payload)
