"""Skipped files are never created: the part file keeps the bytes of pieces shared with them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from test_files import Entry, entries, stream
from torrents import handmade_info, handmade_torrent

from bt.metainfo import parse_metainfo
from bt.storage.delete import delete_files
from bt.storage.disk import DiskQueue
from bt.storage.files import FileStorage
from bt.storage.inventory import PieceInventory
from bt.storage.layout import Layout
from bt.storage.partfile import PartFile, PartIndex, decode_index, encode_index, index_region
from bt.storage.verifier import V1Verifier

PIECE = 16
#: a.bin ends inside piece 1, skip.bin spans pieces 1..4, c.bin starts inside piece 4.
FILES = entries(("t/a.bin", 30), ("t/skip.bin", 40), ("t/c.bin", 30))
DATA = stream(100)
SKIPPED = 1
#: The pieces holding bytes of a wanted file; 1 and 4 straddle into skip.bin.
WANTED = [0, 1, 4, 5, 6]
STRADDLING = [1, 4]


class Disk:
    """A torrent's storage over ``root``, its part file in ``state``, as the session builds it."""

    def __init__(self, tmp_path: Path, files: list[Entry] = FILES) -> None:
        self.root = tmp_path / "dl"
        self.parts_path = tmp_path / "state" / "parts" / "x.parts"
        self.files = files
        self.layout = Layout.from_files(files, PIECE)

    def open(self, skipped: set[int] | frozenset[int] = frozenset({SKIPPED})) -> FileStorage:
        parts = PartFile(self.parts_path, self.layout.num_pieces, PIECE, len(self.files))
        storage = FileStorage(self.root, self.files, self.layout, parts=parts)
        storage.set_skipped(skipped)
        storage.prepare()
        return storage

    def path(self, file_index: int) -> Path:
        return self.root.joinpath(*self.files[file_index].path)


def piece(index: int, data: bytes = DATA) -> bytes:
    return data[index * PIECE : (index + 1) * PIECE]


def write_wanted(storage: FileStorage, pieces: list[int] = WANTED) -> None:
    for index in pieces:
        storage.write(index, 0, [piece(index)[:5], piece(index)[5:]])  # blocks, as the queue does


def fill(disk: Disk) -> None:
    """A first run: every wanted piece written and synced, then stopped."""
    storage = disk.open()
    write_wanted(storage)
    storage.sync()
    storage.close()


# -- the format -------------------------------------------------------------


@given(
    st.dictionaries(st.integers(0, 99), st.integers(0, 99), max_size=20).filter(
        lambda slots: len(set(slots.values())) == len(slots)
    ),
    st.frozensets(st.integers(0, 12)),
    st.integers(0, 2**64 - 1),
)
def test_index_copies_round_trip(slots: dict[int, int], parted: frozenset[int], gen: int) -> None:
    data = encode_index(PartIndex(slots, parted), gen, 100, PIECE, 13)
    assert len(data) <= index_region(100, 13)
    assert decode_index(data, 100, PIECE, 13) == (gen, PartIndex(slots, parted))


def test_torn_or_foreign_index_copies_are_refused() -> None:
    data = encode_index(PartIndex({3: 0, 7: 1}, frozenset({2})), 5, 10, PIECE, 4)
    assert decode_index(data, 10, PIECE, 4) is not None
    for position in range(len(data)):  # any torn or flipped byte is caught by the CRC
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        assert decode_index(bytes(damaged), 10, PIECE, 4) is None
    assert decode_index(data[:-1], 10, PIECE, 4) is None
    assert decode_index(data, 11, PIECE, 4) is None  # another torrent's geometry
    assert decode_index(bytes(4096), 10, PIECE, 4) is None  # a hole


# -- skipped files ---------------------------------------------------------


