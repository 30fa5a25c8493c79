"""--exit-when-done: when every torrent is done the daemon stops, with the right exit status.

Fake torrents (only what the watcher reads) and a MemoryReactorClock: the
tests move torrents through their states and watch when the reactor is stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs

from bt.exitwhendone import ExitWhenDone, Verdict, verdict


@dataclass
class Goals:
    seed_ratio: float | None = None
    seed_time: float | None = None


@dataclass
class FakeTorrent:
    title: str
    state: str = "checking"
    error: str | None = None
    is_finished: bool = False
    config: Goals = field(default_factory=Goals)


@dataclass
class Harness:
    torrents: dict[bytes, FakeTorrent]
    reactor: MemoryReactorClock
    statuses: list[int]
    watcher: ExitWhenDone

    def add(self, torrent: FakeTorrent) -> FakeTorrent:
        self.torrents[torrent.title.encode()] = torrent
        return torrent

    def after(self, seconds: float = 1.0) -> None:
        self.reactor.advance(seconds)

    @property
    def stopped(self) -> bool:
        return self.reactor.hasStopped


def harness(*torrents: FakeTorrent, wait_for_first: bool = False) -> Harness:
    reactor = MemoryReactorClock()
    reactor.running = True  # as under twistd: stop() is allowed
    statuses: list[int] = []
    mapping = {t.title.encode(): t for t in torrents}
    watcher = ExitWhenDone(mapping, reactor, statuses.append, wait_for_first=wait_for_first)
    watcher.startService()
    return Harness(mapping, reactor, statuses, watcher)


def test_waits_while_downloading_and_exits_0_once_downloaded_without_a_goal() -> None:
    torrent = FakeTorrent("album", "downloading")
    h = harness(torrent)
    h.after(5)
    assert not h.stopped and h.statuses == []
    torrent.state, torrent.is_finished = "seeding", True
    h.after()
    assert h.stopped and h.statuses == [0]


def test_a_seeding_goal_is_waited_for() -> None:
    torrent = FakeTorrent("album", "seeding", is_finished=True, config=Goals(seed_ratio=1.0))
    h = harness(torrent)
    h.after(10)
    assert not h.stopped
    torrent.state = "finished"
    h.after()
    assert h.statuses == [0] and h.stopped


def test_every_torrent_must_be_done() -> None:
    done = FakeTorrent("one", "finished", is_finished=True)
    busy = FakeTorrent("two", "downloading")
    h = harness(done, busy)
    h.after(3)
    assert not h.stopped
    busy.state, busy.is_finished = "finished", True
    h.after()
    assert h.statuses == [0]


def test_a_torrent_in_error_makes_the_exit_status_1_once_the_others_are_done() -> None:
    broken = FakeTorrent("one", "error", error="cannot write a.bin: No space left on device")
    busy = FakeTorrent("two", "downloading")
    h = harness(broken, busy)
    h.after(3)
    assert not h.stopped, "the other torrent still works"
    busy.state, busy.is_finished = "seeding", True
    h.after()
    assert h.statuses == [1] and h.stopped


def test_no_torrent_at_all_exits_1() -> None:
    h = harness()
    h.after()
    assert h.statuses == [1] and h.stopped


def test_with_a_watch_folder_the_first_torrent_is_waited_for() -> None:
    h = harness(wait_for_first=True)
    h.after(30)
    assert not h.stopped
    torrent = h.add(FakeTorrent("dropped", "downloading"))
    h.after()
    assert not h.stopped
    torrent.state, torrent.is_finished = "seeding", True
    h.after()
    assert h.statuses == [0]


def test_the_decision_is_taken_once_and_the_timer_stops() -> None:
    h = harness(FakeTorrent("album", "finished", is_finished=True))
    h.after()
    h.after(10)
    assert h.statuses == [0]
    assert h.reactor.getDelayedCalls() == []


def test_stopping_the_service_stops_watching() -> None:
    h = harness(FakeTorrent("album", "downloading"))
    h.watcher.stopService()
    assert h.reactor.getDelayedCalls() == []


def test_a_reactor_already_stopping_is_no_error() -> None:
    h = harness(FakeTorrent("album", "finished", is_finished=True))
    h.reactor.running = False  # a SIGTERM came first
    h.after()
    assert h.statuses == [0]


@pytest.mark.parametrize(
    ("torrent", "expected"),
    [
        (FakeTorrent("t", "checking"), None),
        (FakeTorrent("t", "downloading"), None),
        (FakeTorrent("t", "stopped"), None),
        (FakeTorrent("t", "finished", is_finished=True), True),
        (FakeTorrent("t", "seeding", is_finished=True), True),
        (FakeTorrent("t", "seeding", is_finished=True, config=Goals(seed_time=60)), None),
        (FakeTorrent("t", "paused", is_finished=True), True),
        (FakeTorrent("t", "paused"), False),
        (FakeTorrent("t", "paused", error="disk gone"), False),
        (FakeTorrent("t", "error", error="disk gone"), False),
    ],
)
def test_verdicts(torrent: FakeTorrent, expected: bool | None) -> None:
    found = verdict(torrent)
    assert (found.ok if isinstance(found, Verdict) else None) == expected


class BrokenTorrent(FakeTorrent):
    """A torrent whose state cannot be read: a bug in what the watcher relies on."""

    @property  # type: ignore[override]
    def state(self) -> str:
        raise AttributeError("state")

    @state.setter
    def state(self, value: str) -> None:
        pass


def test_a_bug_in_the_check_is_logged_and_stops_the_daemon_with_status_1() -> None:
    h = harness(BrokenTorrent("broken"))
    with capturedLogs() as events:
        h.after()
    assert h.stopped and h.statuses == [1], "not left running forever, unwatched"
    assert any(e.get("log_failure") is not None for e in events)
