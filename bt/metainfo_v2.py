"""The BitTorrent v2 half of .torrent parsing (BEP 52): file tree, piece layers, hybrids.

Layer 0 (pure). bt.metainfo calls in here for a torrent with ``meta version`` 2
and builds the :class:`~bt.metainfo.Metainfo`; this module turns the v2 fields
into :class:`FileEntry` lists and checks them:

- the ``file tree`` (nested dictionaries; a file is ``{"": {"length", "pieces root"}}``)
  gives the files in key order, each starting on a piece boundary;
- a v2-only torrent's byte stream is libtorrent's: a virtual padding entry after
  every file that does not end on a piece boundary, the last one too, so every
  piece is ``piece length`` long and v2 piece ``p`` is wire piece ``p``;
- a hybrid's v1 ``files`` (with BEP 47 padding) must describe the same files in
  the same order with padding exactly where alignment needs it;
- ``piece layers`` must hash up to each file's pieces root.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from bt import merkle
from bt.errors import MetainfoError
from bt.geometry import piece_count
from bt.metainfo_fields import FileEntry, check_component, decode_text, shown

__all__ = [
    "MAX_V2_PIECES",
    "TreeFile",
    "V2Piece",
    "check_v2_piece_length",
    "first_pieces",
    "hybrid_files",
    "parse_file_tree",
    "parse_piece_layers",
    "v2_only_files",
    "v2_piece",
]

#: libtorrent's default load limit (``max_pieces``): a v2 info dict does not pay
#: 20 bytes per piece as v1's does, so the count needs a bound of its own.
MAX_V2_PIECES = 0x200000
_ZERO_ROOT = bytes(merkle.HASH_SIZE)


@dataclass(frozen=True, slots=True)
class TreeFile:
    """One file of a file tree: its path inside the tree, length and pieces root."""

    path: tuple[str, ...]
    length: int
    root: bytes | None


@dataclass(frozen=True, slots=True)
class V2Piece:
    """What the data of one piece must hash to under BEP 52, and where it sits in its file.

    ``piece_root(data[:data_length], leaves) == expected``: leaves is the piece's
    share of the tree (blocks per piece, or the padded leaves of a file of one
    piece or less, whose expected hash is then its pieces root).
    """

    expected: bytes
    data_length: int
    """Real file bytes at the start of the piece; the rest is padding."""
    leaves: int
    file_index: int
    """Index into ``Metainfo.files``."""
    first_leaf: int
    """Index of the piece's first leaf in the file's tree."""


def check_v2_piece_length(piece_length: int) -> None:
    if not merkle.is_piece_length(piece_length):
        raise MetainfoError(
            f"info.piece length {piece_length} is not a power of two >= {merkle.LEAF_SIZE} (BEP 52)"
        )


def parse_file_tree(value: Any, name: str) -> tuple[list[TreeFile], bool]:
    """The files of ``info.file tree`` in order, and whether it is a multi-file torrent.

    A tree holding one file named like ``info.name`` is a single-file torrent.
    """
    found: list[TreeFile] = []
    _walk(value, (), found)
    if not found:
        raise MetainfoError("info.file tree holds no file")
    single = len(found) == 1 and found[0].path == (name,)
    return found, not single


def _label(path: tuple[str, ...]) -> str:
    return f"info.file tree {shown(path)!r}" if path else "info.file tree"


def _walk(node: Any, path: tuple[str, ...], found: list[TreeFile]) -> None:
    where = _label(path)
    if not isinstance(node, dict) or not node:
        raise MetainfoError(f"{where} is not a non-empty dictionary")
    if b"" in node:
        if not path:
            raise MetainfoError(f"{where} holds a file with an empty name")
        if len(node) != 1:
            raise MetainfoError(f"{where} is both a file ('' key) and a folder")
        found.append(_leaf(node[b""], path, where))
        return
    for key, child in node.items():  # strict bencode: sorted, libtorrent's order
        component = decode_text(key, f"{where}: name {key[:40]!r}")
        check_component(component, f"{where}: name")
        _walk(child, (*path, component), found)


def _leaf(value: Any, path: tuple[str, ...], where: str) -> TreeFile:
    if not isinstance(value, dict):
        raise MetainfoError(f"{where}: its '' entry is not a dictionary")
    length = value.get(b"length")
    if not isinstance(length, int):
        raise MetainfoError(f"{where}: length is missing or not an integer")
    if length < 0:
        raise MetainfoError(f"{where}: length is negative ({length})")
    attr = value.get(b"attr", b"")
    if isinstance(attr, bytes) and b"p" in attr:
        raise MetainfoError(f"{where}: a file tree holds no padding files (attr 'p')")
    if length == 0:
        return TreeFile(path, 0, None)
    root = value.get(b"pieces root")
    if root is None:
        raise MetainfoError(f"{where}: a file of {length} bytes has no pieces root")
    if not isinstance(root, bytes) or len(root) != merkle.HASH_SIZE:
        raise MetainfoError(f"{where}: pieces root is not a {merkle.HASH_SIZE}-byte string")
    if root == _ZERO_ROOT:
        raise MetainfoError(f"{where}: pieces root is all zeros")
    return TreeFile(path, length, root)


def _entry_path(name: str, multi: bool, tree_path: tuple[str, ...]) -> tuple[str, ...]:
    return (name, *tree_path) if multi else (name,)


def _pad_needed(end: int, piece_length: int) -> int:
    return -end % piece_length


def v2_only_files(
    tree: list[TreeFile], name: str, multi: bool, piece_length: int
) -> tuple[FileEntry, ...]:
    """The byte stream of a v2-only torrent: each file, then a virtual pad to the piece end."""
    entries: list[FileEntry] = []
    offset = 0
    for item in tree:
        path = _entry_path(name, multi, item.path)
        entries.append(FileEntry(path, item.length, offset, pieces_root=item.root))
        offset += item.length
        pad = _pad_needed(offset, piece_length)
        if pad:
            pad_path = (name, ".pad", str(pad))  # libtorrent's, for a single file too
            entries.append(FileEntry(pad_path, pad, offset, padding=True))
            offset += pad
    _check_piece_count(offset, piece_length)
    return tuple(entries)


def hybrid_files(
    v1_files: tuple[FileEntry, ...], tree: list[TreeFile], name: str, multi: bool, piece_length: int
) -> tuple[FileEntry, ...]:
    """The v1 view's entries with their pieces roots, once both views are shown to agree.

    The first difference is named: a file's path or length, padding missing, of
    the wrong size or where no alignment needs it, a file only one view has.
    """
    real = [entry for entry in v1_files if not entry.padding]
    for number, (v1, v2) in enumerate(zip(real, tree, strict=False)):
        path = _entry_path(name, multi, v2.path)
        if v1.path != path or v1.length != v2.length:
            raise MetainfoError(
                f"hybrid: file {number} is {shown(v1.path)!r} of {v1.length} bytes in info.files"
                f" but {shown(path)!r} of {v2.length} bytes in info.file tree"
            )
    if len(real) != len(tree):
        raise MetainfoError(
            f"hybrid: info.files lists {len(real)} files but info.file tree {len(tree)}"
        )
    _check_hybrid_padding(v1_files, piece_length)
    roots = iter(tree)
    return tuple(
        entry if entry.padding else _with_root(entry, next(roots).root) for entry in v1_files
    )


def _with_root(entry: FileEntry, root: bytes | None) -> FileEntry:
    return FileEntry(entry.path, entry.length, entry.offset, entry.padding, root)


def _check_hybrid_padding(v1_files: tuple[FileEntry, ...], piece_length: int) -> None:
    """Padding exactly where a file does not end on a piece boundary (after the last: optional)."""
    needed = 0  # bytes of padding the previous file needs
    for index, entry in enumerate(v1_files):
        where = f"hybrid: info.files[{index}] {shown(entry.path)!r}"
        if entry.padding:
            if entry.length != needed:
                reason = f"needs {needed}" if needed else "needs none"
                raise MetainfoError(
                    f"{where}: padding of {entry.length} bytes where alignment {reason}"
                )
            needed = 0
            continue
        if needed:
            raise MetainfoError(
                f"{where} starts {needed} bytes before a piece boundary (padding missing)"
            )
        needed = _pad_needed(entry.offset + entry.length, piece_length)
    end = v1_files[-1].offset + v1_files[-1].length
    _check_piece_count(end, piece_length)


def _check_piece_count(total: int, piece_length: int) -> None:
    pieces = piece_count(total, piece_length)
    if pieces > MAX_V2_PIECES:
        raise MetainfoError(f"torrent of {pieces} pieces exceeds the limit of {MAX_V2_PIECES}")


def parse_piece_layers(
    value: Any, files: tuple[FileEntry, ...], piece_length: int, *, required: bool
) -> tuple[Mapping[bytes, bytes], tuple[int, ...]]:
    """Each needed piece layer, checked against its file's root, and the files lacking one.

    A file longer than one piece needs its layer; ``required`` makes a missing
    one an error naming the file (a magnet fetch completes them first instead).
    Layers no file needs are dropped.
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise MetainfoError("piece layers is not a dictionary")
    layers: dict[bytes, bytes] = {}
    missing: list[int] = []
    for index, entry in enumerate(files):
        root = entry.pieces_root
        if root is None or entry.length <= piece_length or root in layers:
            continue
        where = f"piece layers of file {index} {shown(entry.path)!r}"
        raw = value.get(root)
        if raw is None:
            if required:
                raise MetainfoError(f"{where}: missing (a file of {entry.length} bytes needs one)")
            missing.append(index)
            continue
        if not isinstance(raw, bytes):
            raise MetainfoError(f"{where}: not a string")
        pieces = piece_count(entry.length, piece_length)
        if len(raw) != pieces * merkle.HASH_SIZE:
            raise MetainfoError(
                f"{where}: {len(raw)} bytes, but {pieces} pieces need {pieces * merkle.HASH_SIZE}"
            )
        hashes = merkle.split_hashes(raw)
        if not merkle.piece_layer_matches(root, entry.length, hashes, piece_length):
            raise MetainfoError(f"{where}: does not hash to the file's pieces root")
        layers[root] = raw
    return MappingProxyType(layers), tuple(missing)