def test_skipped_file_is_never_created_and_straddling_pieces_read_back(tmp_path: Path) -> None:
    disk = Disk(tmp_path)
    storage = disk.open()
    write_wanted(storage)
    storage.sync()
    assert not disk.path(SKIPPED).exists()
    for index in WANTED:  # seeding and hash checks read skip.bin's part from the part file
        assert storage.read(index, 0, len(piece(index))) == piece(index)
        read = storage.read(index, 0, len(piece(index)))
        assert hashlib.sha1(read).digest() == hashlib.sha1(piece(index)).digest()
    assert storage.read(1, 10, 6) == piece(1)[10:]  # a block inside the skipped part
    assert storage.read(2, 0, PIECE) == b""  # never downloaded: missing, not invented
    assert disk.path(0).read_bytes() == DATA[:30] and disk.path(2).read_bytes() == DATA[70:]
    assert storage.parted_pieces() == STRADDLING
    assert storage.existing_lengths() == [30, 0, 30]
    storage.close()


def test_a_run_of_pieces_touching_a_skipped_file_goes_piece_by_piece(tmp_path: Path) -> None:
    """``write_pieces`` over parted pieces keeps their slots, as ``write`` does."""
    disk = Disk(tmp_path)
    storage = disk.open()
    storage.write_pieces(0, [piece(i) for i in range(7)])  # all of 0..6
    assert storage.parted_pieces() == [1, 2, 3, 4]  # skip.bin's own pieces too
    assert not disk.path(SKIPPED).exists()
    for index in range(7):
        assert storage.read(index, 0, len(piece(index))) == piece(index)
    assert disk.path(0).read_bytes() == DATA[:30] and disk.path(2).read_bytes() == DATA[70:]
    storage.close()


def test_wanting_a_skipped_file_moves_its_bytes_into_place(tmp_path: Path) -> None:
    disk = Disk(tmp_path)
    storage = disk.open()
    write_wanted(storage)
    storage.set_skipped(set())  # skip -> normal
    moved = disk.path(SKIPPED).read_bytes()
    assert moved[:2] == DATA[30:32] and moved[34:] == DATA[64:70]  # pieces 1 and 4's bytes
    assert moved[2:34] == bytes(32)  # pieces 2, 3: a hole, still to download
    for index in WANTED:
        assert storage.read(index, 0, len(piece(index))) == piece(index)  # still valid
    assert storage.parted_pieces() == [] and not disk.parts_path.exists()  # slots freed
    write_wanted(storage, [2, 3])
    assert disk.path(SKIPPED).read_bytes() == DATA[30:70]
    storage.close()


def test_slot_is_kept_while_another_skipped_file_needs_the_piece(tmp_path: Path) -> None:
    files = entries(("t/a", 10), ("t/b", 4), ("t/c", 4), ("t/d", 14))  # c straddles 0 and 1
    disk = Disk(tmp_path, files)
    storage = disk.open({1, 2})
    data = stream(32)
    storage.write(0, 0, piece(0, data))
    storage.write(1, 0, piece(1, data))
    storage.set_skipped({2})  # b wanted: moved out; c still needs slot 0
    assert disk.path(1).read_bytes() == data[10:14] and not disk.path(2).exists()
    assert storage.parted_pieces() == [0, 1] and storage.read(0, 0, PIECE) == piece(0, data)
    storage.set_skipped(set())
    assert disk.path(2).read_bytes() == data[14:18] and not disk.parts_path.exists()
    storage.close()


def test_restart_keeps_straddling_pieces_valid(tmp_path: Path) -> None:
    disk = Disk(tmp_path)
    fill(disk)
    again = disk.open()
    assert again.parted_pieces() == STRADDLING
    for index in STRADDLING:
        assert again.read(index, 0, PIECE) == piece(index)
    again.close()


