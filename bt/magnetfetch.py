"""A magnet link before its metadata: find peers, fetch the info dictionary, hand over.

:class:`MetadataFetch` is a small service per magnet, beside (not inside) the
torrents of a session. It announces to the magnet's trackers (one BEP 12 tier
per ``tr``) and dials its ``x.pe`` peers with the usual dialer, in a
metadata-only connection mode (``PeerConnection.ignore_pieces``: no pieces
exist yet, so piece messages are framed and dropped), speaks only the
extended handshake and ``ut_metadata`` (:class:`~bt.extensions.fetch.
MetadataFetcher`), and once the info dictionary hashes to the info-hash calls
``on_metadata(raw_info, peers)``; the session then builds the torrent. Peers
dialling us for a magnet still fetching join it the same way (the session's
listener finds it by info-hash) and have their metadata requests rejected.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from bt import bencode
from bt.candidates import Address, PeerSource
from bt.dialer import Dialer
from bt.errors import RemoteProtocolError
from bt.extensions.fetch import MetadataFetcher
from bt.extensions.handshake import EXTENDED_HANDSHAKE_ID, ExtendedHandshake
from bt.logs import Logger
from bt.magnet import MagnetLink
from bt.peer.connection import HandshakeReceived
from bt.peer.messages import Extended
from bt.peer.protocol import PeerProtocol, TorrentPeerFactory
from bt.peersources import PeerSources
from bt.policy.slots import ConnectionSlots
from bt.rate import RateMeter
from bt.swarm.extension import PeerExtensions
from bt.swarm.link import PeerLink
from bt.tracker.sources import Tracker, Trackers

__all__ = ["NO_PIECES", "MetadataFetch", "MetadataPeer", "torrent_from_metadata"]

#: Peers a fetch talks to at once: plenty for a few 16 KiB pieces.
FETCH_PEERS = 20
#: What a fetch's tracker announces as ``left``: unknown, but not a seed.
UNKNOWN_LEFT = 1 << 30


class _NoPieces:
    """The geometry of a torrent whose metadata is not known: no pieces to check."""

    num_pieces = 0

    def piece_size(self, index: int) -> int:
        return 0


NO_PIECES = _NoPieces()


def torrent_from_metadata(raw_info: bytes, tiers: Sequence[Sequence[str]]) -> bytes:
    """A .torrent of the fetched info dictionary (kept byte for byte) and the magnet's trackers."""
    head: dict[bytes, Any] = {}
    if tiers:
        head[b"announce"] = tiers[0][0].encode()
        head[b"announce-list"] = [[url.encode() for url in tier] for tier in tiers]
    # Keys sort before b"info", so the raw bytes go last, untouched.
    return bencode.encode(head)[:-1] + b"4:info" + raw_info + b"e"


class MetadataPeer:
    """One peer of a magnet still fetching: only its extended messages matter."""

    def __init__(self, fetch: MetadataFetch, protocol: PeerProtocol, address: Address) -> None:
        self.fetch = fetch
        self.protocol = protocol
        self.address = address
        self.closed = False
        #: Per-peer state of each peer extension (as a PeerLink has).
        self.extensions: dict[str, object] = {}
        self.peer_extensions: ExtendedHandshake | None = None

    def __repr__(self) -> str:
        return f"<MetadataPeer {self.address[0]}:{self.address[1]}>"

    #: Under the peer's id for the extension, as a PeerLink sends (same attributes).
    send_extended = PeerLink.send_extended

    def drop(self, why: str) -> None:
        self.protocol.drop(why)

    # -- events from the protocol: piece messages never get here (ignore_pieces) --

    def _ignored(self, msg: object) -> None:
        pass

    on_choke = on_unchoke = on_interested = on_not_interested = _ignored
    on_have = on_bitfield = on_request = on_piece = on_cancel = _ignored
    on_reject_request = on_allowed_fast = on_suggest_piece = _ignored  # BEP 6

    def on_extended(self, msg: Extended) -> None:
        self.fetch.extensions.received(self, msg.extended_id, msg.payload)

    def on_connection_lost(self, reason: str) -> None:
        self.closed = True
        self.fetch.peer_lost(self, reason)


class MetadataPeerFactory(TorrentPeerFactory):
    """Outgoing connections of a fetch: handshakes as usual, then metadata only."""

    def buildProtocol(self, addr: Any) -> PeerProtocol:
        protocol = super().buildProtocol(addr)
        protocol.connection.ignore_pieces()
        return protocol


