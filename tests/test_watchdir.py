"""The watch folder adds torrents once their files stand still, and marks what it did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from torrents import handmade_info, handmade_torrent
from twisted.internet import defer
from twisted.internet.task import Clock

from bt.errors import DuplicateTorrentError
from bt.metainfo import Metainfo
from bt.watchdir import WatchDirectory


def at_once(job: Any, *args: Any) -> defer.Deferred[Any]:
    """The blocking file work, run right here so the fake clock drives every step."""
    return defer.maybeDeferred(job, *args)


@pytest.fixture
def added() -> list[Metainfo]:
    return []


def watcher(folder: Path, added: list[Metainfo], clock: Clock) -> WatchDirectory:
    def add(metainfo: Metainfo) -> None:
        if any(m.info_hash == metainfo.info_hash for m in added):
            raise DuplicateTorrentError(metainfo.name)
        added.append(metainfo)

    watch = WatchDirectory(folder, add, interval=5, reactor=clock, run_blocking=at_once)
    watch.startService()
    return watch


def test_a_dropped_torrent_is_added_once_it_stood_still_and_marked_added(
    tmp_path: Path, added: list[Metainfo]
) -> None:
    clock = Clock()
    watch = watcher(tmp_path, added, clock)
    (tmp_path / "new.torrent").write_bytes(handmade_torrent(handmade_info()))
    clock.advance(5)  # first sight: maybe still being copied
    assert added == []
    clock.advance(5)
    assert len(added) == 1
    assert (tmp_path / "new.torrent.added").exists()
    assert not (tmp_path / "new.torrent").exists()
    watch.stopService()


def test_a_file_still_growing_is_not_read(tmp_path: Path, added: list[Metainfo]) -> None:
    clock = Clock()
    watch = watcher(tmp_path, added, clock)
    data = handmade_torrent(handmade_info())
    path = tmp_path / "slow.torrent"
    path.write_bytes(data[:10])
    clock.advance(5)
    path.write_bytes(data[:40])
    clock.advance(5)
    assert added == [] and path.exists(), "changed since the last scan: wait"
    path.write_bytes(data)
    clock.advance(5)
    clock.advance(5)
    assert len(added) == 1
    watch.stopService()


def test_a_broken_torrent_is_marked_invalid_and_a_duplicate_added(
    tmp_path: Path, added: list[Metainfo]
) -> None:
    clock = Clock()
    watch = watcher(tmp_path, added, clock)
    data = handmade_torrent(handmade_info())
    (tmp_path / "bad.torrent").write_bytes(b"not bencode")
    (tmp_path / "one.torrent").write_bytes(data)
    (tmp_path / "two.torrent").write_bytes(data)
    clock.advance(5)
    clock.advance(5)
    assert len(added) == 1
    assert (tmp_path / "bad.torrent.invalid").exists()
    assert (tmp_path / "one.torrent.added").exists() and (tmp_path / "two.torrent.added").exists()
    watch.stopService()


def test_a_torrent_the_session_refuses_is_marked_invalid_and_watching_goes_on(
    tmp_path: Path,
) -> None:
    clock = Clock()
    calls: list[str] = []

    def add(metainfo: Metainfo) -> None:
        calls.append(metainfo.name)
        if len(calls) == 1:
            raise ValueError("no room for it")

    watch = WatchDirectory(tmp_path, add, interval=5, reactor=clock, run_blocking=at_once)
    watch.startService()
    (tmp_path / "first.torrent").write_bytes(handmade_torrent(handmade_info(name="first")))
    clock.advance(5)
    clock.advance(5)
    assert (tmp_path / "first.torrent.invalid").exists()
    (tmp_path / "second.torrent").write_bytes(handmade_torrent(handmade_info(name="second")))
    clock.advance(5)
    clock.advance(5)
    assert calls == ["first", "second"] and (tmp_path / "second.torrent.added").exists()
    watch.stopService()


MAGNET_HASH = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"


def test_a_magnet_file_holding_one_link_is_added_and_a_bad_one_marked_invalid(
    tmp_path: Path, added: list[Metainfo]
) -> None:
    from bt.magnet import MagnetLink, parse_magnet

    magnets: list[MagnetLink] = []
    clock = Clock()
    watch = WatchDirectory(
        tmp_path,
        added.append,
        add_magnet=magnets.append,
        interval=5,
        reactor=clock,
        run_blocking=at_once,
    )
    watch.startService()
    uri = f"magnet:?xt=urn:btih:{MAGNET_HASH}&dn=Debian"
    (tmp_path / "debian.magnet").write_text(uri + "\n")
    (tmp_path / "broken.magnet").write_text("magnet:?xt=urn:btih:nothex\n")
    clock.advance(5)
    clock.advance(5)
    assert magnets == [parse_magnet(uri)] and added == []
    assert (tmp_path / "debian.magnet.added").exists()
    assert (tmp_path / "broken.magnet.invalid").exists()
    watch.stopService()


def test_without_a_magnet_handler_magnet_files_are_left_alone(
    tmp_path: Path, added: list[Metainfo]
) -> None:
    clock = Clock()
    watch = watcher(tmp_path, added, clock)
    (tmp_path / "debian.magnet").write_text(f"magnet:?xt=urn:btih:{MAGNET_HASH}\n")
    clock.advance(5)
    clock.advance(5)
    assert (tmp_path / "debian.magnet").exists()
    watch.stopService()
