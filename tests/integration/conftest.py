"""Fixtures for real peers on loopback; each one is bounded in time and cleaned up."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import swarm
from swarm import OpenTracker, integration_required
from v2swarm import V2Library

pytestmark = pytest.mark.integration


def need(tool_available: bool, why: str) -> None:
    """Skip with a reason locally; fail in CI, where every integration test must run."""
    if tool_available:
        return
    if integration_required():
        pytest.fail(f"{why} (BT_REQUIRE_INTEGRATION=1 forbids skipping)")
    pytest.skip(why)


@pytest.fixture
def opentracker() -> Iterator[OpenTracker]:
    need(shutil.which("opentracker") is not None, "opentracker is not installed")
    tracker = OpenTracker()
    yield tracker
    tracker.stop()


@pytest.fixture
def aria2c() -> str:
    """The aria2c program (Debian package ``aria2``): a C++ client with its own habits."""
    program = shutil.which("aria2c")
    need(program is not None, "aria2c is not installed (Debian package aria2)")
    assert program is not None
    return program


@pytest.fixture
def libtorrent() -> object:
    try:
        import libtorrent as lt
    except ImportError:
        lt = None
    need(lt is not None, "the libtorrent wheel is not installed")
    return lt


@pytest.fixture(scope="session")
def v2_library(tmp_path_factory: pytest.TempPathFactory) -> V2Library:
    """Files and libtorrent-made v2/hybrid torrents of them, made once per session."""
    try:
        import libtorrent  # noqa: F401
    except ImportError:
        need(False, "the libtorrent wheel is not installed")
    return V2Library(tmp_path_factory.mktemp("v2-content"))


@pytest.fixture(autouse=True)
def no_daemon_left_behind() -> Iterator[None]:
    """A failing test must not leave a twistd running (it would outlive the suite)."""
    yield
    while swarm.RUNNING:
        daemon = swarm.RUNNING.pop()
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(10)
