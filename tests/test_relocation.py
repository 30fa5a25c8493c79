"""Moving a torrent's data to another folder at run time (bt.relocation)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from torrents import handmade_info, handmade_torrent, pseudo_random_bytes
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock

from bt.errors import MoveError
from bt.lifecycle import Event
from bt.magnet import parse_magnet
from bt.metainfo import Metainfo, parse_metainfo
from bt.session import Session, SessionConfig
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage
from bt.torrent import Torrent

PIECE = 16 * 1024
DATA = pseudo_random_bytes(3 * PIECE + 10, seed=5)
FILES = [(["a", "one.bin"], PIECE), (["b.bin"], 2 * PIECE + 10)]


def album() -> Metainfo:
    return parse_metainfo(handmade_torrent(handmade_info(FILES, name="album", data=DATA)))


def write_album(root: Path) -> None:
    (root / "album" / "a").mkdir(parents=True)
    (root / "album" / "a" / "one.bin").write_bytes(DATA[:PIECE])
    (root / "album" / "b.bin").write_bytes(DATA[PIECE:])


def new_session(tmp_path: Path) -> Session:
    config = SessionConfig(
        download_dir=tmp_path / "old",
        state_dir=tmp_path / "state",
        listen="tcp:0:interface=127.0.0.1",
    )
    return Session(config)


def checked(torrent: Torrent) -> Deferred[None]:
    """Fires once the torrent's data check is over (its state moved on)."""
    done: Deferred[None] = Deferred()

    def watch(event: Event, before: object) -> None:
        if event is Event.CHECKED and not done.called:
            reactor.callLater(0, done.callback, None)

    torrent.lifecycle.watchers.append(watch)
    return done.addTimeout(30, reactor)


def within(waiting: Deferred[Any]) -> Deferred[Any]:
    return waiting.addTimeout(30, reactor)


def record_of(tmp_path: Path, metainfo: Metainfo) -> dict[str, object]:
    path = tmp_path / "state" / "torrents" / f"{metainfo.info_hash.hex()}.json"
    return json.loads(path.read_bytes())  # type: ignore[no-any-return]


@pytest_twisted.ensureDeferred
async def test_a_moved_complete_torrent_is_complete_in_the_new_folder_after_a_restart(
    tmp_path: Path,
) -> None:
    metainfo = album()
    write_album(tmp_path / "old")
    session = new_session(tmp_path)
    session.startService()
    try:
        torrent = session.add_torrent(metainfo)
        await within(torrent.when_finished())
        new = tmp_path / "new"
        await within(session.move_torrent(metainfo.info_hash, new))
        moved = session.get(metainfo.info_hash)
        assert moved is not torrent and moved.download_dir == str(new)
        assert (new / "album" / "b.bin").read_bytes() == DATA[PIECE:]
        assert not (tmp_path / "old" / "album").exists()
        # The resume state applies to the moved files (same size and mtime): no piece
        # is hashed again, so a byte changed behind the torrent's back goes unseen.
        path = new / "album" / "b.bin"
        stamp = path.stat()
        with open(path, "r+b") as changed:
            changed.write(b"\0")
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        await within(moved.when_finished())
        status = session.torrent_status(metainfo.info_hash)
        assert status.done == status.wanted == len(DATA)
        assert str(status.state) == "seeding"
        assert status.download_dir == str(new)
    finally:
        await session.stopService()
    assert record_of(tmp_path, metainfo)["download_dir"] == str(new)
    again = new_session(tmp_path)
    assert again.restore() == []
    assert again.get(metainfo.info_hash).download_dir == str(new)


@pytest_twisted.ensureDeferred
async def test_a_paused_torrent_stays_paused_and_keeps_its_settings(tmp_path: Path) -> None:
    metainfo = album()
    write_album(tmp_path / "old")
    session = new_session(tmp_path)
    session.startService()
    try:
        torrent = session.add_torrent(metainfo, paused=True)
        session.set_torrent_limits(metainfo.info_hash, upload=5000.0)
        await within(torrent.when_finished())
        await session.memory.flushed()
        before = record_of(tmp_path, metainfo)
        await within(session.move_torrent(metainfo.info_hash, tmp_path / "new"))
        moved = session.get(metainfo.info_hash)
        assert moved.paused
        assert moved.upload_bucket.rate == 5000.0
        await session.memory.flushed()
        after = record_of(tmp_path, metainfo)
        assert after == {**before, "download_dir": str(tmp_path / "new")}
    finally:
        await session.stopService()


