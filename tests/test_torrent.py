"""The torrent engine driven in memory: scripted peers over StringTransport, time by a fake clock.

A fake disk verifies synchronously, so each test reads as a conversation:
what the peer says, what bt answers, and what the torrent decides.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from torrents import handmade_info, handmade_torrent, pseudo_random_bytes
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from zope.interface import implementer

from bt.bitfield import Bitfield
from bt.candidates import PeerSource
from bt.errors import PieceHashError, StorageError
from bt.interfaces import IDiskQueue
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.connection import HandshakeReceived, PeerConnection
from bt.peer.incoming import IncomingPeerFactory
from bt.peer.messages import (
    BitfieldMessage,
    Cancel,
    Choke,
    Handshake,
    Have,
    Interested,
    KeepAlive,
    Message,
    Piece,
    Request,
    Unchoke,
    encode,
    encode_handshake,
)
from bt.peer.protocol import HANDSHAKE_TIMEOUT, OUR_RESERVED, PeerProtocol
from bt.storage.verifier import piece_verifier
from bt.swarm.link import IDLE_SECONDS, KEEPALIVE_SECONDS, SNUB_SECONDS
from bt.swarm.swarm import Swarm
from bt.torrent import Torrent
from bt.torrentconfig import TorrentConfig
from bt.tracker.scrape import ScrapeResult

PIECE = 32 * 1024
BLOCK = 16 * 1024
DATA = pseudo_random_bytes(5 * PIECE + 1000, seed=7)  # six pieces, the last one short


@implementer(IDiskQueue)
class FakeDisk:
    """Verifies at once (with the torrent's real verifier: v1, v2 or hybrid) and keeps
    written pieces in a dict."""

    def __init__(self, metainfo: Metainfo, *, complete: bool = False) -> None:
        self.metainfo = metainfo
        self.verifier = piece_verifier(metainfo)
        self.written: dict[int, bytes] = {}
        self.listeners: list[object] = []
        #: When set, reads wait here until the test fires them.
        self.held_reads: list[tuple[defer.Deferred[bytes], bytes]] | None = None
        #: The files the torrent last told the storage it skips.
        self.skipped: frozenset[int] | None = None
        if complete:
            for index in range(metainfo.num_pieces):
                self.written[index] = DATA[index * PIECE : (index + 1) * PIECE]

    def start(self) -> None:
        pass

    def stop(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def prepare(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def set_skipped(self, files: frozenset[int]) -> defer.Deferred[None]:
        self.skipped = files
        return defer.succeed(None)

    def parted_pieces(self) -> defer.Deferred[list[int]]:
        return defer.succeed([])

    def sync(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def read(self, index: int, begin: int, length: int) -> defer.Deferred[bytes]:
        data = self.written[index][begin : begin + length]
        if self.held_reads is None:
            return defer.succeed(data)
        held: defer.Deferred[bytes] = defer.Deferred()
        self.held_reads.append((held, data))
        return held

    def read_now(self, index: int, begin: int, sizes: list[int]) -> None:
        return None  # every read goes through read(), where tests can hold it

    def call(self, job: Any, *args: Any) -> defer.Deferred[Any]:
        return defer.maybeDeferred(job, *args)

    def file_stamps(self) -> defer.Deferred[tuple[tuple[int, int], ...]]:
        return defer.succeed(tuple((f.length, 0) for f in self.metainfo.files))

    def existing_lengths(self) -> defer.Deferred[list[int]]:
        if self.written:
            return defer.succeed([f.length for f in self.metainfo.files])
        return defer.succeed([0] * len(self.metainfo.files))

    def hash_piece(self, index: int) -> defer.Deferred[bool]:
        digest = self.verifier.hasher(index)
        digest.update(self.written.get(index, b""))
        return defer.succeed(digest.matches())

    def verify_and_write(self, index: int, blocks: list[bytes]) -> defer.Deferred[None]:
        data = b"".join(blocks)
        try:
            self.verifier.verify(index, data)
        except (PieceHashError, StorageError):
            return defer.fail()
        self.written[index] = data
        return defer.succeed(None)

    def write_piece(self, index: int, blocks: list[bytes], sink: Any, token: Any) -> None:
        """As the real queue's, through ``verify_and_write`` (which tests replace)."""
        done = self.verify_and_write(index, blocks)
        done.addCallbacks(lambda _: sink([(token, None)]), lambda f: sink([(token, f)]))

    def add_pressure_listener(self, listener: object) -> None:
        self.listeners.append(listener)

    def remove_pressure_listener(self, listener: object) -> None:
        self.listeners.remove(listener)


class ScriptedPeer:
    """The remote side of one connection, speaking through a sans-I/O PeerConnection."""

    def __init__(
        self,
        protocol: PeerProtocol,
        metainfo: Metainfo,
        peer_id: bytes,
        transport: StringTransport | None = None,
    ) -> None:
        self.protocol = protocol
        self.metainfo = metainfo
        self.transport = transport or StringTransport()
        self.wire = PeerConnection(peer_id, metainfo.info_hash, protocol.connection.geometry)
        self.peer_id = peer_id
        protocol.makeConnection(self.transport)

    def say(self, *messages: Message, handshake: bool = False) -> None:
        data = b""
        if handshake:
            data += encode_handshake(Handshake(self.metainfo.info_hash, self.peer_id))
        data += b"".join(encode(m) for m in messages)
        self.protocol.dataReceived(data)

    def heard(self) -> list[object]:
        data = self.transport.value()
        self.transport.clear()
        return self.wire.receive_data(data)

    def requests(self, events: Iterable[object]) -> list[Request]:
        return [e for e in events if isinstance(e, Request)]

    def serve(self, corrupt: bool = False, rounds: int = 100) -> int:
        """Answer every request with the real data (or flipped bytes); returns blocks sent."""
        sent = 0
        for _ in range(rounds):
            requests = self.requests(self.heard())
            if not requests or self.transport.disconnecting:
                break
            for r in requests:
                start = r.index * PIECE + r.begin
                block = DATA[start : start + r.length]
                if corrupt:
                    block = bytes(b ^ 0xFF for b in block)
                self.say(Piece(r.index, r.begin, block))
                sent += 1
        return sent


def one_file_metainfo() -> Metainfo:
    """The torrent of DATA: one file of 4 pieces."""
    info = handmade_info([(["data.bin"], len(DATA))], name="t", piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info))


