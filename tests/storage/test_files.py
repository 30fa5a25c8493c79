"""FileStorage over real files (and MemoryStorage, which must behave the same)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from zope.interface.verify import verifyObject

from bt.errors import StorageError
from bt.interfaces import IStorage
from bt.storage.files import FileStorage
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage


class Entry(NamedTuple):
    path: tuple[str, ...]
    length: int
    offset: int
    padding: bool = False


def entries(*files: tuple[str, int] | tuple[str, int, bool]) -> list[Entry]:
    """Entries placed back to back; a path "a/b" becomes ("a", "b")."""
    result = []
    offset = 0
    for spec in files:
        path, length = spec[0], spec[1]
        padding = len(spec) > 2 and bool(spec[2])
        result.append(Entry(tuple(path.split("/")), length, offset, padding))
        offset += length
    return result


def stream(length: int) -> bytes:
    """Distinct bytes at every position (mod 251), so misplaced bytes show."""
    return bytes(i % 251 for i in range(length))


Factory = Callable[[list[Entry], int], IStorage]


@pytest.fixture(params=["files", "memory"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Both storages, so MemoryStorage stays a faithful stand-in for tests elsewhere."""
    opened: list[IStorage] = []

    def make(files: list[Entry], piece_length: int) -> IStorage:
        layout = Layout.from_files(files, piece_length)
        storage: IStorage
        if request.param == "files":
            storage = FileStorage(tmp_path / "dl", files, layout)
        else:
            padding = [i for i, f in enumerate(files) if f.padding]
            storage = MemoryStorage(layout, padding)
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        storage.close()


MULTI = entries(("t/a.bin", 10), ("t/empty", 0), ("t/sub/b.bin", 25), ("t/c.bin", 7))


def write_all(storage: IStorage, layout: Layout, data: bytes, block: int) -> None:
    """Write every piece as a list of blocks, the way the disk queue does."""
    for index in range(layout.num_pieces):
        start = index * layout.piece_length
        piece = data[start : start + layout.piece_size(index)]
        storage.write(index, 0, [piece[i : i + block] for i in range(0, len(piece), block)])


# -- contract: both storages ---------------------------------------------


def test_provides_istorage(make_storage: Factory) -> None:
    assert verifyObject(IStorage, make_storage(MULTI, 16))


def test_multi_file_round_trip_across_boundaries(make_storage: Factory) -> None:
    storage = make_storage(MULTI, 16)
    layout = Layout.from_files(MULTI, 16)
    data = stream(layout.total_length)
    write_all(storage, layout, data, block=5)
    for index in range(layout.num_pieces):
        start = index * 16
        assert storage.read(index, 0, layout.piece_size(index)) == data[start : start + 16]
    assert storage.read(1, 3, 9) == data[19:28]
    assert storage.existing_lengths() == [10, 0, 25, 7]


def test_single_bytes_object_and_memoryview_are_accepted(make_storage: Factory) -> None:
    storage = make_storage(MULTI, 16)
    storage.write(0, 4, b"abcdefgh")
    storage.write(0, 12, memoryview(bytearray(b"WXYZ")))
    assert storage.read(0, 4, 12) == b"abcdefghWXYZ"


def test_missing_data_reads_short_not_zero_filled(make_storage: Factory) -> None:
    storage = make_storage(MULTI, 16)
    assert storage.read(0, 0, 16) == b""  # nothing written yet
    storage.write(0, 0, b"x" * 10)  # all of a.bin, nothing of b.bin
    assert storage.read(0, 0, 16) == b"x" * 10
    assert storage.existing_lengths() == [10, 0, 0, 0]


def test_hole_in_a_sparse_file_reads_as_zeros(make_storage: Factory) -> None:
    storage = make_storage(entries(("one", 64)), 16)
    storage.write(3, 0, b"z" * 16)
    assert storage.read(1, 0, 16) == bytes(16)


def test_padding_files_read_as_zeros_and_are_skipped_on_write(
    make_storage: Factory,
) -> None:
    files = entries(("t/a", 6), ("t/.pad/10", 10, True), ("t/b", 16))
    storage = make_storage(files, 16)
    storage.write(0, 0, [b"aaaaaa", bytes(10)])
    storage.write(1, 0, b"b" * 16)
    assert storage.read(0, 0, 16) == b"aaaaaa" + bytes(10)
    assert storage.existing_lengths() == [6, 10, 16]


def test_out_of_range_is_a_value_error(make_storage: Factory) -> None:
    storage = make_storage(MULTI, 16)
    with pytest.raises(ValueError):
        storage.read(2, 0, 16)  # last piece holds 10 bytes
    with pytest.raises(ValueError):
        storage.write(3, 0, b"x")


def test_closed_storage_refuses_work_and_close_is_idempotent(make_storage: Factory) -> None:
    storage = make_storage(MULTI, 16)
    storage.write(0, 0, b"q" * 16)
    storage.sync()
    storage.close()
    storage.close()
    with pytest.raises(StorageError):
        storage.read(0, 0, 16)
    with pytest.raises(StorageError):
        storage.write(0, 0, b"q")