@pytest_twisted.ensureDeferred
async def test_without_moving_the_torrent_checks_what_the_new_folder_holds(
    tmp_path: Path,
) -> None:
    metainfo = album()
    write_album(tmp_path / "old")
    write_album(tmp_path / "copy")
    (tmp_path / "copy" / "album" / "b.bin").write_bytes(DATA[PIECE:-10])  # one piece short
    session = new_session(tmp_path)
    session.startService()
    try:
        torrent = session.add_torrent(metainfo)
        await within(torrent.when_finished())
        await within(session.move_torrent(metainfo.info_hash, tmp_path / "copy", move=False))
        assert (tmp_path / "old" / "album" / "b.bin").exists()  # left alone
        await checked(session.get(metainfo.info_hash))
        status = session.torrent_status(metainfo.info_hash)
        assert status.download_dir == str(tmp_path / "copy")
        assert status.pieces_have == 3 and str(status.state) == "downloading"  # the last short
    finally:
        await session.stopService()


@pytest_twisted.ensureDeferred
async def test_a_refused_move_leaves_the_torrent_running_where_it_was(tmp_path: Path) -> None:
    metainfo = album()
    write_album(tmp_path / "old")
    (tmp_path / "new" / "album").mkdir(parents=True)
    (tmp_path / "new" / "album" / "b.bin").write_bytes(b"someone else's")
    session = new_session(tmp_path)
    session.startService()
    try:
        torrent = session.add_torrent(metainfo)
        await within(torrent.when_finished())
        with pytest.raises(MoveError, match=r"b\.bin exists with other content"):
            await within(session.move_torrent(metainfo.info_hash, tmp_path / "new"))
        again = session.get(metainfo.info_hash)
        await within(again.when_finished())
        assert again.download_dir == str(tmp_path / "old")
        assert str(again.state) == "seeding"
        assert (tmp_path / "new" / "album" / "b.bin").read_bytes() == b"someone else's"
        await session.memory.flushed()
        assert record_of(tmp_path, metainfo)["download_dir"] == str(tmp_path / "old")
        with pytest.raises(MoveError, match="absolute"):
            session.move_torrent(metainfo.info_hash, Path("relative"))
    finally:
        await session.stopService()


def test_a_magnet_fetching_its_metadata_only_changes_where_its_files_will_go(
    tmp_path: Path,
) -> None:
    """Not started: the registry writes happen at once (no disk threads running)."""
    session = Session(
        SessionConfig(download_dir=tmp_path / "old", state_dir=tmp_path / "state"),
        reactor=MemoryReactorClock(),
    )
    magnet = parse_magnet(f"magnet:?xt=urn:btih:{'ab' * 20}&dn=later")
    session.add_magnet(magnet, paused=True)
    path = tmp_path / "state" / "torrents" / f"{'ab' * 20}.json"
    before = json.loads(path.read_bytes())
    moved = session.move_torrent(magnet.key, tmp_path / "new")
    assert moved.called
    assert session.torrent_status(magnet.key).download_dir == str(tmp_path / "new")
    assert json.loads(path.read_bytes()) == {**before, "download_dir": str(tmp_path / "new")}


def test_a_torrent_in_its_own_storage_cannot_move(tmp_path: Path) -> None:
    metainfo = album()
    session = Session(
        SessionConfig(download_dir=tmp_path / "old", state_dir=tmp_path / "state"),
        reactor=MemoryReactorClock(),
    )
    layout = Layout.from_files(metainfo.files, metainfo.piece_length)
    session.add_torrent(metainfo, storage=MemoryStorage(layout))
    with pytest.raises(MoveError, match="not in files"):
        session.move_torrent(metainfo.info_hash, tmp_path / "new")