def test_a_crash_before_sync_loses_only_pieces_no_resume_state_claims(tmp_path: Path) -> None:
    """The index is written by sync (before resume state is saved), after the slots' data."""
    disk = Disk(tmp_path)
    storage = disk.open()
    write_wanted(storage, [1])
    storage.sync()
    write_wanted(storage, [4])  # written, not synced: no resume state can claim it yet
    crashed = disk.open()  # what a restart finds (the first storage never flushed again)
    assert crashed.parted_pieces() == [1]
    assert crashed.read(1, 0, PIECE) == piece(1) and crashed.read(4, 0, PIECE) == b""
    storage.close()
    crashed.close()


def test_a_torn_index_write_falls_back_to_the_previous_copy(tmp_path: Path) -> None:
    disk = Disk(tmp_path)
    storage = disk.open()
    write_wanted(storage, [1])
    storage.sync()  # generation 1, in copy 1
    write_wanted(storage, [4])
    storage.sync()  # generation 2, in copy 0
    storage.close()
    with open(disk.parts_path, "r+b") as handle:  # the crash tore the newest copy
        handle.seek(20)
        handle.write(b"\xff\xff")
    again = disk.open()
    assert again.parted_pieces() == [1] and again.read(1, 0, PIECE) == piece(1)
    again.close()


def test_a_freed_slot_is_reused_only_after_an_index_without_it_is_durable(
    tmp_path: Path,
) -> None:
    parts = PartFile(tmp_path / "p.parts", 8, PIECE, 2)
    parts.write(0, 0, [memoryview(b"A" * PIECE)])
    parts.flush()
    parts.release([0])
    parts.write(1, 0, [memoryview(b"B" * PIECE)])  # must not land in piece 0's old slot
    crashed = PartFile(tmp_path / "p.parts", 8, PIECE, 2)  # the durable index still has 0
    assert crashed.pieces() == [0] and crashed.read(0, 0, PIECE) == b"A" * PIECE
    parts.flush()
    parts.write(2, 0, [memoryview(b"C" * PIECE)])  # now slot 0 is free again
    parts.flush()
    again = PartFile(tmp_path / "p.parts", 8, PIECE, 2)
    assert again.pieces() == [1, 2]
    assert again.read(1, 0, PIECE) == b"B" * PIECE and again.read(2, 0, PIECE) == b"C" * PIECE
    assert os.path.getsize(tmp_path / "p.parts") == 2 * index_region(8, 2) + 2 * PIECE
    for opened in (parts, crashed, again):
        opened.close()


def test_a_move_cut_by_a_crash_is_completed_at_the_next_start(tmp_path: Path) -> None:
    """The user wanted skip.bin again, and bt stopped before the bytes were moved."""
    disk = Disk(tmp_path)
    fill(disk)
    restarted = disk.open(set())  # the saved priorities say normal now
    assert disk.path(SKIPPED).read_bytes()[:2] == DATA[30:32]
    assert restarted.read(4, 0, PIECE) == piece(4) and not disk.parts_path.exists()
    restarted.close()


def test_a_skipped_file_that_exists_keeps_its_own_bytes(tmp_path: Path) -> None:
    """As libtorrent does: only files that do not exist yet are kept in the part file."""
    disk = Disk(tmp_path)
    storage = disk.open(set())
    write_wanted(storage, [1, 2])
    storage.set_skipped({SKIPPED})
    write_wanted(storage, [4])
    assert disk.path(SKIPPED).read_bytes()[-6:] == DATA[64:70]
    assert storage.parted_pieces() == [] and not disk.parts_path.exists()
    assert storage.read(2, 0, PIECE) == piece(2)
    storage.close()


def test_zero_length_skipped_file_is_created_only_when_wanted(tmp_path: Path) -> None:
    disk = Disk(tmp_path, entries(("t/a", 20), ("t/empty", 0)))
    storage = disk.open({1})
    assert not disk.path(1).exists()
    storage.set_skipped(set())
    assert disk.path(1).exists()
    storage.close()


