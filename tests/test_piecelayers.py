"""Planning and checking the piece layers a v2 magnet fetches by hash requests."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt.merkle import LEAF_SIZE, file_tree_hashes
from bt.peer.hash_messages import Hashes, HashReject
from bt.piecelayers import CHUNK, PieceLayerAssembler, layer_requests
from bt.swarm.hashes import HashServer


def _leaves(count: int, seed: int) -> list[bytes]:
    return [hashlib.sha256(bytes([seed]) + n.to_bytes(4, "big")).digest() for n in range(count)]


def _torrent(piece_length: int, *blocks: int) -> SimpleNamespace:
    """Files of ``blocks`` full leaves each (the leaf hashes stand in for data)."""
    files, layers = [], {}
    for seed, count in enumerate(blocks):
        root, layer = file_tree_hashes(_leaves(count, seed), piece_length)
        files.append(SimpleNamespace(length=count * LEAF_SIZE, pieces_root=root))
        if layer:
            layers[root] = b"".join(layer)
    return SimpleNamespace(files=files, piece_layers=layers, piece_length=piece_length)


def _pairs(torrent):
    return [(f.pieces_root, f.length) for f in torrent.files]


def test_requests_follow_libtorrent_chunks():
    piece = 2 * LEAF_SIZE
    torrent = _torrent(piece, 2 * 1300, 2, 2 * 3)  # 1300 pieces, one piece, 3 pieces
    plan = layer_requests(_pairs(torrent), piece)
    big, _, small = (f.pieces_root for f in torrent.files)
    shapes = [(r.pieces_root, r.base_layer, r.index, r.length, r.proof_layers) for r in plan]
    # 1300 pieces: a tree 11 layers over the pieces; chunks of 512, the last padded to 512
    assert shapes == [
        (big, 1, 0, CHUNK, 10),
        (big, 1, 512, CHUNK, 10),
        (big, 1, 1024, 512, 10),
        (small, 1, 0, 4, 1),
    ]
    assert [chunk.real for chunk in plan.values()] == [512, 512, 276, 3]


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([LEAF_SIZE, 2 * LEAF_SIZE, 8 * LEAF_SIZE]),
    st.lists(st.integers(1, 3000), min_size=1, max_size=3),
)
def test_served_chunks_assemble_into_the_layers(piece_length, blocks):
    torrent = _torrent(piece_length, *blocks)
    server = HashServer(torrent)
    assembler = PieceLayerAssembler(_pairs(torrent), piece_length)
    for request in assembler.missing:
        answer = server.answer(request)
        assert isinstance(answer, Hashes), request
        assert assembler.accept(answer)
    assert assembler.done
    assert dict(assembler.layers()) == torrent.piece_layers


def test_a_false_chunk_is_refused_and_stays_missing():
    piece = 2 * LEAF_SIZE
    torrent = _torrent(piece, 2 * 700)
    assembler = PieceLayerAssembler(_pairs(torrent), piece)
    first = assembler.missing[0]
    answer = HashServer(torrent).answer(first)
    assert isinstance(answer, Hashes)
    forged = list(answer.hashes)
    forged[3] = bytes(32)
    assert not assembler.accept(first.answer(tuple(forged)))
    assert assembler.missing[0] == first
    with pytest.raises(ValueError, match="still missing"):
        assembler.layers()
    assert assembler.accept(Hashes(b"\x09" * 32, 1, 0, 2, 0, (bytes(32),) * 2))  # unplanned
    assert not isinstance(HashServer(torrent).answer(first), HashReject)