class MetadataFetch(Service):
    """One magnet's search for its info dictionary."""

    log = Logger()

    def __init__(
        self,
        magnet: MagnetLink,
        *,
        peer_id: bytes,
        port: int,
        reactor: Any,
        rng: random.Random,
        slots: ConnectionSlots,
        trackers: Sequence[Tracker],
        on_metadata: Callable[[bytes, list[Address]], None],
        connect_timeout: float = 15.0,
        own_addresses: set[Address] | None = None,
    ) -> None:
        assert magnet.info_hash is not None
        self.magnet = magnet
        self.info_hash: bytes = magnet.info_hash
        self.name = magnet.display_name
        self.peer_id = peer_id
        self.port = port
        self.announce_ipv6: str | None = None
        self.reactor = reactor
        self.on_metadata = on_metadata
        #: What the session's listener binds an incoming peer's connection to.
        self.geometry = NO_PIECES
        now = reactor.seconds()
        self.upload_rate, self.download_rate = RateMeter(now), RateMeter(now)
        self.fetcher = MetadataFetcher(self.info_hash, reactor.seconds, self._fetched)
        self.extensions = PeerExtensions([self.fetcher])
        self.peers: dict[MetadataPeer, None] = {}
        #: Every address that completed a handshake with us (status: "peers tried").
        self.tried: set[Address] = set()
        factory = MetadataPeerFactory(peer_id, self.info_hash, NO_PIECES, self, reactor)
        self.dialer = Dialer(
            reactor,
            slots,
            factory,
            lambda: FETCH_PEERS - len(self.peers) if self.running else 0,
            connect_timeout=connect_timeout,
            name=self.name,
            own_addresses=own_addresses,
        )
        self.trackers = Trackers(trackers, reactor, rng, self, self.dialer.add)
        self.sources = PeerSources(self.name, self.trackers.announcers)
        self._tick_call: Any = None

    def port_now(self) -> int:
        """The listen port (set by the session once it listens)."""
        return self.port

    @property
    def bytes_left(self) -> int:
        return UNKNOWN_LEFT

    @property
    def tracker_errors(self) -> int:
        return sum(a.errors for a in self.trackers.announcers)

    def startService(self) -> None:
        super().startService()
        self.log.info("{name}: fetching metadata", name=self.name)
        self.dialer.add(list(self.magnet.peers), PeerSource.MAGNET)
        self.sources.start()
        self._tick_call = self.reactor.callLater(1.0, self._tick)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        if self._tick_call is not None and self._tick_call.active():
            self._tick_call.cancel()
        self._tick_call = None
        for peer in list(self.peers):
            peer.drop("metadata fetch stopped")
            self.peer_lost(peer, "metadata fetch stopped")
        stopped = self.sources.stop(every=True)
        return stopped.addCallback(lambda _: self.trackers.close())

    def _tick(self) -> None:
        self._tick_call = self.reactor.callLater(1.0, self._tick)
        self.extensions.tick(self.reactor.seconds())
        self.dialer.connect_more()

    # -- peers ----------------------------------------------------------------

    def attach(self, protocol: PeerProtocol, handshake: HandshakeReceived) -> MetadataPeer:
        """A handshake completed (ours or theirs): the peer may give us metadata."""
        protocol.connection.ignore_pieces()
        address: Address = protocol.candidate or _peer_address(protocol)
        self.dialer.arrived(address)
        refusal = self._refusal(protocol)
        if refusal is not None:
            self.dialer.left(address)
            raise RemoteProtocolError(refusal)
        peer = MetadataPeer(self, protocol, address)
        self.peers[peer] = None
        self.tried.add(address)
        self.dialer.joined(address)
        self.extensions.attached(peer)
        shake = self.extensions.handshake(port=self.port or None)
        protocol.send(Extended(EXTENDED_HANDSHAKE_ID, shake.encode()))
        return peer

    def _refusal(self, protocol: PeerProtocol) -> str | None:
        if not self.running or self.fetcher.metadata is not None:
            return "metadata fetch is over"
        if not protocol.connection.extended:
            return "no extension protocol (BEP 10): it cannot send metadata"
        if len(self.peers) >= FETCH_PEERS:
            return "too many peers"
        return None

    def peer_lost(self, peer: MetadataPeer, reason: str) -> None:
        if peer not in self.peers:
            return
        del self.peers[peer]
        self.extensions.lost(peer)
        self.dialer.left(peer.address)
        self.log.debug(
            "{name}: peer {address} gone: {reason}",
            name=self.name,
            address=peer.address,
            reason=reason,
        )

    def _fetched(self, raw_info: bytes) -> None:
        self.log.info(
            "{name}: metadata fetched ({size} bytes) from {count} peer(s)",
            name=self.name,
            size=len(raw_info),
            count=len(self.peers),
        )
        peers = [address for peer in self.peers if (address := _dialable(peer)) is not None]
        # Not from inside the peer's message handler: the session stops this fetch.
        self.reactor.callLater(0, self.on_metadata, raw_info, peers)


def _dialable(peer: MetadataPeer) -> Address | None:
    """Where the torrent can dial ``peer`` again: the address we dialled, or for a
    peer that dialled us its listening port (``p``), if it said."""
    if peer.protocol.candidate is not None:
        return peer.address
    port = peer.peer_extensions.port if peer.peer_extensions is not None else None
    return (peer.address[0], port) if port else None


def _peer_address(protocol: PeerProtocol) -> Address:
    peer = protocol.transport.getPeer()
    return (getattr(peer, "host", "?"), getattr(peer, "port", 0))
