"""The session remembers its torrents, with their settings, across restarts.

The session is not started here: with its disk threads not running, the
registry writes happen synchronously, so each step can be checked at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from torrents import handmade_info, handmade_torrent, pseudo_random_bytes
from twisted.internet.testing import MemoryReactorClock

from bt.errors import DuplicateTorrentError, UnknownTorrentError
from bt.metainfo import Metainfo, parse_metainfo, torrent_bytes
from bt.session import UNCHANGED, Session, SessionConfig
from bt.status import FilePriority
from bt.storage.delete import delete_files
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage

PIECE = 16 * 1024
DATA = pseudo_random_bytes(3 * PIECE + 10, seed=3)
FILES = [(["a", "one.bin"], PIECE), (["b.bin"], 2 * PIECE + 10)]


def album(name: str = "album") -> Metainfo:
    info = handmade_info(FILES, name=name, piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info, announce=b"http://127.0.0.1:1/announce"))


def new_session(tmp_path: Path) -> Session:
    config = SessionConfig(download_dir=tmp_path / "data", state_dir=tmp_path / "state")
    return Session(config, reactor=MemoryReactorClock())


def test_torrent_bytes_round_trip_keeps_the_info_hash_and_trackers() -> None:
    metainfo = album()
    again = parse_metainfo(torrent_bytes(metainfo))
    assert again.info_hash == metainfo.info_hash
    assert again.trackers == metainfo.trackers and again.files == metainfo.files


def test_added_torrents_and_their_settings_come_back_after_a_restart(tmp_path: Path) -> None:
    first = new_session(tmp_path)
    one, two = album("one"), album("two")
    first.add_torrent(one)
    first.add_torrent(two, paused=True, download_dir=tmp_path / "elsewhere")
    first.set_file_priorities(one.info_hash, {0: FilePriority.SKIP})
    first.set_torrent_limits(one.info_hash, upload=1000, download=UNCHANGED)
    first.pause_torrent(one.info_hash)

    second = new_session(tmp_path)
    assert second.restore() == []
    assert list(second.torrents) == [one.info_hash, two.info_hash], "oldest first"
    restored_one = second.torrents[one.info_hash]
    assert restored_one.paused
    assert restored_one.file_priorities == [FilePriority.SKIP, FilePriority.NORMAL]
    assert restored_one.upload_bucket.rate == 1000.0
    assert restored_one.download_bucket.rate is None
    restored_two = second.torrents[two.info_hash]
    assert restored_two.paused and restored_two.download_dir == str(tmp_path / "elsewhere")


def test_a_broken_entry_is_reported_and_the_others_restored(tmp_path: Path) -> None:
    first = new_session(tmp_path)
    good, bad = album("good"), album("bad")
    first.add_torrent(good)
    first.add_torrent(bad)
    (tmp_path / "state" / "torrents" / f"{bad.info_hash.hex()}.torrent").write_bytes(b"junk")
    second = new_session(tmp_path)
    problems = second.restore()
    assert len(problems) == 1 and bad.info_hash.hex() in problems[0]
    assert "not valid bencode" in problems[0]
    assert list(second.torrents) == [good.info_hash]


def test_settings_files_are_json_a_person_can_read(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    metainfo = album()
    session.add_torrent(metainfo, file_priorities=[FilePriority.HIGH, FilePriority.NORMAL])
    record = json.loads(
        (tmp_path / "state" / "torrents" / f"{metainfo.info_hash.hex()}.json").read_text()
    )
    assert record["file_priorities"] == ["high", "normal"]
    assert record["paused"] is False and record["version"] == 1


def test_duplicates_and_unknown_hashes_are_errors_that_name_the_torrent(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    metainfo = album()
    session.add_torrent(metainfo)
    with pytest.raises(DuplicateTorrentError, match="album: already added"):
        session.add_torrent(metainfo)
    with pytest.raises(UnknownTorrentError, match="ab" * 20):
        session.pause_torrent(bytes.fromhex("ab" * 20))
    with pytest.raises(ValueError, match="upload_limit: -5 is not a rate"):
        session.set_torrent_limits(metainfo.info_hash, upload=-5)


def test_zero_means_unlimited_for_global_limits(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    session.set_limits(upload=2048, download=0)
    status = session.status()
    assert (status.upload_limit, status.download_limit) == (2048.0, None)


def test_an_in_memory_torrent_is_not_remembered(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    metainfo = album()
    storage = MemoryStorage(Layout.from_files(metainfo.files, metainfo.piece_length))
    torrent = session.add_torrent(metainfo, storage=storage)
    assert torrent.storage is storage and torrent.download_dir == ""
    assert not (tmp_path / "state" / "torrents").exists()


def test_remove_forgets_the_torrent_and_can_delete_its_files(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    kept, deleted = album("kept"), album("deleted")
    for metainfo in (kept, deleted):
        session.add_torrent(metainfo)
        for entry in metainfo.files:
            path = tmp_path / "data" / Path(*entry.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        # What a skipped file's boundary pieces leave in the state folder.
        parts = tmp_path / "state" / "parts" / f"{metainfo.info_hash.hex()}.parts"
        parts.parent.mkdir(parents=True, exist_ok=True)
        parts.write_bytes(b"slots")
    (tmp_path / "data" / "deleted" / "a" / "mine.txt").write_text("the user's own file")
    session.remove_torrent(kept.info_hash)
    removing = session.remove_torrent(deleted.info_hash, delete_data=True)
    assert removing.called
    # Removed with its data: its part file goes too; without, it is data kept like the files.
    assert sorted(os.listdir(tmp_path / "state" / "parts")) == [f"{kept.info_hash.hex()}.parts"]
    assert (tmp_path / "data" / "kept" / "b.bin").exists()
    assert not (tmp_path / "data" / "deleted" / "b.bin").exists()
    assert (tmp_path / "data" / "deleted" / "a" / "mine.txt").exists(), "not ours: kept"
    assert not session.torrents
    assert os.listdir(tmp_path / "state" / "torrents") == []
    again = new_session(tmp_path)
    again.restore()
    assert not again.torrents


def test_delete_files_removes_emptied_folders_but_never_leaves_the_root(tmp_path: Path) -> None:
    metainfo = album()
    root = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "one.bin").write_bytes(b"precious")
    (root / "album").mkdir(parents=True)
    (root / "album" / "a").symlink_to(outside)  # a folder leading out of the root
    (root / "album" / "b.bin").write_bytes(b"x")
    assert delete_files(root, metainfo) == 1
    assert (outside / "one.bin").read_bytes() == b"precious"
    assert root.exists() and not (root / "album" / "b.bin").exists()


def test_a_torrent_cannot_be_added_again_until_its_removal_finished(tmp_path: Path) -> None:
    """The removal deletes the registry entry and resume state after the torrent stopped;
    a copy added meanwhile would lose them (and, with delete_data, its files)."""
    from twisted.internet import defer

    session = new_session(tmp_path)
    metainfo = album()
    torrent = session.add_torrent(metainfo)
    stopping: defer.Deferred[None] = defer.Deferred()
    leave = torrent.disownServiceParent

    def slow_stop() -> defer.Deferred[None]:
        leave()
        return stopping

    torrent.disownServiceParent = slow_stop  # type: ignore[method-assign]
    removed = session.remove_torrent(metainfo.info_hash)
    with pytest.raises(DuplicateTorrentError, match="still being removed"):
        session.add_torrent(metainfo)
    stopping.callback(None)
    assert removed.called
    session.add_torrent(metainfo)
    assert (tmp_path / "state" / "torrents" / f"{metainfo.info_hash.hex()}.json").exists()


def test_two_torrents_may_share_a_name(tmp_path: Path) -> None:
    """Names are for people; the info-hash tells torrents apart (two "ubuntu.iso")."""
    session = new_session(tmp_path)
    first = album("same")
    info = handmade_info(FILES[:1], name="same", piece_length=PIECE, data=DATA[:PIECE])
    second = parse_metainfo(handmade_torrent(info))
    session.add_torrent(first)
    session.add_torrent(second)
    assert len(session.torrents) == 2


def test_a_hybrid_is_controlled_and_removed_by_its_v2_hash_too(tmp_path: Path) -> None:
    pytest.importorskip("libtorrent")
    from torrents import libtorrent_v2_torrent, write_files

    write_files(tmp_path / "src", {"h/a.bin": 3 * PIECE + 1, "h/b.bin": 5})
    meta = parse_metainfo(libtorrent_v2_torrent(tmp_path / "src" / "h", PIECE, hybrid=True))
    assert meta.info_hash_v1 is not None and meta.info_hash_v2 is not None
    alias = meta.info_hash_v2[:20]
    first = new_session(tmp_path)
    first.add_torrent(meta)
    assert first.torrent_status(alias).info_hash == meta.info_hash.hex()
    first.set_torrent_limits(alias, upload=1000)
    first.pause_torrent(alias)
    assert first.torrents[meta.info_hash].paused
    first.remove_torrent(alias)
    assert meta.info_hash not in first.torrents and first.torrents.find(alias) is None
    second = new_session(tmp_path)
    assert second.restore() == [] and not second.torrents, "removed for good"
