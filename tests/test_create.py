"""bt.create: which files go in, how pieces are cut and hashed, and what is refused.

The strongest check is equality with libtorrent: for the same files and piece
length, its ``create_torrent`` must compute the very same info-hash.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest
from torrents import write_files

from bt import bencode
from bt.create import (
    CreateError,
    SourceFile,
    auto_piece_length,
    collect_files,
    create_torrent,
    hash_pieces,
    parse_piece_length,
)
from bt.metainfo import parse_metainfo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KiB = 1024
MiB = 1024 * KiB

NESTED = {
    "album/cover.jpg": 150_001,
    "album/disc1/01.flac": 100_003,
    "album/disc1/empty.txt": 0,
    "album/disc2/deeper/02.flac": 70_000,
    "album/.hidden": 99,
    "album/notes.txt": 999,
}


def libtorrent_info_hash(root: Path, name: str, files: list[SourceFile], piece: int) -> str:
    """The info-hash libtorrent's own create_torrent computes for these files, in this order."""
    lt = pytest.importorskip("libtorrent")
    storage = lt.file_storage()
    for entry in files:
        storage.add_file("/".join((name, *entry.components)), entry.length)
    creator = lt.create_torrent(storage, piece, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(creator, str(root))
    return str(lt.torrent_info(lt.bencode(creator.generate())).info_hashes().v1)


def stream_hashes(files: list[SourceFile], piece: int) -> bytes:
    """The reference: concatenate every byte, then cut and hash."""
    stream = b"".join(entry.source.read_bytes() for entry in files)
    return b"".join(
        hashlib.sha1(stream[i : i + piece]).digest() for i in range(0, len(stream), piece)
    )


# --- equality with libtorrent ------------------------------------------------------------


@pytest.mark.parametrize("piece", [16 * KiB, 64 * KiB])
def test_nested_multi_file_info_hash_equals_libtorrents(tmp_path: Path, piece: int) -> None:
    write_files(tmp_path, NESTED)
    _, meta = create_torrent(tmp_path / "album", [["http://t/announce"]], piece_length=piece)
    name, files, multi = collect_files(tmp_path / "album")
    assert multi and any(f.length == 0 for f in files)
    assert meta.info_hash.hex() == libtorrent_info_hash(tmp_path, name, files, piece)


def test_single_file_info_hash_equals_libtorrents(tmp_path: Path) -> None:
    write_files(tmp_path, {"image.iso": 3 * 64 * KiB + 12_345})
    _, meta = create_torrent(tmp_path / "image.iso", piece_length=64 * KiB)
    name, files, multi = collect_files(tmp_path / "image.iso")
    assert not multi and not meta.is_multi_file
    info = bencode.decode(meta.raw_info)
    assert info[b"length"] == 3 * 64 * KiB + 12_345 and b"files" not in info
    assert meta.info_hash.hex() == libtorrent_info_hash(tmp_path, name, files, 64 * KiB)


def test_the_same_files_libtorrents_add_files_finds_hidden_ones_included(tmp_path: Path) -> None:
    lt = pytest.importorskip("libtorrent")
    write_files(tmp_path, NESTED)
    storage = lt.file_storage()
    lt.add_files(storage, str(tmp_path / "album"))
    theirs = sorted(storage.file_path(i) for i in range(storage.num_files()))
    _, files, _ = collect_files(tmp_path / "album")
    assert sorted(os.path.join("album", *f.components) for f in files) == theirs


def test_output_loads_in_libtorrent_with_trackers_by_tier(tmp_path: Path) -> None:
    lt = pytest.importorskip("libtorrent")
    write_files(tmp_path, NESTED)
    tiers = [["http://a/announce"], ["udp://b:1/announce", "udp://c:2/announce"]]
    data, meta = create_torrent(tmp_path / "album", tiers, piece_length=16 * KiB, private=True)
    info = lt.torrent_info(lt.bdecode(data))
    assert str(info.info_hashes().v1) == meta.info_hash.hex()
    assert info.priv() and info.num_files() == len(NESTED)
    assert [(t.url, t.tier) for t in info.trackers()] == [
        ("http://a/announce", 0),
        ("udp://b:1/announce", 1),
        ("udp://c:2/announce", 1),
    ]


# --- the metainfo written ----------------------------------------------------------------


def test_top_level_fields(tmp_path: Path) -> None:
    write_files(tmp_path, {"f.bin": 40_000})
    data, meta = create_torrent(
        tmp_path / "f.bin",
        [["http://a/announce"], ["http://b/announce"]],
        comment="hello",
        web_seeds=["http://seed/f.bin"],
        creation_date=1_700_000_000,
    )
    root = bencode.decode(data)
    assert root[b"announce"] == b"http://a/announce"
    assert root[b"announce-list"] == [[b"http://a/announce"], [b"http://b/announce"]]
    assert root[b"created by"].startswith(b"bt ")
    assert root[b"creation date"] == 1_700_000_000
    assert meta.comment == "hello" and meta.url_list == ("http://seed/f.bin",)
    assert b"private" not in root[b"info"] and not meta.private
    assert parse_metainfo(data) == meta


def test_private_sets_info_private_to_one(tmp_path: Path) -> None:
    write_files(tmp_path, {"f.bin": 40_000})
    data, meta = create_torrent(tmp_path / "f.bin", private=True)
    assert bencode.decode(data)[b"info"][b"private"] == 1 and meta.private


def test_no_trackers_gives_no_announce_keys(tmp_path: Path) -> None:
    write_files(tmp_path, {"f.bin": 1000})
    root = bencode.decode(create_torrent(tmp_path / "f.bin", [[], [""]])[0])
    assert b"announce" not in root and b"announce-list" not in root


def test_files_are_walked_in_sorted_order_with_paths_below_the_name(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/b": 1, "d/a/z": 2, "d/a.txt": 3, "d/A": 4})
    _, meta = create_torrent(tmp_path / "d")
    assert [f.path for f in meta.files] == [
        ("d", "A"),
        ("d", "a", "z"),
        ("d", "a.txt"),
        ("d", "b"),
    ]


def test_a_trailing_slash_or_dot_path_names_the_folder(tmp_path: Path) -> None:
    write_files(tmp_path, {"album/x": 10})
    assert collect_files(f"{tmp_path / 'album'}/")[0] == "album"
    assert collect_files(tmp_path / "album" / ".")[0] == "album"


# --- pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "piece"),
    [
        ([16 * KiB], 16 * KiB),  # exactly one piece
        ([16 * KiB, 16 * KiB], 16 * KiB),  # files aligned on pieces
        ([1, 2, 3, 0, 5], 16 * KiB),  # many files inside one short piece
        ([10_000, 0, 30_000, 7], 16 * KiB),  # pieces straddling two and three files
        ([100_000, 1], 32 * KiB),  # the last piece holds one byte
        ([5, 70_000, 0, 0, 40_000], 16 * KiB),
    ],
)
def test_pieces_cut_across_file_boundaries(tmp_path: Path, sizes: list[int], piece: int) -> None:
    write_files(tmp_path, {f"d/{i:02d}": size for i, size in enumerate(sizes)})
    _, files, _ = collect_files(tmp_path / "d")
    assert [f.length for f in files] == sizes
    expected = stream_hashes(files, piece)
    assert hash_pieces(files, piece, workers=1) == expected
    assert hash_pieces(files, piece, workers=4) == expected


def test_progress_reports_every_piece_up_to_the_total(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a": 50_000, "d/b": 30_001})
    _, files, _ = collect_files(tmp_path / "d")
    calls: list[tuple[int, int]] = []
    hash_pieces(files, 16 * KiB, workers=3, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 80_001) and calls[-1] == (80_001, 80_001)
    assert len(calls) == 1 + 5
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_file_that_shrank_is_an_error(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a": 50_000})
    _, files, _ = collect_files(tmp_path / "d")
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    with pytest.raises(CreateError, match="shrank"):
        hash_pieces(files, 16 * KiB)


# --- piece length ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (1, 16 * KiB),
        (2000 * 16 * KiB, 16 * KiB),
        (2000 * 16 * KiB + 1, 32 * KiB),
        (100 * MiB, 64 * KiB),  # 1600 pieces
        (700 * MiB, 512 * KiB),  # 1400 pieces
        (4 * 1024 * MiB, 4 * MiB),  # 1024 pieces
        (10**15, 16 * MiB),  # capped: more pieces rather than bigger ones
    ],
)
def test_auto_piece_length(total: int, expected: int) -> None:
    assert auto_piece_length(total) == expected


def test_auto_piece_length_aims_at_1000_to_2000_pieces() -> None:
    for total in range(32 * MiB, 31 * 1024 * MiB, 333 * MiB):  # below the 16 MiB cap
        length = auto_piece_length(total)
        assert length & (length - 1) == 0
        assert 1000 <= -(-total // length) <= 2000, total


def test_auto_piece_length_is_used_when_none_is_given(tmp_path: Path) -> None:
    write_files(tmp_path, {"f": 40 * MiB})
    _, meta = create_torrent(tmp_path / "f")
    assert meta.piece_length == 32 * KiB and meta.num_pieces == 1280


@pytest.mark.parametrize(
    ("text", "expected"),
    [("16K", 16 * KiB), ("256K", 256 * KiB), ("1M", MiB), ("1MiB", MiB), ("16M", 16 * MiB)],
)
def test_piece_size_accepts_unit_sizes(text: str, expected: int) -> None:
    assert parse_piece_length(text) == expected


@pytest.mark.parametrize("text", ["8K", "32M", "100K", "0", "1.5K", "big", ""])
def test_piece_size_must_be_a_power_of_two_from_16k_to_16m(text: str) -> None:
    with pytest.raises(CreateError, match="piece size"):
        parse_piece_length(text)


# --- what is refused ---------------------------------------------------------------------


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(CreateError, match="holds no files"):
        create_torrent(tmp_path / "empty")


def test_zero_total_size_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a": 0, "d/b/c": 0, "z": 0})
    with pytest.raises(CreateError, match="every file in the folder is empty"):
        create_torrent(tmp_path / "d")
    with pytest.raises(CreateError, match="the file is empty"):
        create_torrent(tmp_path / "z")


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CreateError, match="No such file"):
        create_torrent(tmp_path / "nothing")


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"secret": 10, "d/a": 10})
    (tmp_path / "d" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(CreateError, match="outside"):
        create_torrent(tmp_path / "d")


def test_a_symlink_inside_the_folder_is_followed_as_libtorrent_does(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a": 1000, "d/sub/b": 500})
    (tmp_path / "d" / "link").symlink_to("a")
    (tmp_path / "d" / "sublink").symlink_to("sub")
    _, meta = create_torrent(tmp_path / "d")
    assert [(f.path[1:], f.length) for f in meta.files] == [
        (("a",), 1000),
        (("link",), 1000),
        (("sub", "b"), 500),
        (("sublink", "b"), 500),
    ]


def test_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a": 10})
    (tmp_path / "d" / "up").symlink_to(".")
    with pytest.raises(CreateError, match="loop"):
        create_torrent(tmp_path / "d")


def test_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a": 10})
    (tmp_path / "d" / "gone").symlink_to("missing")
    with pytest.raises(CreateError, match="gone"):
        create_torrent(tmp_path / "d")


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a": 10})
    os.mkfifo(tmp_path / "d" / "pipe")
    with pytest.raises(CreateError, match="pipe: not a regular file"):
        create_torrent(tmp_path / "d")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a": 10})
    path = tmp_path / "d" / "s"
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(path))
        with pytest.raises(CreateError, match="not a regular file"):
            create_torrent(tmp_path / "d")


def test_a_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / os.fsdecode(b"bad\xff")).write_bytes(b"x")
    with pytest.raises(CreateError, match="not valid UTF-8"):
        create_torrent(folder)


def test_a_backslash_in_a_name_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"d/a\\b": 10})
    with pytest.raises(CreateError, match="cannot be a name"):
        create_torrent(tmp_path / "d")
