"""Metainfo (.torrent) parsing: bytes in, a frozen, validated :class:`Metainfo` out.

Everything a peer or a file path could be built from is checked here, once, so
the rest of bt can trust a Metainfo: piece counts match lengths, and every file
path stays inside the download folder. v1, v2-only and hybrid torrents (BEP 52)
parse to the same shape; the v2 fields are read by bt.metainfo_v2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from bt import bencode
from bt import metainfo_v2 as v2
from bt.errors import BencodeError, MetainfoError
from bt.geometry import PieceGeometry, piece_count
from bt.metainfo_fields import (
    MAX_COMPONENT_BYTES,
    MAX_PATH_BYTES,
    FileEntry,
    check_component,
    check_length,
    check_writable,
    decode_text,
    require,
    text,
)
from bt.metainfo_v2 import V2Piece

__all__ = [
    "MAX_COMPONENT_BYTES",
    "MAX_PATH_BYTES",
    "FileEntry",
    "Metainfo",
    "V2Piece",
    "load_metainfo",
    "parse_metainfo",
    "torrent_bytes",
    "with_piece_layers",
]

_HASH_LENGTH = 20
#: Longer pieces cannot be buffered for verification; real torrents stay far below.
MAX_PIECE_LENGTH = 256 * 1024 * 1024
_NO_LAYERS: Mapping[bytes, bytes] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Metainfo:
    """A validated torrent: v1, v2-only or hybrid (see :attr:`format`)."""

    info_hash: bytes
    """The 20-byte identity on the wire, at trackers, in the registry: v1's, else v2's cut."""
    name: str
    piece_length: int
    piece_hashes: tuple[bytes, ...]
    """The v1 SHA-1 of each piece; () for v2-only (count pieces with :attr:`num_pieces`)."""
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
    info_hash_v2: bytes | None = None
    """SHA-256 of the info dictionary (32 bytes) for v2 and hybrid torrents."""
    piece_layers: Mapping[bytes, bytes] = field(
        default_factory=lambda: _NO_LAYERS, compare=False, repr=False
    )
    """Pieces root -> its file's piece layer (concatenated 32-byte hashes), each checked."""
    missing_piece_layers: tuple[int, ...] = ()
    """Indexes into ``files`` of files whose piece layer is still to fetch (magnets only)."""
    #: Piece and block sizes (bt.geometry), derived from the fields above.
    geometry: PieceGeometry = field(init=False, repr=False, compare=False)
    _v2_starts: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        geometry = PieceGeometry.of(self.piece_length, self.total_length)
        object.__setattr__(self, "geometry", geometry)
        starts = v2.first_pieces(self.files, self.piece_length) if self.info_hash_v2 else ()
        object.__setattr__(self, "_v2_starts", starts)

    @property
    def num_pieces(self) -> int:
        return self.geometry.num_pieces

    def piece_size(self, index: int) -> int:
        """Length of piece ``index``; only the last piece may be shorter."""
        return self.geometry.piece_size(index)

    @property
    def format(self) -> Literal["v1", "v2", "hybrid"]:
        if self.info_hash_v2 is None:
            return "v1"
        return "hybrid" if self.piece_hashes else "v2"

    @property
    def info_hash_v1(self) -> bytes | None:
        """SHA-1 of the info dictionary, or None for a v2-only torrent."""
        return None if self.format == "v2" else self.info_hash

    @property
    def info_hashes(self) -> tuple[bytes, ...]:
        """Every 20-byte hash peers may know this torrent by: v1's first, then v2's truncated."""
        hashes = [self.info_hash_v1] if self.info_hash_v1 else []
        if self.info_hash_v2 is not None:
            hashes.append(self.info_hash_v2[:20])
        return tuple(hashes)

    def v2_piece(self, index: int) -> V2Piece | None:
        """What piece ``index`` must hash to under BEP 52; None for a v1-only torrent.

        IndexError outside the torrent; LookupError while its file's piece layer
        is missing (a magnet still fetching it).
        """
        if self.info_hash_v2 is None:
            return None
        return v2.v2_piece(self.files, self.piece_length, self.piece_layers, self._v2_starts, index)

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


