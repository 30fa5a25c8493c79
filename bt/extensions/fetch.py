"""BEP 9 ``ut_metadata`` fetched: a magnet's info dictionary from several peers at once.

:class:`MetadataFetcher` is the peer extension of a magnet still fetching (see
:mod:`bt.magnetfetch`). Each peer whose extended handshake offers
``ut_metadata`` and a ``metadata_size`` is asked for pieces, a few at a time
(:class:`~bt.extensions.metadata_assembly.MetadataAssembler` decides which);
the first size heard is the one assembled (bounded by ``max_size``), a peer
naming another is not asked unless that size fails (its peers all gone, or a
hash mismatch): then the size most peers name is tried next. A reject sends
the piece to someone else, a peer that leaves a request unanswered too long is
dropped, and metadata that does not hash to the info-hash drops the peers that
sent it: nothing from a stranger is kept unverified. Requests for our
metadata are rejected: we have none yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zope.interface import implementer

from bt.extensions.handshake import ExtendedHandshake
from bt.extensions.metadata import METADATA_EXTENSION
from bt.extensions.metadata_assembly import (
    MAX_METADATA_SIZE,
    REQUEST_TIMEOUT,
    MetadataAssembler,
    MetadataHashError,
)
from bt.extensions.metadata_messages import (
    MetadataData,
    MetadataReject,
    MetadataRequest,
    encode_metadata_message,
    parse_metadata_message,
)
from bt.logs import Logger
from bt.swarm.extension import IPeerExtension

__all__ = ["MetadataFetcher"]


@implementer(IPeerExtension)
class MetadataFetcher:
    """Gathers one info dictionary; ``done(raw_info)`` is called once, when it hashes right."""

    name = METADATA_EXTENSION
    log = Logger()

    def __init__(
        self,
        info_hash: bytes,
        clock: Callable[[], float],
        done: Callable[[bytes], None],
        *,
        max_size: int = MAX_METADATA_SIZE,
        request_timeout: float = REQUEST_TIMEOUT,
        hash_name: str = "sha1",
        also: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        """``hash_name`` and ``also``: how the metadata is checked (see
        ``MetadataAssembler``: SHA-256 for a v2 magnet, both hashes for a hybrid one)."""
        self.info_hash = info_hash
        self._checks = {"hash_name": hash_name, "also": also}
        self.clock = clock
        self.done = done
        self.max_size = max_size
        self.request_timeout = request_timeout
        self.assembler: MetadataAssembler | None = None
        #: The peers we ask: they offered ut_metadata with the size being assembled.
        self.sources: dict[Any, None] = {}
        #: Every peer that offered ut_metadata, with the size it named.
        self._offers: dict[Any, int] = {}
        #: The verified info dictionary, once every piece is here.
        self.metadata: bytes | None = None

    @property
    def size(self) -> int | None:
        return self.assembler.size if self.assembler is not None else None

    @property
    def received(self) -> int:
        return self.assembler.received if self.assembler is not None else 0

    def handshake(self) -> dict[str, Any]:
        return {}

    def attached(self, link: Any) -> None:
        return None

    def handshake_received(self, link: Any, state: object, handshake: ExtendedHandshake) -> None:
        size = handshake.metadata_size
        if self.metadata is not None or not handshake.messages.get(self.name) or size is None:
            return
        if not 0 < size <= self.max_size:
            # Checked by the assembler too; refused before it is the one being assembled.
            self._assembler(size)
        self._offers[link] = size
        if self.assembler is None:
            self.assembler = self._assembler(size)
        elif size != self.assembler.size:
            self.log.debug(
                "peer {address} says the metadata has {size} bytes, not {ours}; not asking it",
                address=link.address,
                size=size,
                ours=self.assembler.size,
            )
            return
        self.sources[link] = None
        self._ask(link)

    def message(self, link: Any, state: object, payload: bytes) -> None:
        message = parse_metadata_message(payload)
        if isinstance(message, MetadataRequest):
            link.send_extended(self.name, encode_metadata_message(MetadataReject(message.piece)))
            return
        if self.assembler is None or self.metadata is not None or link not in self.sources:
            return  # an answer we never asked for
        if isinstance(message, MetadataReject):
            self.assembler.rejected(link, message.piece)
            self._ask_everyone()
        elif isinstance(message, MetadataData):
            self._data(link, message)

    def _data(self, link: Any, message: MetadataData) -> None:
        assert self.assembler is not None
        try:
            whole = self.assembler.accept(link, message)  # a wrong piece: RemoteProtocolError
        except MetadataHashError as exc:
            self.log.warn(
                "metadata for {hash} does not match its info-hash; dropping {count} peer(s)",
                hash=self.info_hash.hex(),
                count=len(exc.peers),
            )
            for peer in exc.peers:
                self.sources.pop(peer, None)
                self._offers.pop(peer, None)
                peer.drop("sent metadata that does not match the info-hash")
            if not self.sources:
                self._next_size()
            self._ask_everyone()
            return
        if whole is None:
            self._ask(link)
            return
        self.metadata = whole
        self.sources.clear()
        self.done(whole)

    def lost(self, link: Any, state: object) -> None:
        self.sources.pop(link, None)
        self._offers.pop(link, None)
        if self.assembler is not None and self.metadata is None:
            self.assembler.peer_lost(link)
            if not self.sources:
                self._next_size()
            self._ask_everyone()

    def _next_size(self) -> None:
        """No peer is left for the size being assembled: take the size most peers name."""
        self.assembler = None
        if not self._offers:
            return
        sizes = list(self._offers.values())
        size = max(sizes, key=sizes.count)
        self.assembler = self._assembler(size)
        self.sources = {link: None for link, offered in self._offers.items() if offered == size}

    def _assembler(self, size: int) -> MetadataAssembler:
        return MetadataAssembler(self.info_hash, size, max_size=self.max_size, **self._checks)

    def tick(self, now: float) -> None:
        if self.assembler is None or self.metadata is not None:
            return
        for peer in self.assembler.stalled(now, self.request_timeout):
            self.sources.pop(peer, None)
            peer.drop(f"no metadata piece within {self.request_timeout:g} s")
        self._ask_everyone()

    def _ask_everyone(self) -> None:
        for link in list(self.sources):
            self._ask(link)

    def _ask(self, link: Any) -> None:
        assembler = self.assembler
        if assembler is None or self.metadata is not None:
            return
        for piece in assembler.next_requests(link):
            if not link.send_extended(self.name, encode_metadata_message(MetadataRequest(piece))):
                return
            assembler.asked(link, piece, self.clock())
