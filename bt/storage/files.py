"""IStorage over real files: blocking positional reads and writes.

Every method blocks and is meant to run in the disk thread pool. ``os.pread``
and ``os.pwrite`` take an explicit offset, so threads share file descriptors
with no seek and no lock; only the cache of open descriptors is locked.

Files are created lazily on first write, sparse (no preallocation), with their
parent folders. Padding files (BEP 47) never touch the disk. A path that
resolves outside the download folder (through a symlink) is refused.

Skipped files are not created: the bytes of pieces that straddle into one are
kept in a part file (``bt.storage.partfile``) and moved into the file once it
is wanted again (``set_skipped``).

New files get mode 0666 and folders 0777 less the process umask, as other
programs' files do (libtorrent and Transmission too); with ``umask=`` they get
exactly that umask's modes instead, whatever the process umask (twistd sets
077 when it daemonises, which would hide downloads from a media server).
"""

from __future__ import annotations

import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from zope.interface import implementer

from bt.errors import StorageError
from bt.interfaces import IStorage
from bt.logs import Logger
from bt.storage import pagecache
from bt.storage.layout import FileSpan, Layout
from bt.storage.resume import file_stamps
from bt.storage.routelock import RouteLock
from bt.storage.vectored import as_views, pread_all, pwrite_all, take

if TYPE_CHECKING:
    from bt.storage.partfile import PartFile

__all__ = ["FileStorage", "StorageFile", "as_views", "pread_all", "pwrite_all", "take"]

log = Logger()

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: Read-only media or files: still readable (seeding), a write reopens and fails loudly.
_READ_ONLY_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class StorageFile(Protocol):
    """What storage needs of a file entry (``bt.metainfo.FileEntry`` fits)."""

    @property
    def path(self) -> tuple[str, ...]: ...

    @property
    def length(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def padding(self) -> bool: ...


def _make_folders(folder: str, mode: int | None) -> None:
    """``os.makedirs``; with ``mode``, each folder it creates gets exactly that mode."""
    if mode is None:
        os.makedirs(folder, exist_ok=True)
        return
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for new in reversed(missing):
        try:
            os.mkdir(new, mode)
        except FileExistsError:
            continue  # another disk thread made it; a file in the way fails the next step
        _set_mode(new, mode)


def _create(path: str, mode: int | None) -> int:
    """Open ``path`` for writing, created if missing; with ``mode``, a new file gets exactly it."""
    if mode is None:
        return os.open(path, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o666)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, mode)
    except FileExistsError:
        return os.open(path, os.O_RDWR | _O_CLOEXEC)
    _set_mode(fd, mode)
    return fd


def _set_mode(target: int | str, mode: int) -> None:
    """chmod past the process umask; file systems without Unix modes (vfat) refuse: fine."""
    try:
        os.chmod(target, mode)
    except PermissionError:
        pass


@dataclass(slots=True)
class _Handle:
    """An open descriptor shared by threads; closed only when no thread holds it."""

    file_index: int
    fd: int
    writable: bool
    users: int = 0
    dirty: bool = False
    evicted: bool = False