@pytest.fixture
def metainfo() -> Metainfo:
    return one_file_metainfo()


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


OUR_ID = b"-BT0100-ourselves!!!"


def make_torrent(
    metainfo: Metainfo, clock: MemoryReactorClock, disk: FakeDisk | None = None, **options: Any
) -> Torrent:
    """A torrent over a FakeDisk (empty unless given), not started."""
    return Torrent(
        metainfo,
        disk or FakeDisk(metainfo),  # type: ignore[arg-type]
        peer_id=options.pop("peer_id", OUR_ID),
        port=6881,
        reactor=clock,
        rng=random.Random(options.pop("seed", 1)),
        **options,
    )


@pytest.fixture
def torrent(metainfo: Metainfo, clock: MemoryReactorClock) -> Iterator[Torrent]:
    torrent = make_torrent(metainfo, clock)
    torrent.startService()
    yield torrent
    stopped = torrent.stopService()
    assert stopped.called and stopped.result is None


def make_seed(
    metainfo: Metainfo, clock: MemoryReactorClock, config: TorrentConfig | None = None
) -> Torrent:
    return make_torrent(
        metainfo,
        clock,
        FakeDisk(metainfo, complete=True),
        peer_id=b"-BT0100-seedingpeer!",
        seed=2,
        config=config or TorrentConfig(),
    )


@pytest.fixture
def seed(metainfo: Metainfo, clock: MemoryReactorClock) -> Iterator[Torrent]:
    """A torrent started on complete data: it checks the data, then seeds."""
    torrent = make_seed(metainfo, clock)
    torrent.startService()
    assert torrent.is_finished and torrent.state == "seeding"
    yield torrent
    torrent.stopService()


def leecher(torrent: Torrent, number: int = 1) -> ScriptedPeer:
    peer = connect(torrent, b"-LT2000-leecher%05d" % number, 100 + number)
    peer.say(Interested(), handshake=True)
    return peer


def connect(torrent: Torrent, peer_id: bytes, port: int) -> ScriptedPeer:
    protocol = torrent.swarm.factory.for_candidate(("10.0.0.1", port)).buildProtocol(None)
    return ScriptedPeer(protocol, torrent.metainfo, peer_id)


def seeder(
    torrent: Torrent, peer_id: bytes = b"-LT2000-seeder000001", port: int = 1
) -> ScriptedPeer:
    peer = connect(torrent, peer_id, port)
    full = Bitfield.full(torrent.metainfo.num_pieces)
    peer.say(BitfieldMessage(full.to_bytes()), Unchoke(), handshake=True)
    return peer


