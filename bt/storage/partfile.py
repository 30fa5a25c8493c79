"""The part file: bytes of pieces that straddle into skipped files, kept out of those files.

A piece shared by a wanted and a skipped file is downloaded (it is as urgent
as its most urgent file), but writing it would create the skipped file. As in
libtorrent (``part_file.cpp``), such a piece goes whole into a slot of one file
per torrent in the state folder, and back out into a file that is wanted later.

Layout, all numbers big-endian::

    index copy 0 | index copy 1 | slot 0 | slot 1 | ...

Each index copy sits in a region of fixed size (room for every piece, mostly a
sparse hole) and holds: magic, generation, the torrent's geometry, the files the
part file stands in for (a bitmap), the (piece, slot) pairs in use, and a CRC-32
over all of it. A save writes the copy the latest one is not in, then fsyncs,
so a crash tears at most the copy being written and the other one still loads.

Crash safety, in the order the callers rely on: a slot's data is fsynced before
an index listing it is written (``flush``); a freed slot is reused only once an
index without it is durable, so a durable index never names a slot holding
another piece's bytes; and a file's bytes are made durable in that file before
the index that frees their slot is written (the caller's job, before
``release``). Resume state is saved only after ``flush``, so it never claims a
piece whose bytes the part file might not hold after a crash.

Blocking I/O: every method runs in the disk threads. Thread-safe.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from bt.errors import StorageError
from bt.logs import Logger
from bt.storage.files import pread_all, pwrite_all

__all__ = ["PartFile", "PartIndex", "decode_index", "encode_index", "index_region"]

log = Logger()

MAGIC = b"BTPARTS1"
#: magic, generation, pieces, piece length, files, entries, crc32
_HEAD = struct.Struct(">8sQIIIII")
_ENTRY = struct.Struct(">II")
_ALIGN = 4096
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class PartIndex:
    """Which piece is in which slot, and the files the part file stands in for."""

    slots: dict[int, int]
    parted: frozenset[int]


def index_region(num_pieces: int, num_files: int) -> int:
    """Bytes reserved for one index copy: room for every piece, rounded up to 4 KiB."""
    size = _HEAD.size + (num_files + 7) // 8 + _ENTRY.size * num_pieces
    return -(-size // _ALIGN) * _ALIGN


def encode_index(
    index: PartIndex, generation: int, num_pieces: int, piece_length: int, num_files: int
) -> bytes:
    """One index copy (only its used prefix: the rest of the region stays a hole)."""
    bitmap = bytearray((num_files + 7) // 8)
    for file_index in index.parted:
        bitmap[file_index // 8] |= 0x80 >> (file_index % 8)
    entries = b"".join(_ENTRY.pack(piece, slot) for piece, slot in sorted(index.slots.items()))
    body = bytes(bitmap) + entries
    fields = (MAGIC, generation, num_pieces, piece_length, num_files, len(index.slots))
    crc = zlib.crc32(_HEAD.pack(*fields, 0) + body)
    return _HEAD.pack(*fields, crc) + body


def decode_index(
    data: bytes, num_pieces: int, piece_length: int, num_files: int
) -> tuple[int, PartIndex] | None:
    """(generation, index) from one copy, or None if it is torn, foreign or inconsistent."""
    if len(data) < _HEAD.size:
        return None
    magic, generation, pieces, length, files, count, crc = _HEAD.unpack_from(data)
    if magic != MAGIC or (pieces, length, files) != (num_pieces, piece_length, num_files):
        return None
    end = _HEAD.size + (num_files + 7) // 8 + _ENTRY.size * count
    if count > num_pieces or len(data) < end:
        return None
    body = data[_HEAD.size : end]
    if zlib.crc32(data[: _HEAD.size - 4] + b"\0\0\0\0" + body) != crc:
        return None
    bitmap = body[: (num_files + 7) // 8]
    parted = frozenset(i for i in range(num_files) if bitmap[i // 8] & (0x80 >> (i % 8)))
    slots: dict[int, int] = {}
    for offset in range(len(bitmap), len(body), _ENTRY.size):
        piece, slot = _ENTRY.unpack_from(body, offset)
        if piece >= num_pieces or slot >= num_pieces or piece in slots:
            return None
        slots[piece] = slot
    if len(set(slots.values())) != len(slots):
        return None
    return generation, PartIndex(slots, parted)


class PartFile:
    """Slots of whole pieces in one file; the index is loaded on first use (no I/O before)."""

    def __init__(
        self, path: str | Path, num_pieces: int, piece_length: int, num_files: int
    ) -> None:
        self.path = os.fspath(path)
        self._num_pieces = num_pieces
        self._piece_length = piece_length
        self._num_files = num_files
        self._region = index_region(num_pieces, num_files)
        self._lock = threading.Lock()
        self._loaded = False
        self._fd: int | None = None
        self._slots: dict[int, int] = {}
        self._parted: frozenset[int] = frozenset()
        self._free: list[int] = []  # reusable: no durable index names them
        self._freed: list[int] = []  # released since the last durable index
        self._generation = 0
        self._data_dirty = False
        self._index_dirty = False
        self._closed = False

    # -- what it holds ------------------------------------------------------

    @property
    def parted(self) -> frozenset[int]:
        """The files whose bytes live here instead of in their own file."""
        with self._lock:
            self._load()
            return self._parted

    def set_parted(self, files: Collection[int]) -> None:
        with self._lock:
            self._load()
            if frozenset(files) != self._parted:
                self._parted = frozenset(files)
                self._index_dirty = True

    def pieces(self) -> list[int]:
        """The pieces that have a slot, in order."""
        with self._lock:
            self._load()
            return sorted(self._slots)

    # -- data ---------------------------------------------------------------

    def write(self, piece: int, begin: int, views: list[memoryview]) -> None:
        """Write a run of piece ``piece`` at ``begin`` in its slot (allocated if needed)."""
        with self._lock:
            self._load()
            slot = self._slots.get(piece)
            if slot is None:
                slot = self._free.pop() if self._free else self._next_slot()
                self._slots[piece] = slot
                self._index_dirty = True
            fd = self._open(create=True)
            self._data_dirty = True
        assert fd is not None
        try:
            pwrite_all(fd, views, self._slot_offset(slot) + begin)
        except OSError as error:
            raise self._error("write", error) from error

    def read(self, piece: int, begin: int, length: int) -> bytes:
        """Bytes of piece ``piece`` at ``begin``; empty when the piece has no slot."""
        with self._lock:
            self._load()
            slot = self._slots.get(piece)
            fd = None if slot is None else self._open(create=False)
        if slot is None or fd is None:
            return b""
        try:
            return pread_all(fd, length, self._slot_offset(slot) + begin)
        except OSError as error:
            raise self._error("read", error) from error

    def release(self, pieces: Iterable[int]) -> None:
        """Free the slots of ``pieces``; reusable only after the next durable ``flush``."""
        with self._lock:
            self._load()
            for piece in pieces:
                slot = self._slots.pop(piece, None)
                if slot is not None:
                    self._freed.append(slot)
                    self._index_dirty = True

    def flush(self) -> None:
        """Make the slots' data durable, then the index; removes a part file left empty."""
        with self._lock:
            if not self._loaded or self._closed:
                return
            fd = self._fd
            try:
                if self._data_dirty and fd is not None:
                    os.fsync(fd)
                self._data_dirty = False
                if not self._index_dirty:
                    return
                if not self._slots:
                    self._remove()
                    self._freed.clear()  # the file is gone: slot numbers start again
                    self._free.clear()
                else:
                    generation = self._generation + 1
                    copy = encode_index(
                        PartIndex(dict(self._slots), self._parted),
                        generation,
                        self._num_pieces,
                        self._piece_length,
                        self._num_files,
                    )
                    fd = self._open(create=True)
                    assert fd is not None
                    os.pwrite(fd, copy, (generation % 2) * self._region)
                    os.fsync(fd)
                    self._generation = generation
                self._free.extend(self._freed)
                self._freed.clear()
                self._index_dirty = False
            except OSError as error:
                raise self._error("save", error) from error

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    os.close(fd)
                except OSError as error:
                    raise self._error("close", error) from error

    # -- internals (lock held) ------------------------------------------------

    def _load(self) -> None:
        if self._closed:
            raise StorageError(f"part file {self.path} is closed")
        if self._loaded:
            return
        fd = self._open(create=False)
        best: tuple[int, PartIndex] | None = None
        if fd is not None:
            try:
                for copy in (0, 1):
                    data = os.pread(fd, self._region, copy * self._region)
                    found = decode_index(
                        data, self._num_pieces, self._piece_length, self._num_files
                    )
                    if found is not None and (best is None or found[0] > best[0]):
                        best = found
            except OSError as error:
                raise self._error("read", error) from error
            if best is None:
                log.warn("{path}: no valid index; its slots are forgotten", path=self.path)
        if best is not None:
            self._generation, index = best
            self._slots = dict(index.slots)
            self._parted = index.parted
            used = set(self._slots.values())
            self._free = [s for s in range(max(used, default=-1)) if s not in used]
        self._loaded = True

    def _next_slot(self) -> int:
        """One past the highest slot in use, free or waiting to be free."""
        return len(self._slots) + len(self._free) + len(self._freed)

    def _slot_offset(self, slot: int) -> int:
        return 2 * self._region + slot * self._piece_length

    def _open(self, *, create: bool) -> int | None:
        if self._fd is not None:
            return self._fd
        try:
            if create:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o600)
            else:
                self._fd = os.open(self.path, os.O_RDWR | _O_CLOEXEC)
        except FileNotFoundError:
            if create:
                raise
            return None
        except OSError as error:
            raise self._error("open", error) from error
        return self._fd

    def _remove(self) -> None:
        """No slot left: the part file goes (libtorrent does the same)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        folder = os.open(os.path.dirname(self.path), os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        self._generation = 0

    def _error(self, action: str, error: OSError) -> StorageError:
        return StorageError(f"cannot {action} part file {self.path}: {error.strerror or error}")

    def __repr__(self) -> str:
        return f"PartFile({self.path!r})"
