"""A failed v2 piece costs only its bad blocks: the swarm asks for the real leaf hashes.

Scripted peers over StringTransport and a fake disk that verifies with the real
v2 verifier (merkle piece roots); ``block_hashes`` is a fake hash source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_torrent import FakeDisk, ScriptedPeer, connect, make_torrent
from torrents import handmade_info, handmade_torrent, libtorrent_v2_torrent, pseudo_random_bytes
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from bt.bitfield import Bitfield
from bt.merkle import LEAF_SIZE, leaf_hashes, piece_root
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.messages import BitfieldMessage, Choke, Piece, Request, Unchoke
from bt.storage.verifier import V2Verifier
from bt.swarm.badblocks import TIMEOUT
from bt.torrent import Torrent

PIECE = 4 * LEAF_SIZE  # four blocks a piece
DATA = pseudo_random_bytes(3 * PIECE, seed=52)


@dataclass(frozen=True)
class Piece2:
    expected: bytes
    data_length: int
    leaves: int


def piece_data(index: int) -> bytes:
    return DATA[index * PIECE : (index + 1) * PIECE]


PIECES = [Piece2(piece_root(piece_data(i), 4), PIECE, 4) for i in range(3)]
LEAVES = [leaf_hashes(piece_data(i)) for i in range(3)]


class V2FakeDisk(FakeDisk):
    """Verifies a v1 torrent's pieces as v2 pieces (four leaves each) would be."""

    def __init__(self, metainfo: Metainfo) -> None:
        super().__init__(metainfo)
        self.verifier = V2Verifier(3, PIECES.__getitem__)


class HashSource:
    """A fake ``block_hashes``: the real leaves, None, or a Deferred the test fires."""

    def __init__(self, answer: str = "leaves") -> None:
        self.answer = answer
        self.asked: list[int] = []
        self.pending: list[tuple[int, defer.Deferred[list[bytes] | None]]] = []

    def __call__(self, index: int) -> defer.Deferred[list[bytes] | None]:
        self.asked.append(index)
        if self.answer == "leaves":
            return defer.succeed(list(LEAVES[index]))
        if self.answer == "none":
            return defer.succeed(None)
        held: defer.Deferred[list[bytes] | None] = defer.Deferred()
        self.pending.append((index, held))
        return held


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


def start(clock: MemoryReactorClock, source: HashSource) -> Torrent:
    info = handmade_info([(["v2.bin"], len(DATA))], name="v2", piece_length=PIECE, data=DATA)
    metainfo = parse_metainfo(handmade_torrent(info))
    torrent = make_torrent(metainfo, clock, V2FakeDisk(metainfo))
    torrent.swarm.block_hashes = source
    torrent.startService()
    return torrent


def seeder(torrent: Torrent, port: int) -> ScriptedPeer:
    peer = connect(torrent, b"-LT2000-seeder%06d" % port, port)
    full = Bitfield.full(torrent.metainfo.num_pieces)
    peer.say(BitfieldMessage(full.to_bytes()), Unchoke(), handshake=True)
    return peer


