"""Making a .torrent from a file or a folder (``bt create``): v1, v2 or hybrid.

Which files go in follows libtorrent's ``add_files`` defaults, so a torrent
made here has the same info-hash as one libtorrent makes from the same files
and piece length:

- every regular file under the folder is included, hidden ones (``.name``) too;
  nothing is skipped silently;
- symbolic links are followed, as libtorrent does without its ``symlinks``
  flag, but only when they resolve inside the folder: a link out of it (which
  would publish a file the user did not point at) or a link loop is an error;
- anything that is not a regular file, a folder or such a link (a FIFO, a
  socket, a device) is an error rather than a silent omission;
- unlike libtorrent, which takes ``readdir`` order, files are walked in sorted
  order (per folder, by name), so the same folder always gives the same torrent;
- no ``attr`` keys or modification times are written (libtorrent's ``attr``
  ``x`` for executable files is the one default left out); a v1 torrent has no
  pad files, a hybrid one libtorrent's (bt/createv2.py, which also makes the
  v2 file tree and piece layers).

Pieces are independent, so they are hashed in parallel (bt/createpool.py): a
thread pool reads each piece with ``os.pread`` and hashes it with ``hashlib``,
which releases the GIL on large buffers, with at most ``2 x workers`` pieces in
flight, so memory stays near ``workers x piece length`` whatever the size.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypedDict, Unpack

from bt import __version__, bencode
from bt.createpool import Progress, SourceFile, read_chunks, run_ordered
from bt.createv2 import FORMATS, check_v2_piece_length, v2_parts
from bt.errors import CreateError, MetainfoError
from bt.metainfo import Metainfo, parse_metainfo
from bt.storage.layout import Layout
from bt.units import parse_rate

__all__ = [
    "FORMATS",
    "MAX_PIECE_LENGTH",
    "MIN_PIECE_LENGTH",
    "CreateError",
    "CreateOptions",
    "Progress",
    "SourceFile",
    "auto_piece_length",
    "build_torrent",
    "collect_files",
    "create_torrent",
    "hash_pieces",
    "parse_piece_length",
]

MIN_PIECE_LENGTH = 16 * 1024
MAX_PIECE_LENGTH = 16 * 1024 * 1024
#: The automatic piece length is the smallest one giving at most this many pieces.
TARGET_PIECES = 2000


def auto_piece_length(total_length: int) -> int:
    """The smallest power of two in 16 KiB..16 MiB giving at most 2000 pieces.

    So a torrent has 1000-2000 pieces unless it is under 16 MiB (fewer pieces
    of 16 KiB) or over about 31 GiB (more pieces of 16 MiB). libtorrent aims at
    a pieces list of about ``2 x sqrt(size)`` bytes instead, which gives fewer,
    larger pieces for small torrents and many more for big ones; mktorrent uses
    256 KiB whatever the size.
    """
    length = MIN_PIECE_LENGTH
    while length < MAX_PIECE_LENGTH and -(-total_length // length) > TARGET_PIECES:
        length *= 2
    return length


def parse_piece_length(text: str) -> int:
    """``256K``, ``1M``, ``1MiB`` or plain bytes; a power of two in 16 KiB..16 MiB."""
    try:
        value = parse_rate(text)
    except ValueError:
        raise CreateError(f"piece size {text!r} is not a size such as 256K or 1M") from None
    if value is None or value != int(value):
        raise CreateError(f"piece size {text!r} is not a whole number of bytes")
    length = int(value)
    if length & (length - 1) or not MIN_PIECE_LENGTH <= length <= MAX_PIECE_LENGTH:
        raise CreateError(f"piece size {text!r} must be a power of two from 16K to 16M")
    return length


def collect_files(path: str | os.PathLike[str]) -> tuple[str, list[SourceFile], bool]:
    """The torrent's name, its files in order, and whether it is a multi-file torrent."""
    given = Path(path)
    try:
        root = given.resolve(strict=True)
        info = root.stat()
    except OSError as exc:
        raise CreateError(f"{given}: {exc.strerror or exc}") from None
    # The name is the one the user gave (a link's own name, as libtorrent does).
    name = Path(os.path.abspath(given)).name
    _check_name(name, given)
    if stat.S_ISREG(info.st_mode):
        if info.st_size == 0:
            raise CreateError(f"{given}: the file is empty; a torrent needs data")
        return name, [SourceFile(root, (), info.st_size)], False
    if not stat.S_ISDIR(info.st_mode):
        raise CreateError(f"{given}: not a regular file or a folder")
    files: list[SourceFile] = []
    _walk(root, root, (), files, {root})
    if not files:
        raise CreateError(f"{given}: the folder holds no files")
    if sum(f.length for f in files) == 0:
        raise CreateError(f"{given}: every file in the folder is empty; a torrent needs data")
    return name, files, True


