"""bt create --format v2|hybrid: the same info dict as libtorrent, and roots computed naively.

libtorrent's create_torrent is the reference for the bytes (info-hashes equal
means every key, order, pad and root equal); a plain hashlib merkle tree in
this file is the independent reference for the roots and the hybrid's SHA-1s.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torrents import write_files

from bt import bencode
from bt.cli import main
from bt.create import CreateError, build_torrent, collect_files, create_torrent
from bt.metainfo import load_metainfo, parse_metainfo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KiB = 1024

#: Small, piece-sized (at 16 and 64 KiB), just over a piece, empty, one byte, nested.
MIXED = {
    "pack/big.bin": 100_000,
    "pack/exact16k": 16 * KiB,
    "pack/exact64k": 64 * KiB,
    "pack/just-over": 16 * KiB + 1,
    "pack/empty": 0,
    "pack/one": 1,
    "pack/sub/deeper/z.txt": 999,
    "pack/.hidden": 5,
    "pack/Upper": 3,
}
#: libtorrent pads no torrent of one file, even inside a folder; with an empty
#: second file it pads the first.
ONE_IN_A_FOLDER = {"pack/only.bin": 40_000}
ONE_AND_EMPTY = {"pack/only.bin": 40_000, "pack/zz": 0}
ALIGNED = {"pack/a": 32 * KiB, "pack/b": 16 * KiB}
LAYOUTS = {
    "mixed": (MIXED, "pack"),
    "one-in-a-folder": (ONE_IN_A_FOLDER, "pack"),
    "one-and-empty": (ONE_AND_EMPTY, "pack"),
    "aligned": (ALIGNED, "pack"),
    "single-small": ({"small.bin": 3}, "small.bin"),
    "single-large": ({"large.bin": 300_000}, "large.bin"),
    "single-piece": ({"piece.bin": 64 * KiB}, "piece.bin"),
}


def libtorrent_dict(content: Path, piece: int, format: str) -> dict[bytes, Any]:
    lt = pytest.importorskip("libtorrent")
    storage = lt.file_storage()
    lt.add_files(storage, str(content))
    flags = lt.create_torrent.v2_only if format == "v2" else 0
    creator = lt.create_torrent(storage, piece, flags=flags)
    lt.set_piece_hashes(creator, str(content.parent))
    decoded: dict[bytes, Any] = bencode.decode(lt.bencode(creator.generate()))
    return decoded


# --- the independent reference: a merkle tree straight from BEP 52 -------------------------


def naive_root(hashes: list[bytes], width: int, pad: bytes) -> bytes:
    level = hashes + [pad] * (width - len(hashes))
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def naive_pad(height: int) -> bytes:
    node = bytes(32)
    for _ in range(height):
        node = hashlib.sha256(node + node).digest()
    return node


def naive_file_root(data: bytes, piece: int) -> tuple[bytes, bytes]:
    """(pieces root, piece layer) of one non-empty file, as BEP 52 words it."""
    block = 16 * KiB
    leaves = [hashlib.sha256(data[i : i + block]).digest() for i in range(0, len(data), block)]
    per_piece = piece // (16 * KiB)
    if len(leaves) <= per_piece:
        width = 1
        while width < len(leaves):
            width *= 2
        return naive_root(leaves, width, bytes(32)), b""
    layer = [
        naive_root(leaves[i : i + per_piece], per_piece, bytes(32))
        for i in range(0, len(leaves), per_piece)
    ]
    width = 1
    while width < len(layer):
        width *= 2
    return naive_root(layer, width, naive_pad(per_piece.bit_length() - 1)), b"".join(layer)


def tree_files(tree: dict[bytes, Any], prefix: tuple[bytes, ...] = ()) -> list[Any]:
    """(path, leaf dict) of every file in a file tree, in the tree's (sorted) order."""
    out = []
    for key in sorted(tree):
        if key == b"":
            out.append((prefix, tree[key]))
        else:
            out.extend(tree_files(tree[key], (*prefix, key)))
    return out


