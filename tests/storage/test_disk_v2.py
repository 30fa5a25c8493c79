"""v2 and hybrid torrents through the real disk queue and files: verify, write, recheck, resume.

The torrents are libtorrent's (the reference); the data goes through FileStorage
into a temporary folder, so padding never reaching the disk and empty files
being created are checked on real files.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from torrents import handmade_info, handmade_torrent, libtorrent_v2_torrent, pseudo_random_bytes

from bt import bencode
from bt.bitfield import Bitfield
from bt.errors import PieceHashError
from bt.metainfo import Metainfo, parse_metainfo
from bt.storage.disk import DiskQueue
from bt.storage.files import FileStorage
from bt.storage.inventory import PieceInventory
from bt.storage.layout import Layout
from bt.storage.resume import ResumeState, resume_key
from bt.storage.verifier import V1Verifier, piece_verifier

pytestmark = [
    pytest.mark.usefixtures("failures"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
lt = pytest.importorskip("libtorrent")

LEAF = 16384
PIECE = 4 * LEAF
#: Small, leaf-sized, piece-sized and empty files, in the tree's (sorted) order.
FILES = {
    "a/empty": 0,
    "a/one": 1,
    "b/under_a_leaf": LEAF - 1,
    "b/zz_empty": 0,
    "c/a_piece": PIECE,
    "c/pieces": 3 * PIECE + 5,
    "d": 2 * PIECE,
}


@dataclass
class Case:
    meta: Metainfo
    source: Path  # the complete data, as libtorrent hashed it
    target: Path  # where the queue writes
    storage: FileStorage
    disk: DiskQueue

    @property
    def layout(self) -> Layout:
        return self.storage.layout

    def stream(self) -> bytes:
        """The torrent's byte stream, padding as zeros."""
        out = bytearray()
        for entry in self.meta.files:
            if entry.padding:
                out += bytes(entry.length)
            else:
                out += self.source.parent.joinpath(*entry.path).read_bytes()
        return bytes(out)

    def blocks(self, index: int) -> list[bytes]:
        piece = self.stream()[index * self.meta.piece_length :][: self.meta.piece_size(index)]
        return [piece[i : i + LEAF] for i in range(0, len(piece), LEAF)]

    def real_files(self) -> list[tuple[str, ...]]:
        return [e.path for e in self.meta.files if not e.padding]


def write_content(root: Path, files: dict[str, int]) -> None:
    for number, (relative, size) in enumerate(sorted(files.items())):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pseudo_random_bytes(size, number + 3))


@pytest_twisted.async_yield_fixture(params=["v2", "hybrid", "v2-single", "hybrid-single"])
async def case(request: Any, tmp_path: Path) -> AsyncIterator[Case]:
    from twisted.internet import reactor

    kind = request.param
    source = tmp_path / "src" / "t"
    if kind.endswith("single"):
        source.parent.mkdir()
        source.write_bytes(pseudo_random_bytes(2 * PIECE + 4464, seed=9))
    else:
        write_content(source, FILES)
    meta = parse_metainfo(libtorrent_v2_torrent(source, PIECE, hybrid=kind.startswith("hybrid")))
    assert meta.format == kind.split("-")[0]
    target = tmp_path / "dl"
    layout = Layout.from_files(meta.files, meta.piece_length)
    storage = FileStorage(target, meta.files, layout)
    disk = DiskQueue.for_metainfo(storage, meta, reactor=reactor)
    disk.start()
    yield Case(meta, source, target, storage, disk)
    await disk.stop()
    storage.close()


async def download(case: Case) -> None:
    await case.disk.prepare()
    for index in range(case.meta.num_pieces):
        await case.disk.verify_and_write(index, case.blocks(index))
    await case.disk.sync()


@pytest_twisted.ensureDeferred
async def test_every_piece_verifies_and_the_files_are_byte_identical(case: Case) -> None:
    await download(case)
    for path in case.real_files():
        written = case.target.joinpath(*path)
        assert written.read_bytes() == case.source.parent.joinpath(*path).read_bytes(), path
    on_disk = {p.relative_to(case.target).parts for p in case.target.rglob("*") if p.is_file()}
    assert on_disk == set(case.real_files()), "padding never reaches the disk; empty files do"
    for index in range(case.meta.num_pieces):
        assert await case.disk.hash_piece(index) is True


