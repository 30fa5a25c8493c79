"""The session's events: told by torrents' lifecycles and by the session, in order.

Torrents are driven as in tests/test_torrent_controls.py (a fake disk that
verifies at once, scripted peers, a fake clock); the session wiring is checked
on a real Session that is not started (as tests/test_session_magnets.py does).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_session_magnets import ALBUM, URI, fetching
from test_session_registry import album, new_session
from test_torrent import FakeDisk, make_seed, make_torrent, one_file_metainfo, seeder
from test_torrent_controls import serve_all
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, globalLogPublisher

from bt.errors import StorageError
from bt.events import Kind, Notice
from bt.magnet import parse_magnet
from bt.metainfo import Metainfo
from bt.sessionevents import IDLE_PROGRESS, PROGRESS, SessionEvents
from bt.snapshot import torrent_status
from bt.torrent import Torrent


class Host:
    """What SessionEvents reads of its session."""

    def __init__(self, clock: MemoryReactorClock) -> None:
        self.reactor = clock
        self.torrents: dict[bytes, Torrent] = {}
        self.magnets = SimpleNamespace(fetches={})

    def torrent_statuses(self) -> list[Any]:
        return [torrent_status(t, files=False) for t in self.torrents.values()]


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def metainfo() -> Metainfo:
    return one_file_metainfo()


@pytest.fixture
def host(clock: MemoryReactorClock) -> Host:
    return Host(clock)


def hosting(host: Host, events: SessionEvents, torrent: Torrent) -> Torrent:
    host.torrents[torrent.info_hash] = torrent
    events.watch(torrent)
    return torrent


def told(heard: list[Notice]) -> list[tuple[str, str | None]]:
    """Kinds and states, progress left out."""
    return [(n.kind, n.data.get("state")) for n in heard if n.kind is not Kind.PROGRESS]


def listen(events: SessionEvents) -> list[Notice]:
    heard: list[Notice] = []
    events.subscribe(heard.append)
    return heard


def test_a_download_is_told_added_checking_downloading_seeding_finished_in_order(
    host: Host, clock: MemoryReactorClock, metainfo: Metainfo
) -> None:
    events = SessionEvents(host)  # type: ignore[arg-type]
    heard = listen(events)
    torrent = hosting(host, events, make_torrent(metainfo, clock))
    torrent.startService()
    serve_all(seeder(torrent))
    assert told(heard) == [
        ("torrent-added", "stopped"),
        ("state-changed", "checking"),
        ("state-changed", "downloading"),
        ("state-changed", "seeding"),
        ("finished", "seeding"),
    ]
    ids = [n.id for n in heard]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert heard[0].data == {
        "info_hash": metainfo.info_hash.hex(),
        "name": metainfo.name,
        "state": "stopped",
        "error": None,
    }
    torrent.stopService()
    assert told(heard)[-1] == ("state-changed", "stopped")


def test_complete_data_is_told_finished_after_its_check(
    host: Host, clock: MemoryReactorClock, metainfo: Metainfo
) -> None:
    events = SessionEvents(host)  # type: ignore[arg-type]
    heard = listen(events)
    hosting(host, events, make_seed(metainfo, clock)).startService()
    assert told(heard)[1:] == [
        ("state-changed", "checking"),
        ("state-changed", "downloading"),
        ("state-changed", "seeding"),
        ("finished", "seeding"),
    ]


def test_pause_resume_and_a_disk_error_with_its_reason(
    host: Host, clock: MemoryReactorClock, metainfo: Metainfo
) -> None:
    events = SessionEvents(host)  # type: ignore[arg-type]
    disk = FakeDisk(metainfo)
    torrent = hosting(host, events, make_torrent(metainfo, clock, disk))
    torrent.startService()
    heard = listen(events)
    torrent.pause()
    torrent.resume()
    assert told(heard) == [
        ("state-changed", "paused"),
        ("state-changed", "checking"),
        ("state-changed", "downloading"),
    ]
    heard.clear()
    disk.verify_and_write = lambda index, blocks: defer.fail(StorageError("disk full"))  # type: ignore[method-assign]
    serve_all(seeder(torrent))
    [error] = [n for n in heard if n.kind is Kind.STATE_CHANGED]
    assert (error.data["state"], error.data["error"]) == ("error", "disk full")
    heard.clear()
    torrent.pause()  # paused keeps the error: told, with it
    assert [(n.data["state"], n.data["error"]) for n in heard] == [("paused", "disk full")]
    torrent.stopService()


def test_a_removed_torrent_is_told_once_and_its_stopping_is_not_news(
    host: Host, clock: MemoryReactorClock, metainfo: Metainfo
) -> None:
    events = SessionEvents(host)  # type: ignore[arg-type]
    torrent = hosting(host, events, make_torrent(metainfo, clock))
    torrent.startService()
    heard = listen(events)
    events.removing(torrent.info_hash)
    del host.torrents[torrent.info_hash]
    torrent.stopService()
    events.removing(torrent.info_hash)  # unknown by now: nothing
    assert told(heard) == [("removed", "downloading")]
    assert torrent.lifecycle.watchers == []


def test_progress_every_second_while_active_less_often_when_idle_and_only_while_heard(
    host: Host, clock: MemoryReactorClock, metainfo: Metainfo
) -> None:
    events = SessionEvents(host)  # type: ignore[arg-type]
    torrent = hosting(host, events, make_torrent(metainfo, clock))
    clock.advance(5)
    assert not clock.getDelayedCalls(), "nobody listens: no timer"
    heard = listen(events)

    def progress() -> list[Notice]:
        return [n for n in heard if n.kind is Kind.PROGRESS]

    clock.advance(PROGRESS)
    [first] = progress()  # a new listener gets one at the next second, even when idle
    assert first.data == {"torrents": [s.to_json(files=False) for s in host.torrent_statuses()]}
    clock.advance(PROGRESS)
    assert len(progress()) == 1, "stopped torrents are idle"
    clock.advance(IDLE_PROGRESS - PROGRESS)
    assert len(progress()) == 2
    torrent.startService()  # downloading: active
    heard.clear()
    for _ in range(3):
        clock.advance(PROGRESS)
    assert len(progress()) == 3
    assert progress()[-1].data["torrents"][0]["state"] == "downloading"
    events.unsubscribe(heard.append)
    assert not events._progress.running
    torrent.stopService()


def test_a_failing_listener_is_logged_and_the_torrent_goes_on(
    host: Host, clock: MemoryReactorClock, metainfo: Metainfo
) -> None:
    events = SessionEvents(host)  # type: ignore[arg-type]
    logged: list[LogEvent] = []
    globalLogPublisher.addObserver(logged.append)

    def broken(notice: Notice) -> None:
        raise RuntimeError("listener bug")

    try:
        events.subscribe(broken)
        torrent = hosting(host, events, make_torrent(metainfo, clock))
        torrent.startService()
        assert torrent.state == "downloading"
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert any("subscriber" in e.get("log_format", "") for e in logged)
    events.unsubscribe(broken)
    torrent.stopService()


def test_a_failure_in_telling_a_move_is_logged_and_the_torrent_still_moves(
    host: Host, clock: MemoryReactorClock, metainfo: Metainfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = SessionEvents(host)  # type: ignore[arg-type]
    torrent = hosting(host, events, make_torrent(metainfo, clock))

    def broken(torrent: Torrent) -> dict[str, Any]:
        raise RuntimeError("describe bug")

    monkeypatch.setattr("bt.sessionevents.describe", broken)
    logged: list[LogEvent] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        torrent.startService()
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert torrent.state == "downloading"
    assert any("telling its" in e.get("log_format", "") for e in logged)
    torrent.stopService()


# -- the session tells: added, metadata, removed -----------------------------------


def test_the_session_tells_torrents_and_magnets_added_their_metadata_and_removal(
    tmp_path: Path,
) -> None:
    session = new_session(tmp_path)
    heard = listen(session.events)
    session.add_magnet(parse_magnet(URI))
    fetching(session).on_metadata(ALBUM.raw_info, [], {})
    session.remove_torrent(ALBUM.info_hash)
    other = session.add_torrent(album("other"))
    session.add_magnet(parse_magnet(f"magnet:?xt=urn:btih:{'cd' * 20}&dn=later"))
    session.remove_torrent(bytes.fromhex("cd" * 20))
    assert [(n.kind, n.data["name"], n.data["state"]) for n in heard] == [
        ("torrent-added", "My Album", "fetching metadata"),
        ("metadata-received", "album", "stopped"),
        ("removed", "album", "stopped"),
        ("torrent-added", other.metainfo.name, "stopped"),
        ("torrent-added", "later", "fetching metadata"),
        ("removed", "later", "fetching metadata"),
    ]
    assert {n.data["info_hash"] for n in heard[:3]} == {ALBUM.info_hash.hex()}


def test_a_magnet_whose_metadata_is_unusable_is_told_removed_with_why(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    heard = listen(session.events)
    session.add_magnet(parse_magnet(URI))
    fetching(session).on_metadata(b"d4:name5:brokene", [], {})
    assert [n.kind for n in heard] == ["torrent-added", "removed"]
    assert "cannot use its metadata" in heard[-1].data["error"]
    assert session.torrent_statuses() == []


def test_ids_start_from_the_clock_so_they_increase_across_restarts(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    session.reactor.advance(1_733_241_600.5)  # type: ignore[attr-defined]
    assert SessionEvents(session).last_id == 1_733_241_600_499