# --- equality with libtorrent ------------------------------------------------------------


@pytest.mark.parametrize("piece", [16 * KiB, 64 * KiB])
@pytest.mark.parametrize("format", ["v2", "hybrid"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_info_dict_and_piece_layers_equal_libtorrents(
    tmp_path: Path, layout: str, format: str, piece: int
) -> None:
    files, top = LAYOUTS[layout]
    write_files(tmp_path, files)
    ours = build_torrent(tmp_path / top, piece_length=piece, format=format)
    theirs = libtorrent_dict(tmp_path / top, piece, format)
    assert bencode.encode(ours["info"]) == bencode.encode(theirs[b"info"])
    assert bencode.encode(ours["piece layers"]) == bencode.encode(theirs[b"piece layers"])


@pytest.mark.parametrize("format", ["v2", "hybrid"])
def test_libtorrent_loads_it_with_the_same_hashes_and_per_file_roots(
    tmp_path: Path, format: str
) -> None:
    lt = pytest.importorskip("libtorrent")
    write_files(tmp_path, MIXED)
    data, meta = create_torrent(tmp_path / "pack", piece_length=16 * KiB, format=format)
    theirs = libtorrent_dict(tmp_path / "pack", 16 * KiB, format)
    loaded = lt.torrent_info(data)
    reference = lt.torrent_info(bencode.encode(theirs))
    assert str(loaded.info_hashes().v2) == str(reference.info_hashes().v2)
    assert str(loaded.info_hashes().v2) == meta.info_hash_v2.hex()
    if format == "hybrid":
        assert str(loaded.info_hashes().v1) == str(reference.info_hashes().v1)
        assert str(loaded.info_hashes().v1) == meta.info_hash_v1.hex()
    storage = loaded.files()
    roots = {
        storage.file_path(i): str(storage.root(i))
        for i in range(storage.num_files())
        if storage.file_size(i) and not storage.file_flags(i) & lt.file_storage.flag_pad_file
    }
    ours = {
        "/".join(entry.path): entry.pieces_root.hex()
        for entry in meta.files
        if entry.pieces_root is not None
    }
    assert ours == roots
    assert len(ours) == sum(1 for size in MIXED.values() if size)


def test_roots_and_layers_equal_a_tree_built_by_hand(tmp_path: Path) -> None:
    write_files(tmp_path, MIXED)
    piece = 32 * KiB
    root = bencode.decode(
        bencode.encode(build_torrent(tmp_path / "pack", piece_length=piece, format="v2"))
    )
    found = tree_files(root[b"info"][b"file tree"])
    assert [b"/".join(path).decode() for path, _ in found] == [
        "/".join(f.components) for f in collect_files(tmp_path / "pack")[1]
    ]
    layers = {}
    for path, leaf in found:
        data = (tmp_path / "pack").joinpath(*(p.decode() for p in path)).read_bytes()
        assert leaf[b"length"] == len(data)
        if not data:
            assert b"pieces root" not in leaf  # an empty file has no root
            continue
        expected, layer = naive_file_root(data, piece)
        assert leaf[b"pieces root"] == expected, path
        if layer:
            layers[expected] = layer
    assert root[b"piece layers"] == layers


def test_hybrid_pieces_are_sha1_of_the_stream_with_zero_pads(tmp_path: Path) -> None:
    write_files(tmp_path, MIXED)
    piece = 16 * KiB
    info = build_torrent(tmp_path / "pack", piece_length=piece, format="hybrid")["info"]
    stream = b""
    for entry in info["files"]:
        if entry.get("attr") == "p":
            assert entry["path"] == [".pad", str(entry["length"])]
            stream += bytes(entry["length"])
        else:
            stream += (tmp_path / "pack").joinpath(*entry["path"]).read_bytes()
    assert len(stream) % piece == 0  # the last file is padded too
    expected = b"".join(
        hashlib.sha1(stream[i : i + piece]).digest() for i in range(0, len(stream), piece)
    )
    assert info["pieces"] == expected
    real = [e for e in info["files"] if e.get("attr") != "p"]
    walked = collect_files(tmp_path / "pack")[1]
    assert [e["path"] for e in real] == [list(f.components) for f in walked]


def test_hybrid_v1_order_is_the_trees_where_libtorrent_gets_it_wrong(tmp_path: Path) -> None:
    """``a.txt`` beside folder ``a``: the tree says a/b first; libtorrent 2.1.1 sorts
    whole path strings (``.`` < ``/``) and then refuses its own torrent."""
    lt = pytest.importorskip("libtorrent")
    write_files(tmp_path, {"t/a/b": 100, "t/a.txt": 200, "t/b-c": 30, "t/b/x": 300})
    data, meta = create_torrent(tmp_path / "t", piece_length=16 * KiB, format="hybrid")
    real = [entry.path for entry in meta.files if not entry.padding]
    assert real == [("t", "a", "b"), ("t", "a.txt"), ("t", "b", "x"), ("t", "b-c")]
    assert str(lt.torrent_info(data).info_hashes().v1) == meta.info_hash_v1.hex()
    with pytest.raises(RuntimeError, match="v1 and v2 file metadata does not match"):
        lt.torrent_info(bencode.encode(libtorrent_dict(tmp_path / "t", 16 * KiB, "hybrid")))


# --- the rest ------------------------------------------------------------------------------


@pytest.mark.parametrize("format", ["v2", "hybrid"])
@pytest.mark.parametrize("piece", [8 * KiB, 40_000, 48 * KiB])
def test_a_piece_length_bep52_forbids_is_refused(tmp_path: Path, format: str, piece: int) -> None:
    write_files(tmp_path, {"f.bin": 1000})
    with pytest.raises(CreateError, match=rf"piece length {piece} .* power of two of at least"):
        build_torrent(tmp_path / "f.bin", piece_length=piece, format=format)


def test_v1_keeps_any_positive_piece_length_and_stays_the_default(tmp_path: Path) -> None:
    write_files(tmp_path, {"f.bin": 1000})
    root = build_torrent(tmp_path / "f.bin", piece_length=40_000)
    assert "meta version" not in root["info"] and "piece layers" not in root


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"f.bin": 1000})
    with pytest.raises(CreateError, match="format 'v3' is not one of v1, v2, hybrid"):
        build_torrent(tmp_path / "f.bin", format="v3")