def _walk(
    root: Path, folder: Path, prefix: tuple[str, ...], out: list[SourceFile], open_dirs: set[Path]
) -> None:
    """Depth-first, sorted by name; ``open_dirs`` are the real folders being walked (loops)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise CreateError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
    for entry in names:
        where = folder / entry
        components = (*prefix, entry)
        _check_name(entry, where)
        try:
            lstat = where.lstat()
            if stat.S_ISLNK(lstat.st_mode):
                target = where.resolve(strict=True)
                if target != root and root not in target.parents:
                    raise CreateError(
                        f"{where}: symbolic link to {target}, outside {root}; "
                        "copy the file in or remove the link"
                    )
                info = target.stat()
            else:
                target, info = where, lstat
        except (OSError, RuntimeError) as exc:  # RuntimeError: resolve() of a link loop
            reason = getattr(exc, "strerror", None) or exc
            raise CreateError(f"{where}: {reason}") from None
        if stat.S_ISDIR(info.st_mode):
            real = target.resolve()
            if real in open_dirs:
                raise CreateError(f"{where}: symbolic link loop back to {real}")
            _walk(root, target, components, out, open_dirs | {real})
        elif stat.S_ISREG(info.st_mode):
            out.append(SourceFile(target, components, info.st_size))
        else:
            raise CreateError(f"{where}: not a regular file or folder (a device, FIFO or socket)")


def _check_name(name: str, where: Path) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise CreateError(f"{where}: the name is not valid UTF-8") from None
    if name in ("", ".", "..") or "\\" in name:
        raise CreateError(f"{where}: {name!r} cannot be a name inside a torrent")


def hash_pieces(
    files: Sequence[SourceFile],
    piece_length: int,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> bytes:
    """The concatenated SHA-1 of every piece of ``files`` laid end to end."""
    layout = Layout([f.length for f in files], piece_length)
    jobs = (
        (partial(_hash_piece, files, layout, index), layout.piece_size(index))
        for index in range(layout.num_pieces)
    )
    digests = run_ordered(jobs, layout.total_length, workers=workers, progress=progress)
    return b"".join(digests)


def _hash_piece(files: Sequence[SourceFile], layout: Layout, index: int) -> bytes:
    """Runs in a pool thread: read the piece's spans across files and hash them."""
    digest = hashlib.sha1()
    for span in layout.piece_spans(index):
        for chunk in read_chunks(files[span.file_index].source, span.file_offset, span.length):
            digest.update(chunk)
    return digest.digest()


class CreateOptions(TypedDict, total=False):
    """The keyword arguments of :func:`build_torrent`, for :func:`create_torrent`."""

    piece_length: int | None
    private: bool
    comment: str | None
    web_seeds: Sequence[str]
    creation_date: int | None
    format: str
    workers: int | None
    progress: Progress | None


def create_torrent(
    path: str | os.PathLike[str],
    trackers: Iterable[Sequence[str]] = (),
    **options: Unpack[CreateOptions],
) -> tuple[bytes, Metainfo]:
    """The bytes of a .torrent for ``path`` and the Metainfo they parse to.

    The options are :func:`build_torrent`'s.
    """
    data = bencode.encode(build_torrent(path, trackers, **options))
    try:
        return data, parse_metainfo(data)
    except MetainfoError as exc:  # a name parse_metainfo refuses: say so before writing
        raise CreateError(f"{path}: the torrent would not be valid: {exc}") from None


def build_torrent(
    path: str | os.PathLike[str],
    trackers: Iterable[Sequence[str]] = (),
    *,
    piece_length: int | None = None,
    private: bool = False,
    comment: str | None = None,
    web_seeds: Sequence[str] = (),
    creation_date: int | None = None,
    format: str = "v1",
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The .torrent's top-level dict, not yet encoded (:func:`create_torrent` encodes it).

    ``trackers`` are BEP 12 tiers: ``[["a"], ["b", "c"]]`` is two tiers. The
    first tracker becomes ``announce``. ``creation_date`` defaults to now.
    ``format`` is ``v1``, ``v2`` (BEP 52) or ``hybrid`` (both in one torrent).
    """
    if format not in FORMATS:
        raise CreateError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    if piece_length is not None and piece_length <= 0:
        raise CreateError(f"piece length must be positive, got {piece_length}")
    if piece_length is not None and format != "v1":
        check_v2_piece_length(piece_length)  # before reading anything
    name, files, multi_file = collect_files(path)
    total = sum(f.length for f in files)
    if piece_length is None:
        piece_length = auto_piece_length(total)
    tiers = [[url for url in tier if url] for tier in trackers]
    tiers = [tier for tier in tiers if tier]

    info: dict[str, Any] = {"name": name, "piece length": piece_length}
    root: dict[str, Any] = {"info": info}
    if format == "v1":
        info["pieces"] = hash_pieces(files, piece_length, workers=workers, progress=progress)
        v1_files = [{"length": f.length, "path": list(f.components)} for f in files]
    else:
        parts = v2_parts(
            name,
            files,
            piece_length,
            hybrid=format == "hybrid",
            workers=workers,
            progress=progress,
        )
        info["meta version"] = 2
        info["file tree"] = parts.file_tree
        root["piece layers"] = parts.piece_layers
        v1_files = parts.v1_files or []
        if parts.pieces is not None:
            info["pieces"] = parts.pieces
    if format != "v2":
        if multi_file:
            info["files"] = v1_files
        else:
            info["length"] = total
    if private:
        info["private"] = 1

    root["created by"] = f"bt {__version__}"
    root["creation date"] = int(time.time()) if creation_date is None else creation_date
    if tiers:
        root["announce"] = tiers[0][0]
        root["announce-list"] = tiers
    if comment:
        root["comment"] = comment
    if web_seeds:
        root["url-list"] = list(web_seeds)
    return root
