"""Resume state: which pieces are verified on disk, saved so a restart need not rehash.

One file per torrent in the state folder: the have-bitfield plus each file's
size and modification time when it was saved. At start-up the saved pieces of
a file are trusted only if it still has that size and time; the pieces of a file
changed, moved or touched are checked again (``bt.storage.damage``). Files are written atomically
(temporary file, fsync, rename, fsync of the folder), so a crash leaves either
the old state or the new one, never a torn one.

A piece is put in the saved bitfield only after its data was written and the
data files were fsynced: the state never claims bytes the disk does not hold.

A torrent with a v2 info-hash (v2-only or hybrid) is keyed by its full 32-byte
SHA-256 (``resume_key``), which its truncated wire identity only abbreviates; a
v1 torrent keeps its SHA-1, so existing resume files stay valid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bt import bencode
from bt.bitfield import Bitfield
from bt.errors import BencodeError, BitfieldError, ResumeError, ResumeSaveError, StorageError

if TYPE_CHECKING:
    from bt.metainfo import Metainfo

__all__ = [
    "FORMAT_VERSION",
    "ResumeError",
    "ResumeState",
    "load_resume",
    "resume_key",
    "save_resume",
]

FORMAT_VERSION = 1

FileStamp = tuple[int, int]  # size in bytes, modification time in nanoseconds


@dataclass(frozen=True)
class ResumeState:
    info_hash: bytes
    have: Bitfield
    files: tuple[FileStamp, ...]
    uploaded: int = 0
    downloaded: int = 0

    def encode(self) -> bytes:
        return bencode.encode(
            {
                "version": FORMAT_VERSION,
                "info-hash": self.info_hash,
                "pieces": self.have.length,
                "have": self.have.to_bytes(),
                "files": [[size, mtime] for size, mtime in self.files],
                "uploaded": self.uploaded,
                "downloaded": self.downloaded,
            }
        )

    @classmethod
    def decode(cls, data: bytes, info_hash: bytes, num_pieces: int) -> ResumeState:
        """Parse resume bytes, checking they belong to this torrent; ResumeError otherwise."""
        try:
            fields = bencode.decode(data)
        except BencodeError as exc:
            raise ResumeError(f"not valid bencode: {exc}") from None
        if not isinstance(fields, dict):
            raise ResumeError("not a dictionary")
        if fields.get(b"version") != FORMAT_VERSION:
            raise ResumeError(f"unknown format version {fields.get(b'version')!r}")
        if fields.get(b"info-hash") != info_hash:
            raise ResumeError("state of another torrent")
        if fields.get(b"pieces") != num_pieces:
            raise ResumeError(f"{fields.get(b'pieces')!r} pieces, expected {num_pieces}")
        try:
            have = Bitfield.from_bytes(fields.get(b"have", b""), num_pieces)
        except (BitfieldError, TypeError) as exc:
            raise ResumeError(f"bad bitfield: {exc}") from None
        files = fields.get(b"files")
        if not isinstance(files, list) or not all(
            isinstance(f, list) and len(f) == 2 and all(isinstance(n, int) for n in f)
            for f in files
        ):
            raise ResumeError("bad file list")
        counters = [fields.get(b"uploaded", 0), fields.get(b"downloaded", 0)]
        if not all(isinstance(n, int) and n >= 0 for n in counters):
            raise ResumeError("bad transfer counters")
        return cls(info_hash, have, tuple((s, m) for s, m in files), *counters)


def resume_key(metainfo: Metainfo) -> bytes:
    """What a torrent's resume state is named after and checked against: the v2
    info-hash where there is one (32 bytes), else the v1 info-hash."""
    return metainfo.info_hash_v2 or metainfo.info_hash


def file_stamps(paths: list[str | None]) -> tuple[FileStamp, ...]:
    """Size and mtime of each file; (0, 0) when missing or not a real file (padding)."""
    stamps: list[FileStamp] = []
    for path in paths:
        if path is None:
            stamps.append((0, 0))
            continue
        try:
            info = os.stat(path)
        except FileNotFoundError:
            stamps.append((0, 0))
            continue
        except OSError as exc:
            raise StorageError(f"cannot stat {path}: {exc.strerror}") from exc
        stamps.append((info.st_size, info.st_mtime_ns))
    return tuple(stamps)


def save_resume(path: Path, data: bytes, what: str = "resume state") -> None:
    """Write ``data`` to ``path`` atomically and durably (blocking: run it in the disk pool)."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as exc:
        raise ResumeSaveError(f"cannot save {what} {path}: {exc.strerror}") from exc


def load_resume(path: Path) -> bytes | None:
    """The saved bytes, or None when there is no state yet (blocking)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ResumeError(f"cannot read {path}: {exc.strerror}") from exc