def test_the_pool_size_and_progress_do_not_change_the_result(tmp_path: Path) -> None:
    write_files(tmp_path, MIXED)
    calls: list[tuple[int, int]] = []
    one = build_torrent(
        tmp_path / "pack", piece_length=16 * KiB, format="hybrid", creation_date=1, workers=1
    )
    many = build_torrent(
        tmp_path / "pack",
        piece_length=16 * KiB,
        format="hybrid",
        creation_date=1,
        workers=4,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert bencode.encode(one) == bencode.encode(many)
    total = sum(MIXED.values())
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_top_level_keys_are_libtorrents_plus_bts_own(tmp_path: Path) -> None:
    write_files(tmp_path, {"f.bin": 70_000})
    root = build_torrent(
        tmp_path / "f.bin",
        [["http://t/announce"]],
        piece_length=16 * KiB,
        format="v2",
        creation_date=7,
    )
    assert sorted(root) == [
        "announce",
        "announce-list",
        "created by",
        "creation date",
        "info",
        "piece layers",
    ]
    assert sorted(root["info"]) == ["file tree", "meta version", "name", "piece length"]


# --- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize("format", ["v2", "hybrid"])
def test_bt_create_format_and_bt_info_show_format_hashes_and_roots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], format: str
) -> None:
    write_files(tmp_path, MIXED)
    output = tmp_path / "out.torrent"
    argv = ["create", str(tmp_path / "pack"), "-t", "http://t/announce", "-s", "16K"]
    assert main([*argv, "--format", format, "-o", str(output)]) == 0
    meta = load_metainfo(output)
    assert meta.format == format and meta.info_hash_v2 is not None
    created = capsys.readouterr().out
    assert f"({format}): pack, {len(MIXED)} files" in created
    assert f"info-hash v2: {meta.info_hash_v2.hex()}" in created
    assert main(["info", str(output)]) == 0
    shown = capsys.readouterr().out
    assert f"info-hash v2: {meta.info_hash_v2.hex()}" in shown
    if format == "hybrid":
        assert meta.info_hash_v1 is not None
        assert "format:       hybrid (v1 and v2, BEP 52)" in shown
        assert f"info-hash v1: {meta.info_hash_v1.hex()}" in shown
        assert "(padding)" in shown
    else:
        assert "format:       v2 (BEP 52)" in shown
        assert f"info-hash:    {meta.info_hash.hex()} (v2, first 20 bytes)" in shown
        assert "(padding)" not in shown  # a v2 torrent's pads are bt's view, not in the file
    data_bytes = sum(MIXED.values())
    assert f"({data_bytes} bytes), " in shown and "with padding" in shown
    roots = [e.pieces_root.hex() for e in meta.files if e.pieces_root is not None]
    assert len(roots) == sum(1 for size in MIXED.values() if size)
    for root in roots:
        assert f"pieces root {root}" in shown