def test_blocks_are_coalesced_into_one_write_per_file_span() -> None:
    layout = Layout.from_files(MULTI, 16)
    storage = MemoryStorage(layout)
    storage.write(0, 0, [b"a" * 4, b"b" * 4, b"c" * 4, b"d" * 4])  # spans a.bin, b.bin
    assert storage.writes == 2


def test_a_run_of_whole_pieces_is_written_at_once(make_storage: Factory) -> None:
    """``write_pieces``: adjacent pieces across file bounds and padding, as blocks."""
    files = entries(("t/a", 20), ("t/.pad/12", 12, True), ("t/b", 30), ("t/c", 7))
    storage = make_storage(files, 16)
    layout = Layout.from_files(files, 16)
    data = bytearray(stream(layout.total_length))
    data[20:32] = bytes(12)  # the padding file's zeros
    storage.write_pieces(0, [data[0:16], data[16:30], data[30:32]])  # pieces 0 and 1
    storage.write_pieces(2, memoryview(data)[32:])  # 2..4, the last one short
    assert storage.read(0, 0, 16) + storage.read(1, 0, 16) == data[:32]
    assert b"".join(storage.read(i, 0, layout.piece_size(i)) for i in range(2, 5)) == data[32:]
    assert storage.existing_lengths() == [20, 12, 30, 7]


def test_a_run_must_start_and_end_with_a_whole_piece(make_storage: Factory) -> None:
    storage = make_storage(MULTI, 16)  # 42 bytes: pieces of 16, 16 and 10
    with pytest.raises(ValueError, match="does not end a piece"):
        storage.write_pieces(0, b"x" * 20)
    with pytest.raises(ValueError, match="outside"):
        storage.write_pieces(3, b"x" * 16)
    with pytest.raises(ValueError):
        storage.write_pieces(1, b"x" * 42)  # past the end of the torrent
    assert storage.read(0, 0, 16) == b"", "nothing was written"


def test_a_run_is_one_write_per_file_span() -> None:
    storage = MemoryStorage(Layout.from_files(MULTI, 16))
    storage.write_pieces(0, [b"a" * 16, b"b" * 16, b"c" * 10])  # a.bin, sub/b.bin, c.bin
    assert storage.writes == 3


# -- real files --------------------------------------------------------------


def file_storage(root: Path, files: list[Entry], piece_length: int, **kw: int) -> FileStorage:
    return FileStorage(root, files, Layout.from_files(files, piece_length), **kw)


def test_files_land_at_their_paths_with_folders_created(tmp_path: Path) -> None:
    storage = file_storage(tmp_path, MULTI, 16)
    layout = storage.layout
    data = stream(layout.total_length)
    write_all(storage, layout, data, block=16)
    storage.close()
    assert (tmp_path / "t" / "a.bin").read_bytes() == data[0:10]
    assert (tmp_path / "t" / "sub" / "b.bin").read_bytes() == data[10:35]
    assert (tmp_path / "t" / "c.bin").read_bytes() == data[35:42]
    assert ((tmp_path / "t" / "a.bin").stat().st_mode & 0o777) == 0o644
    # A zero-length file holds no bytes of any piece, so no write creates it...
    assert not (tmp_path / "t" / "empty").exists()


def test_prepare_creates_zero_length_files_but_no_padding(tmp_path: Path) -> None:
    files = entries(("t/a", 6), ("t/deep/empty", 0), ("t/.pad/10", 10, True), ("t/b", 16))
    storage = file_storage(tmp_path, files, 16)
    storage.prepare()
    storage.close()
    # ...so prepare() does, with its folders, as other clients do.
    assert (tmp_path / "t" / "deep" / "empty").read_bytes() == b""
    assert not (tmp_path / "t" / "a").exists()
    assert not (tmp_path / "t" / ".pad").exists()


def test_files_are_sparse(tmp_path: Path) -> None:
    size = 1 << 30
    storage = file_storage(tmp_path, entries(("big", size)), 1 << 20)
    storage.write(storage.layout.num_pieces - 1, 0, b"e" * (1 << 20))
    storage.close()
    info = (tmp_path / "big").stat()
    assert info.st_size == size
    assert info.st_blocks * 512 < 8 << 20


def test_padding_files_are_never_created(tmp_path: Path) -> None:
    files = entries(("t/a", 6), ("t/.pad/10", 10, True), ("t/b", 16))
    storage = file_storage(tmp_path, files, 16)
    write_all(storage, storage.layout, b"a" * 6 + bytes(10) + b"b" * 16, block=16)
    storage.close()
    assert not (tmp_path / "t" / ".pad").exists()
    assert (tmp_path / "t" / "b").read_bytes() == b"b" * 16


