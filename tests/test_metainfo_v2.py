"""v2-only and hybrid metainfo (BEP 52): libtorrent's torrents parse exactly; bad ones are named."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from torrents import handmade_torrent, libtorrent_v2_torrent, pseudo_random_bytes, write_files

from bt import bencode, merkle
from bt.errors import MetainfoError
from bt.metainfo import Metainfo, parse_metainfo, torrent_bytes, with_piece_layers

lt = pytest.importorskip("libtorrent")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KiB = 1024
PIECE = 64 * KiB
#: Sizes around every boundary: empty, one byte, a leaf, a piece, several pieces.
SIZES = {
    "a/empty": 0,
    "a/one": 1,
    "a/one_again": 1,  # the same padding size as the file before: paths repeat
    "b/under_a_leaf": 16383,
    "b/a_leaf": 16384,
    "b/over_a_leaf": 16385,
    "c/a_piece": PIECE,
    "c/pieces": 3 * PIECE + 5,
    "d": 2 * PIECE,
}


def stream(meta: Metainfo, folder: Path) -> bytes:
    """The torrent's byte stream: every file's bytes, padding as zeros."""
    out = bytearray()
    for entry in meta.files:
        if entry.padding:
            out += bytes(entry.length)
        else:
            out += (folder.joinpath(*entry.path)).read_bytes()
    return bytes(out)


def check_against_libtorrent(meta: Metainfo, data: bytes, folder: Path) -> None:
    info = lt.torrent_info(lt.bdecode(data))
    storage = info.files()
    ours = [(f.path, f.length, f.offset, f.padding) for f in meta.files]
    theirs = [
        (
            tuple(Path(storage.file_path(i)).parts),
            storage.file_size(i),
            storage.file_offset(i),
            bool(storage.file_flags(i) & storage.flag_pad_file),
        )
        for i in range(storage.num_files())
    ]
    assert ours == theirs
    for index, entry in enumerate(meta.files):
        root = storage.root(index).to_bytes()
        assert entry.pieces_root == (None if root == bytes(32) else root)
    assert meta.info_hash_v2 == info.info_hashes().v2.to_bytes()
    assert meta.num_pieces == info.num_pieces()
    assert meta.total_length == info.total_size()
    made = bencode.decode(data)
    assert dict(meta.piece_layers) == made.get(b"piece layers", {})
    content = stream(meta, folder.parent)
    for index in range(meta.num_pieces):
        piece = meta.v2_piece(index)
        assert piece is not None
        chunk = content[index * meta.piece_length : (index + 1) * meta.piece_length]
        assert not any(chunk[piece.data_length :]), "beyond data_length is padding"
        assert merkle.piece_root(chunk[: piece.data_length], piece.leaves) == piece.expected
        entry = meta.files[piece.file_index]
        start = entry.offset + piece.first_leaf * merkle.LEAF_SIZE
        assert start == index * meta.piece_length
        if meta.format == "hybrid":
            assert hashlib.sha1(chunk).digest() == meta.piece_hashes[index]


def test_a_libtorrent_v2_only_multi_file_torrent(tmp_path: Path) -> None:
    write_files(tmp_path / "t", SIZES)
    data = libtorrent_v2_torrent(tmp_path / "t", PIECE)
    meta = parse_metainfo(data)
    assert meta.format == "v2"
    assert meta.info_hash_v1 is None and meta.piece_hashes == ()
    assert meta.info_hash_v2 == hashlib.sha256(meta.raw_info).digest()
    assert meta.info_hash == meta.info_hash_v2[:20]
    assert meta.info_hashes == (meta.info_hash_v2[:20],)
    assert meta.is_multi_file
    assert meta.total_length % PIECE == 0, "virtual padding after every file, the last too"
    assert next(f.path for f in meta.files if f.padding) == ("t", ".pad", str(PIECE - 1))
    check_against_libtorrent(meta, data, tmp_path / "t")
    assert parse_metainfo(torrent_bytes(meta)) == meta
    assert dict(parse_metainfo(torrent_bytes(meta)).piece_layers) == dict(meta.piece_layers)


def test_a_libtorrent_hybrid_multi_file_torrent_with_repeated_padding_paths(
    tmp_path: Path,
) -> None:
    write_files(tmp_path / "t", SIZES)
    data = libtorrent_v2_torrent(tmp_path / "t", PIECE, hybrid=True)
    meta = parse_metainfo(data)
    assert meta.format == "hybrid"
    assert meta.info_hash == meta.info_hash_v1 == hashlib.sha1(meta.raw_info).digest()
    assert meta.info_hashes == (meta.info_hash, hashlib.sha256(meta.raw_info).digest()[:20])
    pads = [f.path for f in meta.files if f.padding]
    assert len(pads) > len(set(pads)), "libtorrent's .pad/<size> paths repeat"
    check_against_libtorrent(meta, data, tmp_path / "t")
    assert parse_metainfo(torrent_bytes(meta)) == meta


@pytest.mark.parametrize("size", [1, 16384, PIECE, 3 * PIECE + 5])
@pytest.mark.parametrize("hybrid", [False, True])
def test_single_file_v2_and_hybrid(tmp_path: Path, size: int, hybrid: bool) -> None:
    write_files(tmp_path, {"movie.bin": size})
    data = libtorrent_v2_torrent(tmp_path / "movie.bin", PIECE, hybrid=hybrid)
    meta = parse_metainfo(data)
    assert meta.format == ("hybrid" if hybrid else "v2")
    assert not meta.is_multi_file
    assert meta.files[0].path == ("movie.bin",)
    assert meta.files[0].pieces_root is not None
    if hybrid:
        assert len(meta.files) == 1
    check_against_libtorrent(meta, data, tmp_path / "movie.bin")


def test_piece_layers_are_required_unless_a_magnet_completes_them(tmp_path: Path) -> None:
    write_files(tmp_path / "t", {"big": 3 * PIECE, "small": 100})
    full = libtorrent_v2_torrent(tmp_path / "t", PIECE)
    root = bencode.decode(full)
    layers = root.pop(b"piece layers")
    bare = bencode.encode(root)
    with pytest.raises(MetainfoError, match=r"^piece layers of file 0 't/big': missing"):
        parse_metainfo(bare)
    meta = parse_metainfo(bare, require_piece_layers=False)
    assert meta.missing_piece_layers == (0,)
    with pytest.raises(LookupError, match="'t/big' has no piece layer"):
        meta.v2_piece(0)
    small = meta.v2_piece(3)
    assert small is not None and small.expected == meta.files[1].pieces_root
    completed = with_piece_layers(meta, layers)
    done = parse_metainfo(completed)
    assert done.info_hash == meta.info_hash and done.missing_piece_layers == ()
    assert dict(done.piece_layers) == layers
    assert torrent_bytes(done) == completed
    wrong = {key: value[:-1] + bytes([value[-1] ^ 1]) for key, value in layers.items()}
    with pytest.raises(MetainfoError, match="does not hash to the file's pieces root"):
        with_piece_layers(meta, wrong)


# --- hand-made torrents: one clear error for each bad input ------------------------------------


def v2_info(
    files: dict[tuple[str, ...], bytes],
    *,
    name: str = "t",
    piece_length: int = 16 * KiB,
    hybrid: bool = False,
) -> tuple[dict[str, Any], dict[bytes, bytes]]:
    """A v2 (or hybrid) info dict and piece layers for ``files`` (tree order = sorted)."""
    tree: dict[str, Any] = {}
    layers: dict[bytes, bytes] = {}
    v1_files: list[dict[str, Any]] = []
    v1_stream = bytearray()
    for path, data in sorted(files.items()):
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        entry: dict[str, Any] = {"length": len(data)}
        if data:
            root, layer = merkle.file_tree_hashes(merkle.leaf_hashes(data), piece_length)
            entry["pieces root"] = root
            if layer:
                layers[root] = b"".join(layer)
        node[path[-1]] = {"": entry}
        v1_files.append({"length": len(data), "path": list(path)})
        v1_stream += data
        pad = -len(v1_stream) % piece_length
        if pad:
            v1_files.append({"length": pad, "path": [".pad", str(pad)], "attr": "p"})
            v1_stream += bytes(pad)
    info: dict[str, Any] = {
        "name": name,
        "piece length": piece_length,
        "meta version": 2,
        "file tree": tree,
    }
    if hybrid:
        info["files"] = v1_files
        info["pieces"] = b"".join(
            hashlib.sha1(v1_stream[i : i + piece_length]).digest()
            for i in range(0, len(v1_stream), piece_length)
        )
    return info, layers


FILES = {("x", "a"): pseudo_random_bytes(40_000, 1), ("y",): pseudo_random_bytes(5, 2)}


def torrent(info: dict[str, Any], layers: dict[bytes, bytes]) -> bytes:
    return handmade_torrent(info, **({"piece layers": layers} if layers else {}))


def refused(data: bytes, pattern: str) -> None:
    with pytest.raises(MetainfoError) as caught:
        parse_metainfo(data)
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(pattern, message), message


def test_the_hand_made_torrents_are_valid() -> None:
    for hybrid in (False, True):
        info, layers = v2_info(FILES, hybrid=hybrid)
        data = torrent(info, layers)
        meta = parse_metainfo(data)
        assert meta.format == ("hybrid" if hybrid else "v2")
        assert [f.path for f in meta.files if not f.padding] == [("t", "x", "a"), ("t", "y")]
        hashes = lt.torrent_info(lt.bdecode(data)).info_hashes()
        assert meta.info_hash_v2 == hashes.v2.to_bytes()
        assert meta.info_hash_v1 == (hashes.v1.to_bytes() if hybrid else None)


def edited(edit: Any, *, hybrid: bool = False) -> bytes:
    info, layers = v2_info(FILES, hybrid=hybrid)
    edit(info, layers)
    return torrent(info, layers)


def leaf(info: dict[str, Any]) -> dict[str, Any]:
    return info["file tree"]["x"]["a"][""]


ROOT_A = merkle.file_tree_hashes(merkle.leaf_hashes(FILES[("x", "a")]), 16 * KiB)[0]

CASES: list[tuple[str, Any, str]] = [
    ("meta version 3", lambda i, _: i.update({"meta version": 3}), r"meta version 3 is not"),
    ("piece length 24 KiB", lambda i, _: i.update({"piece length": 24 * KiB}), r"power of two"),
    ("piece length 8 KiB", lambda i, _: i.update({"piece length": 8 * KiB}), r"power of two"),
    ("no file tree", lambda i, _: i.pop("file tree"), r"missing key 'info.file tree'"),
    ("tree a list", lambda i, _: i.update({"file tree": []}), r"info.file tree is not a dict"),
    ("empty tree", lambda i, _: i.update({"file tree": {}}), r"^info.file tree is not a non-e"),
    ("empty folder", lambda i, _: i["file tree"].update({"z": {}}), r"tree 'z' is not a non-empty"),
    ("folder a string", lambda i, _: i["file tree"].update({"x": b"a"}), r"tree 'x' is not a"),
    ("file and folder", lambda i, _: i["file tree"]["x"]["a"].update({"b": {}}), r"'x/a' is both"),
    ("file at the top", lambda i, _: i["file tree"].update({"": {}}), r"file with an empty name"),
    ("leaf not a dict", lambda i, _: i["file tree"]["x"]["a"].update({"": 1}), r"'x/a': its ''"),
    ("no length", lambda i, _: leaf(i).pop("length"), r"'x/a': length is missing"),
    ("bad length", lambda i, _: leaf(i).update({"length": b"1"}), r"'x/a': length is missing"),
    ("negative", lambda i, _: leaf(i).update({"length": -1}), r"'x/a': length is negative"),
    ("no root", lambda i, _: leaf(i).pop("pieces root"), r"'x/a': a file of 40000 bytes has no"),
    ("short root", lambda i, _: leaf(i).update({"pieces root": b"r" * 31}), r"not a 32-byte"),
    ("root an int", lambda i, _: leaf(i).update({"pieces root": 7}), r"'x/a': pieces root is not"),
    ("zero root", lambda i, _: leaf(i).update({"pieces root": bytes(32)}), r"is all zeros"),
    ("padding", lambda i, _: leaf(i).update({"attr": b"p"}), r"'x/a': a file tree holds no pad"),
    ("dot dot", lambda i, _: i["file tree"].update({"..": i["file tree"].pop("y")}), r"'\.\.'"),
    ("slash", lambda i, _: i["file tree"].update({"a/b": i["file tree"].pop("y")}), r"contains"),
    ("bad utf-8", lambda i, _: i["file tree"].update({b"\xff": {}}), r"not valid UTF-8"),
    ("v1 list, no pieces", lambda i, _: i.update({"length": 5}), r"v1 file list .* no 'pieces'"),
    ("short layer", lambda _, ls: ls.update({ROOT_A: ls[ROOT_A][:-1]}), r"'t/x/a': 95 bytes"),
    ("layer an int", lambda _, ls: ls.update({ROOT_A: 5}), r"'t/x/a': not a string"),
    (
        "wrong layer",
        lambda _, ls: ls.update({ROOT_A: bytes(32) + ls[ROOT_A][32:]}),
        r"'t/x/a': does not hash to the file's pieces root",
    ),
    ("no layer", lambda _, ls: ls.pop(ROOT_A), r"piece layers of file 0 't/x/a': missing"),
    (
        "all empty",
        lambda i, ls: (leaf(i).update({"length": 0}), i["file tree"]["y"][""].update(length=0)),
        r"holds no data",
    ),
]


@pytest.mark.parametrize(("label", "edit", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_each_bad_v2_field_is_one_clear_error(label: str, edit: Any, pattern: str) -> None:
    refused(edited(edit), pattern)


def test_piece_layers_not_a_dictionary() -> None:
    info, _ = v2_info(FILES)
    refused(handmade_torrent(info, **{"piece layers": [b"x"]}), r"^piece layers is not a dict")


def test_layers_no_file_needs_are_dropped() -> None:
    info, layers = v2_info(FILES)
    layers[b"r" * 32] = b"junk"
    meta = parse_metainfo(torrent(info, layers))
    assert set(meta.piece_layers) == {ROOT_A}


def test_a_single_top_level_file_named_otherwise_is_a_folder_of_one_file() -> None:
    info, layers = v2_info({("movie",): b"m" * 100}, name="other")
    meta = parse_metainfo(torrent(info, layers))
    assert meta.is_multi_file and meta.files[0].path == ("other", "movie")
    info, layers = v2_info({("movie",): b"m" * 100}, name="movie")
    meta = parse_metainfo(torrent(info, layers))
    assert not meta.is_multi_file and meta.files[0].path == ("movie",)
    assert meta.files[1].padding and meta.files[1].path == ("movie", ".pad", str(16 * KiB - 100))


# --- hybrids whose two views disagree ----------------------------------------------------------


def v1_files(info: dict[str, Any]) -> list[dict[str, Any]]:
    return info["files"]


HYBRID_CASES: list[tuple[str, Any, str]] = [
    (
        "length",
        lambda i: v1_files(i)[0].update({"length": 39_999}),
        r"^hybrid: file 0 is 't/x/a' of 39999 bytes in info.files but 't/x/a' of 40000",
    ),
    (
        "path",
        lambda i: v1_files(i)[2].update({"path": ["z"]}),
        r"^hybrid: file 1 is 't/z' of 5 bytes in info.files but 't/y' of 5",
    ),
    (
        "missing pad",
        lambda i: v1_files(i).pop(1),
        r"info.files\[1\] 't/y' starts 9152 bytes before a piece boundary",
    ),
    (
        "pad size",
        lambda i: v1_files(i)[1].update({"length": 9151}),
        r"info.files\[1\] 't/.pad/9152': padding of 9151 bytes where alignment needs 9152",
    ),
    (
        "extra pad",
        lambda i: v1_files(i).insert(0, {"length": 16384, "path": [".pad", "x"], "attr": "p"}),
        r"info.files\[0\] 't/.pad/x': padding of 16384 bytes where alignment needs none",
    ),
    (
        "extra v1 file",
        lambda i: v1_files(i).append({"length": 0, "path": ["zz"]}),
        r"^hybrid: info.files lists 3 files but info.file tree 2$",
    ),
    (
        "missing v1 file",
        lambda i: [v1_files(i).pop() for _ in range(2)],
        r"^hybrid: info.files lists 1 files but info.file tree 2$",
    ),
    ("v1 pieces", lambda i: i.update({"pieces": i["pieces"][:-20]}), r"info.pieces holds 3 hashes"),
    (
        "single vs multi",
        lambda i: (i.pop("files"), i.update({"length": 40_005})),
        r"hybrid: file 0",
    ),
]


@pytest.mark.parametrize(
    ("label", "edit", "pattern"), HYBRID_CASES, ids=[c[0] for c in HYBRID_CASES]
)
def test_a_hybrid_whose_views_disagree_is_refused_naming_the_first_difference(
    label: str, edit: Any, pattern: str
) -> None:
    refused(edited(lambda info, _: edit(info), hybrid=True), pattern)


def test_a_hybrid_without_tail_padding_is_accepted() -> None:
    info, layers = v2_info(FILES, hybrid=True)
    del info["files"][-1]  # the pad after the last file
    stream_length = 40_000 + 9152 + 5
    info["pieces"] = info["pieces"][:-20] + hashlib.sha1(pseudo_random_bytes(5, 2)).digest()
    meta = parse_metainfo(torrent(info, layers))
    assert meta.total_length == stream_length
    last = meta.v2_piece(meta.num_pieces - 1)
    assert last is not None and last.data_length == 5 and last.leaves == 1


def test_a_padding_entry_with_a_bad_or_no_path_is_not_refused() -> None:
    """BEP 47 padding is never written: its path is shown only, so a bad one is replaced."""
    info, layers = v2_info(FILES, hybrid=True)
    info["files"][1]["path"] = [".."]
    del info["files"][3]["path"]
    meta = parse_metainfo(torrent(info, layers))
    assert [f.path for f in meta.files if f.padding] == [
        ("t", ".pad", "9152"),
        ("t", ".pad", str(16 * KiB - 5)),
    ]


def test_more_than_0x200000_pieces_is_refused_before_any_layer_is_checked() -> None:
    from bt.metainfo_v2 import MAX_V2_PIECES

    for pieces, ok in ((MAX_V2_PIECES, True), (MAX_V2_PIECES + 1, False)):
        info, _ = v2_info(FILES)
        # x/a takes all pieces but the one of y; no piece layer is needed to count them
        leaf(info).update({"length": (pieces - 1) * 16 * KiB})
        data = torrent(info, {})
        if ok:
            parse_metainfo(data, require_piece_layers=False)
        else:
            refused(data, rf"{pieces} pieces exceeds the limit of {MAX_V2_PIECES}")


def test_a_file_tree_nested_past_the_decoder_limit_is_one_clear_error() -> None:
    from bt.bencode import MAX_DEPTH

    info, _ = v2_info({("y",): FILES[("y",)]})
    y = bencode.encode({"y": info.pop("file tree")["y"]})
    rest = bencode.encode(info)  # keys after "file tree": meta version, name, piece length
    for depth, ok in ((MAX_DEPTH - 6, True), (100_000, False)):
        # encoded by hand, so no encoder recursion is involved in making it
        tree = b"d1:d" * depth + y + b"e" * depth
        data = b"d4:infod9:file tree" + tree + rest[1:] + b"e"
        if ok:
            assert parse_metainfo(data).files[0].path == ("t", *["d"] * depth, "y")
        else:
            with pytest.raises(MetainfoError, match="nesting deeper than") as caught:
                parse_metainfo(data)
            assert "\n" not in str(caught.value)
