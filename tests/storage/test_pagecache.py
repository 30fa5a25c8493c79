"""Reads from the page cache on the reactor thread: all of it now, or nothing, never a wait."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
from test_files import entries, file_storage, stream
from test_partfile import WANTED, write_wanted
from test_partfile import Disk as PartedDisk
from test_partfile import piece as parted_piece
from twisted.internet.testing import MemoryReactorClock
from twisted.python.threadpool import ThreadPool

from bt.storage import pagecache
from bt.storage.disk import DiskQueue
from bt.storage.files import FileStorage
from bt.storage.layout import Layout
from bt.storage.verifier import V1Verifier

pytestmark = pytest.mark.skipif(not pagecache.AVAILABLE, reason="no preadv RWF_NOWAIT here")

#: a.bin ends inside piece 1; the padding file fills piece 1; b.bin is pieces 2-3.
FILES = entries(("t/a.bin", 20), ("t/.pad/12", 12, True), ("t/b.bin", 32))
DATA = stream(20) + bytes(12) + stream(32)
PIECE = 16


def written(tmp_path: Path) -> FileStorage:
    """Every piece written (so in the page cache) and every file open, as when seeding."""
    storage = file_storage(tmp_path, FILES, PIECE)
    for index in range(4):
        storage.write(index, 0, DATA[index * PIECE : (index + 1) * PIECE])
    for index in range(4):
        assert storage.read(index, 0, PIECE) == DATA[index * PIECE : (index + 1) * PIECE]
    if storage.read_cached(0, 0, [PIECE]) is None:
        pytest.skip("this file system cannot read without waiting (RWF_NOWAIT)")
    return storage


def test_pread_cached_fills_the_views_only_with_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abcdefgh")
    fd = os.open(path, os.O_RDONLY)
    try:
        first, second = bytearray(3), bytearray(5)
        if not pagecache.pread_cached(fd, [memoryview(first), memoryview(second)], 0):
            pytest.skip("this file system cannot read without waiting (RWF_NOWAIT)")
        assert (first, second) == (b"abc", b"defgh")
        assert not pagecache.pread_cached(fd, [memoryview(bytearray(4))], 6), "past the end"
        assert pagecache.pread_cached(fd, [], 0), "nothing asked: nothing missing"
    finally:
        os.close(fd)


def test_read_cached_returns_buffers_of_the_asked_sizes_across_files_and_padding(
    tmp_path: Path,
) -> None:
    storage = written(tmp_path)
    buffers = storage.read_cached(1, 0, [4, 12])  # the end of a.bin, then padding
    assert buffers is not None and [bytes(b) for b in buffers] == [DATA[16:20], DATA[20:32]]
    buffers = storage.read_cached(0, 8, [4, 4])
    assert buffers is not None and b"".join(buffers) == DATA[8:16]
    assert storage.read_cached(2, 0, [PIECE]) == [bytearray(DATA[32:48])]


def test_read_cached_never_opens_a_file(tmp_path: Path) -> None:
    written(tmp_path).close()
    fresh = file_storage(tmp_path, FILES, PIECE)
    assert fresh.read_cached(2, 0, [PIECE]) is None, "b.bin is not open yet"
    assert fresh.read(2, 0, PIECE) == DATA[32:48]  # the disk threads open it
    assert fresh.read_cached(2, 0, [PIECE]) == [bytearray(DATA[32:48])]
    fresh.close()
    assert fresh.read_cached(2, 0, [PIECE]) is None, "closed"


def test_read_cached_does_not_wait_for_a_lock_a_disk_thread_holds(tmp_path: Path) -> None:
    storage = written(tmp_path)
    with storage._lock:  # a disk thread opening a file, say
        assert storage.read_cached(2, 0, [PIECE]) is None
    held, release = threading.Event(), threading.Event()

    def relocate() -> None:
        with storage._route.exclusive():  # set_skipped moving bytes
            held.set()
            release.wait(5)

    mover = threading.Thread(target=relocate)
    mover.start()
    try:
        assert held.wait(5)
        assert storage.read_cached(2, 0, [PIECE]) is None
    finally:
        release.set()
        mover.join(5)
    assert storage.read_cached(2, 0, [PIECE]) == [bytearray(DATA[32:48])]


def test_read_cached_leaves_bytes_in_the_part_file_to_the_disk_threads(tmp_path: Path) -> None:
    disk = PartedDisk(tmp_path)
    storage = disk.open()
    write_wanted(storage)
    index = WANTED[1]  # straddles into the skipped file, whose bytes live in the part file
    assert storage.read(index, 0, PIECE) == parted_piece(index)
    assert storage.read_cached(index, 0, [PIECE]) is None
    storage.close()


def test_the_disk_queue_reads_now_only_while_running_and_checks_the_range(
    tmp_path: Path,
) -> None:
    storage = written(tmp_path)
    layout = Layout.from_files(FILES, PIECE)
    verifier = V1Verifier([bytes(20)] * layout.num_pieces)
    queue = DiskQueue(
        storage, verifier, layout.piece_size, reactor=MemoryReactorClock(), pool=ThreadPool()
    )  # the pool is never started: read_now does not use it
    assert queue.read_now(2, 0, [PIECE]) is None, "not started"
    queue.start()
    assert queue.read_now(3, 4, [8, 4]) == [bytearray(DATA[52:60]), bytearray(DATA[60:64])]
    with pytest.raises(ValueError, match="outside piece 3"):
        queue.read_now(3, 8, [PIECE])
    queue.stop()
    assert queue.read_now(3, 4, [8, 4]) is None, "stopped"


def test_a_file_system_that_cannot_tell_is_not_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = written(tmp_path)
    calls = []

    def unsupported(fd: int, views: list[memoryview], offset: int) -> bool:
        calls.append(offset)
        raise pagecache.NotSupported("EOPNOTSUPP")

    monkeypatch.setattr(pagecache, "pread_cached", unsupported)
    assert storage.read_cached(2, 0, [PIECE]) is None
    assert storage.read_cached(3, 0, [PIECE]) is None
    assert len(calls) == 1, "NFS or FUSE: every later read goes to the disk threads at once"
    assert storage.read(3, 0, PIECE) == DATA[48:64]


@pytest.mark.parametrize(
    ("code", "outcome"), [(errno.EAGAIN, False), (errno.EOPNOTSUPP, "unsupported")]
)
def test_pread_cached_tells_not_in_memory_from_cannot_tell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, outcome: object
) -> None:
    def failing(*args: object) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "preadv", failing)
    views = [memoryview(bytearray(4))]
    if outcome == "unsupported":
        with pytest.raises(pagecache.NotSupported):
            pagecache.pread_cached(0, views, 0)
    else:
        assert pagecache.pread_cached(0, views, 0) is outcome


def test_a_file_served_from_the_page_cache_stays_open(tmp_path: Path) -> None:
    storage = written(tmp_path)
    assert storage.read_cached(2, 0, [PIECE]) is not None
    assert list(storage._handles) == [0, 2], "b.bin is the most recently used"
    assert storage.read_cached(0, 0, [PIECE]) is not None
    assert list(storage._handles) == [2, 0], "now a.bin is: a disk thread closes b.bin first"
