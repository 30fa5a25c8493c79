"""BEP 52 merkle trees: against a naive recursive construction here, and against libtorrent.

The reference below is written from the BEP's words, not from bt.merkle: pad the
leaf layer with zero hashes to a power of two, then a node is the SHA-256 of its
two children.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt import merkle
from bt.merkle import (
    LEAF_SIZE,
    MerkleTree,
    file_root,
    file_tree_hashes,
    leaf_count,
    leaf_hashes,
    next_power_of_two,
    pad_hash,
    piece_layer_matches,
    piece_root,
    proof_top,
    subtree_root,
    uncle_count,
    verify_proof,
)

KiB = 1024
ZERO = bytes(32)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def naive_root(nodes: list[bytes]) -> bytes:
    """Root of a full binary tree over ``nodes`` (a power of two of them), recursively."""
    if len(nodes) == 1:
        return nodes[0]
    half = len(nodes) // 2
    return sha(naive_root(nodes[:half]) + naive_root(nodes[half:]))


def naive_leaves(data: bytes) -> list[bytes]:
    return [sha(data[i : i + LEAF_SIZE]) for i in range(0, len(data), LEAF_SIZE)]


def padded(nodes: list[bytes], width: int, pad: bytes = ZERO) -> list[bytes]:
    return nodes + [pad] * (width - len(nodes))


def naive_width(n: int) -> int:
    width = 1
    while width < n:
        width *= 2
    return width


def naive_file(data: bytes, piece_length: int) -> tuple[bytes, list[bytes]]:
    """(pieces root, piece layer) of a non-empty file, every padding leaf written out."""
    leaves = naive_leaves(data)
    root = naive_root(padded(leaves, naive_width(len(leaves))))
    if len(data) <= piece_length:
        return root, []
    per_piece = piece_length // LEAF_SIZE
    layer = [
        naive_root(padded(leaves[i : i + per_piece], per_piece))
        for i in range(0, len(leaves), per_piece)
    ]
    return root, layer


def blob(size: int, seed: int = 0) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


# --- padding rules -------------------------------------------------------------------------


def test_pad_hash_is_the_root_of_a_subtree_of_zero_leaves() -> None:
    assert pad_hash(0) == ZERO
    assert pad_hash(1) == sha(ZERO + ZERO)
    for height in range(8):
        assert pad_hash(height) == naive_root([ZERO] * 2**height)


def test_next_power_of_two_and_leaf_count() -> None:
    assert [next_power_of_two(n) for n in (0, 1, 2, 3, 4, 5, 1023, 1025)] == [
        1,
        1,
        2,
        4,
        4,
        8,
        1024,
        2048,
    ]
    assert [leaf_count(n) for n in (0, 1, 16383, 16384, 16385, 65536)] == [0, 1, 1, 1, 2, 4]
    with pytest.raises(ValueError):
        leaf_count(-1)


def test_leaf_hashes_cut_16_kib_slices_and_the_last_is_short() -> None:
    assert leaf_hashes(b"") == []
    data = blob(2 * LEAF_SIZE + 5)
    assert leaf_hashes(data) == [
        sha(data[:LEAF_SIZE]),
        sha(data[LEAF_SIZE : 2 * LEAF_SIZE]),
        sha(data[2 * LEAF_SIZE :]),
    ]
    assert leaf_hashes(memoryview(data)) == leaf_hashes(data)


def test_a_short_piece_is_padded_with_zero_leaves_not_zero_bytes() -> None:
    data = blob(LEAF_SIZE + 1)
    expected = naive_root([sha(data[:LEAF_SIZE]), sha(data[LEAF_SIZE:]), ZERO, ZERO])
    assert piece_root(data, 4) == expected
    assert piece_root(data, 4) != piece_root(data + bytes(3 * LEAF_SIZE - 1), 4)


def test_one_leaf_is_its_own_root_and_no_data_is_padding() -> None:
    assert piece_root(b"x", 1) == sha(b"x")
    assert subtree_root([], 8) == pad_hash(3)
    assert subtree_root([], 4, height=2) == pad_hash(4)


def test_subtree_root_refuses_widths_that_are_not_powers_of_two_or_too_small() -> None:
    with pytest.raises(ValueError):
        subtree_root([ZERO] * 3, 3)
    with pytest.raises(ValueError):
        subtree_root([ZERO] * 5, 4)


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_subtree_root_equals_the_naive_tree(hashes: list[bytes], data: st.DataObject) -> None:
    height = data.draw(st.integers(0, 4))
    width = naive_width(len(hashes)) * data.draw(st.sampled_from([1, 2, 4]))
    expected = naive_root(padded(hashes, width, naive_root([ZERO] * 2**height)))
    assert subtree_root(hashes, width, height) == expected


# --- files: roots and piece layers ---------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 20 * LEAF_SIZE + 3),
    st.sampled_from([16 * KiB, 32 * KiB, 64 * KiB]),
)
def test_file_root_and_piece_layer_equal_the_naive_tree(length: int, piece_length: int) -> None:
    data = blob(length, seed=length)
    root, layer = file_tree_hashes(leaf_hashes(data), piece_length)
    assert (root, layer) == naive_file(data, piece_length)
    if layer:
        assert file_root(length, layer, piece_length) == root
        assert piece_layer_matches(root, length, layer, piece_length)
        assert MerkleTree.from_piece_layer(layer, length, piece_length).root == root
    assert MerkleTree.from_leaves(leaf_hashes(data)).root == root


def test_each_piece_hash_is_the_root_of_its_piece_data() -> None:
    piece_length = 64 * KiB
    data = blob(3 * piece_length + 5)
    _, layer = file_tree_hashes(leaf_hashes(data), piece_length)
    for index, expected in enumerate(layer):
        chunk = data[index * piece_length : (index + 1) * piece_length]
        assert piece_root(chunk, piece_length // LEAF_SIZE) == expected


def test_a_wrong_piece_layer_does_not_match() -> None:
    piece_length = 32 * KiB
    data = blob(5 * piece_length)
    root, layer = file_tree_hashes(leaf_hashes(data), piece_length)
    assert piece_layer_matches(root, len(data), layer, piece_length)
    assert not piece_layer_matches(root, len(data), layer[:-1], piece_length)
    assert not piece_layer_matches(root, len(data), [*layer[:-1], ZERO], piece_length)
    assert not piece_layer_matches(root, len(data), [*layer[:-1], b"short"], piece_length)
    assert not piece_layer_matches(root, len(data) + piece_length, layer, piece_length)
    assert not piece_layer_matches(root, len(data), layer, 16 * KiB)


@pytest.mark.parametrize("piece_length", [0, 8 * KiB, 24 * KiB, 48 * KiB, 16 * KiB + 1])
def test_a_piece_length_not_a_power_of_two_of_16_kib_has_no_piece_layer(piece_length: int) -> None:
    assert not merkle.is_piece_length(piece_length)
    with pytest.raises(ValueError, match=f"piece length {piece_length} is not a power of two"):
        merkle.layer_of_piece_length(piece_length)


@pytest.mark.parametrize(("piece_length", "layer"), [(16 * KiB, 0), (32 * KiB, 1), (4 << 20, 8)])
def test_the_piece_layer_of_a_power_of_two(piece_length: int, layer: int) -> None:
    assert merkle.is_piece_length(piece_length)
    assert merkle.layer_of_piece_length(piece_length) == layer


@pytest.mark.parametrize(
    ("file_length", "leaves"),
    [
        (1, 1),
        (LEAF_SIZE, 1),
        (LEAF_SIZE + 1, 2),
        (3 * LEAF_SIZE, 4),
        (64 * KiB, 4),
        (64 * KiB + 1, 4),
    ],
)
def test_piece_leaves_a_whole_piece_or_a_small_file_padded(file_length: int, leaves: int) -> None:
    assert merkle.piece_leaves(file_length, 64 * KiB) == leaves


def test_file_tree_hashes_refuses_an_empty_file_and_a_bad_piece_length() -> None:
    with pytest.raises(ValueError):
        file_tree_hashes([], 16 * KiB)
    with pytest.raises(ValueError):
        file_tree_hashes([ZERO], 24 * KiB)
    with pytest.raises(ValueError):
        file_root(16 * KiB, [ZERO], 16 * KiB)  # one piece: no layer


# --- proofs --------------------------------------------------------------------------------


def naive_layers(leaves: list[bytes]) -> list[list[bytes]]:
    """Every layer of the padded tree, leaves first."""
    layers = [padded(leaves, naive_width(len(leaves)))]
    while len(layers[-1]) > 1:
        below = layers[-1]
        layers.append([sha(below[i] + below[i + 1]) for i in range(0, len(below), 2)])
    return layers


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[bytes], int, int, int, int]:
    leaves = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=70))
    height = naive_width(len(leaves)).bit_length() - 1
    base = draw(st.integers(0, height - 1))
    width = 2 ** (height - base)
    length = 2 ** draw(st.integers(0, width.bit_length() - 1))
    index = length * draw(st.integers(0, width // length - 1))
    proof_layers = draw(st.integers(0, height - base - 1))
    return leaves, base, index, length, proof_layers


@settings(max_examples=200)
@given(requests())
def test_proofs_are_the_base_nodes_and_the_uncles_and_verify(
    request: tuple[list[bytes], int, int, int, int],
) -> None:
    leaves, base, index, length, proof_layers = request
    tree = MerkleTree.from_leaves(leaves)
    layers = naive_layers(leaves)
    hashes = tree.proof(base, index, length, proof_layers)
    # the base nodes, then siblings of the ancestors from the subtree root up
    uncles = []
    layer, position = base + length.bit_length() - 1, index // length
    while layer <= base + proof_layers:
        uncles.append(layers[layer][position ^ 1])
        layer, position = layer + 1, position // 2
    assert hashes == layers[base][index : index + length] + uncles
    assert len(uncles) == uncle_count(length, proof_layers)
    top_layer, top_index, top = proof_top(hashes, base, index, length, proof_layers)
    assert top == layers[top_layer][top_index]
    assert tree.verify(hashes, base, index, length, proof_layers)
    if top_layer == len(layers) - 1:
        assert verify_proof(hashes, base, index, length, proof_layers, tree.root)
    for spoilt in range(len(hashes)):
        bad = list(hashes)
        bad[spoilt] = sha(bad[spoilt])
        assert not tree.verify(bad, base, index, length, proof_layers)
    assert not tree.verify(hashes[:-1], base, index, length, proof_layers)


def test_a_full_proof_of_one_piece_of_leaves_reaches_the_root() -> None:
    """The request v2-wire makes for a failed piece: its leaves, up to the root."""
    leaves = leaf_hashes(blob(11 * LEAF_SIZE + 7))
    tree = MerkleTree.from_leaves(leaves)  # 12 leaves, width 16, height 4
    hashes = tree.proof(0, 4, 4, tree.height - 1)
    assert len(hashes) == 4 + 2
    assert verify_proof(hashes, 0, 4, 4, tree.height - 1, tree.root)
    assert hashes[:4] == leaves[4:8]


def test_a_tree_from_the_piece_layer_serves_the_piece_layer_but_not_leaves() -> None:
    piece_length = 32 * KiB
    data = blob(9 * piece_length + 1)
    root, layer = file_tree_hashes(leaf_hashes(data), piece_length)
    tree = MerkleTree.from_piece_layer(layer, len(data), piece_length)
    assert tree.root == root
    assert tree.layer(1) == layer
    assert tree.layer(0) is None
    hashes = tree.proof(1, 8, 8, tree.height - 2)
    assert hashes[:2] == layer[8:10] and hashes[2:8] == [pad_hash(1)] * 6
    assert verify_proof(hashes, 1, 8, 8, tree.height - 2, root)
    with pytest.raises(ValueError):
        tree.proof(0, 0, 2, 1)


def test_requests_that_do_not_fit_are_refused() -> None:
    tree = MerkleTree.from_leaves([ZERO, sha(b"a"), sha(b"b")])  # width 4, height 2
    for base, index, length, proofs in [(0, 1, 2, 0), (0, 0, 3, 0), (0, 4, 2, 0), (0, 0, 2, 2)]:
        with pytest.raises(ValueError):
            tree.proof(base, index, length, proofs)
        assert not verify_proof([ZERO] * 4, base, index, length, proofs, tree.root)
    assert tree.node(0, 3) == ZERO and tree.node(0, 4) is None and tree.node(5, 0) is None


# --- libtorrent ----------------------------------------------------------------------------

SIZES = {
    "empty": 0,
    "one": 1,
    "under_a_leaf": 16383,
    "a_leaf": 16384,
    "over_a_leaf": 16385,
    "a_piece": 64 * KiB,
    "pieces": 3 * 64 * KiB + 5,
    "zlast": 5 * 64 * KiB,
}


def walk(tree: dict[bytes, object], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], dict]:
    out: dict[tuple[str, ...], dict] = {}
    for key, value in tree.items():
        assert isinstance(value, dict)
        if key == b"":
            out[path] = value
        else:
            out.update(walk(value, (*path, key.decode())))
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_file_roots_and_piece_layers_equal_libtorrents(tmp_path: Path) -> None:
    lt = pytest.importorskip("libtorrent")
    piece_length = 64 * KiB
    folder = tmp_path / "t"
    folder.mkdir()
    contents = {}
    for number, (name, size) in enumerate(SIZES.items()):
        contents[name] = blob(size, seed=number)
        (folder / name).write_bytes(contents[name])
    storage = lt.file_storage()
    lt.add_files(storage, str(folder))
    creator = lt.create_torrent(storage, piece_length, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(creator, str(tmp_path))
    made = creator.generate()
    files = walk(made[b"info"][b"file tree"])
    assert sorted(files) == sorted((name,) for name in SIZES)
    layers = made.get(b"piece layers", {})
    ours: dict[bytes, bytes] = {}
    for name, data in contents.items():
        entry = files[(name,)]
        assert entry[b"length"] == len(data)
        if not data:
            assert b"pieces root" not in entry
            continue
        root, layer = file_tree_hashes(leaf_hashes(data), piece_length)
        assert entry[b"pieces root"] == root, name
        if layer:
            ours[root] = b"".join(layer)
    assert layers == ours
    for value in layers.values():
        assert b"".join(merkle.split_hashes(value)) == value


def test_a_tree_from_a_piece_layer_hashes_its_layers_once(monkeypatch) -> None:
    import hashlib

    import bt.merkle as merkle_module
    from bt.merkle import MerkleTree, file_root

    piece_length, pieces = 4 * 16384, 1000
    layer = [hashlib.sha256(bytes([n % 256, n // 256])).digest() for n in range(pieces)]
    length = pieces * piece_length - 7
    expected_root = file_root(length, layer, piece_length)
    calls = []

    def counting(data: bytes = b""):
        calls.append(1)
        return hashlib.sha256(data)

    monkeypatch.setattr(merkle_module, "sha256", counting)
    tree = MerkleTree.from_piece_layer(layer, length, piece_length)
    assert tree.root == expected_root
    assert len(calls) < 1100, f"{len(calls)} hashes for a 1000-piece layer: hashed twice?"
    monkeypatch.undo()
    for bad_count, bad_length in ((pieces - 1, length), (pieces, piece_length)):
        with pytest.raises(ValueError, match="piece hashes"):
            MerkleTree.from_piece_layer(layer[:bad_count], bad_length, piece_length)
