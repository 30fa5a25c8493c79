"""Builders of test torrents: with libtorrent (the reference) or by hand."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from bt import bencode


def write_files(root: Path, files: dict[str, int], seed: int = 1) -> None:
    """Create ``files`` (relative path -> size) under ``root`` with reproducible content."""
    for number, (relative, size) in enumerate(sorted(files.items())):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pseudo_random_bytes(size, seed * 1000 + number))


def pseudo_random_bytes(size: int, seed: int) -> bytes:
    """Incompressible, reproducible bytes (fast enough for tens of MiB)."""
    out = bytearray()
    counter = 0
    key = seed.to_bytes(8, "big")
    while len(out) < size:
        out += hashlib.blake2b(counter.to_bytes(8, "big"), key=key, digest_size=64).digest() * 64
        counter += 1
    return bytes(out[:size])


def libtorrent_torrent(
    content: Path,
    piece_length: int,
    *,
    tracker: str | None = None,
    v1_only: bool = True,
    private: bool = False,
) -> bytes:
    """A .torrent for ``content`` (a file or folder) made by libtorrent's create_torrent."""
    import libtorrent as lt

    fs = lt.file_storage()
    lt.add_files(fs, str(content))
    flags = lt.create_torrent.v1_only if v1_only else 0
    creator = lt.create_torrent(fs, piece_length, flags=flags)
    if tracker:
        creator.add_tracker(tracker)
    creator.set_priv(private)
    lt.set_piece_hashes(creator, str(content.parent))
    return lt.bencode(creator.generate())


def handmade_info(
    files: list[tuple[list[str], int]] | None = None,
    *,
    name: str = "t",
    length: int = 40_000,
    piece_length: int = 16_384,
    data: bytes | None = None,
) -> dict[str, Any]:
    """An info dict written by hand, for malformed-input tests."""
    total = sum(size for _, size in files) if files is not None else length
    payload = data if data is not None else bytes(total)
    pieces = b"".join(
        hashlib.sha1(payload[i : i + piece_length]).digest() for i in range(0, total, piece_length)
    )
    info: dict[str, Any] = {"name": name, "piece length": piece_length, "pieces": pieces}
    if files is None:
        info["length"] = length
    else:
        info["files"] = [{"path": path, "length": size} for path, size in files]
    return info


def handmade_torrent(info: dict[str, Any], **top: Any) -> bytes:
    return bencode.encode({"info": info, **top})


def quiet_libtorrent_warnings() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")


def libtorrent_v2_torrent(content: Path, piece_length: int, *, hybrid: bool = False) -> bytes:
    """A v2-only (or hybrid) .torrent for ``content`` made by libtorrent's create_torrent."""
    import libtorrent as lt

    fs = lt.file_storage()
    lt.add_files(fs, str(content))
    flags = 0 if hybrid else lt.create_torrent.v2_only
    creator = lt.create_torrent(fs, piece_length, flags=flags)
    lt.set_piece_hashes(creator, str(content.parent))
    return lt.bencode(creator.generate())
