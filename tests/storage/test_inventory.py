"""Start-up inventory: trusted resume state skips hashing; anything stale or odd is checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest_twisted
from torrents import handmade_info, handmade_torrent, pseudo_random_bytes

from bt.metainfo import Metainfo, parse_metainfo
from bt.storage.disk import DiskQueue
from bt.storage.inventory import PieceInventory
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage
from bt.storage.verifier import V1Verifier

PIECE = 16 * 1024
DATA = pseudo_random_bytes(4 * PIECE, seed=5)


def setup(tmp_path: Path) -> tuple[Metainfo, MemoryStorage, DiskQueue, PieceInventory]:
    from twisted.internet import reactor

    info = handmade_info([(["f"], len(DATA))], piece_length=PIECE, data=DATA)
    meta = parse_metainfo(handmade_torrent(info))
    layout = Layout.from_files(meta.files, meta.piece_length)
    storage = MemoryStorage(layout)
    disk = DiskQueue(storage, V1Verifier(meta.piece_hashes), meta.piece_size, reactor=reactor)
    inventory = PieceInventory(disk, meta, layout, tmp_path / "x.resume")
    disk.start()
    return meta, storage, disk, inventory


def write(storage: MemoryStorage, index: int) -> None:
    storage.write(index, 0, DATA[index * PIECE : (index + 1) * PIECE])


@pytest_twisted.ensureDeferred
async def test_saved_state_is_used_while_files_are_unchanged(tmp_path: Path) -> None:
    meta, storage, disk, inventory = setup(tmp_path)
    try:
        for index in (0, 2):
            write(storage, index)
        checked = await inventory.load()  # no state yet: the data is hashed
        assert checked.pieces == [0, 2]
        have = parse_have(meta, checked.pieces)
        await inventory.save(have, lambda: (11, 22))
        resumed = await inventory.load()
        assert (resumed.pieces, resumed.uploaded, resumed.downloaded) == ([0, 2], 11, 22)

        write(storage, 1)  # the file changed since the save: its pieces are hashed again
        rechecked = await inventory.load()
        # The transfer counters are statistics, not data: a file's check keeps them.
        assert (rechecked.pieces, rechecked.uploaded) == ([0, 1, 2], 11)
    finally:
        await disk.stop()


@pytest_twisted.ensureDeferred
async def test_corrupt_state_means_a_check_not_a_crash(tmp_path: Path) -> None:
    _meta, storage, disk, inventory = setup(tmp_path)
    try:
        write(storage, 3)
        (tmp_path / "x.resume").write_bytes(b"not bencode")
        assert (await inventory.load()).pieces == [3]
        inventory.force_recheck = True
        assert (await inventory.load()).pieces == [3]
    finally:
        await disk.stop()


def parse_have(meta: Metainfo, pieces: list[int]):
    from bt.bitfield import Bitfield

    have = Bitfield(meta.num_pieces)
    for index in pieces:
        assert (
            hashlib.sha1(DATA[index * PIECE : (index + 1) * PIECE]).digest()
            == (meta.piece_hashes[index])
        )
        have.add(index)
    return have


@pytest_twisted.ensureDeferred
async def test_unreadable_state_means_a_check(tmp_path: Path) -> None:
    _meta, storage, disk, inventory = setup(tmp_path)
    try:
        write(storage, 1)
        (tmp_path / "x.resume").mkdir()  # a folder where the file should be: reading fails
        assert (await inventory.load()).pieces == [1]
    finally:
        await disk.stop()
