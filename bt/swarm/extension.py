"""Peer extensions (BEP 10): how metadata exchange, PEX and the like join a swarm.

An extension is a small object with a name (its message name in the extended
handshake's ``m`` dictionary), a contribution to our extended handshake, and
callbacks: a peer attached (it returns its state for that peer), the peer's
extended handshake arrived, one of its messages arrived, the peer was lost,
and a tick once a second. Each peer keeps one state object per extension
(``link.extensions[name]``). :class:`PeerExtensions` gives each extension its
message id, speaks the extended handshake (message 20, id 0) and routes the
rest; an extension never edits the swarm or the torrent to join.

What a peer does with the protocol is checked here once: its handshake is
parsed by :mod:`bt.extensions.handshake`, no extended message may exceed
:data:`~bt.extensions.handshake.MAX_EXTENDED_MESSAGE`, and a message with an id
we never offered is ignored (a peer that names extensions we do not know is
normal, and so is a late message of one it just disabled).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from zope.interface import Attribute, Interface

from bt import __version__
from bt.errors import RemoteProtocolError
from bt.extensions.handshake import (
    EXTENDED_HANDSHAKE_ID,
    MAX_EXTENDED_MESSAGE,
    ExtendedHandshake,
    parse_extended_handshake,
)
from bt.logs import Logger

if TYPE_CHECKING:
    from bt.swarm.link import PeerLink

__all__ = ["CLIENT_NAME", "IPeerExtension", "PeerExtensions"]

#: What we say we are in the extended handshake's ``v``.
CLIENT_NAME = f"bt {__version__}"
#: Requests we let a peer queue with us (``reqq``): what our upload queue holds.
REQUEST_QUEUE = 500


class IPeerExtension(Interface):
    """One extension protocol spoken with peers."""

    name = Attribute("Its message name in the extended handshake, such as 'ut_pex'.")

    def handshake() -> dict[str, Any]:
        """Fields this extension sets in our extended handshake (``ExtendedHandshake``
        field names, such as ``metadata_size``)."""

    def attached(link: PeerLink) -> object:
        """A peer joined the swarm: return this extension's state for it."""

    def handshake_received(link: PeerLink, state: object, handshake: ExtendedHandshake) -> None:
        """The peer's extended handshake (or an update of it) arrived."""

    def message(link: PeerLink, state: object, payload: bytes) -> None:
        """The peer sent one of this extension's messages; a bad one raises
        ``RemoteProtocolError`` (that peer is dropped)."""

    def lost(link: PeerLink, state: object) -> None:
        """The peer left; ``state`` is what ``attached`` returned."""

    def tick(now: float) -> None:
        """Once a second while the swarm runs."""


class PeerExtensions:
    """The extensions plugged into one swarm, with the message ids we give them."""

    log = Logger()

    def __init__(self, extensions: Iterable[Any] = ()) -> None:
        self._by_id: dict[int, Any] = {}
        for extension in extensions:
            self.register(extension)

    def __iter__(self) -> Any:
        return iter(self._by_id.values())

    def register(self, extension: Any) -> None:
        """Add an extension; its id is its place in the order of registration (from 1)."""
        if any(e.name == extension.name for e in self._by_id.values()):
            raise ValueError(f"peer extension {extension.name!r} registered twice")
        self._by_id[len(self._by_id) + 1] = extension

    def handshake(
        self, *, port: int | None = None, your_ip: str | None = None
    ) -> ExtendedHandshake:
        """Our extended handshake: ``m`` names each extension's id; each adds its fields."""
        fields: dict[str, Any] = {}
        for extension in self._by_id.values():
            fields.update(extension.handshake())
        return ExtendedHandshake(
            messages={e.name: ident for ident, e in self._by_id.items()},
            port=port,
            client=CLIENT_NAME,
            your_ip=your_ip,
            request_queue=REQUEST_QUEUE,
            **fields,
        )

    def attached(self, link: PeerLink) -> None:
        for extension in self._by_id.values():
            link.extensions[extension.name] = extension.attached(link)

    def lost(self, link: PeerLink) -> None:
        for extension in self._by_id.values():
            extension.lost(link, link.extensions.pop(extension.name, None))

    def tick(self, now: float) -> None:
        for extension in self._by_id.values():
            extension.tick(now)

    def received(self, link: PeerLink, message_id: int, payload: bytes) -> None:
        """Extended message ``message_id`` (one of our ids, or 0: the handshake) from ``link``."""
        if len(payload) > MAX_EXTENDED_MESSAGE:
            raise RemoteProtocolError(
                f"extended message {message_id} of {len(payload)} bytes,"
                f" over {MAX_EXTENDED_MESSAGE}"
            )
        if message_id == EXTENDED_HANDSHAKE_ID:
            self._handshake_received(link, parse_extended_handshake(payload))
            return
        extension = self._by_id.get(message_id)
        if extension is None:
            self.log.debug(
                "peer {address} sent extended message {id}, which we never offered",
                address=link.address,
                id=message_id,
            )
            return
        extension.message(link, link.extensions.get(extension.name), payload)

    def _handshake_received(self, link: PeerLink, handshake: ExtendedHandshake) -> None:
        # An update merges into what the peer said before; an id of 0 turns one off.
        link.peer_extensions = (link.peer_extensions or ExtendedHandshake()).updated(handshake)
        for extension in self._by_id.values():
            extension.handshake_received(
                link, link.extensions.get(extension.name), link.peer_extensions
            )
