"""One timer drives every torrent; an idle torrent's tick costs almost nothing."""

from __future__ import annotations

from test_torrent import DATA, PIECE, FakeDisk, make_torrent, seeder
from torrents import handmade_info, handmade_torrent
from twisted.internet.testing import MemoryReactorClock

from bt.metainfo import parse_metainfo
from bt.ticker import IDLE_SEED_TICK_INTERVAL, Ticker


def test_callbacks_run_once_per_interval_and_the_timer_stops_when_empty() -> None:
    clock = MemoryReactorClock()
    ticker = Ticker(clock)
    calls: list[str] = []
    first, second = (lambda: calls.append("a")), (lambda: calls.append("b"))
    ticker.add(first)
    ticker.add(second)
    clock.advance(1)
    assert calls == ["a", "b"]
    ticker.remove(first)
    clock.advance(1)
    assert calls == ["a", "b", "b"]
    ticker.remove(second)
    assert not clock.getDelayedCalls()


def test_a_failing_callback_is_logged_and_does_not_stop_the_others() -> None:
    clock = MemoryReactorClock()
    ticker = Ticker(clock)
    calls: list[int] = []

    def broken() -> None:
        raise ZeroDivisionError("a bug in one torrent")

    ticker.add(broken)
    ticker.add(lambda: calls.append(1))
    clock.advance(1)
    clock.advance(1)
    assert calls == [1, 1]
    ticker.remove(broken)


def test_many_torrents_share_one_timer_and_idle_ones_tick_every_few_seconds() -> None:
    clock = MemoryReactorClock()
    ticker = Ticker(clock)
    torrents = []
    for number in range(50):
        info = handmade_info(
            [(["data.bin"], len(DATA))], name=f"t{number}", piece_length=PIECE, data=DATA
        )
        metainfo = parse_metainfo(handmade_torrent(info))
        torrent = make_torrent(metainfo, clock, FakeDisk(metainfo, complete=True), ticker=ticker)
        torrent.startService()
        torrents.append(torrent)
    assert len(ticker) == 50
    assert len(clock.getDelayedCalls()) == 1, "one timer, not one per torrent"
    idle = torrents[0]
    for _ in range(6):  # the checked pieces are saved first (resume state is dirty)
        clock.advance(1)
    before = idle.download_rate._last_tick  # type: ignore[attr-defined]
    clock.advance(1)
    clock.advance(1)
    assert idle.download_rate._last_tick == before, "an idle torrent skips its rate ticks"  # type: ignore[attr-defined]
    clock.advance(IDLE_SEED_TICK_INTERVAL)
    assert idle.download_rate._last_tick > before  # type: ignore[attr-defined]
    busy = torrents[1]
    seeder(busy)  # a peer makes the torrent tick every second again
    for torrent in torrents:
        torrent.stopService()
    assert not clock.getDelayedCalls()
