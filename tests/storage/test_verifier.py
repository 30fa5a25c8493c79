"""Piece verifiers against vectors computed here with hashlib alone (no bt.merkle).

v1: SHA-1 of the piece. v2: the BEP 52 root of the piece's 16 KiB leaves over the
real data, zero leaves up to the piece's width, padding bytes zero. Hybrid: both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torrents import libtorrent_v2_torrent, pseudo_random_bytes

from bt.errors import InconsistentHashesError, PieceHashError
from bt.metainfo import Metainfo, parse_metainfo
from bt.storage.verifier import (
    BAD_PADDING,
    HybridVerifier,
    V1Verifier,
    V2Verifier,
    piece_verifier,
    received_leaves,
)

LEAF = 16384


def naive_root(data: bytes, width: int) -> bytes:
    """The merkle root the slow, obvious way: hash the leaves, pad with zeros, pair up."""
    layer = [hashlib.sha256(data[i : i + LEAF]).digest() for i in range(0, len(data), LEAF)]
    layer += [bytes(32)] * (width - len(layer))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]


@dataclass(frozen=True)
class Piece:
    expected: bytes
    data_length: int
    leaves: int


def v2_of(pieces: list[Piece]) -> V2Verifier:
    return V2Verifier(len(pieces), pieces.__getitem__)


FULL = pseudo_random_bytes(4 * LEAF, seed=1)
SHORT = pseudo_random_bytes(LEAF + 3616, seed=2)  # a file's last piece: 2 leaves of 4


def test_the_naive_root_matches_a_hand_computed_vector() -> None:
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert naive_root(b"a", 1) == a
    assert naive_root(b"a", 2) == hashlib.sha256(a + bytes(32)).digest()
    data = b"a" * LEAF + b"b"
    left = hashlib.sha256(b"a" * LEAF).digest()
    assert naive_root(data, 2) == hashlib.sha256(left + b).digest()


def test_v1_checks_sha1_and_carries_no_leaves() -> None:
    verifier = V1Verifier([hashlib.sha1(FULL).digest()])
    verifier.verify(0, FULL)
    with pytest.raises(PieceHashError) as caught:
        verifier.verify(0, FULL[:-1] + b"!")
    assert caught.value.index == 0 and caught.value.leaf_hashes is None
    digest = verifier.hasher(0)
    digest.update(FULL[:LEAF])
    digest.update(memoryview(FULL)[LEAF:])
    assert digest.matches()


def test_v2_full_piece_passes_and_a_bad_block_is_named_by_its_leaf() -> None:
    verifier = v2_of([Piece(naive_root(FULL, 4), len(FULL), 4)])
    verifier.verify(0, FULL)
    bad = bytearray(FULL)
    bad[2 * LEAF + 5] ^= 1
    with pytest.raises(PieceHashError) as caught:
        verifier.verify(0, bytes(bad))
    leaves = caught.value.leaf_hashes
    real = [hashlib.sha256(FULL[i : i + LEAF]).digest() for i in range(0, len(FULL), LEAF)]
    assert leaves is not None and len(leaves) == 4
    assert [n for n in range(4) if leaves[n] != real[n]] == [2]


def test_v2_short_piece_hashes_its_real_bytes_only_and_padding_must_be_zero() -> None:
    # A multi-piece file's last piece in a uniform (padded) 64 KiB piece.
    expected = naive_root(SHORT, 4)
    verifier = v2_of([Piece(expected, len(SHORT), 4)])
    padded = SHORT + bytes(4 * LEAF - len(SHORT))
    verifier.verify(0, padded)
    verifier.verify(0, SHORT)  # a short last piece (a hybrid without tail padding)
    with pytest.raises(PieceHashError) as caught:
        verifier.verify(0, padded[:-1] + b"\x01")  # garbage in the last padding block
    assert caught.value.leaf_hashes is not None
    assert caught.value.leaf_hashes[:2] == (
        hashlib.sha256(SHORT[:LEAF]).digest(),
        hashlib.sha256(SHORT[LEAF:]).digest(),
    )
    assert caught.value.leaf_hashes[2:] == (bytes(32), BAD_PADDING)
    with pytest.raises(PieceHashError) as caught:
        verifier.verify(0, SHORT + b"\x01" + bytes(len(padded) - len(SHORT) - 1))
    assert caught.value.leaf_hashes is not None
    assert caught.value.leaf_hashes[1] == BAD_PADDING, "the block holding file end and padding"
    middle = len(SHORT) + LEAF + 7  # the padding is checked 16 KiB at a time from data_length
    with pytest.raises(PieceHashError):
        verifier.verify(0, padded[:middle] + b"\x01" + padded[middle + 1 :])


def test_v2_small_file_piece_is_its_file_root_over_fewer_leaves() -> None:
    data = pseudo_random_bytes(2 * LEAF + 100, seed=3)  # 3 leaves: width 4, piece of 8 blocks
    verifier = v2_of([Piece(naive_root(data, 4), len(data), 4)])
    verifier.verify(0, data + bytes(8 * LEAF - len(data)))
    assert received_leaves(data + bytes(8 * LEAF - len(data)), len(data))[3:] == (bytes(32),) * 5


def test_v2_incremental_hash_takes_chunks_of_whole_leaves() -> None:
    verifier = v2_of([Piece(naive_root(SHORT, 4), len(SHORT), 4)])
    padded = SHORT + bytes(4 * LEAF - len(SHORT))
    digest = verifier.hasher(0)
    digest.update(padded[: 2 * LEAF])
    digest.update(padded[2 * LEAF :])
    assert digest.matches()
    digest = verifier.hasher(0)
    digest.update(padded[:LEAF])
    assert not digest.matches(), "half a piece is not the piece"
    digest = verifier.hasher(0)
    digest.update(padded[:100])
    with pytest.raises(ValueError, match="not on a 16384-byte leaf"):
        digest.update(padded[100:])
    digest = verifier.hasher(0)
    digest.update(padded[:-1] + b"\x01")
    assert not digest.matches(), "padding must be zero"


def test_hybrid_piece_passing_only_one_view_is_an_inconsistent_torrent() -> None:
    good = Piece(naive_root(FULL, 4), len(FULL), 4)
    wrong = Piece(naive_root(SHORT, 4), len(FULL), 4)
    sha1 = hashlib.sha1(FULL).digest()
    HybridVerifier(V1Verifier([sha1]), v2_of([good])).verify(0, FULL)
    for v1, v2, passed in (
        (V1Verifier([sha1]), v2_of([wrong]), "v1"),
        (V1Verifier([bytes(20)]), v2_of([good]), "v2"),
    ):
        verifier = HybridVerifier(v1, v2)
        # no peer can mend a .torrent whose views disagree: not the senders' fault
        with pytest.raises(InconsistentHashesError, match=f"passes its {passed} hash") as caught:
            verifier.verify(0, FULL)
        assert not isinstance(caught.value, PieceHashError)
        digest = verifier.hasher(0)
        digest.update(FULL)
        assert not digest.matches()
    # bad data fails both: the senders' fault, with the leaf hashes to find the bad blocks
    bad = bytearray(FULL)
    bad[LEAF + 5] ^= 1
    with pytest.raises(PieceHashError) as caught:
        HybridVerifier(V1Verifier([sha1]), v2_of([good])).verify(0, bytes(bad))
    assert caught.value.leaf_hashes is not None and len(caught.value.leaf_hashes) == 4
    with pytest.raises(ValueError, match="pieces"):
        HybridVerifier(V1Verifier([sha1, sha1]), v2_of([good]))


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(1, 8 * LEAF),
    width=st.sampled_from([8, 16]),
    chunk=st.sampled_from([LEAF, 2 * LEAF, 1 << 20]),
)
def test_v2_agrees_with_the_naive_tree(length: int, width: int, chunk: int) -> None:
    data = pseudo_random_bytes(length, seed=length)
    piece_size = width * LEAF
    padded = data + bytes(piece_size - length)
    verifier = v2_of([Piece(naive_root(data, width), length, width)])
    verifier.verify(0, padded)
    digest = verifier.hasher(0)
    for start in range(0, piece_size, chunk):
        digest.update(padded[start : start + chunk])
    assert digest.matches()


def write_tree(root: Path, files: dict[str, int]) -> None:
    for number, (relative, size) in enumerate(sorted(files.items())):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pseudo_random_bytes(size, number + 11))


def piece_stream(meta: Metainfo, folder: Path) -> bytes:
    out = bytearray()
    for entry in meta.files:
        out += bytes(entry.length) if entry.padding else folder.joinpath(*entry.path).read_bytes()
    return bytes(out)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("hybrid", [False, True])
def test_every_piece_of_a_libtorrent_torrent_passes_the_verifier_of_its_format(
    tmp_path: Path, hybrid: bool
) -> None:
    pytest.importorskip("libtorrent")
    files = {"e": 0, "one": 1, "leaf": LEAF + 1, "piece": 4 * LEAF, "big": 9 * LEAF + 7}
    write_tree(tmp_path / "t", files)
    meta = parse_metainfo(libtorrent_v2_torrent(tmp_path / "t", 4 * LEAF, hybrid=hybrid))
    verifier = piece_verifier(meta)
    assert isinstance(verifier, HybridVerifier if hybrid else V2Verifier)
    data = piece_stream(meta, tmp_path)
    for index in range(meta.num_pieces):
        piece = data[index * meta.piece_length :][: meta.piece_size(index)]
        verifier.verify(index, piece)
        with pytest.raises(PieceHashError):
            verifier.verify(index, bytes([piece[0] ^ 1]) + piece[1:])


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 8 * LEAF),
    corrupt=st.sets(st.integers(0, 8 * LEAF - 1), max_size=4),
    padded_reference=st.booleans(),
)
def test_the_failed_leaves_name_exactly_the_blocks_that_were_changed(
    length: int, corrupt: set[int], padded_reference: bool
) -> None:
    from bt.policy.blame import bad_blocks

    data = pseudo_random_bytes(length, seed=length) + bytes(8 * LEAF - length)
    changed = bytearray(data)
    for offset in corrupt:
        changed[offset] ^= 0x5A
    verifier = v2_of([Piece(naive_root(data[:length], 8), length, 8)])
    # The real leaves as a hash request answers them: the file's leaves, maybe padded.
    real = data[:length]
    reference = [hashlib.sha256(real[i : i + LEAF]).digest() for i in range(0, length, LEAF)]
    if padded_reference:
        reference += [bytes(32)] * (8 - len(reference))
    if not corrupt:
        verifier.verify(0, bytes(changed))
        return
    with pytest.raises(PieceHashError) as caught:
        verifier.verify(0, bytes(changed))
    assert caught.value.leaf_hashes is not None
    assert bad_blocks(caught.value.leaf_hashes, reference) == sorted({o // LEAF for o in corrupt})