def serve(
    peer: ScriptedPeer,
    corrupt: frozenset[tuple[int, int]] = frozenset(),
    *,
    rounds: int = 100,
    log: list[Request] | None = None,
) -> int:
    """Answer every request; blocks in ``corrupt`` go out flipped, once."""
    sent = 0
    corrupt = set(corrupt)
    held: list[Request] = []
    for _ in range(rounds):
        requests = held + peer.requests(peer.heard())
        held = []
        if not requests or peer.transport.disconnecting:
            break
        for r in requests:
            if log is not None:
                log.append(r)
            block = DATA[r.index * PIECE + r.begin :][: r.length]
            if (r.index, r.begin // LEAF_SIZE) in corrupt:
                corrupt.discard((r.index, r.begin // LEAF_SIZE))
                block = bytes(b ^ 0xFF for b in block)
            peer.say(Piece(r.index, r.begin, block))
            sent += 1
    return sent


def written(torrent: Torrent) -> dict[int, bytes]:
    return torrent.disk.written  # type: ignore[attr-defined, no-any-return]


def test_one_bad_block_costs_one_block_and_one_strike(clock: MemoryReactorClock) -> None:
    source = HashSource()
    torrent = start(clock, source)
    peer = seeder(torrent, 1)
    log: list[Request] = []
    serve(peer, frozenset({(1, 2)}), log=log)
    assert torrent.is_finished
    assert b"".join(written(torrent)[i] for i in range(3)) == DATA
    assert source.asked == [1]
    assert torrent.hash_failures == 1
    assert len(log) == 3 * 4 + 1, "only the bad block is requested again"
    assert (log[-1].index, log[-1].begin) == (1, 2 * LEAF_SIZE)
    assert torrent.swarm.blame.strikes(("10.0.0.1", 1)) == 1
    assert not torrent.candidates.is_banned(("10.0.0.1", 1))


def test_only_the_sender_of_the_bad_block_is_blamed(clock: MemoryReactorClock) -> None:
    torrent = start(clock, HashSource())
    liar = seeder(torrent, 1)
    first, second = liar.requests(liar.heard())[:2]
    assert first.index == second.index, "a piece's blocks are picked together"
    for r in (first, second):  # the bad half of one piece
        liar.say(Piece(r.index, r.begin, bytes(r.length)))
    liar.say(Choke())  # the rest of its requests go back to the pool
    honest = seeder(torrent, 2)
    serve(honest)
    assert torrent.hash_failures == 1
    blame = torrent.swarm.blame
    assert blame.strikes(("10.0.0.1", 1)) == 1
    assert blame.strikes(("10.0.0.1", 2)) == 0
    assert torrent.is_finished
    assert b"".join(written(torrent)[i] for i in range(3)) == DATA


def test_a_liar_proven_twice_is_banned(clock: MemoryReactorClock) -> None:
    torrent = start(clock, HashSource())
    liar = seeder(torrent, 1)
    serve(liar, frozenset({(0, 3), (1, 0), (2, 1)}))
    assert liar.transport.disconnecting
    assert torrent.candidates.is_banned(("10.0.0.1", 1))


def test_without_leaf_hashes_the_whole_piece_is_fetched_again(clock: MemoryReactorClock) -> None:
    source = HashSource("none")
    torrent = start(clock, source)
    peer = seeder(torrent, 1)
    log: list[Request] = []
    serve(peer, frozenset({(1, 2)}), log=log)
    assert source.asked == [1]
    assert torrent.is_finished
    assert len(log) == 3 * 4 + 4, "the whole piece again, as for v1"


def test_the_piece_waits_for_its_leaf_hashes_and_keeps_its_good_blocks(
    clock: MemoryReactorClock,
) -> None:
    source = HashSource("held")
    torrent = start(clock, source)
    peer = seeder(torrent, 1)
    log: list[Request] = []
    serve(peer, frozenset({(0, 1)}), log=log)
    assert [index for index, _ in source.pending] == [0]
    assert 0 not in written(torrent) and not torrent.is_finished
    assert len(log) == 12, "nothing of piece 0 is asked for while we wait"
    assert torrent.picker.block_sources(0) == {n: next(iter(torrent.links)) for n in range(4)}
    source.pending[0][1].callback(list(LEAVES[0]))
    kept = torrent.swarm._blocks[0]
    assert [block is not None for block in kept] == [True, False, True, True]
    assert 0 not in written(torrent), "good blocks stay in memory until the piece verifies"
    serve(peer, log=log)
    assert log[-1] == Request(0, LEAF_SIZE, LEAF_SIZE)
    assert written(torrent)[0] == piece_data(0)
    assert torrent.is_finished


def test_no_answer_in_time_fails_the_piece_whole(clock: MemoryReactorClock) -> None:
    source = HashSource("held")
    torrent = start(clock, source)
    peer = seeder(torrent, 1)
    log: list[Request] = []
    serve(peer, frozenset({(2, 0)}), log=log)
    clock.advance(TIMEOUT + 1)
    serve(peer, log=log)
    assert len(log) == 12 + 4
    assert torrent.is_finished


def test_at_most_the_disk_bound_of_pieces_wait(clock: MemoryReactorClock) -> None:
    source = HashSource("held")
    torrent = start(clock, source)
    torrent.swarm.bad_blocks.limit = 1
    peer = seeder(torrent, 1)
    serve(peer, frozenset({(0, 0), (1, 0)}))
    assert len(source.pending) == 1, "the second failed piece failed whole at once"
    assert torrent.swarm.bad_blocks.waiting == 1


def test_an_answer_that_clears_every_block_fails_the_piece_whole(
    clock: MemoryReactorClock,
) -> None:
    wrong = HashSource("held")
    torrent = start(clock, wrong)
    peer = seeder(torrent, 1)
    log: list[Request] = []
    serve(peer, frozenset({(0, 1)}), log=log)
    corrupt = bytes(b ^ 0xFF for b in piece_data(0)[LEAF_SIZE : 2 * LEAF_SIZE])
    wrong.pending[0][1].callback([LEAVES[0][0], hashlib.sha256(corrupt).digest(), *LEAVES[0][2:]])
    serve(peer, log=log)
    assert len(log) == 12 + 4
    assert torrent.is_finished


def test_a_recheck_while_waiting_forgets_the_piece(clock: MemoryReactorClock) -> None:
    source = HashSource("held")
    torrent = start(clock, source)
    peer = seeder(torrent, 1)
    serve(peer, frozenset({(0, 1)}))
    old = torrent.picker
    torrent.swarm.reset()
    source.pending[0][1].callback(list(LEAVES[0]))
    assert 0 not in torrent.swarm._blocks
    assert torrent.picker is not old and not torrent.picker.block_sources(0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_real_v2_torrent_with_padding_refetches_only_the_bad_block(
    clock: MemoryReactorClock, tmp_path: Path
) -> None:
    pytest.importorskip("libtorrent")
    content = tmp_path / "t"
    sizes = {"a": 5, "b": 2 * PIECE + 7, "c": 0, "d": PIECE}
    for number, (name, size) in enumerate(sorted(sizes.items())):
        content.mkdir(exist_ok=True)
        (content / name).write_bytes(pseudo_random_bytes(size, number))
    meta = parse_metainfo(libtorrent_v2_torrent(content, PIECE))
    stream = b"".join(
        bytes(e.length) if e.padding else tmp_path.joinpath(*e.path).read_bytes()
        for e in meta.files
    )

    def block_hashes(index: int) -> defer.Deferred[list[bytes] | None]:
        """What a hash request for base layer 0 answers: the piece's leaves, padded."""
        piece = meta.v2_piece(index)
        assert piece is not None
        data = stream[index * PIECE :][: piece.data_length]
        leaves = leaf_hashes(data)
        return defer.succeed(leaves + [bytes(32)] * (piece.leaves - len(leaves)))

    torrent = make_torrent(meta, clock, FakeDisk(meta))
    torrent.swarm.block_hashes = block_hashes
    torrent.startService()
    peer = seeder(torrent, 1)
    target = (3, 0)  # the last piece of "b": 7 bytes of file, then padding
    sent: list[Request] = []
    bad = set([target])
    for _ in range(50):
        requests = peer.requests(peer.heard())
        if not requests:
            break
        for r in requests:
            sent.append(r)
            block = stream[r.index * PIECE + r.begin :][: r.length]
            if (r.index, r.begin // LEAF_SIZE) in bad:
                bad.clear()
                block = b"\xff" + block[1:]
            peer.say(Piece(r.index, r.begin, block))
    assert torrent.is_finished and torrent.hash_failures == 1
    assert len(sent) == meta.num_pieces * 4 + 1
    assert (sent[-1].index, sent[-1].begin) == target
    assert meta.num_pieces == 5
    assert b"".join(torrent.disk.written[i] for i in range(meta.num_pieces)) == stream  # type: ignore[attr-defined]
