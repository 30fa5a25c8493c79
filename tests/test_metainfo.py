"""Metainfo parsing: libtorrent-made torrents parse exactly; every malformed field is named."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from torrents import handmade_info, handmade_torrent, libtorrent_torrent, write_files

from bt import bencode
from bt.errors import MetainfoError
from bt.metainfo import FileEntry, load_metainfo, parse_metainfo

lt = pytest.importorskip("libtorrent")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def reference(data: bytes) -> object:
    return lt.torrent_info(lt.bdecode(data))


def test_single_file_torrent_from_libtorrent(tmp_path: Path) -> None:
    write_files(tmp_path, {"movie.bin": 100_000})
    data = libtorrent_torrent(tmp_path / "movie.bin", 32_768, tracker="http://127.0.0.1:1/a")
    meta = parse_metainfo(data)
    info = reference(data)
    assert meta.info_hash == info.info_hashes().v1.to_bytes()
    assert meta.name == "movie.bin"
    assert not meta.is_multi_file
    assert meta.files == (FileEntry(("movie.bin",), 100_000, 0),)
    assert meta.total_length == 100_000
    assert meta.num_pieces == info.num_pieces() == 4
    assert meta.piece_size(3) == 100_000 - 3 * 32_768 == info.piece_size(3)
    assert meta.announce == "http://127.0.0.1:1/a"
    assert meta.trackers == (("http://127.0.0.1:1/a",),)
    content = (tmp_path / "movie.bin").read_bytes()
    for index in range(meta.num_pieces):
        chunk = content[index * 32_768 : (index + 1) * 32_768]
        assert meta.piece_hashes[index] == hashlib.sha1(chunk).digest()


def test_nested_multi_file_torrent_with_a_zero_length_file(tmp_path: Path) -> None:
    layout = {"album/a.flac": 50_000, "album/disc2/b.flac": 70_001, "album/disc2/empty": 0}
    write_files(tmp_path, layout)
    data = libtorrent_torrent(tmp_path / "album", 16_384)
    meta = parse_metainfo(data)
    info = reference(data)
    assert meta.info_hash == info.info_hashes().v1.to_bytes()
    assert meta.is_multi_file
    assert meta.total_length == 120_001 == info.total_size()
    assert meta.num_pieces == info.num_pieces() == 8
    assert meta.piece_size(7) == 120_001 - 7 * 16_384
    storage = info.files()
    assert [f.path for f in meta.files] == [
        tuple(Path(storage.file_path(i)).parts) for i in range(storage.num_files())
    ]
    assert [(f.length, f.offset) for f in meta.files] == [
        (storage.file_size(i), storage.file_offset(i)) for i in range(storage.num_files())
    ]
    assert any(f.length == 0 for f in meta.files)


def test_hybrid_torrent_padding_files_are_marked(tmp_path: Path) -> None:
    write_files(tmp_path, {"set/a": 40_000, "set/b": 30_000})
    meta = parse_metainfo(libtorrent_torrent(tmp_path / "set", 16_384, v1_only=False))
    padding = [f for f in meta.files if f.padding]
    assert padding and all(f.path[1] == ".pad" for f in padding)
    assert meta.files[-1].offset + meta.files[-1].length == meta.total_length


def test_private_flag_and_optional_fields() -> None:
    info = handmade_info()
    info["private"] = 1
    meta = parse_metainfo(
        handmade_torrent(
            info,
            **{
                "announce-list": [["http://a/1", "http://a/2"], [], ["udp://b/3"], "junk"],
                "url-list": "http://seed/",
                "comment": "hello",
                "created by": "bt tests",
                "creation date": 1_700_000_000,
            },
        )
    )
    assert meta.private
    assert meta.announce_list == (("http://a/1", "http://a/2"), ("udp://b/3",))
    assert meta.trackers == meta.announce_list
    assert meta.url_list == ("http://seed/",)
    assert (meta.comment, meta.created_by, meta.creation_date) == (
        "hello",
        "bt tests",
        1_700_000_000,
    )


def test_info_hash_is_over_the_exact_raw_bytes() -> None:
    info = handmade_info()
    data = handmade_torrent(info)
    meta = parse_metainfo(data)
    assert meta.raw_info == bencode.encode(info)
    assert meta.info_hash == hashlib.sha1(bencode.encode(info)).digest()


def test_utf8_variants_are_preferred() -> None:
    info = handmade_info([(["x"], 10)], name="raw")
    info["name.utf-8"] = "nämé"
    info["files"][0]["path.utf-8"] = ["fïle"]
    meta = parse_metainfo(handmade_torrent(info))
    assert meta.files[0].path == ("nämé", "fïle")


def _with(**changes: object) -> bytes:
    info = handmade_info()
    for key, value in changes.items():
        key = key.replace("_", " ")
        if value is None:
            del info[key]
        else:
            info[key] = value
    return handmade_torrent(info)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"i1e", "top level is not a dictionary"),
        (b"d4:infoi1ee", "info is not a dictionary"),
        (bencode.encode({"announce": "x"}), "missing key 'info'"),
        (b"d4:infod4:name1:xee junk", "not valid bencode: trailing data"),
        (_with(pieces=None), "missing key 'info.pieces'"),
        (_with(pieces=b"x" * 21), "info.pieces length 21 is not a multiple of 20"),
        (_with(pieces=b"x" * 20), "info.pieces holds 1 hashes but 40000 bytes"),
        (_with(piece_length=None), "missing key 'info.piece length'"),
        (_with(piece_length=0), "info.piece length 0 outside"),
        (_with(piece_length=b"16384"), "info.piece length is not an integer"),
        (_with(name=None), "missing key 'info.name'"),
        (_with(name=b"\xff"), "info.name is not valid UTF-8"),
        (_with(name=".."), "info.name is '..'"),
        (_with(name="a/b"), "info.name 'a/b' contains '/'"),
        (_with(length=None), "missing key 'info.length'"),
        (_with(length=-1), "info.length is negative"),
        (_with(files=[]), "info has both 'length' and 'files'"),
    ],
)
def test_malformed_torrents_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(MetainfoError, match="^" + re.escape(message)):
        parse_metainfo(data)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ([".."], "info.files[1].path[0] is '..', which is not a safe file name"),
        (["."], "info.files[1].path[0] is '.'"),
        ([""], "info.files[1].path[0] is ''"),
        (["a", "..", "b"], "info.files[1].path[1] is '..'"),
        (["/etc/passwd"], "info.files[1].path[0] '/etc/passwd' contains '/'"),
        (["a\\..\\b"], "contains '\\\\'"),
        (["C:evil"], "is an absolute (drive) path"),
        (["nul\x00byte"], "contains '\\x00'"),
        ([], "info.files[1].path is empty"),
        ([b"\xfe"], "info.files[1].path[0] is not valid UTF-8"),
        ([1], "info.files[1].path[0] is not a string"),
    ],
)
def test_unsafe_file_paths_are_refused(path: list[object], message: str) -> None:
    info = handmade_info([(["ok"], 10), (path, 10)])  # type: ignore[list-item]
    with pytest.raises(MetainfoError, match=re.escape(message)):
        parse_metainfo(handmade_torrent(info))


def test_duplicate_file_paths_are_refused() -> None:
    info = handmade_info([(["a"], 10), (["a"], 10)])
    with pytest.raises(MetainfoError, match=r"^file 1 't/a': same path as file 0$"):
        parse_metainfo(handmade_torrent(info))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        # A file and a folder at one path, in either order: EISDIR / ENOTDIR at first write.
        ([(["a"], 10), (["a", "b"], 10)], "file 1 't/a/b': inside file 0 't/a'"),
        ([(["a", "b"], 10), (["a"], 10)], "file 1 't/a': file 0 needs it to be a folder"),
        (
            [(["x"], 5), (["d", "e", "f"], 10), (["d", "e"], 10)],
            "file 2 't/d/e': file 1 needs it to be a folder",
        ),
        # NAME_MAX counts bytes: 128 two-byte characters are 256 bytes.
        ([(["ok"], 10), (["é" * 128], 10)], "file 1 't/" + "é" * 78 + "...é"),
        ([(["ok"], 10), (["é" * 128], 10)], "é': a name of 256 bytes exceeds 255"),
        ([(["ok"], 10), (["d", "x" * 256], 10)], "file 1 't/d/xxx"),
        # PATH_MAX: 20 components of 250 bytes are 5,000 bytes with no component too long.
        ([(["ok"], 10), (["y" * 250] * 20, 10)], "y': path of 5021 bytes exceeds 4095"),
    ],
)
def test_paths_no_posix_file_system_can_hold_are_refused_naming_the_entry(
    files: list[tuple[list[str], int]], message: str
) -> None:
    with pytest.raises(MetainfoError, match=re.escape(message)) as caught:
        parse_metainfo(handmade_torrent(handmade_info(files)))
    text = str(caught.value)
    assert text.startswith(f"file {len(files) - 1} 't/") and "\n" not in text
    assert len(text) < 200  # one readable line, even for a 5,000-byte path


def test_longest_writable_names_and_paths_are_accepted() -> None:
    component = "é" * 127 + "x"  # 255 bytes
    files = [(["d" * 254, component], 10), (["y" * 250] * 16 + ["z" * 77], 10)]
    meta = parse_metainfo(handmade_torrent(handmade_info(files, name="n")))
    assert len("/".join(meta.files[1].path).encode()) == 4095
    assert meta.files[0].path == ("n", "d" * 254, component)


def test_single_file_name_over_name_max_is_refused() -> None:
    with pytest.raises(MetainfoError, match=r"^info\.name: a name of 256 bytes exceeds 255$"):
        parse_metainfo(handmade_torrent(handmade_info(name="x" * 256)))
    assert parse_metainfo(handmade_torrent(handmade_info(name="x" * 255))).name == "x" * 255


def test_padding_files_may_share_a_path() -> None:
    """libtorrent names pads ``.pad/<size>``: two pads of one size share a path, harmlessly."""
    info = handmade_info([(["a"], 10), ([".pad", "6"], 6), (["b"], 10), ([".pad", "6"], 6)])
    for number in (1, 3):
        info["files"][number]["attr"] = b"p"
    meta = parse_metainfo(handmade_torrent(info))
    assert [f.padding for f in meta.files] == [False, True, False, True]


def test_files_entries_are_checked() -> None:
    info = handmade_info([(["a"], 10)])
    info["files"][0]["length"] = -5
    with pytest.raises(MetainfoError, match=r"info.files\[0\].length is negative"):
        parse_metainfo(handmade_torrent(info))
    info["files"] = ["nope"]
    with pytest.raises(MetainfoError, match=r"info.files\[0\] is not a dictionary"):
        parse_metainfo(handmade_torrent(info))


def test_zero_length_torrent_is_refused() -> None:
    info = handmade_info([(["a"], 0)])
    with pytest.raises(MetainfoError, match="holds no data"):
        parse_metainfo(handmade_torrent(info))


def test_load_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"i1e")
    with pytest.raises(
        MetainfoError, match=f"^{re.escape(str(bad))}: top level is not a dictionary$"
    ):
        load_metainfo(bad)
    with pytest.raises(MetainfoError, match=r"missing\.torrent: cannot read: No such file"):
        load_metainfo(tmp_path / "missing.torrent")
