"""Dialer: one torrent's outgoing connections, from candidate addresses to handshakes.

It owns the candidate pool (with its backoff and bans) and the attempts in
flight, and draws every attempt from the session's shared connection slots.
A connection that completes its handshake joins the torrent through the
usual attach path of the protocol; the dialer only hears that it arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.internet.protocol import ClientFactory

from bt.candidates import Address, CandidatePool, PeerSource
from bt.logs import Logger
from bt.peer.protocol import SELF_CONNECTION, TorrentPeerFactory
from bt.policy.slots import ConnectionSlots

__all__ = ["Dialer"]


class DialingReactor(Protocol):
    """The two reactor features dialling needs: a clock and TCP connections."""

    def seconds(self) -> float: ...
    def connectTCP(
        self, host: str, port: int, factory: ClientFactory, timeout: float = ...
    ) -> Any: ...


class Dialer:
    """Connects to candidates while the torrent has room and the session has slots."""

    log = Logger()

    def __init__(
        self,
        reactor: DialingReactor,
        slots: ConnectionSlots,
        factory: TorrentPeerFactory,
        room: Callable[[], int],
        *,
        connect_timeout: float,
        private: bool = False,
        name: str = "",
        candidates: CandidatePool | None = None,
        skip_seeds: Callable[[], bool] = lambda: False,
        own_addresses: set[Address] | None = None,
    ) -> None:
        """``room()`` is how many more peers the torrent wants now (0: do not dial);
        while ``skip_seeds()`` (the torrent is a seed itself) known seeds are not dialled.

        ``factory`` makes the factory of each attempt (its protocols' attacher is
        the torrent); a private torrent (BEP 27) takes addresses only from its
        trackers. ``own_addresses`` are the session's own listening addresses as
        learnt by any of its torrents (a tracker hands them out): never dialled.
        """
        self.reactor = reactor
        self.slots = slots
        self.factory = factory
        self.room = room
        self.connect_timeout = connect_timeout
        self.private = private
        self.name = name
        self.candidates = candidates if candidates is not None else CandidatePool()
        self.skip_seeds = skip_seeds
        self.own_addresses = own_addresses if own_addresses is not None else set()
        #: Addresses dialled whose handshake has not arrived yet.
        self.in_flight: set[Address] = set()
        #: Addresses learnt under another of the torrent's info-hashes (a hybrid's v2
        #: announce, BEP 52): dialled with that hash.
        self.dial_hashes: dict[Address, bytes] = {}

    # -- what the torrent tells the dialer ------------------------------------

    def add(
        self,
        peers: Sequence[tuple[str, int]],
        source: str = PeerSource.TRACKER,
        info_hash: bytes | None = None,
    ) -> None:
        """Addresses from a tracker (or PEX, DHT, ...); connect to some at once.

        ``info_hash``: the torrent's other hash they were announced under (a
        hybrid's truncated v2 one): they are dialled with it.
        """
        if self.private and source != PeerSource.TRACKER:
            self.log.debug(
                "{name}: private torrent, ignoring {count} peers from {source}",
                name=self.name,
                count=len(peers),
                source=source,
            )
            return
        own = self.own_addresses
        added = 0
        for peer in peers:
            if peer not in own and self.candidates.add(peer, source):
                added += 1
                if info_hash is not None and len(self.dial_hashes) < self.candidates.limit:
                    self.dial_hashes[peer] = info_hash
        if added:
            self.log.debug("{name}: {added} new peer addresses", name=self.name, added=added)
        self.connect_more()

    def connect_more(self) -> None:
        """Dial due candidates, as many as the torrent's room and the free slots allow."""
        room = self.room() - len(self.in_flight)
        free = self.slots.free
        if free is not None:
            room = min(room, free)
        due = self.candidates.take(self.reactor.seconds(), room, skip_seeds=self.skip_seeds())
        for address in due:
            if address in self.own_addresses:
                self.candidates.ban(address)  # another torrent found it is us
                continue
            if not self.slots.acquire():
                self.candidates.failed(address, self.reactor.seconds())
                break
            self._dial(address)

    def arrived(self, address: Address) -> None:
        """A handshake came from ``address``: it is no longer an attempt in flight.

        Whether the torrent then takes the peer or refuses it, a later close is
        not counted as a failed attempt (see :meth:`outgoing_closed`).
        """
        self.in_flight.discard(address)

    def joined(self, address: Address) -> None:
        """The torrent took the peer: a good address, its failures forgotten."""
        self.candidates.connected(address)

    def left(self, address: Address, *, seed: bool = False) -> None:
        """A peer of the torrent is gone: try its address again later, unless banned.

        ``seed``: it had every piece, so a seeding torrent need not dial it again.
        """
        if seed:
            self.candidates.mark_seed(address)
        if not self.candidates.is_banned(address):
            self.candidates.failed(address, self.reactor.seconds())

    def ban(self, address: Address) -> bool:
        """Never dial (or accept) ``address`` again; False if it was banned already."""
        if self.candidates.is_banned(address):
            return False
        self.candidates.ban(address)
        return True

    def is_banned(self, address: Address) -> bool:
        return self.candidates.is_banned(address)

    # -- what an attempt tells the dialer -------------------------------------

    def outgoing_closed(self, address: Address, reason: str | None = None) -> None:
        """An outgoing connection ended; if it never joined (bad handshake), retry later."""
        self.slots.release()
        if reason == SELF_CONNECTION:
            self.candidates.ban(address)  # our own listening address: never dial it again
            if address not in self.own_addresses:
                self.own_addresses.add(address)
                self.log.info(
                    "{name}: {host}:{port} is our own address (a tracker gave it);"
                    " no torrent will dial it again",
                    name=self.name,
                    host=address[0],
                    port=address[1],
                )
        elif address in self.in_flight:
            self.log.debug(
                "{name}: connection to {host}:{port} closed before the handshake: {reason}",
                name=self.name,
                host=address[0],
                port=address[1],
                reason=reason or "closed",
            )
        if address in self.in_flight:
            self.in_flight.discard(address)
            self.candidates.failed(address, self.reactor.seconds())

    def connection_failed(self, address: Address, reason: str) -> None:
        """The TCP connection was never made: give the slot back, back off the address."""
        self.slots.release()
        self.in_flight.discard(address)
        self.candidates.failed(address, self.reactor.seconds())
        self.log.debug(
            "{name}: cannot connect to {host}:{port}: {reason}",
            name=self.name,
            host=address[0],
            port=address[1],
            reason=reason,
        )

    def _dial(self, address: Address) -> None:
        self.in_flight.add(address)
        host, port = address
        attempt = self.factory.for_candidate(
            address,
            info_hash=self.dial_hashes.get(address),
            on_closed=lambda reason: self.outgoing_closed(address, reason),
            on_failed=lambda reason: self.connection_failed(address, reason),
        )
        self.reactor.connectTCP(host, port, attempt, timeout=self.connect_timeout)