def test_bt_create_makes_v1_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_files(tmp_path, {"f.bin": 1000})
    output = tmp_path / "out.torrent"
    assert main(["create", str(tmp_path / "f.bin"), "-t", "http://t/a", "-o", str(output)]) == 0
    meta = load_metainfo(output)
    assert meta.format == "v1" and meta.info_hash_v2 is None
    assert main(["info", str(output)]) == 0
    shown = capsys.readouterr().out
    assert "format:       v1\n" in shown and f"info-hash:    {meta.info_hash.hex()}" in shown
    assert "pieces root" not in shown


def test_bt_create_refuses_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["create", "x", "-t", "http://t/a", "--format", "v3"])
    assert exit_.value.code == 2
    assert "invalid choice: 'v3'" in capsys.readouterr().err


# --- any layout: libtorrent's bytes, and bt's own parser accepts it -------------------------

SIZES = st.one_of(
    st.sampled_from([0, 1, 16 * KiB - 1, 16 * KiB, 16 * KiB + 1, 32 * KiB, 64 * KiB + 5]),
    st.integers(0, 150_000),
)
NAMES = st.sampled_from(["a", "b", "c.txt", "d", "Z", "e e", "f"])


@settings(max_examples=25, deadline=None)
@given(
    files=st.dictionaries(
        st.lists(NAMES, min_size=1, max_size=3).map(tuple), SIZES, min_size=1, max_size=6
    ),
    piece=st.sampled_from([16 * KiB, 32 * KiB]),
    format=st.sampled_from(["v2", "hybrid"]),
)
def test_any_layout_gives_libtorrents_info_dict_and_parses(
    files: dict[tuple[str, ...], int], piece: int, format: str
) -> None:
    # A path may not be both a file and a folder; names sorting before "/" beside a
    # folder are where libtorrent's hybrid order differs (tested above), so none here.
    paths = sorted(files)
    assume(not any(a == b[: len(a)] for a in paths for b in paths if a != b))
    assume(sum(files.values()) > 0)
    with tempfile.TemporaryDirectory() as folder:
        top = Path(folder) / "t"
        write_files(Path(folder), {"/".join(("t", *path)): size for path, size in files.items()})
        root = build_torrent(top, piece_length=piece, format=format)
        theirs = libtorrent_dict(top, piece, format)
        assert bencode.encode(root["info"]) == bencode.encode(theirs[b"info"])
        assert bencode.encode(root["piece layers"]) == bencode.encode(theirs[b"piece layers"])
        meta = parse_metainfo(bencode.encode(root))
        assert meta.format == format
        real = [entry for entry in meta.files if not entry.padding]
        assert [entry.length for entry in real] == [f.length for f in collect_files(top)[1]]