def test_we_send_our_handshake_first_and_interest_after_a_useful_bitfield(
    torrent: Torrent,
) -> None:
    peer = connect(torrent, b"-LT2000-seeder000001", 1)
    events = peer.heard()
    assert isinstance(events[0], HandshakeReceived)
    assert events[0].peer_id == torrent.peer_id
    full = Bitfield.full(torrent.metainfo.num_pieces)
    peer.say(BitfieldMessage(full.to_bytes()), handshake=True)
    assert Interested() in peer.heard()
    peer.say(Unchoke())
    assert peer.requests(peer.heard()), "unchoke must start the request pipeline"


def test_downloads_every_piece_and_fires_when_finished(torrent: Torrent) -> None:
    finished = torrent.when_finished()
    peer = seeder(torrent)
    peer.serve()
    assert finished.called
    assert torrent.is_finished and torrent.bytes_left == 0
    written = torrent.disk.written  # type: ignore[attr-defined]
    assert b"".join(written[i] for i in range(torrent.metainfo.num_pieces)) == DATA
    assert not [e for e in peer.heard() if isinstance(e, Have)], "a seeder needs no HAVE"


def test_completed_pieces_are_announced_to_peers_that_lack_them(torrent: Torrent) -> None:
    leecher = connect(torrent, b"-LT2000-leecher00001", 2)
    leecher.say(handshake=True)
    leecher.heard()
    peer = seeder(torrent)
    peer.serve()
    haves = {e.index for e in leecher.heard() if isinstance(e, Have)}
    assert haves == set(range(torrent.metainfo.num_pieces))


def test_choke_returns_outstanding_requests_to_the_pool(torrent: Torrent) -> None:
    peer = seeder(torrent)
    assert peer.requests(peer.heard())
    (link,) = torrent.links
    assert torrent.picker.outstanding_count(link) > 0
    peer.say(Choke())
    assert torrent.picker.outstanding_count(link) == 0


def _answers(requests: list[Request], corrupt: bool = False) -> list[Message]:
    pieces: list[Message] = []
    for r in requests:
        block = DATA[r.index * PIECE + r.begin :][: r.length]
        pieces.append(Piece(r.index, r.begin, bytes(b ^ 0xFF for b in block) if corrupt else block))
    return pieces


