"""Swarm: the live peers of one torrent and every decision made about them.

It attaches and loses peers, decides interest, runs the choke round, applies
the rate limits, bans liars, and collects the blocks of unfinished pieces. It
builds the picker and, with its links, is what drives it for peers. It speaks
to its torrent through a narrow :class:`SwarmOwner`: upward,
``on_piece_complete(index, blocks, sources)`` (the torrent runs the completion
chain) and ``refusal()``; to the damage repair through :class:`Damage`;
downward, the torrent calls :meth:`Swarm.have`, :meth:`Swarm.lose` and
:meth:`Swarm.close_all`.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from bt.bitfield import Bitfield, set_indexes
from bt.candidates import Address, PeerSource
from bt.dialer import Dialer
from bt.errors import RemoteProtocolError, StorageError
from bt.extensions.handshake import ExtendedHandshake
from bt.geometry import Block
from bt.logs import Logger
from bt.metainfo import Metainfo
from bt.peer.connection import HandshakeReceived
from bt.peer.messages import Piece
from bt.peer.protocol import PeerProtocol, TorrentPeerFactory
from bt.policy.blame import Blame
from bt.policy.choker import Choker, PeerSnapshot
from bt.policy.picker import PiecePicker
from bt.policy.ratelimit import RateLimit, TokenBucket
from bt.rate import RateMeter
from bt.status import UNCHANGED
from bt.storage.readcache import PieceReadCache
from bt.swarm.badblocks import BadBlockFinder, BlockHashes, no_block_hashes
from bt.swarm.extension import PeerExtensions
from bt.swarm.link import PeerLink, Serving
from bt.torrentconfig import SharedLimits, TorrentConfig

__all__ = ["CHOKE_INTERVAL", "Swarm", "SwarmOwner"]

#: Seconds (ticks) between choking rounds, as in BEP 3 and every reference client.
CHOKE_INTERVAL = 10


class SwarmOwner(Protocol):
    """What a swarm asks of its torrent."""

    #: Where we listen for peers (told to peers in the extended handshake).
    port: int

    def refusal(self) -> str | None:
        """Why no peer may join now (the torrent is not in the swarm), or None."""

    def on_piece_complete(self, index: int, blocks: list[bytes], sources: dict[int, Any]) -> None:
        """Every block of ``index`` arrived: verify and write it, then call ``have``."""

    def peer_joined(self) -> None:
        """A peer joined (an idle torrent's ticks may be parked: see bt.ticker)."""


class Damage(Protocol):
    """What a swarm tells of data damaged under us, and asks of it."""

    def read_failed(self, index: int, error: StorageError) -> None:
        """A block of ``index`` could not be read for a peer (which was dropped)."""

    def was_lost(self, index: int) -> bool:
        """Was ``index`` announced to peers and its data lost since?"""


class DiskPressure(Protocol):
    """The part of the disk queue a swarm uses: back-pressure on its peers, and reads."""

    def read(self, index: int, begin: int, length: int) -> Any: ...
    def add_pressure_listener(self, listener: Any) -> None: ...
    def remove_pressure_listener(self, listener: Any) -> None: ...


class Swarm:
    """The set of live peers of one torrent."""

    log = Logger()

    def __init__(
        self,
        owner: SwarmOwner,
        metainfo: Metainfo,
        prioritise: Callable[[PiecePicker], None],
        disk: DiskPressure,
        damage: Damage,
        *,
        peer_id: bytes,
        reactor: Any,
        rng: random.Random,
        config: TorrentConfig,
        limits: SharedLimits,
        extensions: PeerExtensions | None = None,
    ) -> None:
        self.owner = owner
        self.metainfo = metainfo
        self.title = metainfo.name
        self.geometry = metainfo.geometry
        self.rng = rng
        #: Sets a new picker's piece priorities (the user's choice of files).
        self._prioritise = prioritise
        #: Which blocks to ask whom for; a new one after a recheck (see ``reset``).
        self.picker = self._new_picker()
        self.disk = disk
        self.reactor = reactor
        self.config = config
        self.extensions = extensions if extensions is not None else PeerExtensions()
        #: BEP 52 hash messages (bt.swarm.hashes.HashExchange), set for a torrent with v2.
        self.hashes: Any = None
        self.links: dict[PeerLink, None] = {}
        self._blocks: dict[int, list[bytes | None]] = {}
        now = reactor.seconds()
        self.upload_bucket = TokenBucket(config.upload_limit, now)
        self.download_bucket = TokenBucket(config.download_limit, now)
        self.upload_limit = RateLimit(self.upload_bucket, limits.upload)
        self.download_limit = RateLimit(self.download_bucket, limits.download)
        self.download_rate = RateMeter(now)
        self.upload_rate = RateMeter(now)
        #: Seeding reads; the session's torrents share one byte budget (``limits.read_cache``).
        self.read_cache = PieceReadCache(
            disk.read, metainfo.piece_size, pool=limits.read_cache, read_now=disk.read_now
        )
        self.blame = Blame(config.ban_strikes)
        #: The real leaf hashes of a v2 piece, from peers (the wire sets it; see badblocks).
        self.block_hashes: BlockHashes = no_block_hashes
        limit = config.disk_high_water(metainfo.piece_length)
        self.bad_blocks = BadBlockFinder(lambda i: self.block_hashes(i), reactor, limit)
        self.choker = Choker(rng, regular_slots=config.upload_slots)
        #: Pieces that failed their hash check.
        self.hash_failures = 0
        self._ticks = 0
        self.factory = TorrentPeerFactory(
            peer_id,
            metainfo.info_hash,
            metainfo.geometry,
            self,
            reactor,
            info_hashes=metainfo.info_hashes,
            v2_hash=self.v2_hash,
        )
        #: Outgoing connections: the candidate pool (and its bans) and attempts in flight.
        self.dialer = Dialer(
            reactor,
            limits.connections,
            self.factory,
            self._dial_room,
            connect_timeout=config.connect_timeout,
            private=metainfo.private,
            name=self.title,
            skip_seeds=lambda: self.picker.is_finished,
            own_addresses=limits.own_addresses,
        )
        self._serving = Serving(
            read=self.read_cache.read,
            cached=self.read_cache.cached,
            throttle=self._upload_throttle,
            call_later=reactor.callLater,
            sent=self.upload_rate.add,
            lost=damage.was_lost,
            read_failed=damage.read_failed,
            busy=self.read_cache.pool.reader_busy,
            loading=self.read_cache.loading,
            read_now=self.read_cache.read_now,
        )

    @property
    def v2_hash(self) -> bytes | None:
        """The truncated v2 info-hash (BEP 52) peers of a v2 or hybrid torrent may use."""
        full = self.metainfo.info_hash_v2
        return full[:20] if full is not None else None

    # -- candidates -------------------------------------------------------------

    def add_candidates(
        self,
        peers: Sequence[tuple[str, int]],
        source: str = PeerSource.TRACKER,
        info_hash: bytes | None = None,
    ) -> None:
        """Addresses from a peer source; a private torrent takes only trackers'.
        ``info_hash``: announced under the torrent's other hash (BEP 52), dialled so."""
        self.dialer.add(peers, source, info_hash)

    def connect_more(self) -> None:
        self.dialer.connect_more()

    def _dial_room(self) -> int:
        """How many more peers to dial for now: none unless the torrent is in the swarm.

        A seed dials too, as libtorrent does: some leechers never dial the addresses
        a tracker gives them (Transmission drops loopback ones) and are served only
        by a seed that dials them. Known seeds are skipped (``skip_seeds``).
        """
        if self.owner.refusal() is not None:
            return 0
        return self.config.max_peers - len(self.links)

    # -- peers joining and leaving ------------------------------------------------

    def attach(self, protocol: PeerProtocol, handshake: HandshakeReceived) -> PeerLink:
        """A handshake completed: the peer joins the swarm."""
        address: Address = protocol.candidate or _peer_address(protocol)
        self.dialer.arrived(address)
        refusal = self.owner.refusal() or self._refusal(address)
        if refusal is not None:
            self.dialer.left(address)  # a known address is tried again later, with backoff
            raise RemoteProtocolError(refusal)
        link = PeerLink(self, protocol, address, self.reactor.seconds(), self._serving)
        link.start(self.picker.have_bitfield(), self._read_throttle())
        self.links[link] = None
        self.owner.peer_joined()
        self.dialer.joined(address)
        self.disk.add_pressure_listener(link)
        self.extensions.attached(link)
        link.greet(self.greeting(link))
        self.log.debug("{name}: connected to {address}", name=self.title, address=address)
        return link

    def greeting(self, link: PeerLink) -> ExtendedHandshake:
        """Our whole extended handshake for ``link``: when it joins, and again when a
        field changes (libtorrent reads each one as the whole handshake: an update
        that left out an extension would turn it off)."""
        return self.extensions.handshake(port=self.owner.port or None, your_ip=_ip(link.address))

    def _refusal(self, address: Address) -> str | None:
        if self.dialer.is_banned(address):
            return "peer is banned for sending bad data"
        if len(self.links) >= self.config.max_peers:
            return "too many peers"
        return None

    def link_lost(self, link: PeerLink, reason: str) -> None:
        if link not in self.links:
            return  # already detached (the torrent left the swarm first)
        del self.links[link]
        self.choker.peer_gone(link)
        self.disk.remove_pressure_listener(link)
        if link.bitfield_counted:
            self.picker.peer_gone(link, link.bitfield)
        else:
            self.picker.peer_requests_abandoned(link)
        self.dialer.left(link.address, seed=link.bitfield.is_complete() or link.upload_only)
        self.extensions.lost(link)
        if self.hashes is not None:
            self.hashes.lost(link)
        self.log.debug(
            "{name}: peer {address} gone: {reason}",
            name=self.title,
            address=link.address,
            reason=reason,
        )
        self.refill()
        self.dialer.connect_more()

    def close_all(self, why: str, *, detach: bool = False) -> None:
        """Drop every peer; ``detach``: out of the swarm now, not when their sockets close."""
        self.read_cache.clear()
        for link in list(self.links):
            link.drop(why)
            if detach:
                self.link_lost(link, why)

    def drop_seeds(self) -> None:
        """We may be a seed now: peers that are seeds too have nothing to trade with us."""
        for link in list(self.links):
            if self.both_seeds(link):
                link.drop("both sides are seeds")

    def ban(self, address: Address, why: str) -> None:
        if not self.dialer.ban(address):
            return
        self.log.warn(
            "{name}: banned peer {host}:{port}: {why}",
            name=self.title,
            host=address[0],
            port=address[1],
            why=why,
        )
        for link in list(self.links):
            if link.address == address:
                link.drop(f"banned: {why}")

    # -- the picker, for links: they decide when to ask and how much, it which ----

    def peer_has(self, link: PeerLink, index: int) -> bool:
        """The peer announced ``index`` (in ``link.bitfield`` already): counted for
        rarity. Do we want that piece?"""
        picker = self.picker
        if link.bitfield_counted:
            picker.add_peer_have(link, index)
        else:
            picker.add_peer_bitfield(link, link.bitfield)
            link.bitfield_counted = True
        return not picker.has(index) and bool(picker.piece_priority(index))

    def peer_bitfield(self, link: PeerLink, bitfield: Bitfield) -> None:
        """The peer's pieces, first or again: a later BITFIELD replaces what we knew."""
        if link.bitfield_counted:
            self.picker.replace_peer_bitfield(link, link.bitfield, bitfield)
        else:
            self.picker.add_peer_bitfield(link, bitfield)
        link.bitfield, link.bitfield_counted = bitfield, True

    def both_seeds(self, link: PeerLink) -> bool:
        """Nothing to trade: a seed and us complete, or an upload-only peer (BEP 21)
        and us finished (a seed is kept while we skip files: we may want them later)."""
        if link.bitfield.is_complete():
            return self.picker.is_complete
        return link.upload_only and self.picker.is_finished

    def has(self, index: int) -> bool:
        return self.picker.has(index)

    def outstanding(self, link: PeerLink) -> int:
        """Blocks we asked ``link`` for that have not arrived."""
        return self.picker.outstanding_count(link)

    def pick(self, link: PeerLink, count: int, among: Bitfield | None = None) -> list[Block]:
        """Up to ``count`` blocks to ask ``link`` for, marked as requested from it;
        ``among``: only of these pieces (those a choking fast peer allows us)."""
        return self.picker.pick(link, link.bitfield if among is None else among, count)

    def abandon(self, link: PeerLink) -> list[Block]:
        """``link`` will not send what we asked (a choke, a snub): free those blocks."""
        return self.picker.peer_requests_abandoned(link)

    def rejected(self, link: PeerLink, block: Block) -> bool:
        """``link`` will not send ``block`` (BEP 6 REJECT): free it; False if never asked."""
        return self.picker.request_abandoned(link, block.index, block.begin)

    # -- interest and choking -------------------------------------------------------

    def is_interesting(self, bitfield: Bitfield) -> bool:
        """Does a peer with ``bitfield`` have a piece we want and lack?"""
        picker = self.picker
        if picker.is_finished or bitfield.is_empty():
            return False
        # O(1) answer for the common case: a peer with more pieces than we have plus
        # the ones we skip must hold a piece we want (this runs for every peer
        # whenever a piece completes, so the bitfield arithmetic below is the exception).
        skipped_missing = self.metainfo.num_pieces - picker.have_count - picker.missing_count
        if bitfield.count() > picker.have_count + skipped_missing:
            return True
        mine = picker.have_bitfield()
        theirs = int.from_bytes(bitfield.to_bytes(), "big")
        missing = ~int.from_bytes(mine.to_bytes(), "big")
        if not theirs & missing:
            return False
        # Skipped pieces are rare; check them only when the cheap test passes.
        return any(picker.piece_priority(i) for i in set_indexes(theirs & missing, bitfield.length))

    def wanted_changed(self) -> None:
        """Pieces are wanted (or not) anew: every peer's interest is decided again."""
        for link in list(self.links):
            if link.bitfield_counted:
                link.update_interest()
        self.dialer.connect_more()

    def extended(self, link: PeerLink, message_id: int, payload: bytes) -> None:
        """A BEP 10 message from ``link``: the handshake, or one of our extensions'."""
        self.extensions.received(link, message_id, payload)

    def hash_message(self, link: PeerLink, msg: Any) -> None:
        """A BEP 52 hash message: served or answered by the hash exchange, if any."""
        if self.hashes is not None:
            self.hashes.received(link, msg)

    def interest_changed(self, link: PeerLink) -> None:
        """A peer became (not) interested: fill a free upload slot now, not in 10 s."""
        if link.peer_interested and link.am_choking:
            if self.choker.regular_slots < 0:
                link.unchoke(self.reactor.seconds())  # unlimited slots: no ranking to do
                return
            unchoked = sum(1 for other in self.links if not other.am_choking)
            if unchoked < self.choker.regular_slots + self.choker.optimistic_slots:
                self.choke_round(self.reactor.seconds())

    def choke_round(self, now: float) -> None:
        snapshots = [
            PeerSnapshot(
                key=link,
                interested=link.peer_interested,
                connected_at=link.connected_at,
                download_rate=link.download_meter.rate,
                upload_rate=link.upload_meter.rate,
                snubbed=link.snubbed,
                unchoked_since=link.unchoked_since,
                choked_at=link.choked_at,
            )
            for link in self.links
        ]
        unchoke = self.choker.decide(snapshots, seeding=self.picker.is_finished, now=now)
        for link in list(self.links):
            if link in unchoke:
                link.unchoke(now)
            else:
                link.choke(now)

    def tick(self, now: float) -> None:
        """Once a second: rates, every peer's own tick, and the choke round every 10 s."""
        self.download_rate.tick(now)
        self.upload_rate.tick(now)
        for link in list(self.links):
            link.tick(now)
        self.extensions.tick(now)
        if self.hashes is not None:
            self.hashes.tick(now)
        self._ticks += 1
        if self._ticks % CHOKE_INTERVAL == 0:
            self.choke_round(now)

    # -- rate limits ------------------------------------------------------------------

    def set_limits(self, *, upload: Any = UNCHANGED, download: Any = UNCHANGED) -> None:
        """This torrent's own rate limits in bytes/s (None: unlimited); they apply at once."""
        now = self.reactor.seconds()
        if upload is not UNCHANGED:
            self.upload_bucket.set_rate(upload, now)
        if download is not UNCHANGED:
            self.download_bucket.set_rate(download, now)
        self.limits_changed()

    def limits_changed(self) -> None:
        """A bucket this torrent draws from changed: throttle (or free) reads of every peer."""
        throttle = self._read_throttle()
        for link in self.links:
            link.set_read_throttle(throttle)

    def _read_throttle(self) -> Any:
        return None if self.download_limit.unlimited else self._download_throttle

    def _upload_throttle(self, amount: int) -> float:
        return self.upload_limit.try_consume(amount, self.reactor.seconds())

    def _download_throttle(self, amount: int) -> float:
        now = self.reactor.seconds()
        if amount:
            self.download_limit.consume(amount, now)
        return self.download_limit.debt_delay(now)

    # -- blocks in, pieces out -----------------------------------------------------------

    def blocks_arrived(self, link: PeerLink, msgs: list[Piece]) -> tuple[int, int]:
        """Store the blocks we asked for (other data is dropped, not an error): how
        many were wanted, and their bytes. Stops once a bad piece got the link dropped."""
        picker, pieces, count, total = self.picker, self._blocks, 0, 0
        block_count, block_size = picker.geometry.block_count, picker.block_size
        for msg in msgs:
            index, begin, size = msg.index, msg.begin, len(msg.block)
            wanted, block, complete, cancel = picker.block_received(link, index, begin, size)
            if not wanted:
                continue
            count, total = count + 1, total + size
            blocks = pieces.pop(index, None) if complete else pieces.get(index)
            if blocks is None:  # the piece's first block (a 16 KiB piece's only one)
                blocks = [None] * block_count(index)
                if not complete:
                    pieces[index] = blocks
            blocks[begin // block_size] = msg.block
            for other in cancel:
                if isinstance(other, PeerLink):
                    other.cancel(block)  # type: ignore[arg-type]
            if complete:  # the senders as links: addresses only if the piece fails
                self.owner.on_piece_complete(index, blocks, picker.block_sources(index))  # type: ignore[arg-type]
                if link.protocol.closing:
                    break  # a disk that verifies at once found it bad: the peer is banned
        self.download_rate.add(total)
        return count, total

    def _new_picker(self) -> PiecePicker:
        """A picker that has nothing yet and wants each piece as the user's files say."""
        picker = PiecePicker(self.geometry, self.rng)
        self._prioritise(picker)
        return picker

    def reset(self) -> None:
        """A recheck (no peer is attached): a new picker, unfinished pieces forgotten."""
        self.picker = self._new_picker()
        self._blocks.clear()

    def have(self, index: int, *, announce: bool) -> None:
        """``index`` is verified (found again on disk); ``announce``: tell the peers."""
        self.picker.have(index)
        if announce:
            for link in list(self.links):
                link.have_many((index,))

    def have_many(self, pieces: Sequence[tuple[int, list[bytes]]], *, announce: bool) -> None:
        """Pieces verified and written from their blocks (whose senders are cleared of
        blame); ``announce``: tell the peers, in one write each."""
        picker, verified, suspected = self.picker, self.blame.piece_verified, self.blame.suspected
        for index, blocks in pieces:
            picker.have(index)
            if index in suspected:
                for liar in verified(index, blocks):
                    self.ban(liar, f"sent a bad block of piece {index}")  # type: ignore[arg-type]
        if announce:
            indexes = [index for index, _ in pieces]
            for link in list(self.links):
                link.have_many(indexes)

    def piece_failed(self, index: int) -> None:
        """The piece was not written: its blocks are wanted again."""
        self.picker.piece_failed(index)

    def bad_data(
        self,
        index: int,
        links: Mapping[int, PeerLink],
        blocks: list[bytes],
        leaves: Sequence[bytes] | None = None,
    ) -> None:
        """The piece failed its hash (it is not written). With its received ``leaves``
        (v2) only the blocks proven bad are fetched again and their senders blamed;
        otherwise the whole piece is wanted again and its senders (``links``) blamed."""
        sources = {n: link.address for n, link in links.items()}
        self.hash_failures += 1
        self.log.warn(
            "{name}: piece {index} failed its hash check (sent by {senders})",
            name=self.title,
            index=index,
            senders=sorted(set(sources.values())),
        )
        picker = self.picker
        found = self.bad_blocks.find(index, leaves)
        found.addCallback(self._bad_blocks_found, picker, index, sources, blocks)
        found.addErrback(lambda failure: self.log.failure("piece {i}", failure, i=index))

    def _bad_blocks_found(
        self,
        bad: list[int] | None,
        picker: PiecePicker,
        index: int,
        sources: dict[int, Address],
        blocks: list[bytes],
    ) -> None:
        if picker is not self.picker or picker.has(index):
            return  # a recheck meanwhile: the piece is forgotten (or found on disk)
        if bad is None:
            return self._whole_piece_failed(index, sources, blocks)
        self.log.info(
            "{name}: piece {index}: blocks {bad} were bad, keeping the other {good}",
            name=self.title,
            index=index,
            bad=bad,
            good=len(blocks) - len(bad),
        )
        picker.blocks_failed(index, bad)
        if picker.block_sources(index):  # good blocks kept: the piece is in flight again
            kept: list[bytes | None] = list(blocks)
            for block in bad:
                kept[block] = None
            self._blocks[index] = kept
        for address in self.blame.blocks_failed(sources[n] for n in bad if n in sources):
            self.ban(address, f"sent bad blocks of {self.blame.strikes(address)} pieces")  # type: ignore[arg-type]
        self.refill()

    def _whole_piece_failed(
        self, index: int, sources: dict[int, Address], blocks: list[bytes]
    ) -> None:
        self.picker.piece_failed(index)
        for address in self.blame.piece_failed(index, sources, blocks):
            strikes = self.blame.strikes(address)
            self.ban(address, f"sent {strikes} pieces alone that failed their hash")
        self.refill()

    def lose(self, pieces: list[int]) -> None:
        """Pieces no longer on disk: out of the bitfield; a peer's queued requests for
        them are rejected (fast peers) or it is closed (BEP 3 has no REJECT)."""
        for index in pieces:
            self.picker.lose(index)
        self.read_cache.clear()
        lost = set(pieces)
        for link in list(self.links):
            link.data_lost(lost)

    def refill(self) -> None:
        for other in list(self.links):
            other.fill_pipeline()


def _peer_address(protocol: PeerProtocol) -> Address:
    peer = protocol.transport.getPeer()
    return (str(getattr(peer, "host", "?")), int(getattr(peer, "port", 0)))


def _ip(address: Address) -> str | None:
    """The address's host if it is an IP address (``yourip`` carries no names)."""
    try:
        return str(ipaddress.ip_address(address[0]))
    except ValueError:
        return None
