"""What 10,000 mostly idle torrents in one daemon must not cost (bench/manytorrents.py)."""

from __future__ import annotations

import json
from pathlib import Path

from test_torrent import DATA, PIECE, FakeDisk, make_torrent, seeder
from torrents import handmade_info, handmade_torrent
from twisted.internet.testing import MemoryReactorClock

from bt.metainfo import Metainfo, parse_metainfo
from bt.ticker import Ticker
from bt.torrent import Torrent


def _metainfo(name: str = "idle") -> Metainfo:
    info = handmade_info([(["data.bin"], len(DATA))], name=name, piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info))


def _saves(torrent: Torrent) -> list[int]:
    """Count the torrent's resume-state writes."""
    calls: list[int] = []
    inventory = torrent.data.inventory
    save = inventory.save

    def counted(*args: object) -> object:
        calls.append(1)
        return save(*args)  # type: ignore[arg-type]

    inventory.save = counted  # type: ignore[method-assign]
    return calls


def test_a_restart_on_valid_resume_state_writes_nothing(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    metainfo = _metainfo()
    resume = tmp_path / "x.resume"
    first = make_torrent(metainfo, clock, FakeDisk(metainfo, complete=True), resume_path=resume)
    first.startService()
    for _ in range(6):  # a check's result is saved at the first ticks
        clock.advance(1)
    assert resume.exists()
    first.stopService()
    again = make_torrent(metainfo, clock, FakeDisk(metainfo, complete=True), resume_path=resume)
    saves = _saves(again)
    again.startService()
    assert again.state == "seeding"
    assert again.picker.have_count == metainfo.num_pieces
    assert not again.data.dirty, "the state just read is the state on disk"
    for _ in range(40):
        clock.advance(1)
    again.stopService()
    assert saves == [], "no write of an unchanged resume state, at start or stop"


def test_a_check_at_start_is_still_saved(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    metainfo = _metainfo()
    torrent = make_torrent(
        metainfo, clock, FakeDisk(metainfo, complete=True), resume_path=tmp_path / "x.resume"
    )
    saves = _saves(torrent)
    torrent.startService()  # no resume state: the data is hashed
    for _ in range(6):
        clock.advance(1)
    assert saves == [1]
    torrent.stopService()


def test_a_parked_callback_waits_for_its_time_or_a_wake() -> None:
    clock = MemoryReactorClock()
    ticker = Ticker(clock)
    calls: list[str] = []

    def idle() -> None:
        calls.append("idle")
        ticker.park(idle, clock.seconds() + 5)

    ticker.add(idle)
    ticker.add(lambda: calls.append("busy"))
    for _ in range(10):
        clock.advance(1)
    assert calls.count("busy") == 10
    assert calls.count("idle") == 2, "at 1 s and at 6 s"
    assert len(ticker) == 2 and idle in ticker
    ticker.wake(idle)
    clock.advance(1)
    assert calls.count("idle") == 3, "woken: at the next tick"
    ticker.park(idle, clock.seconds() + 100)
    ticker.remove(idle)
    assert idle not in ticker
    clock.advance(200)
    assert calls.count("idle") == 3, "removed while parked: never again"


def test_the_timer_stops_when_only_parked_callbacks_are_removed() -> None:
    clock = MemoryReactorClock()
    ticker = Ticker(clock)
    callback = lambda: None  # noqa: E731
    ticker.add(callback)
    ticker.park(callback, 50)
    clock.advance(1)
    assert len(clock.getDelayedCalls()) == 1, "the timer runs for a parked callback"
    ticker.remove(callback)
    assert not clock.getDelayedCalls()
    ticker.park(callback, 10)  # not registered: ignored
    assert len(ticker) == 0


def test_idle_torrents_are_parked_between_idle_ticks_and_a_peer_wakes_one() -> None:
    clock = MemoryReactorClock()
    ticker = Ticker(clock)
    torrents = []
    for number in range(20):
        metainfo = _metainfo(f"t{number}")
        torrent = make_torrent(metainfo, clock, FakeDisk(metainfo, complete=True), ticker=ticker)
        torrent.startService()
        torrents.append(torrent)
    for _ in range(6):  # the checked pieces are saved first (resume state is dirty)
        clock.advance(1)
    assert len(ticker) == 20
    assert not ticker._callbacks, "every idle seed is parked"
    busy = torrents[3]
    seeder(busy)
    assert busy._tick in ticker._callbacks, "a peer wakes its torrent"
    before = busy.download_rate._last_tick  # type: ignore[attr-defined]
    clock.advance(1)
    assert busy.download_rate._last_tick > before, "it ticks every second again"  # type: ignore[attr-defined]
    assert len(ticker._callbacks) == 1
    for torrent in torrents:
        torrent.stopService()
    assert not clock.getDelayedCalls()


def test_a_status_as_json_is_every_field_and_non_finite_floats_become_null() -> None:
    from dataclasses import asdict

    from test_cli import torrent_status

    from bt.control.replies import json_reply

    status = torrent_status("ab" * 20, "x.iso", eta=float("inf"))
    old = asdict(status)
    old["state"] = str(status.state)
    old["files"] = [{**entry, "priority": str(entry["priority"])} for entry in old["files"]]
    assert status.to_json() == old
    del old["files"]
    assert status.to_json(files=False) == old
    body = json.loads(json_reply(200, status.to_json()).body)
    assert body["eta"] is None and body["name"] == "x.iso"
