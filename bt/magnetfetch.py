"""A magnet link before its metadata: find peers, fetch the info dictionary, hand over.

:class:`MetadataFetch` is a small service per magnet, beside (not inside) the
torrents of a session. It announces to the magnet's trackers (one BEP 12 tier
per ``tr``) and dials its ``x.pe`` peers with the usual dialer, in a
metadata-only connection mode (``PeerConnection.ignore_pieces``: no pieces
exist yet, so piece messages are framed and dropped), speaks only the
extended handshake and ``ut_metadata`` (:class:`~bt.extensions.fetch.
MetadataFetcher`), and once the info dictionary hashes to the info-hash calls
``on_metadata(raw_info, peers, piece_layers)``; the session then builds the
torrent. Peers dialling us for a magnet still fetching join it the same way
(the session's listener finds it by either info-hash) and have their metadata
requests rejected.

A v2 or hybrid magnet (BEP 52, ``urn:btmh``) is checked with SHA-256 (a hybrid
one against both hashes), and its info dictionary lacks the piece layers a
.torrent carries: the fetch then asks its v2 peers for them by hash requests
(:mod:`bt.piecelayers`: chunks each proved against the file's pieces root)
before handing over. Metadata from a v1 magnet that turns out to be hybrid
needs v2 connections for that: its other peers are dialled again with the v2 bit.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from bt import bencode
from bt.candidates import Address, PeerSource
from bt.dialer import Dialer
from bt.errors import BtError, RemoteProtocolError
from bt.extensions.fetch import MetadataFetcher
from bt.extensions.handshake import EXTENDED_HANDSHAKE_ID, ExtendedHandshake
from bt.logs import Logger
from bt.magnet import MagnetLink
from bt.metainfo import parse_metainfo
from bt.peer.connection import HandshakeReceived
from bt.peer.hash_messages import Hashes, HashMessage, HashRequest
from bt.peer.messages import Extended
from bt.peer.protocol import PeerProtocol, TorrentPeerFactory
from bt.peersources import PeerSources
from bt.piecelayers import PieceLayerAssembler
from bt.policy.slots import ConnectionSlots
from bt.rate import RateMeter
from bt.swarm.extension import PeerExtensions
from bt.swarm.hashes import HashAsker
from bt.swarm.link import PeerLink
from bt.tracker.sources import Tracker, Trackers

__all__ = ["NO_PIECES", "MetadataFetch", "MetadataPeer", "torrent_from_metadata"]

#: Peers a fetch talks to at once: plenty for a few 16 KiB pieces.
FETCH_PEERS = 20
#: What a fetch's tracker announces as ``left``: unknown, but not a seed.
UNKNOWN_LEFT = 1 << 30
#: Seconds before peers that refused a piece-layer chunk are asked again.
LAYER_RETRY = 15.0


class _NoPieces:
    """The geometry of a torrent whose metadata is not known: no pieces to check."""

    num_pieces = 0

    def piece_size(self, index: int) -> int:
        return 0


NO_PIECES = _NoPieces()


def torrent_from_metadata(
    raw_info: bytes,
    tiers: Sequence[Sequence[str]],
    piece_layers: Mapping[bytes, bytes] | None = None,
) -> bytes:
    """A .torrent of the fetched info dictionary (kept byte for byte), the magnet's
    trackers and, for v2, the ``piece layers`` fetched by hash requests."""
    head: dict[bytes, Any] = {}
    if tiers:
        head[b"announce"] = tiers[0][0].encode()
        head[b"announce-list"] = [[url.encode() for url in tier] for tier in tiers]
    # Keys sort before b"info" (and b"piece layers" after it): the raw bytes stay untouched.
    tail = b"12:piece layers" + bencode.encode(dict(piece_layers)) if piece_layers else b""
    return bencode.encode(head)[:-1] + b"4:info" + raw_info + tail + b"e"


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
    #: BEP 52 hash messages, as a PeerLink has them (a v2 magnet's piece layers).
    send_hash_message = PeerLink.send_hash_message
    speaks_v2 = PeerLink.speaks_v2

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

    def on_hash_message(self, msg: HashMessage) -> None:
        self.fetch.hash_message(self, msg)

    on_hash_request = on_hashes = on_hash_reject = on_hash_message

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
        on_metadata: Callable[[bytes, list[Address], Mapping[bytes, bytes]], None],
        connect_timeout: float = 15.0,
        own_addresses: set[Address] | None = None,
    ) -> None:
        self.magnet = magnet
        #: The session's key for it (v1, else the truncated v2 hash) and all its hashes.
        self.info_hash: bytes = magnet.key
        self.info_hashes = magnet.info_hashes
        v2 = magnet.info_hash_v2
        #: The truncated v2 hash (BEP 52), once known: the link's, or the metadata's.
        self.v2_hash = v2[:20] if v2 is not None else None
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
        if magnet.info_hash is not None:  # SHA-1, and SHA-256 too for a hybrid link
            also = (("sha256", v2),) if v2 is not None else ()
            self.fetcher = MetadataFetcher(
                magnet.info_hash, reactor.seconds, self._fetched, also=also
            )
        else:  # a v2-only link: SHA-256 over the info dictionary (BEP 52)
            assert v2 is not None
            self.fetcher = MetadataFetcher(v2, reactor.seconds, self._fetched, hash_name="sha256")
        #: Hash requests for the piece layers, once the metadata is here (v2 only).
        self.hashes = HashAsker(reactor.seconds)
        self.layers: PieceLayerAssembler | None = None
        self._raw_info: bytes | None = None
        self._asking: dict[HashRequest, MetadataPeer] = {}
        self._refused: dict[HashRequest, set[MetadataPeer]] = {}
        self._retry_at = 0.0
        self.extensions = PeerExtensions([self.fetcher])
        self.peers: dict[MetadataPeer, None] = {}
        #: Every address that completed a handshake with us (status: "peers tried").
        self.tried: set[Address] = set()
        factory = MetadataPeerFactory(
            peer_id,
            self.info_hash,
            NO_PIECES,
            self,
            reactor,
            info_hashes=self.info_hashes,
            v2_hash=self.v2_hash,
        )
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
        now = self.reactor.seconds()
        self.extensions.tick(now)
        self.hashes.tick(now)
        if self.layers is not None and not self._asking and now >= self._retry_at:
            # every peer refused: ask them again (they may have it now), now and then
            self._refused.clear()
            self._ask_layers()
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
        if not self.running or (self.fetcher.metadata is not None and self.layers is None):
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
        self.hashes.lost(peer)
        for refused in self._refused.values():
            refused.discard(peer)
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
        self.layers = self._layer_plan(raw_info)
        if self.layers is None:
            self._hand_over(raw_info, {})
            return
        self._raw_info = raw_info
        self.log.info(
            "{name}: fetching {count} piece-layer chunk(s) by hash requests",
            name=self.name,
            count=len(self.layers.missing),
        )
        self._ask_layers()

    def _hand_over(self, raw_info: bytes, layers: Mapping[bytes, bytes]) -> None:
        peers = [address for peer in self.peers if (address := _dialable(peer)) is not None]
        # Not from inside the peer's message handler: the session stops this fetch.
        self.reactor.callLater(0, self.on_metadata, raw_info, peers, layers)

    # -- BEP 52: the piece layers of a v2 magnet ------------------------------

    def _layer_plan(self, raw_info: bytes) -> PieceLayerAssembler | None:
        """What piece layers the metadata needs (None: none, or it is no v2 torrent;
        metadata bt cannot use is handed over for the session to report)."""
        try:
            torrent = torrent_from_metadata(raw_info, ())
            metainfo = parse_metainfo(torrent, require_piece_layers=False)
        except (ValueError, BtError):
            return None
        if metainfo.info_hash_v2 is None:
            return None
        files = [(f.pieces_root, f.length) for f in metainfo.files if f.pieces_root is not None]
        layers = PieceLayerAssembler(files, metainfo.piece_length)
        if layers.done:
            return None
        if self.v2_hash is None:  # a v1 link: hash requests need v2 connections
            self._learn_v2(metainfo.info_hash_v2[:20])
        return layers

    def _learn_v2(self, v2_hash: bytes) -> None:
        """The metadata says the torrent has v2: dial again with the v2 bit."""
        self.v2_hash = v2_hash
        self.info_hashes = (self.info_hash, v2_hash)
        factory = self.dialer.factory
        factory.v2_hash, factory.info_hashes = v2_hash, self.info_hashes
        for peer in list(self.peers):
            if peer.protocol.candidate is not None:
                peer.drop("dialling again with the v2 bit for the piece layers")

    def hash_message(self, peer: MetadataPeer, msg: HashMessage) -> None:
        if isinstance(msg, HashRequest):
            peer.send_hash_message(msg.reject())  # we have nothing to prove yet
        else:
            self.hashes.received(peer, msg)

    def _ask_layers(self) -> None:
        layers = self.layers
        if layers is None or not self.running:
            return
        for request in layers.missing:
            if request in self._asking:
                continue
            refused = self._refused.get(request, set())
            peers = [
                peer
                for peer in self.peers
                if peer.speaks_v2 and peer not in refused and self.hashes.in_flight(peer) < 2
            ]
            if not peers:
                continue
            peer = min(peers, key=self.hashes.in_flight)
            self._asking[request] = peer
            self.hashes.ask(peer, request).addCallback(self._layer_answer, peer, request)

    def _layer_answer(self, msg: Hashes | None, peer: MetadataPeer, request: HashRequest) -> None:
        self._asking.pop(request, None)
        layers = self.layers
        if layers is None:
            return
        if msg is None or not layers.accept(msg):
            self._refused.setdefault(request, set()).add(peer)
            self._retry_at = self.reactor.seconds() + LAYER_RETRY
            if msg is not None:
                peer.drop("sent a piece layer that does not prove its pieces root")
        if layers.done:
            assert self._raw_info is not None
            self.layers = None
            self._hand_over(self._raw_info, layers.layers())
            return
        self._ask_layers()


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