def first_pieces(files: tuple[FileEntry, ...], piece_length: int) -> tuple[tuple[int, ...], ...]:
    """``(first piece, file index)`` of each non-empty v2 file, in order: v2_piece's index."""
    return tuple(
        (entry.offset // piece_length, index)
        for index, entry in enumerate(files)
        if entry.pieces_root is not None and not entry.padding
    )


def v2_piece(
    files: tuple[FileEntry, ...],
    piece_length: int,
    layers: Mapping[bytes, bytes],
    starts: Sequence[tuple[int, int]],
    index: int,
) -> V2Piece:
    """The :class:`V2Piece` of piece ``index``; LookupError without its file's piece layer."""
    position = bisect_right(starts, (index, len(files))) - 1
    if index < 0 or position < 0:
        raise IndexError(f"piece {index} outside the torrent")
    first, file_index = starts[position]
    entry = files[file_index]
    assert entry.pieces_root is not None
    within = (index - first) * piece_length
    if within >= entry.length:
        raise IndexError(f"piece {index} outside the torrent")
    data_length = min(piece_length, entry.length - within)
    leaves = merkle.piece_leaves(entry.length, piece_length)
    if entry.length <= piece_length:
        return V2Piece(entry.pieces_root, data_length, leaves, file_index, 0)
    layer = layers.get(entry.pieces_root)
    if layer is None:
        raise LookupError(f"piece {index}: file {shown(entry.path)!r} has no piece layer yet")
    k = index - first
    expected = layer[k * merkle.HASH_SIZE : (k + 1) * merkle.HASH_SIZE]
    return V2Piece(expected, data_length, leaves, file_index, k * leaves)
