"""The v2 and hybrid parts of ``bt create``: file tree, piece layers, BEP 47 pads.

What libtorrent 2.1's ``create_torrent`` writes, so the info dict (and so both
info-hashes) is byte-identical to libtorrent's for the same files and piece
length:

- ``file tree``: one nested dict per path component, a file being
  ``{"": {"length": N, "pieces root": R}}`` (no root for an empty file);
  a single-file torrent's tree is ``{name: {"": ...}}``.
- ``piece layers`` (outside the info dict) for every file longer than one piece.
- hybrid: the v1 ``pieces`` and ``files`` (or ``length``) beside the tree. With
  more than one file, every non-empty file that does not end on a piece
  boundary is followed by a pad ``{"attr": "p", "length": N, "path":
  [".pad", "N"]}``, the last file too; a single file gets none. The v1 file
  order is the tree's order (paths compared component by component), which
  ``collect_files`` already walks. libtorrent 2.1.1 orders them by the whole
  path string instead, so where a name sorts before ``/`` (``a.txt`` beside a
  folder ``a``) its hybrid has the two views in different orders and
  libtorrent itself refuses to load it; bt's loads everywhere.

Every piece of a v2 or hybrid torrent lies inside one file (files start on
piece boundaries), so a hashing job reads one piece of one file once and
computes its SHA-256 leaves and, for hybrid, the SHA-1 of the same bytes plus
the pad's zeros: one pass over the data for both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from bt.createpool import Progress, SourceFile, read_exact, run_ordered
from bt.errors import CreateError
from bt.merkle import file_root, is_piece_length, piece_leaves, piece_root

__all__ = ["FORMATS", "V2Parts", "check_v2_piece_length", "v2_parts"]

#: What ``bt create --format`` accepts; the first is the default.
FORMATS = ("v1", "v2", "hybrid")


@dataclass(frozen=True, slots=True)
class V2Parts:
    """What a v2 or hybrid torrent needs beyond the name and piece length."""

    #: ``info["file tree"]``.
    file_tree: dict[str, Any]
    #: Top-level ``piece layers``: pieces root -> concatenated piece hashes.
    piece_layers: dict[bytes, bytes]
    #: Pieces root of each file (None for an empty one), in ``files`` order.
    roots: tuple[bytes | None, ...]
    #: Hybrid only (else None): the v1 ``pieces``, and the ``files`` list with pads.
    pieces: bytes | None
    v1_files: list[dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class _Piece:
    """One hashing job: ``length`` bytes of a file from ``offset``, then ``pad`` zeros."""

    file_index: int
    offset: int
    length: int
    pad: int


def check_v2_piece_length(piece_length: int) -> None:
    """BEP 52: a power of two of at least 16 KiB; refused naming the value otherwise."""
    if not is_piece_length(piece_length):
        raise CreateError(
            f"piece length {piece_length} does not fit a v2 or hybrid torrent: "
            "BEP 52 needs a power of two of at least 16 KiB (16384)"
        )


def v2_parts(
    name: str,
    files: Sequence[SourceFile],
    piece_length: int,
    *,
    hybrid: bool,
    workers: int | None = None,
    progress: Progress | None = None,
) -> V2Parts:
    """Hash ``files`` (in tree order) into a file tree, piece layers and, if hybrid, v1 parts.

    A single-file torrent is one ``files`` entry with no components: its tree is
    ``{name: {"": ...}}`` and its v1 view a ``length`` (``v1_files`` is then None).
    """
    check_v2_piece_length(piece_length)
    multi = len(files) != 1 or bool(files[0].components)
    padded = len(files) > 1  # libtorrent pads no torrent of one file, even in a folder
    zeros = bytes(piece_length) if hybrid else b""
    jobs = (
        (partial(_hash_piece, files, piece, piece_length, zeros), piece.length)
        for piece in _plan(files, piece_length, padded=padded)
    )
    total = sum(entry.length for entry in files)
    results = run_ordered(jobs, total, workers=workers, progress=progress)
    by_file: list[list[bytes]] = [[] for _ in files]
    for file_index, v2_hash, _ in results:
        by_file[file_index].append(v2_hash)
    roots: list[bytes | None] = []
    layers: dict[bytes, bytes] = {}
    for entry, hashes in zip(files, by_file, strict=True):
        if not hashes:
            roots.append(None)
        elif entry.length <= piece_length:
            roots.append(hashes[0])  # one piece or less: its root is the file's
        else:
            root = file_root(entry.length, hashes, piece_length)  # bt.merkle's rule, once
            layers[root] = b"".join(hashes)
            roots.append(root)
    pieces = b"".join(sha1 for _, _, sha1 in results) if hybrid else None
    return V2Parts(
        file_tree=_file_tree(name, files, roots),
        piece_layers=layers,
        roots=tuple(roots),
        pieces=pieces,
        v1_files=_v1_files(files, piece_length, padded=padded) if hybrid and multi else None,
    )


def _plan(files: Sequence[SourceFile], piece_length: int, *, padded: bool) -> Iterator[_Piece]:
    """Every piece of the stream in order; each lies in one file, the pad in its tail."""
    for index, entry in enumerate(files):
        for offset in range(0, entry.length, piece_length):
            length = min(piece_length, entry.length - offset)
            yield _Piece(index, offset, length, piece_length - length if padded else 0)


def _hash_piece(
    files: Sequence[SourceFile], piece: _Piece, piece_length: int, zeros: bytes
) -> tuple[int, bytes, bytes]:
    """Runs in a pool thread: ``(file index, merkle root, SHA-1 with the pad or b"")``."""
    entry = files[piece.file_index]
    data = read_exact(entry.source, piece.offset, piece.length)
    root = piece_root(data, piece_leaves(entry.length, piece_length))
    if not zeros:
        return piece.file_index, root, b""
    digest = hashlib.sha1(data)
    if piece.pad:
        digest.update(memoryview(zeros)[: piece.pad])
    return piece.file_index, root, digest.digest()


def _file_tree(
    name: str, files: Sequence[SourceFile], roots: Sequence[bytes | None]
) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for entry, root in zip(files, roots, strict=True):
        components = entry.components or (name,)
        node = tree
        for component in components[:-1]:
            node = node.setdefault(component, {})
        leaf: dict[str, Any] = {"length": entry.length}
        if root is not None:
            leaf["pieces root"] = root
        node[components[-1]] = {"": leaf}
    return tree


def _v1_files(
    files: Sequence[SourceFile], piece_length: int, *, padded: bool
) -> list[dict[str, Any]]:
    """The hybrid's v1 ``files``: each file, then a BEP 47 pad to the next piece boundary."""
    out: list[dict[str, Any]] = []
    for entry in files:
        out.append({"length": entry.length, "path": list(entry.components)})
        tail = entry.length % piece_length
        if padded and tail:
            pad = piece_length - tail
            out.append({"attr": "p", "length": pad, "path": [".pad", str(pad)]})
    return out