@implementer(IStorage)
class FileStorage:
    """A torrent's files under ``root``, addressed by piece.

    Reads of data that is not there yet come back short (see ``IStorage.read``):
    "missing" is an expected state of a download, distinct from a failing disk,
    which raises StorageError naming the file and the OS cause.

    At most ``max_open`` descriptors stay open (least recently used evicted), so
    a torrent of thousands of files does not exhaust the process's limit.

    With a ``parts`` file, skipped files that do not exist stay uncreated (their
    pieces' bytes go to the part file); without one, they are written like any
    file. A skipped file that already exists keeps being used, as in libtorrent.
    """

    def __init__(
        self,
        root: str | Path,
        files: Sequence[StorageFile],
        layout: Layout,
        *,
        max_open: int = 64,
        parts: PartFile | None = None,
        umask: int | None = None,
    ) -> None:
        if max_open < 1:
            raise ValueError(f"max_open must be at least 1, got {max_open}")
        entries = tuple(files)
        if tuple(f.length for f in entries) != layout.file_lengths:
            raise ValueError("files do not match the layout's file lengths")
        for index, entry in enumerate(entries):
            if not entry.padding and not entry.path:
                raise ValueError(f"file {index} has an empty path")
        self._root = os.path.abspath(os.fspath(root))
        self._layout = layout
        self._paths = tuple(os.path.join(self._root, *entry.path) for entry in entries)
        self._lengths = layout.file_lengths
        self._padding = tuple(bool(entry.padding) for entry in entries)
        self._max_open = max_open
        #: Exact modes of new files and folders; None: the process umask decides.
        self._file_mode = None if umask is None else 0o666 & ~umask
        self._folder_mode = None if umask is None else 0o777 & ~umask
        self._lock = threading.Lock()
        self._handles: OrderedDict[int, _Handle] = OrderedDict()
        self._dirty_closed: set[int] = set()
        self._closed = False
        self._parts = parts
        self._route = RouteLock()
        #: Files the user skips, and those of them whose bytes live in the part file.
        self._skipped: frozenset[int] = frozenset()
        self._parted: frozenset[int] = frozenset()
        self._prepared = False
        #: Whether to try reading from the page cache on the caller's thread (read_cached).
        self._page_cache = pagecache.AVAILABLE

    @property
    def root(self) -> str:
        return self._root

    @property
    def layout(self) -> Layout:
        return self._layout

    def path_of(self, file_index: int) -> str:
        return self._paths[file_index]

    # -- IStorage ---------------------------------------------------------

    def read(self, index: int, begin: int, length: int) -> bytes:
        parts: list[bytes] = []
        with self._route.shared():
            position = begin  # in the piece
            for span in self._layout.piece_spans(index, begin, length):
                if self._padding[span.file_index]:
                    data = bytes(span.length)
                elif span.file_index in self._parted:
                    assert self._parts is not None
                    data = self._parts.read(index, position, span.length)
                else:
                    data = self._read_span(span)
                parts.append(data)
                position += span.length
                if len(data) < span.length:
                    break  # missing data: return the contiguous prefix only
        return b"".join(parts)

    def read_cached(self, index: int, begin: int, sizes: Sequence[int]) -> list[bytearray] | None:
        """Buffers of ``sizes`` bytes, one after another from ``begin`` in piece ``index``,
        if all of it is in memory now (``bt.storage.pagecache``); else None.

        Never waits, so the reactor thread may call it: not for the disk, not for a lock
        a disk thread holds (the handle lock is held across the copies, which cannot
        block, so there is no release to wait for), not to open or close a file."""
        if not self._page_cache or not self._route.try_shared():
            return None
        try:
            if not self._lock.acquire(blocking=False):
                return None
            try:
                return self._read_cached(index, begin, sizes)
            finally:
                self._lock.release()
        finally:
            self._route.release_shared()

    def _read_cached(self, index: int, begin: int, sizes: Sequence[int]) -> list[bytearray] | None:
        """``read_cached`` with the handle lock held: only files open now are read."""
        if self._closed:
            return None
        buffers = [bytearray(size) for size in sizes]
        views = [memoryview(buffer) for buffer in buffers]
        for span in self._layout.piece_spans(index, begin, sum(sizes)):
            head, views = take(views, span.length)
            if self._padding[span.file_index]:
                continue  # zeros, as the buffers already are
            handle = self._handles.get(span.file_index)
            if span.file_index in self._parted or handle is None:
                return None
            self._handles.move_to_end(span.file_index)  # in use: not the next to close
            try:
                if not pagecache.pread_cached(handle.fd, head, span.file_offset):
                    return None
            except pagecache.NotSupported:
                self._page_cache = False  # its file system cannot tell: read in threads
                return None
        return buffers

    def write(self, index: int, begin: int, data: object) -> None:
        views = as_views(data)
        total = sum(view.nbytes for view in views)
        spans = self._layout.piece_spans(index, begin, total)
        with self._route.shared():
            parted = self._parted
            if any(span.file_index in parted for span in spans):
                # The whole run, so a slot is a copy of the piece that any of its
                # files can later be filled from.
                assert self._parts is not None
                self._parts.write(index, begin, views)
            self._write_spans(spans, views, parted)

    def write_pieces(self, first: int, data: object) -> None:
        """Write a run of whole pieces from ``first`` (``data`` as for ``write``, the
        pieces one after another): one vectored call per file span of the whole run,
        so 64 adjacent 16 KiB pieces cost one system call rather than 64."""
        views = as_views(data)
        spans = self._layout.run_spans(first, sum(view.nbytes for view in views))
        with self._route.shared():
            if not any(span.file_index in self._parted for span in spans):
                self._write_spans(spans, views, self._parted)
                return
        # A part file keeps a slot per piece: write the run piece by piece.
        index = first
        while views:
            piece, views = take(views, self._layout.piece_size(index))
            self.write(index, 0, piece)
            index += 1

    def _write_spans(
        self, spans: list[FileSpan], views: list[memoryview], parted: frozenset[int]
    ) -> None:
        """``views`` into ``spans`` in turn, but for padding and parted files (the part
        file has their bytes)."""
        for span in spans:
            chunk, views = take(views, span.length)
            if not self._padding[span.file_index] and span.file_index not in parted:
                self._write_span(span, chunk)

    def prepare(self) -> None:
        self._prepared = True
        for file_index, length in enumerate(self._lengths):
            skipped = file_index in self._skipped
            if length == 0 and not self._padding[file_index] and not skipped:
                self._create(file_index)

    def set_skipped(self, files: Collection[int]) -> None:
        with self._route.exclusive():
            self._check_open()
            before = self._skipped
            self._skipped = frozenset(i for i in files if not self._padding[i])
            if self._prepared:
                for file_index in before - self._skipped:
                    if self._lengths[file_index] == 0:
                        self._create(file_index)
            if self._parts is not None:
                self._reroute(self._parts)

    def parted_pieces(self) -> list[int]:
        return [] if self._parts is None else self._parts.pieces()

    def sync(self) -> None:
        with self._lock:
            self._check_open()
            closed = sorted(self._dirty_closed)
            self._dirty_closed.clear()
            held = [(i, h) for i, h in self._handles.items() if h.dirty]
            for _, handle in held:
                handle.dirty = False  # cleared first: a write racing with us sets it again
                handle.users += 1
        synced = False
        try:
            for file_index, handle in held:
                self._fsync(file_index, handle.fd)
            for file_index in closed:
                # fsync on any descriptor flushes the file's dirty pages (Linux, BSD).
                try:
                    fd = os.open(self._paths[file_index], os.O_RDONLY | _O_CLOEXEC)
                except OSError as error:
                    raise self._error("sync", file_index, error) from error
                try:
                    self._fsync(file_index, fd)
                finally:
                    os.close(fd)
            if self._parts is not None:
                self._parts.flush()
            synced = True
        finally:
            if not synced:  # a later sync() must try these again
                with self._lock:
                    self._dirty_closed.update(closed)
                    for file_index, handle in held:
                        handle.dirty = True
                        if handle.evicted:
                            self._dirty_closed.add(file_index)
            for _, handle in held:
                self._release(handle)

    def existing_lengths(self) -> list[int]:
        lengths: list[int] = []
        for file_index, path in enumerate(self._paths):
            if self._padding[file_index]:
                lengths.append(self._lengths[file_index])
                continue
            try:
                lengths.append(os.stat(path).st_size)
            except FileNotFoundError:
                lengths.append(0)
            except OSError as error:
                raise self._error("stat", file_index, error) from error
        return lengths

    def file_stamps(self) -> tuple[tuple[int, int], ...]:
        return file_stamps(
            [None if self._padding[i] else path for i, path in enumerate(self._paths)]
        )

    def close(self) -> None:
        errors: list[StorageError] = []
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._handles:
                file_index, handle = self._handles.popitem(last=False)
                handle.evicted = True
                if handle.users == 0:
                    try:
                        os.close(handle.fd)
                    except OSError as error:
                        errors.append(self._error("close", file_index, error))
        if self._parts is not None:
            self._parts.close()
        if errors:
            raise errors[0]

    # -- internals --------------------------------------------------------

    def _reroute(self, parts: PartFile) -> None:
        """Decide which skipped files the part file stands in for, moving bytes as needed.

        A skipped file uses the part file if it does not exist (or already did);
        one that exists keeps its own bytes. A file the part file stood in for and
        that is wanted now gets its bytes copied out of the slots and fsynced
        before the index frees them. This also completes a move that a crash cut.
        """
        before = parts.parted
        parted = {
            i
            for i in self._skipped
            if self._lengths[i] and (i in before or not os.path.lexists(self._paths[i]))
        }
        for file_index in sorted(before - parted):
            self._move_out(parts, file_index)
        parts.set_parted(parted)
        self._parted = frozenset(parted)
        unneeded = [
            piece
            for piece in parts.pieces()
            if not any(f in parted for f in self._layout.files_of_piece(piece))
        ]
        parts.release(unneeded)
        parts.flush()

    def _move_out(self, parts: PartFile, file_index: int) -> None:
        """Copy the bytes of ``file_index`` held in slots into the file, durably."""
        pieces = set(self._layout.pieces_of_file(file_index))
        handle = self._acquire(file_index, write=True)
        assert handle is not None
        try:
            for piece in parts.pieces():
                if piece not in pieces:
                    continue
                position = 0
                for span in self._layout.piece_spans(piece):
                    if span.file_index == file_index:
                        data = parts.read(piece, position, span.length)
                        pwrite_all(handle.fd, [memoryview(data)], span.file_offset)
                    position += span.length
            os.fsync(handle.fd)
        except OSError as error:
            raise self._error("write", file_index, error) from error
        finally:
            self._release(handle, wrote=True)

    def _create(self, file_index: int) -> None:
        handle = self._acquire(file_index, write=True)
        if handle is not None:
            self._release(handle)

    def _read_span(self, span: FileSpan) -> bytes:
        handle = self._acquire(span.file_index, write=False)
        if handle is None:
            return b""
        try:
            return pread_all(handle.fd, span.length, span.file_offset)
        except OSError as error:
            raise self._error("read", span.file_index, error) from error
        finally:
            self._release(handle)

    def _write_span(self, span: FileSpan, views: list[memoryview]) -> None:
        handle = self._acquire(span.file_index, write=True)
        assert handle is not None
        try:
            pwrite_all(handle.fd, views, span.file_offset)
        except OSError as error:
            raise self._error("write", span.file_index, error) from error
        finally:
            self._release(handle, wrote=True)

    def _acquire(self, file_index: int, *, write: bool) -> _Handle | None:
        """A held descriptor for the file, or None when reading a file that does not exist."""
        with self._lock:
            self._check_open()
            handle = self._handles.get(file_index)
            if handle is not None and not handle.writable and write:
                self._evict(file_index)  # opened read-only; reopen for writing
                handle = None
            if handle is None:
                handle = self._open(file_index, write=write)
                if handle is None:
                    return None
                self._handles[file_index] = handle
            else:
                self._handles.move_to_end(file_index)
            handle.users += 1
            # Marked before the write so that an eviction meanwhile remembers the file.
            handle.dirty = handle.dirty or write
            while len(self._handles) > self._max_open:
                self._evict(next(iter(self._handles)))
            return handle

    def _release(self, handle: _Handle, *, wrote: bool = False) -> None:
        with self._lock:
            handle.users -= 1
            if wrote:
                # Again after the write: a sync() racing with it may have cleared the flag.
                handle.dirty = True
                if handle.evicted:
                    self._dirty_closed.add(handle.file_index)
            if handle.evicted and handle.users == 0:
                self._close_quietly(handle)

    def _evict(self, file_index: int) -> None:
        """Drop from the cache (lock held); the last thread using it closes it."""
        handle = self._handles.pop(file_index)
        handle.evicted = True
        if handle.dirty:
            self._dirty_closed.add(file_index)
        if handle.users == 0:
            self._close_quietly(handle)

    def _close_quietly(self, handle: _Handle) -> None:
        try:
            os.close(handle.fd)
        except OSError as error:
            # Not the caller's failure; dirty files are fsynced by sync(), which reports.
            log.error("closing fd {fd} failed: {error}", fd=handle.fd, error=error)

    def _open(self, file_index: int, *, write: bool) -> _Handle | None:
        """Open with the lock held; refuses paths that resolve outside root."""
        path = self._paths[file_index]
        self._check_inside_root(file_index)
        try:
            if write:
                _make_folders(os.path.dirname(path), self._folder_mode)
                self._check_inside_root(file_index)  # the folders we just made are real now
                return _Handle(file_index, _create(path, self._file_mode), writable=True)
            try:
                return _Handle(file_index, os.open(path, os.O_RDWR | _O_CLOEXEC), writable=True)
            except FileNotFoundError:
                return None
            except OSError as error:
                if error.errno not in _READ_ONLY_ERRNOS:
                    raise
                return _Handle(file_index, os.open(path, os.O_RDONLY | _O_CLOEXEC), writable=False)
        except OSError as error:
            raise self._error("open", file_index, error) from error

    def _check_inside_root(self, file_index: int) -> None:
        """A symlink under root may point anywhere: resolve it and refuse escapes."""
        root = os.path.realpath(self._root)
        real = os.path.realpath(self._paths[file_index])
        if real != root and os.path.commonpath([root, real]) == root:
            return
        raise StorageError(f"{self._paths[file_index]}: resolves to {real}, outside {root}")

    def _fsync(self, file_index: int, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as error:
            raise self._error("sync", file_index, error) from error

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"storage under {self._root} is closed")

    def _error(self, action: str, file_index: int, error: OSError) -> StorageError:
        cause = os.strerror(error.errno) if error.errno else str(error)
        code = errno.errorcode.get(error.errno or 0, "")
        detail = f"{cause} ({code})" if code else cause
        return StorageError(f"cannot {action} {self._paths[file_index]}: {detail}")

    def __repr__(self) -> str:
        return f"FileStorage({self._root!r}, files={len(self._paths)})"
