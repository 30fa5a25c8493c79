"""Metainfo (.torrent) parsing: bytes in, a frozen, validated :class:`Metainfo` out.

Everything a peer or a file path could be built from is checked here, once, so
the rest of bt can trust a Metainfo: piece counts match lengths, and every file
path stays inside the download folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bt import bencode
from bt.errors import BencodeError, MetainfoError
from bt.geometry import PieceGeometry, piece_count

__all__ = ["FileEntry", "Metainfo", "load_metainfo", "parse_metainfo"]

_HASH_LENGTH = 20
#: Longer pieces cannot be buffered for verification; real torrents stay far below.
MAX_PIECE_LENGTH = 256 * 1024 * 1024
_FORBIDDEN_IN_COMPONENT = ("/", "\\", "\x00")
#: NAME_MAX of every POSIX file system bt writes to: a longer component cannot be created.
MAX_COMPONENT_BYTES = 255
#: PATH_MAX (4,096) counts the terminating NUL; the download folder's own path adds to it.
MAX_PATH_BYTES = 4095


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the torrent, placed in the torrent's concatenated byte stream."""

    path: tuple[str, ...]
    """Components relative to the download folder (multi-file: torrent name first)."""
    length: int
    offset: int
    """Where this file starts in the torrent's byte stream."""
    padding: bool = False
    """A BEP 47 padding file: zeros, never written to disk."""


@dataclass(frozen=True, slots=True)
class Metainfo:
    """A validated v1 torrent."""

    info_hash: bytes
    name: str
    piece_length: int
    piece_hashes: tuple[bytes, ...]
    files: tuple[FileEntry, ...]
    total_length: int
    is_multi_file: bool
    private: bool
    announce: str | None
    announce_list: tuple[tuple[str, ...], ...]
    url_list: tuple[str, ...]
    comment: str | None
    created_by: str | None
    creation_date: int | None
    raw_info: bytes
    #: Piece and block sizes (bt.geometry), derived from the fields above.
    geometry: PieceGeometry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        geometry = PieceGeometry(len(self.piece_hashes), self.piece_length, self.total_length)
        object.__setattr__(self, "geometry", geometry)

    @property
    def num_pieces(self) -> int:
        return len(self.piece_hashes)

    def piece_size(self, index: int) -> int:
        """Length of piece ``index``; only the last piece may be shorter."""
        return self.geometry.piece_size(index)

    @property
    def trackers(self) -> tuple[tuple[str, ...], ...]:
        """Tracker tiers (BEP 12), falling back to ``announce`` when there is no list."""
        if self.announce_list:
            return self.announce_list
        return ((self.announce,),) if self.announce else ()