def test_the_pieces_of_one_read_reach_the_swarm_together_in_order(
    torrent: Torrent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One call, one rate update and one request top-up per read, not per block; a
    message between two PIECEs is handled between them."""
    peer = seeder(torrent)
    requests = peer.requests(peer.heard())
    batches: list[list[tuple[int, int]]] = []
    arrived = torrent.swarm.blocks_arrived

    def recording(link: Any, msgs: list[Piece]) -> tuple[int, int]:
        batches.append([(msg.index, msg.begin) for msg in msgs])
        return arrived(link, msgs)

    monkeypatch.setattr(torrent.swarm, "blocks_arrived", recording)
    (link,) = torrent.links
    top_ups: list[bool] = []
    fill = link.fill_pipeline
    monkeypatch.setattr(
        link, "fill_pipeline", lambda batch=False: (top_ups.append(batch), fill(batch))
    )
    before = link.pipeline
    answers = _answers(requests[:5])
    peer.say(*answers[:3], Have(0), *answers[3:])
    assert batches == [
        [(r.index, r.begin) for r in requests[:3]],
        [(r.index, r.begin) for r in requests[3:5]],
    ]
    assert link.download_meter.total == 5 * BLOCK, "every wanted block counts"
    assert link.pipeline == before + 5, "slow start: one more request per block received"
    assert top_ups == [True, True], "one top-up per batch of pieces"


def test_a_peer_banned_in_the_middle_of_a_read_has_the_rest_of_it_dropped(
    torrent: Torrent,
) -> None:
    """A disk that verifies at once bans a lone liar on its second bad piece; the
    blocks after it in the same read are neither stored nor counted."""
    peer = seeder(torrent)
    requests = peer.requests(peer.heard())
    assert len({r.index for r in requests}) >= 4
    peer.say(*_answers(requests, corrupt=True))
    assert torrent.hash_failures == 2
    assert peer.transport.disconnecting
    (link,) = torrent.links
    assert link.download_meter.total == 4 * BLOCK  # two pieces of two blocks


def test_a_lone_sender_of_bad_pieces_is_banned(torrent: Torrent) -> None:
    peer = seeder(torrent)
    peer.serve(corrupt=True)
    assert torrent.hash_failures >= 2
    assert peer.transport.disconnecting
    assert torrent.candidates.is_banned(("10.0.0.1", 1))
    peer.protocol.connectionLost()
    assert not torrent.links
    assert torrent.picker.have_count == 0


def test_bad_piece_is_fetched_again_from_an_honest_peer(torrent: Torrent) -> None:
    liar = seeder(torrent, b"-XX0000-liar00000001", 1)
    liar.serve(corrupt=True, rounds=1)
    honest = seeder(torrent, b"-LT2000-honest000001", 2)
    honest.serve()
    assert torrent.is_finished
    written = torrent.disk.written  # type: ignore[attr-defined]
    assert b"".join(written[i] for i in range(torrent.metainfo.num_pieces)) == DATA


def test_the_sender_of_one_bad_block_in_a_shared_piece_is_banned_once_it_verifies(
    torrent: Torrent,
) -> None:
    """Two senders of a piece that failed: neither is blamed until it verifies; then
    the one whose block differs from the good data is banned, the other is not."""
    liar = seeder(torrent, b"-XX0000-liar00000001", 1)
    owed = liar.requests(liar.heard())  # the whole torrent, in a first pipeline
    honest = seeder(torrent, b"-LT2000-honest000001", 2)
    duplicates = honest.requests(honest.heard())  # the endgame: the same blocks again
    first, second = Request(0, 0, BLOCK), Request(0, BLOCK, BLOCK)
    assert first in owed and second in duplicates
    liar.say(*_answers([first], corrupt=True))
    honest.say(*_answers([second]))
    assert torrent.hash_failures == 1 and not liar.transport.disconnecting
    honest.say(*_answers([r for r in duplicates if r.index != 0]))  # the rest
    for _ in range(3):  # piece 0 again, from either: the liar sends good data now
        liar.serve()
        honest.serve()
    assert torrent.is_finished
    assert "sent a bad block of piece 0" in (liar.protocol.close_reason or "")
    assert "bad" not in (honest.protocol.close_reason or "")  # closed as a seed, if at all
    assert torrent.candidates.is_banned(("10.0.0.1", 1))
    assert not torrent.candidates.is_banned(("10.0.0.1", 2))


def test_unrequested_blocks_are_ignored(torrent: Torrent) -> None:
    peer = seeder(torrent)
    peer.heard()
    peer.say(Piece(0, 100, DATA[100:200]))  # never requested: not on a block boundary
    assert not peer.transport.disconnecting
    assert torrent.download_rate.total == 0


def test_a_silent_peer_is_snubbed_and_its_requests_go_elsewhere(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    slow = seeder(torrent, b"-LT2000-slowpoke0001", 1)
    assert slow.requests(slow.heard())
    (link,) = torrent.links
    clock.advance(SNUB_SECONDS + 2)
    for _ in range(3):
        clock.advance(1)
    assert link.snubbed
    assert torrent.picker.outstanding_count(link) <= 1, "a snubbed peer gets one request"
    fast = seeder(torrent, b"-LT2000-fastpeer0001", 2)
    fast.serve()
    assert torrent.is_finished


def test_connecting_to_ourselves_is_dropped(torrent: Torrent) -> None:
    peer = connect(torrent, torrent.peer_id, 3)
    peer.say(handshake=True)
    assert peer.transport.disconnecting
    assert not torrent.links


def test_handshake_for_another_torrent_is_dropped(torrent: Torrent) -> None:
    protocol = torrent.swarm.factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(encode_handshake(Handshake(b"\x01" * 20, b"-XX0000-other0000001")))
    assert transport.disconnecting
    assert "handshake for info-hash 0101" in (protocol.close_reason or "")


def test_a_peer_that_never_handshakes_is_dropped(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    protocol = torrent.swarm.factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    clock.advance(HANDSHAKE_TIMEOUT + 1)
    assert transport.disconnecting
    assert protocol.close_reason == f"no handshake within {HANDSHAKE_TIMEOUT:g} s"


def test_garbage_closes_only_that_peer(torrent: Torrent) -> None:
    good = seeder(torrent, b"-LT2000-goodpeer0001", 1)
    bad = seeder(torrent, b"-XX0000-badpeer00001", 2)
    bad.protocol.dataReceived(b"\x00\x00\x00\x05\x04\x00\x00\x10\x00")  # HAVE out of range
    assert bad.transport.disconnecting
    assert not good.transport.disconnecting
    bad.protocol.connectionLost()
    assert len(torrent.links) == 1


class _Lookup:
    def __init__(self, torrent: Torrent | None) -> None:
        self.torrent = torrent

    def torrent_for(self, info_hash: bytes) -> Swarm | None:
        """The swarm a handshake joins, as the session finds it."""
        if self.torrent is not None and info_hash == self.torrent.info_hash:
            return self.torrent.swarm
        return None


def test_incoming_peer_is_dispatched_by_info_hash(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    factory = IncomingPeerFactory(torrent.peer_id, _Lookup(torrent), clock)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    assert transport.value() == b"", "an incoming peer speaks first"
    hello = encode_handshake(Handshake(torrent.info_hash, b"-LT2000-incoming0001"))
    protocol.dataReceived(hello + encode(Interested()))
    assert transport.value().startswith(
        encode_handshake(Handshake(torrent.info_hash, torrent.peer_id, OUR_RESERVED))
    )
    assert len(torrent.links) == 1
    assert protocol.connection.peer_interested


def test_incoming_peer_for_an_unknown_torrent_is_refused(clock: MemoryReactorClock) -> None:
    factory = IncomingPeerFactory(OUR_ID, _Lookup(None), clock)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(encode_handshake(Handshake(b"\x02" * 20, b"-LT2000-incoming0001")))
    assert transport.disconnecting
    assert protocol.close_reason == f"unknown info-hash {'02' * 20}"


# -- seeding ---------------------------------------------------------------------


def test_seed_sends_its_bitfield_and_unchokes_an_interested_peer_at_once(seed: Torrent) -> None:
    peer = leecher(seed)
    events = peer.heard()
    bitfields = [e for e in events if type(e).__name__ == "PeerBitfield"]
    assert bitfields and bitfields[0].bitfield.is_complete()
    assert Unchoke() in events


def test_a_peer_dropped_while_its_queue_is_paused_stops_counting_busy(seed: Torrent) -> None:
    """Our drop() unregisters the queue before closing, so Twisted never stops it."""
    pool = seed.swarm.read_cache.pool
    peer = leecher(seed)
    peer.heard()
    link = next(iter(seed.links))
    link.upload_queue.pauseProducing()  # the peer's socket is full
    peer.say(Request(0, 0, 16384), Request(1, 0, 16384))
    assert pool.readers == 1
    link.drop("snubbed, say")
    peer.protocol.connectionLost()
    assert not seed.links and pool.readers == 0
    link.upload_queue.resumeProducing()
    assert [e for e in peer.heard() if isinstance(e, Piece)] == [], "nothing for a dead socket"


def assert_serves_two_blocks(seed: Torrent) -> None:
    """A leecher asks for the short last piece and a block of piece 0, and gets both."""
    peer = leecher(seed)
    peer.heard()
    peer.say(Request(5, 0, 1000), Request(0, 16384, 16384))
    pieces = [e for e in peer.heard() if isinstance(e, Piece)]
    assert [(p.index, p.begin, p.block) for p in pieces] == [
        (5, 0, DATA[5 * PIECE :]),
        (0, 16384, DATA[16384:32768]),
    ]


def test_seed_serves_requested_blocks(seed: Torrent) -> None:
    assert_serves_two_blocks(seed)
    assert seed.upload_rate.total == 1000 + 16384


def test_peers_with_requests_to_serve_are_counted_busy_for_the_read_ahead_share(
    seed: Torrent,
) -> None:
    disk = seed.disk
    disk.held_reads = []  # type: ignore[attr-defined]
    pool = seed.swarm.read_cache.pool
    first, second = leecher(seed, 1), leecher(seed, 2)
    first.heard(), second.heard()
    assert pool.readers == 0
    first.say(Request(0, 0, 16384))
    second.say(Request(1, 0, 16384), Request(2, 0, 16384))
    assert pool.readers == 2
    held_reads = disk.held_reads  # type: ignore[attr-defined]
    assert len(held_reads) == 3
    held, data = held_reads[0]
    held.callback(data)
    assert [e.index for e in first.heard() if isinstance(e, Piece)] == [0]
    assert pool.readers == 1, "the second peer's blocks are being read"
    for held, data in held_reads[1:3]:
        held.callback(data)
    assert [e.index for e in second.heard() if isinstance(e, Piece)] == [1, 2]
    assert pool.readers == 0
    second.say(Request(3, 0, 16384))
    second.protocol.transport.loseConnection()
    second.protocol.connectionLost()
    assert pool.readers == 1 and len(held_reads) == 4
    held, data = held_reads[3]
    held.callback(data)
    assert pool.readers == 0, "a peer gone with a read in flight is not busy"


def test_a_seed_serves_blocks_in_the_page_cache_without_a_disk_thread_read(
    metainfo: Metainfo, clock: MemoryReactorClock
) -> None:
    disk = FakeDisk(metainfo, complete=True)
    asked: list[tuple[int, int, list[int]]] = []

    def read_now(index: int, begin: int, sizes: list[int]) -> list[bytearray]:
        asked.append((index, begin, list(sizes)))
        at = index * PIECE + begin
        return [bytearray(DATA[at : at + size]) for size in sizes]

    disk.read_now = read_now  # type: ignore[method-assign]
    disk.held_reads = []  # a read through the disk threads would be held: none may happen
    seed = make_torrent(metainfo, clock, disk, peer_id=b"-BT0100-seedingpeer!", seed=2)
    seed.startService()
    assert_serves_two_blocks(seed)
    assert disk.held_reads == [] and [index for index, _, _ in asked] == [5, 0]
    seed.stopService()


def test_requests_from_a_choked_peer_are_dropped(seed: Torrent) -> None:
    peer = connect(seed, b"-LT2000-uninterested", 7)
    peer.say(Request(0, 0, 16384), handshake=True)
    assert not [e for e in peer.heard() if isinstance(e, Piece)]


def test_cancel_before_the_read_finishes_sends_nothing(seed: Torrent) -> None:
    disk = seed.disk
    disk.held_reads = []  # type: ignore[attr-defined]
    peer = leecher(seed)
    peer.heard()
    peer.say(Request(1, 0, 16384))
    peer.say(Cancel(1, 0, 16384))
    for held, data in disk.held_reads:  # type: ignore[attr-defined]
        held.callback(data)
    assert not [e for e in peer.heard() if isinstance(e, Piece)]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (Request(6, 0, 16384), "request message for piece 6, but the torrent has 6 pieces"),
        (Request(0, 0, 32768), "request"),
        (Request(5, 0, 2000), "request"),
    ],
)
def test_bad_requests_drop_the_peer(seed: Torrent, request_: Request, reason: str) -> None:
    peer = leecher(seed)
    peer.heard()
    peer.say(request_)
    assert peer.transport.disconnecting
    assert reason in (peer.protocol.close_reason or "")


def test_too_many_queued_requests_drop_the_peer(seed: Torrent) -> None:
    disk = seed.disk
    disk.held_reads = []  # type: ignore[attr-defined]
    peer = leecher(seed)
    peer.heard()
    peer.say(*[Request(0, begin, 32) for begin in range(0, 32 * 600, 32)])
    assert peer.transport.disconnecting
    assert "requests queued" in (peer.protocol.close_reason or "")


def test_choker_round_unchokes_at_most_the_slots(seed: Torrent, clock: MemoryReactorClock) -> None:
    peers = [leecher(seed, n) for n in range(8)]
    clock.advance(1)
    for _ in range(10):
        clock.advance(1)
    unchoked = [link for link in seed.links if not link.am_choking]
    assert len(unchoked) == seed.swarm.choker.regular_slots + seed.swarm.choker.optimistic_slots
    assert all(not p.transport.disconnecting for p in peers)


def test_unlimited_slots_unchoke_every_interested_peer_at_once(
    metainfo: Metainfo, clock: MemoryReactorClock
) -> None:
    """--upload-slots -1: no peer waits for the 10 s choke round to be served."""
    seed = make_seed(metainfo, clock, TorrentConfig(upload_slots=-1))
    seed.startService()
    peers = [leecher(seed, n) for n in range(12)]
    assert all(Unchoke() in peer.heard() for peer in peers)
    assert all(not link.am_choking for link in seed.links)
    seed.stopService()


def test_upload_limit_shapes_serving_within_ten_percent(
    metainfo: Metainfo, clock: MemoryReactorClock
) -> None:
    limit = 64 * 1024
    torrent = make_seed(metainfo, clock, TorrentConfig(upload_limit=limit))
    torrent.startService()
    peer = leecher(torrent)
    peer.heard()
    blocks = [Request(i, b, 16384) for i in range(5) for b in (0, 16384)]
    sent = 0
    for _second in range(10):
        peer.say(*blocks)  # keep the queue full; duplicates of queued blocks are served once
        for _ in range(10):
            clock.advance(0.1)
        sent += sum(len(e.block) for e in peer.heard() if isinstance(e, Piece))
    torrent.stopService()
    assert abs(sent - 10 * limit) <= 0.1 * 10 * limit, sent


def test_seeding_stops_at_the_seed_ratio(metainfo: Metainfo, clock: MemoryReactorClock) -> None:
    torrent = make_seed(metainfo, clock, TorrentConfig(seed_ratio=0.5))
    torrent.startService()
    peer = leecher(torrent)
    peer.heard()
    peer.say(*[Request(i, b, 16384) for i in range(3) for b in (0, 16384)])
    clock.advance(1)
    assert torrent.state == "finished"
    assert peer.transport.disconnecting
    torrent.stopService()


def test_seeding_stops_after_the_seed_time(metainfo: Metainfo, clock: MemoryReactorClock) -> None:
    torrent = make_seed(metainfo, clock, TorrentConfig(seed_time=60))
    torrent.startService()
    clock.advance(59)
    assert torrent.state == "seeding"
    clock.advance(2)
    assert torrent.state == "finished"
    torrent.stopService()


def test_silent_peers_get_keep_alives_and_dead_ones_are_dropped(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    peer = connect(torrent, b"-LT2000-quietpeer001", 9)
    peer.say(handshake=True)  # and then nothing: no pieces, no interest
    peer.heard()
    for _ in range(int(KEEPALIVE_SECONDS) + 2):
        clock.advance(1)
    assert KeepAlive() in peer.heard()
    assert not peer.transport.disconnecting
    for _ in range(int(IDLE_SECONDS - KEEPALIVE_SECONDS)):
        clock.advance(1)
    assert peer.transport.disconnecting
    assert peer.protocol.close_reason == f"nothing received for {IDLE_SECONDS:g} s"


def test_a_disk_error_pauses_the_torrent_and_a_recheck_resumes_it(
    metainfo: Metainfo, clock: MemoryReactorClock
) -> None:
    disk = FakeDisk(metainfo)
    failing = {"left": 1}
    real_write = disk.verify_and_write

    def write_once_failing(index: int, blocks: list[bytes]) -> defer.Deferred[None]:
        if failing["left"]:
            failing["left"] -= 1
            return defer.fail(StorageError("cannot write data.bin: No space left on device"))
        return real_write(index, blocks)

    disk.verify_and_write = write_once_failing  # type: ignore[method-assign]
    torrent = make_torrent(metainfo, clock, disk, seed=3, config=TorrentConfig(error_retry=30))
    torrent.startService()
    peer = seeder(torrent)
    peer.serve()
    assert torrent.state == "error"
    assert peer.transport.disconnecting
    assert not disk.written, "no piece may count as had when its write failed"
    peer.protocol.connectionLost()
    clock.advance(31)
    assert torrent.state == "downloading"
    seeder(torrent, b"-LT2000-seeder000002", 2).serve()
    assert torrent.is_finished
    torrent.stopService()


def test_our_own_address_is_never_dialled_again(
    torrent: Torrent, clock: MemoryReactorClock
) -> None:
    address = ("10.0.0.1", 6881)
    torrent.add_candidates([address])  # dialled at once, taking a connection slot
    (host, port, attempt, *_) = clock.tcpClients[-1]
    assert (host, port) == address and torrent.limits.connections.used == 1
    protocol = attempt.buildProtocol(None)
    peer = ScriptedPeer(protocol, torrent.metainfo, torrent.peer_id)
    peer.say(handshake=True)
    assert peer.transport.disconnecting
    protocol.connectionLost()
    assert torrent.candidates.is_banned(address)
    assert torrent.limits.connections.used == 0


@pytest.mark.parametrize("private", [True, False])
def test_private_torrents_take_peers_only_from_their_trackers(
    clock: MemoryReactorClock, private: bool
) -> None:
    info = handmade_info([(["data.bin"], len(DATA))], name="t", piece_length=PIECE, data=DATA)
    info["private"] = 1 if private else 0
    meta = parse_metainfo(handmade_torrent(info))
    torrent = make_torrent(meta, clock, seed=4)
    torrent.startService()
    torrent.add_candidates([("10.0.0.7", 7)], source=PeerSource.DHT)
    torrent.add_candidates([("10.0.0.8", 8)], source=PeerSource.PEX)
    torrent.add_candidates([("10.0.0.9", 9)])  # from a tracker
    dialled = {(c[0], c[1]) for c in clock.tcpClients}
    if private:
        assert dialled == {("10.0.0.9", 9)}
    else:
        assert dialled == {("10.0.0.7", 7), ("10.0.0.8", 8), ("10.0.0.9", 9)}
    torrent.stopService()


class _ScrapingTracker:
    def __init__(self) -> None:
        self.asked: list[list[bytes]] = []

    def announce(self, request: object) -> defer.Deferred[object]:
        return defer.Deferred()  # never answers: not what this test is about

    def scrape(self, info_hashes: list[bytes]) -> defer.Deferred[dict[bytes, ScrapeResult]]:
        self.asked.append(list(info_hashes))
        return defer.succeed({info_hashes[0]: ScrapeResult(3, 10, 4)})


def test_scrape_counts_come_from_the_first_tracker_that_scrapes(
    metainfo: Metainfo, clock: MemoryReactorClock
) -> None:
    tracker = _ScrapingTracker()
    torrent = make_torrent(metainfo, clock, seed=5, trackers=[tracker])
    assert torrent.scrape().result == ScrapeResult(complete=3, downloaded=10, incomplete=4)
    assert tracker.asked == [[metainfo.info_hash]]
    without = make_torrent(metainfo, clock, seed=5)
    assert without.scrape().result is None


@pytest.mark.parametrize("skip", [False, True])
def test_interest_matches_the_pieces_we_still_want(torrent: Torrent, skip: bool) -> None:
    """The O(1) shortcut and the bitfield arithmetic agree, with and without skipped pieces."""
    if skip:
        for index in (1, 3):
            torrent.picker.set_piece_priority(index, 0)
    torrent.picker.have(0)
    torrent.picker.have(2)
    rng = random.Random(9)
    for _ in range(200):
        theirs = Bitfield(torrent.metainfo.num_pieces)
        for index in range(torrent.metainfo.num_pieces):
            if rng.random() < 0.5:
                theirs.add(index)
        wanted = {i for i in range(torrent.metainfo.num_pieces) if i not in (0, 2)}
        if skip:
            wanted -= {1, 3}
        assert torrent.swarm.is_interesting(theirs) == bool(wanted & set(theirs))


def test_a_resume_state_that_cannot_be_saved_does_not_stop_the_download(
    metainfo: Metainfo, clock: MemoryReactorClock, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    torrent = make_torrent(metainfo, clock, resume_path=blocker / "x.resume")
    torrent.startService()
    peer = seeder(torrent)
    peer.serve()
    for _ in range(6):  # past the resume interval: a save is attempted and fails
        clock.advance(1)
    assert torrent.state == "seeding", "the data is fine: no disk error"
    assert torrent.data.dirty, "the state is still to be saved: the next tick tries again"
    torrent.stopService()


def test_a_hybrid_whose_views_disagree_on_a_piece_stops_without_blaming_peers(
    tmp_path: Path, clock: MemoryReactorClock
) -> None:
    from torrents import libtorrent_v2_torrent

    from bt import bencode

    pytest.importorskip("libtorrent")
    (tmp_path / "data.bin").write_bytes(DATA)
    torrent_bytes = bencode.decode(libtorrent_v2_torrent(tmp_path / "data.bin", PIECE, hybrid=True))
    pieces = bytearray(torrent_bytes[b"info"][b"pieces"])
    pieces[20:40] = bytes(20)  # piece 1's SHA-1 no data can match; its merkle hash is right
    torrent_bytes[b"info"][b"pieces"] = bytes(pieces)
    metainfo = parse_metainfo(bencode.encode(torrent_bytes))
    assert metainfo.format == "hybrid"
    torrent = make_torrent(metainfo, clock, FakeDisk(metainfo))
    torrent.startService()
    seeder(torrent).serve()
    assert torrent.state == "error"
    assert "v1 and v2 views disagree" in (torrent.error or "")
    assert not torrent.candidates.is_banned(("10.0.0.1", 1)), "the peer sent the right data"
    assert torrent.swarm.hash_failures == 0
    torrent.stopService()
