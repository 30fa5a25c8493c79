"""DiskThreads: the session's shared disk pool, its start, stop and shutdown safety net."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest_twisted
from twisted.internet.testing import MemoryReactorClock

from bt.storage.threads import DiskThreads


def test_work_runs_in_the_caller_before_the_threads_start() -> None:
    threads = DiskThreads(MemoryReactorClock(), 2)
    done = threads.run(threading.current_thread)
    assert done.called and done.result is threading.current_thread()


@pytest_twisted.ensureDeferred
async def test_work_runs_in_a_disk_thread_once_started_and_stop_joins_them() -> None:
    from twisted.internet import reactor

    threads = DiskThreads(reactor, 2)
    threads.start()
    try:
        ran_in = await threads.run(threading.current_thread)
        assert ran_in is not threading.current_thread()
        assert "bt-disk" in ran_in.name
    finally:
        threads.stop()
    assert not threads.started and not ran_in.is_alive()


class Triggers:
    """The reactor's system event triggers, and nothing else (MemoryReactor cannot remove one)."""

    def __init__(self) -> None:
        self.triggers: dict[int, tuple[str, str, Callable[[], object]]] = {}

    def addSystemEventTrigger(self, phase: str, event: str, f: Callable[[], object]) -> int:
        key = len(self.triggers) + 1
        self.triggers[key] = (phase, event, f)
        return key

    def removeSystemEventTrigger(self, key: int) -> None:
        del self.triggers[key]


def test_a_reactor_shutdown_stops_the_threads_and_a_later_stop_is_harmless() -> None:
    reactor = Triggers()
    threads = DiskThreads(reactor, 1)
    threads.start()
    assert threads.started
    [(phase, event, trigger)] = reactor.triggers.values()
    assert (phase, event) == ("during", "shutdown")
    trigger()
    assert not threads.started
    threads.stop()  # the session's own stop, after the trigger fired: nothing to remove
    assert len(reactor.triggers) == 1


def test_stop_removes_the_shutdown_trigger() -> None:
    reactor = Triggers()
    threads = DiskThreads(reactor, 1)
    threads.start()
    threads.stop()
    assert not threads.started
    assert reactor.triggers == {}, "a stopped pool leaves no trigger behind"