def load_metainfo(path: str | Path) -> Metainfo:
    """Read and parse a .torrent file; every failure names the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MetainfoError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        return parse_metainfo(data)
    except MetainfoError as exc:
        raise MetainfoError(f"{path}: {exc}") from exc


def parse_metainfo(data: bytes) -> Metainfo:
    """Parse the bytes of a .torrent; raises :class:`MetainfoError` saying what is wrong."""
    try:
        root, spans = bencode.decode_with_spans(data)
    except BencodeError as exc:
        raise MetainfoError(f"not valid bencode: {exc}") from exc
    if not isinstance(root, dict):
        raise MetainfoError("top level is not a dictionary")
    info = _require(root, b"info", dict, "")
    start, end = spans[b"info"]
    raw_info = bytes(data[start:end])

    piece_length = _require(info, b"piece length", int, "info")
    if not 0 < piece_length <= MAX_PIECE_LENGTH:
        raise MetainfoError(f"info.piece length {piece_length} outside 1..{MAX_PIECE_LENGTH}")
    pieces = _require(info, b"pieces", bytes, "info")
    if len(pieces) % _HASH_LENGTH:
        raise MetainfoError(f"info.pieces length {len(pieces)} is not a multiple of {_HASH_LENGTH}")
    piece_hashes = tuple(pieces[i : i + _HASH_LENGTH] for i in range(0, len(pieces), _HASH_LENGTH))
    name = _text(info, b"name", "info")
    _check_component(name, "info.name")
    _check_length(name, "info.name")

    if b"files" in info:
        if b"length" in info:
            raise MetainfoError("info has both 'length' and 'files'")
        files = _parse_files(info[b"files"], name)
        is_multi_file = True
    else:
        length = _require(info, b"length", int, "info")
        if length < 0:
            raise MetainfoError(f"info.length is negative ({length})")
        files = (FileEntry((name,), length, 0),)
        is_multi_file = False
    _check_writable(files)
    total_length = sum(f.length for f in files)

    expected = piece_count(total_length, piece_length)
    if len(piece_hashes) != expected:
        raise MetainfoError(
            f"info.pieces holds {len(piece_hashes)} hashes but {total_length} bytes "
            f"in pieces of {piece_length} need {expected}"
        )
    if total_length == 0:
        raise MetainfoError("torrent holds no data (total length 0)")

    private = info.get(b"private", 0)
    if not isinstance(private, int):
        raise MetainfoError("info.private is not an integer")

    return Metainfo(
        info_hash=hashlib.sha1(raw_info).digest(),
        name=name,
        piece_length=piece_length,
        piece_hashes=piece_hashes,
        files=files,
        total_length=total_length,
        is_multi_file=is_multi_file,
        private=private == 1,
        announce=_optional_text(root, b"announce"),
        announce_list=_parse_announce_list(root.get(b"announce-list")),
        url_list=_parse_url_list(root.get(b"url-list")),
        comment=_optional_text(root, b"comment"),
        created_by=_optional_text(root, b"created by"),
        creation_date=root.get(b"creation date")
        if isinstance(root.get(b"creation date"), int)
        else None,
        raw_info=raw_info,
    )


def _parse_files(value: Any, name: str) -> tuple[FileEntry, ...]:
    if not isinstance(value, list) or not value:
        raise MetainfoError("info.files is not a non-empty list")
    entries: list[FileEntry] = []
    offset = 0
    for number, item in enumerate(value):
        where = f"info.files[{number}]"
        if not isinstance(item, dict):
            raise MetainfoError(f"{where} is not a dictionary")
        length = _require(item, b"length", int, where)
        if length < 0:
            raise MetainfoError(f"{where}.length is negative ({length})")
        key = b"path.utf-8" if b"path.utf-8" in item else b"path"
        raw_path = _require(item, key, list, where)
        if not raw_path:
            raise MetainfoError(f"{where}.path is empty")
        components = []
        for position, part in enumerate(raw_path):
            label = f"{where}.path[{position}]"
            if not isinstance(part, bytes):
                raise MetainfoError(f"{label} is not a string")
            text = _decode_text(part, label)
            _check_component(text, label)
            components.append(text)
        path = (name, *components)
        attr = item.get(b"attr", b"")
        padding = isinstance(attr, bytes) and b"p" in attr
        entries.append(FileEntry(path, length, offset, padding))
        offset += length
    return tuple(entries)


def _check_writable(files: tuple[FileEntry, ...]) -> None:
    """Refuse paths no POSIX file system can hold, naming the file entry, before any write.

    A component over NAME_MAX bytes, a path over PATH_MAX, two files at one path, or
    a file where another file needs a folder would each fail only at the first write
    (ENAMETOOLONG, EISDIR, ENOTDIR), after the download started. Lengths are of the
    UTF-8 bytes, which is what the file system sees. Padding files (BEP 47) are never
    written, so they may repeat a path, as libtorrent's ``.pad/<size>`` names do.
    """
    owners: dict[tuple[str, ...], int] = {}  # a file's path -> its index
    folders: dict[tuple[str, ...], int] = {}  # a folder some file needs -> that file
    for index, entry in enumerate(files):
        if entry.padding:
            continue
        where = f"file {index} {_shown(entry.path)!r}"
        for component in entry.path:
            _check_length(component, where)
        size = len("/".join(entry.path).encode("utf-8"))
        if size > MAX_PATH_BYTES:
            raise MetainfoError(f"{where}: path of {size} bytes exceeds {MAX_PATH_BYTES}")
        if entry.path in owners:
            raise MetainfoError(f"{where}: same path as file {owners[entry.path]}")
        if entry.path in folders:
            raise MetainfoError(f"{where}: file {folders[entry.path]} needs it to be a folder")
        for depth in range(1, len(entry.path)):
            folder = entry.path[:depth]
            if folder in owners:
                other = owners[folder]
                raise MetainfoError(f"{where}: inside file {other} {_shown(folder)!r}")
            folders.setdefault(folder, index)
        owners[entry.path] = index


def _check_length(component: str, where: str) -> None:
    size = len(component.encode("utf-8"))
    if size > MAX_COMPONENT_BYTES:
        raise MetainfoError(f"{where}: a name of {size} bytes exceeds {MAX_COMPONENT_BYTES}")


def _shown(path: tuple[str, ...], limit: int = 120) -> str:
    """A path for one line of error: its start and end when it is long."""
    text = "/".join(path)
    return text if len(text) <= limit else f"{text[: limit - 40]}...{text[-37:]}"


def _check_component(text: str, where: str) -> None:
    """Refuse any path component that could escape or confuse the download folder."""
    if text in ("", ".", ".."):
        raise MetainfoError(f"{where} is {text!r}, which is not a safe file name")
    for bad in _FORBIDDEN_IN_COMPONENT:
        if bad in text:
            raise MetainfoError(f"{where} {text!r} contains {bad!r}")
    if len(text) >= 2 and text[1] == ":" and text[0].isalpha():
        raise MetainfoError(f"{where} {text!r} is an absolute (drive) path")


def _require(mapping: dict[bytes, Any], key: bytes, kind: type, where: str) -> Any:
    label = f"{where}.{key.decode()}" if where else key.decode()
    if key not in mapping:
        raise MetainfoError(f"missing key {label!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        expected = {int: "an integer", bytes: "a string", list: "a list", dict: "a dictionary"}
        raise MetainfoError(f"{label} is not {expected[kind]}")
    return value


def _text(mapping: dict[bytes, Any], key: bytes, where: str) -> str:
    """A UTF-8 string field, preferring its ``.utf-8`` variant when present."""
    utf8_key = key + b".utf-8"
    if isinstance(mapping.get(utf8_key), bytes):
        key = utf8_key
    raw = _require(mapping, key, bytes, where)
    return _decode_text(raw, f"{where}.{key.decode()}")


def _decode_text(raw: bytes, label: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetainfoError(
            f"{label} is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


def _optional_text(mapping: dict[bytes, Any], key: bytes) -> str | None:
    value = mapping.get(key)
    if not isinstance(value, bytes):
        return None
    return value.decode("utf-8", "replace")


def _parse_announce_list(value: Any) -> tuple[tuple[str, ...], ...]:
    """BEP 12 tiers; malformed entries are dropped as libtorrent does, not fatal."""
    if not isinstance(value, list):
        return ()
    tiers = []
    for tier in value:
        if not isinstance(tier, list):
            continue
        urls = tuple(u.decode("utf-8", "replace") for u in tier if isinstance(u, bytes) and u)
        if urls:
            tiers.append(urls)
    return tuple(tiers)


def _parse_url_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, bytes):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(u.decode("utf-8", "replace") for u in value if isinstance(u, bytes) and u)


def torrent_bytes(metainfo: Metainfo) -> bytes:
    """A .torrent for ``metainfo``: its exact info dictionary plus the top-level fields bt reads.

    The session keeps this copy so torrents added at run time come back after a
    restart; the info-hash is unchanged because ``raw_info`` is strict bencode,
    which decodes and encodes back to the same bytes.
    """
    root: dict[bytes, Any] = {b"info": bencode.decode(metainfo.raw_info)}
    if metainfo.announce is not None:
        root[b"announce"] = metainfo.announce.encode()
    if metainfo.announce_list:
        root[b"announce-list"] = [[url.encode() for url in tier] for tier in metainfo.announce_list]
    if metainfo.url_list:
        root[b"url-list"] = [url.encode() for url in metainfo.url_list]
    if metainfo.comment is not None:
        root[b"comment"] = metainfo.comment.encode()
    if metainfo.created_by is not None:
        root[b"created by"] = metainfo.created_by.encode()
    if metainfo.creation_date is not None:
        root[b"creation date"] = metainfo.creation_date
    data = bencode.encode(root)
    start, end = bencode.decode_with_spans(data)[1][b"info"]
    if data[start:end] != metainfo.raw_info:
        raise MetainfoError(f"{metainfo.name}: info dictionary does not re-encode to itself")
    return data