def parse_metainfo(data: bytes, *, require_piece_layers: bool = True) -> Metainfo:
    """Parse the bytes of a .torrent; raises :class:`MetainfoError` saying what is wrong.

    ``require_piece_layers=False`` accepts a v2 or hybrid info dictionary whose
    piece layers are still to fetch (a magnet's metadata): they are listed in
    ``missing_piece_layers`` and :func:`with_piece_layers` completes the .torrent.
    """
    try:
        root, spans = bencode.decode_with_spans(data)
    except BencodeError as exc:
        raise MetainfoError(f"not valid bencode: {exc}") from exc
    if not isinstance(root, dict):
        raise MetainfoError("top level is not a dictionary")
    info = require(root, b"info", dict, "")
    start, end = spans[b"info"]
    raw_info = bytes(data[start:end])

    piece_length = require(info, b"piece length", int, "info")
    if not 0 < piece_length <= MAX_PIECE_LENGTH:
        raise MetainfoError(f"info.piece length {piece_length} outside 1..{MAX_PIECE_LENGTH}")
    version = _meta_version(info)
    has_v1 = version == 1 or b"pieces" in info
    if version == 2:
        v2.check_v2_piece_length(piece_length)
    name = text(info, b"name", "info")
    check_component(name, "info.name")
    check_length(name, "info.name")

    piece_hashes: tuple[bytes, ...] = ()
    if has_v1:
        piece_hashes = _piece_hashes(info)
        files, is_multi_file = _parse_v1_files(info, name)
    elif b"files" in info or b"length" in info:
        raise MetainfoError("info has a v1 file list ('files' or 'length') but no 'pieces'")
    if version == 2:
        tree, tree_multi = v2.parse_file_tree(require(info, b"file tree", dict, "info"), name)
        if has_v1:
            files = v2.hybrid_files(files, tree, name, tree_multi, piece_length)
        else:
            files = v2.v2_only_files(tree, name, tree_multi, piece_length)
            is_multi_file = tree_multi
    check_writable(files)
    total_length = sum(f.length for f in files)

    if has_v1:
        expected = piece_count(total_length, piece_length)
        if len(piece_hashes) != expected:
            raise MetainfoError(
                f"info.pieces holds {len(piece_hashes)} hashes but {total_length} bytes "
                f"in pieces of {piece_length} need {expected}"
            )
    if total_length == 0:
        raise MetainfoError("torrent holds no data (total length 0)")
    layers, missing = _NO_LAYERS, ()
    if version == 2:
        layers, missing = v2.parse_piece_layers(
            root.get(b"piece layers"), files, piece_length, required=require_piece_layers
        )

    private = info.get(b"private", 0)
    if not isinstance(private, int):
        raise MetainfoError("info.private is not an integer")

    hash_v2 = hashlib.sha256(raw_info).digest() if version == 2 else None
    return Metainfo(
        info_hash=hashlib.sha1(raw_info).digest() if has_v1 or hash_v2 is None else hash_v2[:20],
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
        info_hash_v2=hash_v2,
        piece_layers=layers,
        missing_piece_layers=missing,
    )


def _meta_version(info: dict[bytes, Any]) -> int:
    """1 without ``meta version`` (v1), or 2 (BEP 52); any other value is refused."""
    if b"meta version" not in info:
        return 1
    version = info[b"meta version"]
    if version != 2 or not isinstance(version, int):
        raise MetainfoError(f"info.meta version {repr(version)[:40]} is not supported (only 2)")
    return 2


def _piece_hashes(info: dict[bytes, Any]) -> tuple[bytes, ...]:
    pieces = require(info, b"pieces", bytes, "info")
    if len(pieces) % _HASH_LENGTH:
        raise MetainfoError(f"info.pieces length {len(pieces)} is not a multiple of {_HASH_LENGTH}")
    return tuple(pieces[i : i + _HASH_LENGTH] for i in range(0, len(pieces), _HASH_LENGTH))


def _parse_v1_files(info: dict[bytes, Any], name: str) -> tuple[tuple[FileEntry, ...], bool]:
    if b"files" in info:
        if b"length" in info:
            raise MetainfoError("info has both 'length' and 'files'")
        return _parse_files(info[b"files"], name), True
    length = require(info, b"length", int, "info")
    if length < 0:
        raise MetainfoError(f"info.length is negative ({length})")
    return (FileEntry((name,), length, 0),), False


def _parse_files(value: Any, name: str) -> tuple[FileEntry, ...]:
    if not isinstance(value, list) or not value:
        raise MetainfoError("info.files is not a non-empty list")
    entries: list[FileEntry] = []
    offset = 0
    for number, item in enumerate(value):
        where = f"info.files[{number}]"
        if not isinstance(item, dict):
            raise MetainfoError(f"{where} is not a dictionary")
        length = require(item, b"length", int, where)
        if length < 0:
            raise MetainfoError(f"{where}.length is negative ({length})")
        attr = item.get(b"attr", b"")
        padding = isinstance(attr, bytes) and b"p" in attr
        path = _pad_path(item, name, length) if padding else (name, *_file_path(item, where))
        entries.append(FileEntry(path, length, offset, padding))
        offset += length
    return tuple(entries)


def _file_path(item: dict[bytes, Any], where: str) -> list[str]:
    key = b"path.utf-8" if b"path.utf-8" in item else b"path"
    raw_path = require(item, key, list, where)
    if not raw_path:
        raise MetainfoError(f"{where}.path is empty")
    components = []
    for position, part in enumerate(raw_path):
        label = f"{where}.path[{position}]"
        if not isinstance(part, bytes):
            raise MetainfoError(f"{label} is not a string")
        component = decode_text(part, label)
        check_component(component, label)
        components.append(component)
    return components


def _pad_path(item: dict[bytes, Any], name: str, length: int) -> tuple[str, ...]:
    """A BEP 47 padding entry's path: never written, so a bad one is replaced, not refused."""
    try:
        return (name, *_file_path(item, "padding"))
    except MetainfoError:
        return (name, ".pad", str(length))


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
    which decodes and encodes back to the same bytes. Piece layers are kept.
    """
    return _torrent_bytes(metainfo, metainfo.piece_layers)


def with_piece_layers(metainfo: Metainfo, layers: Mapping[bytes, bytes]) -> bytes:
    """The full .torrent of a magnet's ``metainfo`` once its missing piece layers are fetched.

    ``layers`` maps pieces roots to piece layers (concatenated hashes); the result
    is parsed back with every layer required, so a wrong or missing one raises
    :class:`MetainfoError` naming the file.
    """
    data = _torrent_bytes(metainfo, {**metainfo.piece_layers, **layers})
    parse_metainfo(data)
    return data


def _torrent_bytes(metainfo: Metainfo, layers: Mapping[bytes, bytes]) -> bytes:
    root: dict[bytes, Any] = {b"info": bencode.decode(metainfo.raw_info)}
    if layers:
        root[b"piece layers"] = dict(layers)
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