@pytest_twisted.ensureDeferred
async def test_a_bad_block_fails_its_piece_naming_its_leaf_and_writes_nothing(
    case: Case,
) -> None:
    index = case.meta.num_pieces - 1
    blocks = case.blocks(index)
    good = list(blocks)
    blocks[0] = bytes([blocks[0][0] ^ 1]) + blocks[0][1:]
    with pytest.raises(PieceHashError) as caught:
        await case.disk.verify_and_write(index, blocks)
    leaves = caught.value.leaf_hashes
    assert leaves is not None and len(leaves) == len(blocks)
    with pytest.raises(PieceHashError) as right:
        await case.disk.verify_and_write(index, [bytes(len(b)) for b in good])
    assert right.value.leaf_hashes is not None
    assert not case.target.exists() or not any(p.is_file() for p in case.target.rglob("*"))
    await case.disk.verify_and_write(index, good)


@pytest_twisted.ensureDeferred
async def test_recheck_finds_the_good_pieces_of_existing_data(case: Case) -> None:
    shutil.copytree(case.source.parent, case.target)
    inventory = PieceInventory(case.disk, case.meta, case.layout, None)
    found = await inventory.check("test")
    assert found.pieces == list(range(case.meta.num_pieces))
    # One flipped byte costs its piece; a shortened file costs the pieces it misses.
    biggest = max(case.real_files(), key=lambda p: case.target.joinpath(*p).stat().st_size)
    path = case.target.joinpath(*biggest)
    data = bytearray(path.read_bytes())
    data[LEAF + 1] ^= 1
    path.write_bytes(bytes(data[: len(data) - 1]))
    entry = next(e for e in case.meta.files if e.path == biggest)
    first = entry.offset // PIECE
    broken = {first + 0, (entry.offset + entry.length - 1) // PIECE}
    found = await inventory.check("test")
    assert found.pieces == [i for i in range(case.meta.num_pieces) if i not in broken]


@pytest_twisted.ensureDeferred
async def test_resume_state_is_keyed_by_the_v2_info_hash(case: Case, tmp_path: Path) -> None:
    meta = case.meta
    assert meta.info_hash_v2 is not None and resume_key(meta) == meta.info_hash_v2
    await download(case)
    resume = tmp_path / "state.resume"
    inventory = PieceInventory(case.disk, meta, case.layout, resume)
    have = Bitfield.full(meta.num_pieces)
    await inventory.save(have, lambda: (5, 7))
    saved = bencode.decode(resume.read_bytes())
    assert saved[b"info-hash"] == meta.info_hash_v2
    resumed = await inventory.load()
    assert (resumed.pieces, resumed.uploaded, resumed.downloaded) == (list(have), 5, 7)
    # State saved under the 20-byte identity (the v1 hash, or the truncated v2 one) is
    # another key: not trusted, the data is checked instead (and found whole).
    stamps = await case.disk.file_stamps()
    resume.write_bytes(ResumeState(meta.info_hash, have, stamps, 5, 7).encode())
    checked = await inventory.load()
    assert checked.pieces == list(have) and checked.uploaded == 0


def test_v1_torrents_keep_sha1_and_their_resume_key() -> None:
    data = pseudo_random_bytes(3 * PIECE, seed=4)
    meta = parse_metainfo(
        handmade_torrent(handmade_info([(["f"], len(data))], piece_length=PIECE, data=data))
    )
    assert isinstance(piece_verifier(meta), V1Verifier)
    assert resume_key(meta) == meta.info_hash and len(meta.info_hash) == 20


@pytest.mark.parametrize("hybrid", [False, True])
def test_the_session_gives_a_v2_torrent_its_verifier_and_resume_file(
    tmp_path: Path, hybrid: bool
) -> None:
    from twisted.internet.testing import MemoryReactorClock

    from bt.session import Session, SessionConfig
    from bt.storage.verifier import HybridVerifier, V2Verifier

    write_content(tmp_path / "src" / "t", FILES)
    meta = parse_metainfo(libtorrent_v2_torrent(tmp_path / "src" / "t", PIECE, hybrid=hybrid))
    config = SessionConfig(download_dir=tmp_path / "data", state_dir=tmp_path / "state")
    session = Session(config, reactor=MemoryReactorClock())
    torrent = session.add_torrent(meta)
    assert isinstance(torrent.disk.verifier, HybridVerifier if hybrid else V2Verifier)  # type: ignore[attr-defined]
    assert meta.info_hash_v2 is not None
    path = tmp_path / "state" / "resume" / f"{meta.info_hash_v2.hex()}.resume"
    assert torrent.inventory.resume_path == path
