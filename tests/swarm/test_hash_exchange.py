"""Serving and asking BEP 52 hashes: proofs from the piece layers, bounds, block hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import SimpleNamespace

from bt.merkle import LEAF_SIZE, file_tree_hashes, leaf_hashes, pad_hash, verify_proof
from bt.peer.hash_messages import Hashes, HashReject, HashRequest
from bt.swarm.hashes import REQUEST_TIMEOUT, HashExchange, HashServer

PIECE = 4 * LEAF_SIZE  # four blocks a piece
BLOCKS = 4


def _data(length: int, seed: int = 1) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(bytes([seed]) + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


@dataclass
class V2Piece:
    expected: bytes
    data_length: int
    leaves: int
    file_index: int
    first_leaf: int


def _metainfo(*lengths: int) -> SimpleNamespace:
    """A v2 torrent of files of ``lengths`` as the contract's Metainfo shows it (pieces
    aligned per file), with the data kept for the test."""
    files, layers, pieces, datas = [], {}, [], []
    for number, length in enumerate(lengths):
        data = _data(length, number + 1)
        leaves = leaf_hashes(data)
        root, layer = file_tree_hashes(leaves, PIECE)
        offset = len(pieces) * PIECE
        files.append(SimpleNamespace(length=length, pieces_root=root, padding=False, offset=offset))
        datas.append(data)
        if layer:
            layers[root] = b"".join(layer)
            for p, expected in enumerate(layer):
                chunk = data[p * PIECE : (p + 1) * PIECE]
                pieces.append(V2Piece(expected, len(chunk), BLOCKS, number, p * BLOCKS))
        else:
            width = 1 << max(0, (len(leaves) - 1).bit_length())
            pieces.append(V2Piece(root, length, width, number, 0))
    return SimpleNamespace(
        files=files,
        piece_layers=layers,
        piece_length=PIECE,
        v2_piece=lambda index: pieces[index],
        datas=datas,
        num_pieces=len(pieces),
    )


@dataclass(eq=False)
class _Link:
    address: tuple[str, int] = ("10.0.0.1", 6881)
    speaks_v2: bool = True
    closed: bool = False
    bitfield: set[int] = field(default_factory=lambda: set(range(100)))
    sent: list[object] = field(default_factory=list)
    dropped: str | None = None

    def send_hash_message(self, msg: object) -> None:
        self.sent.append(msg)

    def drop(self, why: str) -> None:
        self.dropped = why
        self.closed = True


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_piece_layer_chunks_are_served_with_proofs_up_to_the_root():
    # 11 pieces: the layer is 16 wide; ask for 4 of them with proofs to the root
    meta = _metainfo(11 * PIECE - 100)
    root = meta.files[0].pieces_root
    server = HashServer(meta)
    request = HashRequest(root, 2, 4, 4, 3)  # layer 2 (pieces); the root is 4 up
    answer = server.answer(request)
    assert isinstance(answer, Hashes)
    assert answer.request == request
    assert len(answer.hashes) == 4 + 2
    layer = [meta.piece_layers[root][i : i + 32] for i in range(0, 11 * 32, 32)]
    assert list(answer.nodes) == layer[4:8]
    assert verify_proof(answer.hashes, 2, 4, 4, 3, root)
    # libtorrent's whole-layer request: a padded power of two, no uncles
    whole = server.answer(HashRequest(root, 2, 0, 16, 3))
    assert isinstance(whole, Hashes)
    assert list(whole.nodes) == layer + [pad_hash(2)] * 5


def test_what_cannot_be_proved_is_rejected():
    meta = _metainfo(11 * PIECE, LEAF_SIZE * 2)
    big, small = (f.pieces_root for f in meta.files)
    server = HashServer(meta)
    for request in (
        HashRequest(big, 0, 0, 4, 1),  # block hashes: not kept
        HashRequest(big, 2, 0, 3, 1),  # not a power of two
        HashRequest(big, 2, 2, 4, 1),  # not aligned
        HashRequest(big, 2, 0, 32, 4),  # wider than the layer
        HashRequest(big, 2, 0, 4, 4),  # proofs beyond the root
        HashRequest(small, 0, 0, 2, 0),  # one piece: only its root is known
        HashRequest(bytes(32), 2, 0, 4, 1),  # no such file
    ):
        assert server.answer(request) == request.reject(), request


def test_each_peer_is_served_a_bounded_number_of_requests_a_second():
    meta = _metainfo(11 * PIECE)
    root = meta.files[0].pieces_root
    link = _Link()
    exchange = HashExchange(meta, lambda: [link], _Clock(), served_per_second=3)
    for _ in range(5):
        exchange.received(link, HashRequest(root, 2, 0, 16, 3))
    assert [type(m).__name__ for m in link.sent] == ["Hashes"] * 3 + ["HashReject"] * 2
    exchange.tick(1.0)
    exchange.received(link, HashRequest(root, 2, 0, 16, 3))
    assert isinstance(link.sent[-1], Hashes)


def _serve_blocks(meta, link, request: HashRequest, *, corrupt: bool = False) -> Hashes:
    """What an honest (or lying) peer answers: the leaves of the piece."""
    piece_data = meta.datas[0]
    leaves = leaf_hashes(piece_data)
    nodes = leaves[request.index : request.index + request.length]
    nodes += [bytes(32)] * (request.length - len(nodes))
    if corrupt:
        nodes[1] = bytes(32)
    return request.answer(tuple(nodes))


def test_block_hashes_come_from_a_peer_with_the_piece_and_are_proved():
    meta = _metainfo(3 * PIECE - LEAF_SIZE - 5000)
    link = _Link()
    exchange = HashExchange(meta, lambda: [link], _Clock())
    results: list[object] = []
    exchange.block_hashes(2).addCallback(results.append)
    (request,) = link.sent
    assert request == HashRequest(meta.files[0].pieces_root, 0, 8, 4, 1)
    exchange.received(link, _serve_blocks(meta, link, request))
    expected = leaf_hashes(meta.datas[0][2 * PIECE :])
    assert results == [expected]  # the real blocks only (three of four)
    assert len(expected) == 3


def test_a_false_proof_drops_the_peer_and_asks_the_next():
    meta = _metainfo(3 * PIECE)
    liar, honest = _Link(("10.0.0.1", 1)), _Link(("10.0.0.2", 2))
    exchange = HashExchange(meta, lambda: [liar, honest], _Clock())
    results: list[object] = []
    exchange.block_hashes(0).addCallback(results.append)
    (request,) = liar.sent
    exchange.received(liar, _serve_blocks(meta, liar, request, corrupt=True))
    assert liar.dropped is not None and "do not prove" in liar.dropped
    (again,) = honest.sent
    exchange.received(honest, _serve_blocks(meta, honest, again))
    assert results == [leaf_hashes(meta.datas[0][:PIECE])]


def test_rejects_timeouts_and_no_peer_give_none():
    meta = _metainfo(3 * PIECE)
    clock = _Clock()
    rejecting, silent, seedless = _Link(("a", 1)), _Link(("b", 2)), _Link(("c", 3))
    seedless.bitfield = set()
    plain = _Link(("d", 4), speaks_v2=False)
    exchange = HashExchange(meta, lambda: [rejecting, silent, seedless, plain], clock)
    results: list[object] = []
    exchange.block_hashes(1).addCallback(results.append)
    (request,) = rejecting.sent
    exchange.received(rejecting, request.reject())
    assert silent.sent == [request] and not seedless.sent and not plain.sent
    clock.now = REQUEST_TIMEOUT + 1
    exchange.tick(clock.now)
    assert results == [None]


def test_a_lost_peer_answers_none_and_unasked_hashes_are_ignored():
    meta = _metainfo(3 * PIECE)
    link = _Link()
    exchange = HashExchange(meta, lambda: [link], _Clock())
    results: list[object] = []
    exchange.block_hashes(0).addCallback(results.append)
    stray = Hashes(meta.files[0].pieces_root, 0, 4, 4, 1, (bytes(32),) * 4)
    exchange.received(link, stray)  # never asked: ignored, the ask still waits
    assert results == []
    exchange.lost(link)
    assert results == [None]


def test_a_one_block_piece_needs_no_peer():
    meta = _metainfo(LEAF_SIZE - 10)
    exchange = HashExchange(meta, lambda: [], _Clock())
    results: list[object] = []
    exchange.block_hashes(0).addCallback(results.append)
    assert results == [[meta.files[0].pieces_root]]


def test_an_answer_after_the_caller_gave_up_is_dropped_quietly():
    meta = _metainfo(3 * PIECE)
    link = _Link()
    exchange = HashExchange(meta, lambda: [link], _Clock())
    asked = exchange.block_hashes(0)
    failures: list[object] = []
    asked.addErrback(failures.append)
    asked.cancel()  # bt.swarm.badblocks times out like this
    (request,) = link.sent
    exchange.received(link, _serve_blocks(meta, link, request))
    exchange.lost(link)
    assert len(failures) == 1


def test_the_hashes_sent_a_second_are_bounded_too():
    meta = _metainfo(4000 * LEAF_SIZE)  # 1000 pieces: the layer is 1024 wide
    root = meta.files[0].pieces_root
    link = _Link()
    exchange = HashExchange(meta, lambda: [link], _Clock(), served_per_second=100)
    for index in range(0, 20 * 512, 512):
        exchange.received(link, HashRequest(root, 2, index % 1024, 512, 9))
    answered = [m for m in link.sent if isinstance(m, Hashes)]
    assert len(answered) * 513 >= 8192 > (len(answered) - 1) * 513
    assert all(isinstance(m, HashReject) for m in link.sent[len(answered) :])


def _block_server(meta, *, has=lambda index: True, corrupt=False, held=None):
    from twisted.internet.defer import Deferred, succeed

    from bt.swarm.blockproofs import BlockHashServer

    def leaves_of(index: int, length: int):
        data = bytearray(meta.datas[0][index * PIECE : index * PIECE + length])
        if corrupt:
            data[0] ^= 1
        if held is not None:
            later = Deferred()
            held.append((later, leaf_hashes(bytes(data))))
            return later
        return succeed(leaf_hashes(bytes(data)))

    return lambda server: BlockHashServer(meta, server.tree, leaves_of, has)


def test_block_hashes_are_served_from_the_data_with_proofs_to_the_root():
    meta = _metainfo(3 * PIECE - 2 * LEAF_SIZE - 5)  # the last piece: 2 real blocks of 4
    root = meta.files[0].pieces_root
    link = _Link()
    exchange = HashExchange(meta, lambda: [link], _Clock(), blocks=_block_server(meta))
    request = HashRequest(root, 0, 8, 4, 3)  # piece 2's leaves, proved up to the root
    exchange.received(link, request)
    (answer,) = link.sent
    assert isinstance(answer, Hashes) and answer.request == request
    assert list(answer.nodes) == [*leaf_hashes(meta.datas[0][2 * PIECE :]), bytes(32), bytes(32)]
    assert verify_proof(answer.hashes, 0, 8, 4, 3, root)
    # what the asking side makes of such an answer: the real blocks of the piece
    seed, leecher = _Link(("10.0.0.7", 7)), _Link(("10.0.0.8", 8))
    asker = HashExchange(meta, lambda: [seed], _Clock())
    results: list[object] = []
    asker.block_hashes(2).addCallback(results.append)
    (asked,) = seed.sent
    exchange.received(leecher, asked)
    asker.received(seed, leecher.sent[-1])
    assert results == [leaf_hashes(meta.datas[0][2 * PIECE :])]


def test_block_hashes_of_changed_data_a_piece_not_here_or_a_busy_peer_are_rejected():
    meta = _metainfo(3 * PIECE)
    root = meta.files[0].pieces_root
    request = HashRequest(root, 0, 4, 4, 1)
    for blocks in (_block_server(meta, corrupt=True), _block_server(meta, has=lambda i: False)):
        link = _Link()
        HashExchange(meta, list, _Clock(), blocks=blocks).received(link, request)
        assert link.sent == [request.reject()]
    held: list = []
    link = _Link()
    exchange = HashExchange(meta, lambda: [link], _Clock(), blocks=_block_server(meta, held=held))
    exchange.received(link, request)
    exchange.received(link, HashRequest(root, 0, 0, 4, 1))  # one at a time per peer
    assert link.sent == [HashRequest(root, 0, 0, 4, 1).reject()]
    later, leaves = held[0]
    later.callback(leaves)
    assert isinstance(link.sent[-1], Hashes)


def test_requests_naming_unknown_roots_leave_nothing_behind():
    meta = _metainfo(11 * PIECE)
    server = HashServer(meta)
    for n in range(500):
        request = HashRequest(n.to_bytes(32, "big"), 2, 0, 4, 1)
        assert server.answer(request) == request.reject()
    assert server._trees == {}  # a peer naming random roots grows no cache
    root = meta.files[0].pieces_root
    assert isinstance(server.answer(HashRequest(root, 2, 0, 4, 1)), Hashes)
    assert list(server._trees) == [root]


def test_block_hashes_read_from_the_data_are_bounded_per_peer_and_torrent():
    from bt.swarm.hashes import BLOCK_READS_PER_SECOND

    meta = _metainfo(3 * PIECE)
    root = meta.files[0].pieces_root
    reads: list[int] = []
    blocks = _block_server(meta)

    def counting(server):
        inner = blocks(server)
        leaves_of = inner.leaves_of
        inner.leaves_of = lambda index, length: reads.append(index) or leaves_of(index, length)
        return inner

    links = [_Link(("10.0.0.9", n)) for n in range(BLOCK_READS_PER_SECOND + 2)]
    exchange = HashExchange(meta, lambda: links, _Clock(), blocks=counting)
    for _ in range(3):  # each answered at once: one peer asks again and again
        exchange.received(links[0], HashRequest(root, 0, 4, 4, 1))
    assert reads == [1]
    assert [type(m).__name__ for m in links[0].sent] == ["Hashes", "HashReject", "HashReject"]
    for link in links[1:]:
        exchange.received(link, HashRequest(root, 0, 0, 4, 1))
    assert len(reads) == BLOCK_READS_PER_SECOND
    assert links[-1].sent == [HashRequest(root, 0, 0, 4, 1).reject()]
    exchange.tick(1.0)
    exchange.received(links[-1], HashRequest(root, 0, 0, 4, 1))
    assert isinstance(links[-1].sent[-1], Hashes)
    assert len(reads) == BLOCK_READS_PER_SECOND + 1


def test_a_block_hash_request_needs_no_walk_over_every_piece():
    from twisted.internet.defer import succeed

    from bt.swarm.blockproofs import BlockHashServer

    meta = _metainfo(3 * PIECE, 2 * PIECE)
    looked: list[int] = []
    v2_piece = meta.v2_piece
    meta.v2_piece = lambda index: looked.append(index) or v2_piece(index)

    def leaves_of(index: int, length: int):
        assert index == 4
        return succeed(leaf_hashes(meta.datas[1][PIECE : PIECE + length]))

    link = _Link()
    exchange = HashExchange(
        meta,
        lambda: [link],
        _Clock(),
        blocks=lambda server: BlockHashServer(meta, server.tree, leaves_of, lambda i: True),
    )
    second = meta.files[1].pieces_root
    exchange.received(link, HashRequest(second, 0, 4, 4, 1))  # file 1's piece 1: piece 4
    assert looked and set(looked) == {4}
    assert isinstance(link.sent[-1], Hashes)
    for bad in (HashRequest(second, 0, 2, 4, 1), HashRequest(second, 0, 8, 4, 1)):
        exchange.tick(2.0)
        exchange.received(link, bad)  # not a piece's first leaf; past the file's end
        assert link.sent[-1] == bad.reject()


def test_a_peer_gone_before_its_turn_is_not_asked():
    meta = _metainfo(3 * PIECE)
    first, gone = _Link(("10.0.0.1", 1)), _Link(("10.0.0.2", 2))
    exchange = HashExchange(meta, lambda: [first, gone], _Clock())
    results: list[object] = []
    exchange.block_hashes(0).addCallback(results.append)
    (request,) = first.sent
    gone.closed = True
    exchange.lost(gone)
    exchange.received(first, request.reject())
    assert results == [None], "no wait for a peer that left"
    assert not gone.sent and exchange.asker.in_flight(gone) == 0
    assert gone not in exchange.asker._asks


def test_a_failure_answering_from_the_data_is_logged_not_left_in_a_deferred():
    from twisted.logger import globalLogPublisher

    meta = _metainfo(3 * PIECE)
    root = meta.files[0].pieces_root
    link = _Link()

    def broken(msg: object) -> None:
        raise RuntimeError("the connection broke while sending")

    link.send_hash_message = broken  # type: ignore[method-assign]
    seen: list[dict] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        exchange = HashExchange(meta, lambda: [link], _Clock(), blocks=_block_server(meta))
        exchange.received(link, HashRequest(root, 0, 4, 4, 1))
    finally:
        globalLogPublisher.removeObserver(seen.append)
    assert any("block-hash request" in str(e.get("log_format", "")) for e in seen)


def test_block_hash_reads_in_flight_are_bounded_per_torrent():
    from bt.swarm.blockproofs import MAX_READING

    meta = _metainfo(3 * PIECE)
    root = meta.files[0].pieces_root
    held: list = []
    links = [_Link(("10.0.0.5", n)) for n in range(2 * MAX_READING + 1)]
    exchange = HashExchange(meta, lambda: links, _Clock(), blocks=_block_server(meta, held=held))
    request = HashRequest(root, 0, 0, 4, 1)
    for second, link in enumerate(links):
        exchange.tick(float(second))  # a new second: the per-second bounds start over
        exchange.received(link, request)
    assert len(held) == MAX_READING, "a slow disk must not pile up reads"
    assert all(link.sent == [request.reject()] for link in links[MAX_READING:])
    for later, leaves in held:
        later.callback(leaves)
    exchange.tick(99.0)
    exchange.received(links[-1], request)
    assert len(held) == MAX_READING + 1


def test_the_same_request_asked_twice_gives_both_askers_the_answer():
    from bt.swarm.hashes import HashAsker

    meta = _metainfo(3 * PIECE)
    link = _Link()
    asker = HashAsker(_Clock())
    request = HashRequest(meta.files[0].pieces_root, 0, 0, 4, 1)
    first: list[object] = []
    asker.ask(link, request).addCallback(first.append)  # returns None down its chain
    second: list[object] = []
    asker.ask(link, request).addCallback(second.append)
    assert link.sent == [request], "sent once"
    answer = _serve_blocks(meta, link, request)
    assert asker.received(link, answer)
    assert first == [answer] and second == [answer]