def test_without_a_part_file_skipped_files_are_written_as_before(tmp_path: Path) -> None:
    layout = Layout.from_files(FILES, PIECE)
    storage = FileStorage(tmp_path, FILES, layout)
    storage.set_skipped({SKIPPED})
    write_wanted(storage)
    assert (tmp_path / "t" / "skip.bin").exists() and storage.parted_pieces() == []
    storage.close()


def test_deleting_with_data_removes_the_part_file(tmp_path: Path) -> None:
    disk = Disk(tmp_path)
    fill(disk)
    info = handmade_info([(["a.bin"], 30), (["skip.bin"], 40), (["c.bin"], 30)], piece_length=16)
    assert delete_files(disk.root, parse_metainfo(handmade_torrent(info)), disk.parts_path) == 2
    assert not disk.parts_path.exists() and not disk.root.joinpath("t").exists()


# -- a check finds the pieces the part file holds ------------------------------


@pytest_twisted.ensureDeferred
async def test_a_recheck_counts_pieces_whose_bytes_are_in_the_part_file(tmp_path: Path) -> None:
    from twisted.internet import reactor

    info = handmade_info(
        [(["a.bin"], 30), (["skip.bin"], 40), (["c.bin"], 30)], piece_length=PIECE, data=DATA
    )
    meta = parse_metainfo(handmade_torrent(info))
    disk = Disk(tmp_path, list(meta.files))  # type: ignore[arg-type]
    fill(disk)
    storage = disk.open()
    queue = DiskQueue(storage, V1Verifier(meta.piece_hashes), meta.piece_size, reactor=reactor)
    queue.start()
    try:
        found = await PieceInventory(queue, meta, disk.layout, None).check("test")
        assert found.pieces == WANTED
    finally:
        await queue.stop()
        storage.close()


@pytest.mark.parametrize("skipped", [frozenset(), frozenset({SKIPPED})])
def test_concurrent_writes_and_rerouting_keep_every_piece_readable(
    tmp_path: Path, skipped: frozenset[int]
) -> None:
    """Priority changes run in a disk thread while others write: no piece falls between."""
    import threading

    disk = Disk(tmp_path)
    storage = disk.open(skipped)
    errors: list[BaseException] = []

    def flip() -> None:
        try:
            for turn in range(50):
                storage.set_skipped(set() if turn % 2 else {SKIPPED})
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    thread = threading.Thread(target=flip)
    thread.start()
    for _ in range(20):
        write_wanted(storage)
    thread.join()
    assert errors == []
    for index in WANTED:
        assert storage.read(index, 0, len(piece(index))) == piece(index)
    storage.close()


@pytest_twisted.ensureDeferred
async def test_a_changed_neighbour_keeps_the_pieces_the_part_file_holds(tmp_path: Path) -> None:
    """Resume state, then c.bin touched: its pieces are hashed again, part-file ones included."""
    from twisted.internet import reactor

    from bt.bitfield import Bitfield

    info = handmade_info(
        [(["a.bin"], 30), (["skip.bin"], 40), (["c.bin"], 30)], piece_length=PIECE, data=DATA
    )
    meta = parse_metainfo(handmade_torrent(info))
    disk = Disk(tmp_path, list(meta.files))  # type: ignore[arg-type]
    fill(disk)
    resume = tmp_path / "state" / "x.resume"
    have = Bitfield(meta.num_pieces)
    for index in WANTED:
        have.add(index)
    storage = disk.open()
    queue = DiskQueue(storage, V1Verifier(meta.piece_hashes), meta.piece_size, reactor=reactor)
    queue.start()
    try:
        await PieceInventory(queue, meta, disk.layout, resume).save(have, lambda: (0, 0))
        later = disk.path(2).stat().st_mtime + 10
        os.utime(disk.path(2), (later, later))  # c.bin "changed"; piece 4 straddles skip.bin
        found = await PieceInventory(queue, meta, disk.layout, resume).load()
        assert found.pieces == WANTED
    finally:
        await queue.stop()
        storage.close()
