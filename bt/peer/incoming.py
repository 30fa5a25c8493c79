"""The listening side: incoming peers for every torrent of a session.

A connection counts against the half-open budget until its handshake names a
torrent; only then does it take a connection slot. Kept apart from the wire
protocol itself (bt.peer.protocol), which both sides share.
"""

from __future__ import annotations

from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet import interfaces
from twisted.internet.protocol import Factory

from bt.errors import RemoteProtocolError
from bt.logs import Logger
from bt.peer.connection import HandshakeReceived, PeerConnection
from bt.peer.protocol import DHTPort, PeerDelegate, PeerProtocol, reserved_bits
from bt.policy.halfopen import HalfOpenBudget
from bt.policy.slots import ConnectionSlots

__all__ = ["HALF_OPEN_LIMIT", "HALF_OPEN_TIMEOUT", "IncomingPeerFactory", "TorrentLookup"]

#: Incoming connections still waiting for their handshake, at most (oldest closed first).
HALF_OPEN_LIMIT = 64
#: Seconds an incoming connection has to send its handshake (a real peer sends it at once).
HALF_OPEN_TIMEOUT = 10.0
#: How far the half-open budget may briefly run over while the newest connections
#: wait for their first read: two accept batches, each at most about the listen
#: backlog (511) that Twisted drains per wake-up. See bt.policy.halfopen.
HALF_OPEN_OVERFLOW = 1024
#: Seconds between two turns of the half-open budget while connections arrive. A turn
#: once per reactor pass (microseconds apart while idle) evicted the oldest of a burst
#: of 200 peers connecting at once before their handshakes, a few ms behind, could be
#: read: only 64 of 200 got in (bench/scale.py peers). A turn is still at least one pass.
HALF_OPEN_TURN = 0.25
#: Seconds between two warnings that the half-open budget is overflowing.
HALF_OPEN_REPORT_EVERY = 60.0


class TorrentLookup(TypingProtocol):
    """Finds the swarm (an attacher with its geometry) an incoming handshake names."""

    def torrent_for(self, info_hash: bytes) -> Any: ...


class IncomingPeerFactory(Factory):
    """Accepts incoming peers for every torrent of a session, dispatching by info-hash.

    A connection counts against the half-open budget until its handshake
    arrives, and only then takes one of the session's connection slots: a
    flood of connections that never speak evicts its own oldest members and
    leaves the slots to real peers.
    """

    protocol = PeerProtocol
    noisy = False
    log = Logger()

    def __init__(
        self,
        our_peer_id: bytes,
        lookup: TorrentLookup,
        clock: interfaces.IReactorTime,
        slots: ConnectionSlots | None = None,
        *,
        half_open_limit: int = HALF_OPEN_LIMIT,
        half_open_timeout: float = HALF_OPEN_TIMEOUT,
        half_open_overflow: int = HALF_OPEN_OVERFLOW,
        dht: DHTPort | None = None,
    ) -> None:
        self.our_peer_id = our_peer_id
        self.dht = dht
        self.lookup = lookup
        self.clock = clock
        self.slots = slots or ConnectionSlots(None)
        self.half_open: HalfOpenBudget[PeerProtocol] = HalfOpenBudget(
            half_open_limit, half_open_overflow
        )
        self.half_open_timeout = half_open_timeout
        self._turn_call: Any = None
        self._evicted_unreported = 0
        self._last_report: float | None = None

    def buildProtocol(self, addr: Any) -> PeerProtocol:
        protocol = PeerProtocol(
            PeerConnection(self.our_peer_id, reserved=reserved_bits(self.dht)),
            self,
            self.clock,
            handshake_timeout=self.half_open_timeout,
        )
        protocol.factory = self
        protocol.dht = self.dht
        protocol.quiet_handshake = True
        protocol.on_closed = lambda: self.half_open.leave(protocol)
        self._evict(self.half_open.admit(protocol))
        if self._turn_call is None:
            self._turn_call = self.clock.callLater(HALF_OPEN_TURN, self._next_turn)
        return protocol

    def stopFactory(self) -> None:
        """The listener is gone: no more turns to count."""
        if self._turn_call is not None and self._turn_call.active():
            self._turn_call.cancel()
        self._turn_call = None

    def _next_turn(self) -> None:
        """Every HALF_OPEN_TURN seconds while connections arrive (see HalfOpenBudget)."""
        self._turn_call = None
        self._evict(self.half_open.next_turn())
        if self.half_open.settling:
            self._turn_call = self.clock.callLater(HALF_OPEN_TURN, self._next_turn)

    def _evict(self, oldest: list[PeerProtocol]) -> None:
        """Close the oldest connections without a handshake; warn at most once a minute."""
        if not oldest:
            return
        for protocol in oldest:
            protocol.drop(
                f"half-open budget full: oldest of {self.half_open.limit} without a handshake",
                quiet=True,
            )
        self._evicted_unreported += len(oldest)
        now = self.clock.seconds()
        if self._last_report is None or now - self._last_report >= HALF_OPEN_REPORT_EVERY:
            self.log.warn(
                "half-open budget of {limit} full: closed {count} incoming connection(s) "
                "without a handshake, oldest first (a flood of silent connections?)",
                limit=self.half_open.limit,
                count=self._evicted_unreported,
            )
            self._last_report = now
            self._evicted_unreported = 0

    def attach(self, protocol: PeerProtocol, handshake: HandshakeReceived) -> PeerDelegate:
        """The handshake arrived: out of the half-open budget, into a connection slot."""
        self.half_open.leave(protocol)
        torrent = self.lookup.torrent_for(handshake.info_hash)
        if torrent is None:
            raise RemoteProtocolError(f"unknown info-hash {handshake.info_hash.hex()}")
        if not self.slots.acquire():
            raise RemoteProtocolError(f"all {self.slots.limit} connection slots are taken")
        protocol.on_closed = self.slots.release
        protocol.bind(handshake.info_hash, torrent.geometry, getattr(torrent, "v2_hash", None))
        return torrent.attach(protocol, handshake)
