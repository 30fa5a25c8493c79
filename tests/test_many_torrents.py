"""What 10,000 mostly idle torrents in one daemon must not cost (bench/manytorrents.py)."""

from __future__ import annotations

from pathlib import Path

from test_torrent import DATA, PIECE, FakeDisk, make_torrent
from torrents import handmade_info, handmade_torrent
from twisted.internet.testing import MemoryReactorClock

from bt.metainfo import Metainfo, parse_metainfo
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
