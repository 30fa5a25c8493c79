"""TorrentData's timers: a save in a moment (once, and only if still dirty), the
check again after a disk error, and both cancelled when the torrent stops."""

from __future__ import annotations

from test_torrent import FakeDisk, one_file_metainfo
from twisted.internet.testing import MemoryReactorClock

from bt.storage.data import SAVE_SOON, TorrentData


def make_data(clock: MemoryReactorClock) -> TorrentData:
    metainfo = one_file_metainfo()
    return TorrentData(
        metainfo,
        FakeDisk(metainfo),  # type: ignore[arg-type]
        None,
        storage=None,
        file_priorities=None,
        recheck=False,
        clock=clock,
        has=lambda index: False,
        lose=lambda pieces: None,
        regain=lambda pieces: None,
        failed=lambda failure: None,
    )


def test_a_save_in_a_moment_runs_once_and_only_while_dirty() -> None:
    clock = MemoryReactorClock()
    data = make_data(clock)
    saves: list[float] = []
    data.dirty = True
    data.save_soon(lambda: saves.append(clock.seconds()))
    data.save_soon(lambda: saves.append(-1.0))  # one is pending already
    clock.advance(SAVE_SOON)
    assert saves == [SAVE_SOON]
    data.save_soon(lambda: saves.append(clock.seconds()))
    data.dirty = False  # saved meanwhile (a tick did it)
    clock.advance(SAVE_SOON)
    assert saves == [SAVE_SOON]


def test_a_save_is_due_when_dirty_and_the_interval_passed() -> None:
    clock = MemoryReactorClock()
    data = make_data(clock)
    assert not data.due(10.0, 5.0), "nothing changed"
    data.dirty = True
    assert not data.due(4.0, 5.0)
    assert data.due(5.0, 5.0)


def test_the_check_after_an_error_comes_once_unless_cancelled() -> None:
    clock = MemoryReactorClock()
    data = make_data(clock)
    checks: list[float] = []
    data.check_later(30.0, lambda: checks.append(clock.seconds()))
    clock.advance(30.0)
    assert checks == [30.0]
    data.check_later(30.0, lambda: checks.append(clock.seconds()))
    data.cancel_check()
    clock.advance(60.0)
    assert checks == [30.0]
    assert not clock.getDelayedCalls()


def test_stopping_cancels_both_the_save_and_the_check() -> None:
    clock = MemoryReactorClock()
    data = make_data(clock)
    data.dirty = True
    calls: list[str] = []
    data.save_soon(lambda: calls.append("save"))
    data.check_later(30.0, lambda: calls.append("check"))
    data.cancel()
    clock.advance(60.0)
    assert calls == [] and not clock.getDelayedCalls()