def test_existing_data_is_read_back(tmp_path: Path) -> None:
    """Seeding: files already there (from another client) are served as they are."""
    (tmp_path / "t" / "sub").mkdir(parents=True)
    data = stream(42)
    (tmp_path / "t" / "a.bin").write_bytes(data[:10])
    (tmp_path / "t" / "sub" / "b.bin").write_bytes(data[10:35])
    (tmp_path / "t" / "c.bin").write_bytes(data[35:])
    storage = file_storage(tmp_path, MULTI, 16)
    assert storage.read(1, 0, 16) == data[16:32]
    storage.close()


def test_symlinked_file_pointing_outside_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "dl", tmp_path / "elsewhere"
    (root / "t").mkdir(parents=True)
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"precious!!")
    (root / "t" / "a.bin").symlink_to(victim)
    storage = file_storage(root, MULTI, 16)
    with pytest.raises(StorageError, match="outside"):
        storage.write(0, 0, b"x" * 10)
    with pytest.raises(StorageError, match="outside"):
        storage.read(0, 0, 10)
    assert victim.read_bytes() == b"precious!!"
    storage.close()


def test_symlinked_folder_pointing_outside_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "dl", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "t").symlink_to(outside, target_is_directory=True)
    storage = file_storage(root, MULTI, 16)
    with pytest.raises(StorageError, match="outside"):
        storage.write(1, 0, b"y" * 16)
    assert list(outside.iterdir()) == []
    storage.close()


def test_symlink_inside_root_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "t").symlink_to(tmp_path / "real", target_is_directory=True)
    storage = file_storage(tmp_path, MULTI, 16)
    storage.write(0, 0, b"k" * 10)
    storage.close()
    assert (tmp_path / "real" / "a.bin").read_bytes() == b"k" * 10


def test_symlinked_root_is_fine(tmp_path: Path) -> None:
    (tmp_path / "disk").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "disk", target_is_directory=True)
    storage = file_storage(tmp_path / "link", MULTI, 16)
    storage.write(0, 0, b"r" * 10)
    storage.close()
    assert (tmp_path / "disk" / "t" / "a.bin").read_bytes() == b"r" * 10


def test_os_errors_become_storage_errors_naming_file_and_cause(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(b"a file where a folder must go")
    storage = file_storage(tmp_path, MULTI, 16)
    with pytest.raises(StorageError) as caught:
        storage.write(0, 0, b"x" * 10)
    message = str(caught.value)
    assert str(tmp_path / "t" / "a.bin") in message
    assert "exists" in message.lower() or "not a directory" in message.lower()
    assert isinstance(caught.value.__cause__, OSError)
    storage.close()


def test_file_size_limit_is_a_storage_error(tmp_path: Path) -> None:
    """A full or limited disk (here RLIMIT_FSIZE, which root cannot bypass) reports cleanly.

    Runs in a subprocess: the limit and the ignored SIGXFSZ must not leak into pytest.
    """
    script = textwrap.dedent(
        """
        import resource, signal, sys
        from typing import NamedTuple
        from bt.errors import StorageError
        from bt.storage.files import FileStorage
        from bt.storage.layout import Layout

        class Entry(NamedTuple):
            path: tuple
            length: int
            offset: int
            padding: bool = False

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        files = [Entry(("big",), 1 << 20, 0)]
        storage = FileStorage(sys.argv[1], files, Layout([1 << 20], 1 << 16))
        try:
            storage.write(1, 0, [b"x" * 16384] * 4)
        except StorageError as error:
            print("StorageError:", error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.startswith("StorageError: cannot write "), result.stdout + result.stderr
    assert str(tmp_path / "big") in result.stdout
    assert "EFBIG" in result.stdout


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_open_files_are_bounded_and_released_on_close(tmp_path: Path) -> None:
    files = entries(*((f"t/f{i}", 8) for i in range(40)))
    before = open_fds()
    storage = file_storage(tmp_path, files, 8, max_open=4)
    data = stream(320)
    write_all(storage, storage.layout, data, block=8)
    assert open_fds() - before <= 4
    assert storage.read(0, 0, 8) == data[:8]  # evicted long ago: reopened
    storage.sync()  # evicted dirty files are synced too
    storage.close()
    assert open_fds() == before


def test_concurrent_threads_with_a_tiny_cache_keep_data_intact(tmp_path: Path) -> None:
    """Eviction while another thread uses a descriptor must not close it under that thread."""
    files = entries(*((f"t/f{i}", 1000) for i in range(12)))
    storage = file_storage(tmp_path, files, 300, max_open=2)
    layout = storage.layout
    data = stream(layout.total_length)
    errors: list[BaseException] = []

    def worker(first: int) -> None:
        try:
            for index in range(first, layout.num_pieces, 4):
                start = index * 300
                piece = data[start : start + layout.piece_size(index)]
                storage.write(index, 0, [piece[:100], piece[100:]])
                assert storage.read(index, 0, len(piece)) == piece
        except (AssertionError, StorageError) as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    storage.close()
    for i in range(12):
        assert (tmp_path / "t" / f"f{i}").read_bytes() == data[i * 1000 : (i + 1) * 1000]


def test_mismatched_files_and_layout_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileStorage(tmp_path, MULTI, Layout([10, 0, 25], 16))
