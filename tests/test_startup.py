"""Start-up in-process: the state folder's lock, option errors, twistd's umask, signals."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from dhtsafety import dht_safe_args
from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher

from bt.session import Session, SessionConfig
from bt.startup import QuietRepeatedSignals, TwistdSettings
from bt.statelock import StateDirBusy, StateDirLock
from bt.storage.files import FileStorage
from bt.storage.layout import Layout
from bt.tap import DEFAULT_CONTROL, FALLBACK_CONTROL, Options, makeService

# -- the state folder's lock ---------------------------------------------------


def test_a_second_lock_on_one_state_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = StateDirLock(state)
    first.acquire()
    try:
        assert (state / "lock").read_text() == f"{os.getpid()}\n"
        assert stat.S_IMODE((state / "lock").stat().st_mode) == 0o600
        # Another open() of the file in this same process conflicts too (flock, not fcntl).
        with pytest.raises(StateDirBusy) as refused:
            StateDirLock(state).acquire()
        assert refused.value.pid == os.getpid()
        assert str(refused.value) == (
            f"--state-dir {state}: in use by another bt daemon (pid {os.getpid()}); "
            "stop it or give this one its own --state-dir"
        )
        first.acquire()  # idempotent for its holder
    finally:
        first.release()
    second = StateDirLock(state)
    second.acquire()  # released: the next one gets in
    second.release()
    assert (state / "lock").read_text() == ""


def test_a_state_dir_that_cannot_be_created_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(Exception, match=r"--state-dir .*file/state: cannot create lock"):
        StateDirLock(tmp_path / "file" / "state").acquire()


def session_on(state: Path, tmp_path: Path) -> Session:
    return Session(
        SessionConfig(
            download_dir=tmp_path / "dl", state_dir=state, listen="tcp:0:interface=127.0.0.1"
        )
    )


@pytest_twisted.ensureDeferred
async def test_two_sessions_on_one_state_dir_conflict(tmp_path: Path) -> None:
    """An embedder's Session takes the lock too, and gives it back when stopped."""
    state = tmp_path / "state"
    first = session_on(state, tmp_path)
    first.startService()
    second = session_on(state, tmp_path)
    try:
        with pytest.raises(StateDirBusy, match=f"pid {os.getpid()}"):
            second.startService()
        assert not second.running and second.listener.listening is None
    finally:
        await first.stopService()
    second.startService()
    await second.stopService()


# -- option errors and twistd's settings ------------------------------------------


def parsed(*args: str, parent: dict[str, Any] | None = None) -> Options:
    options = Options()
    options.parent = parent  # type: ignore[assignment]
    options.parseOptions(dht_safe_args(args))
    return options


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-peers", "x"], "--max-peers: 'x' is not a whole number of at least 1"),
        (["--upload-slots", "many"], "--upload-slots: 'many' is not a number of slots"),
        (["--listen", "garbage"], "--listen garbage: not a Twisted endpoint"),
        (["--control", "tcp:notaport"], "--control tcp:notaport:interface=127.0.0.1: not a"),
    ],
)
def test_option_errors_are_one_line_on_stderr_naming_option_and_value(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parsed(*args)
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"twistd bittorrent: error: {message}")


def test_an_unknown_option_points_at_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parsed("--bogus")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "twistd bittorrent: error: option --bogus not recognized",
        "twistd bittorrent: see 'twistd bittorrent --help' for the options",
    ]


def test_version_names_bt(capsys: pytest.CaptureFixture[str]) -> None:
    from bt import __version__

    with pytest.raises(SystemExit) as exited:
        parsed("--version")
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"bt {__version__} (Twisted ")


def test_only_the_default_control_endpoint_may_fall_back() -> None:
    default = parsed()
    assert default["control"] == DEFAULT_CONTROL
    assert default["control-fallback"] == FALLBACK_CONTROL
    given = parsed("--control", DEFAULT_CONTROL)
    assert given["control"] == DEFAULT_CONTROL and given["control-fallback"] is None
    assert parsed("--control", "none")["control"] is None


@pytest.mark.parametrize(
    ("twistd", "data_umask"),
    [
        ({"nodaemon": 0, "umask": None}, 0o022),  # twistd's 077 would make downloads 0600
        ({"nodaemon": 0, "umask": 0o027}, None),  # the user's --umask rules
        ({"nodaemon": 1, "umask": None}, None),  # -n: the shell's or systemd's UMask=
        (None, None),  # not under twistd
    ],
)
def test_downloads_get_0644_only_when_twistd_alone_set_the_umask(
    twistd: dict[str, Any] | None, data_umask: int | None
) -> None:
    assert TwistdSettings(twistd).data_umask == data_umask


@pytest_twisted.ensureDeferred
async def test_make_service_gives_the_session_twistds_data_umask(tmp_path: Path) -> None:
    options = parsed(
        "--state-dir",
        str(tmp_path / "state"),
        "--download-dir",
        str(tmp_path / "dl"),
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--control",
        "tcp:0",
        parent={"nodaemon": 0, "umask": None},
    )
    session = makeService(options)
    try:
        assert isinstance(session, Session)
        assert session.config.data_umask == 0o022
        # Done before twistd forks, so a failure is reported whole: lock and ports.
        assert session.state_lock.held and session.listener.listening is not None
    finally:
        await session.stopService()
    assert not session.state_lock.held


# -- file modes ---------------------------------------------------------------


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    yield
    os.umask(old)


class Entry:
    def __init__(self, path: tuple[str, ...], length: int, offset: int) -> None:
        self.path, self.length, self.offset, self.padding = path, length, offset, False


def storage(root: Path, umask: int | None) -> FileStorage:
    files = [Entry(("t", "sub", "a.bin"), 10, 0), Entry(("t", "b.bin"), 0, 10)]
    return FileStorage(root, files, Layout.from_files(files, 16), umask=umask)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_077")
def test_files_and_folders_get_the_data_umask_not_the_process_one(tmp_path: Path) -> None:
    store = storage(tmp_path / "dl", umask=0o022)
    store.write(0, 0, b"0123456789")
    store.prepare()
    store.close()
    for folder in ("dl", "dl/t", "dl/t/sub"):
        assert mode(tmp_path / folder) == 0o755, folder
    assert mode(tmp_path / "dl/t/sub/a.bin") == 0o644
    assert mode(tmp_path / "dl/t/b.bin") == 0o644


@pytest.mark.usefixtures("umask_077")
def test_without_a_data_umask_the_process_umask_applies(tmp_path: Path) -> None:
    store = storage(tmp_path / "dl", umask=None)
    store.write(0, 0, b"0123456789")
    store.close()
    assert mode(tmp_path / "dl/t/sub") == 0o700
    assert mode(tmp_path / "dl/t/sub/a.bin") == 0o600


def test_an_existing_files_mode_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "dl/t/sub").mkdir(parents=True)
    existing = tmp_path / "dl/t/sub/a.bin"
    existing.write_bytes(b"")
    existing.chmod(0o640)
    store = storage(tmp_path / "dl", umask=0o022)
    store.write(0, 0, b"0123456789")
    store.close()
    assert mode(existing) == 0o640


# -- a second SIGTERM while stopping ------------------------------------------------


class SignalReactor(Clock):
    """A Clock with the reactor's signal handlers and one system event trigger."""

    def __init__(self) -> None:
        super().__init__()
        self.triggers: list[Any] = []

    def sigTerm(self, number: int, frame: object = None) -> None:
        raise AssertionError("the reactor's handler ran again")

    sigInt = sigTerm

    def addSystemEventTrigger(self, phase: str, event: str, call: Any) -> object:
        assert (phase, event) == ("before", "shutdown")
        self.triggers.append(call)
        return call

    def removeSystemEventTrigger(self, trigger: object) -> None:
        self.triggers.remove(trigger)


@pytest.fixture
def saved_signal_handlers() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in QuietRepeatedSignals.SIGNALS}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.usefixtures("saved_signal_handlers")
def test_repeated_signals_while_stopping_are_logged_once() -> None:
    reactor = SignalReactor()
    signal.signal(signal.SIGTERM, reactor.sigTerm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not the reactor's: kept
    service = QuietRepeatedSignals(reactor)
    service.startService()
    assert signal.getsignal(signal.SIGTERM) == reactor.sigTerm  # running: the reactor's
    (stopping,) = reactor.triggers
    stopping()  # shutdown begins
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler) and handler != reactor.sigTerm
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        handler(signal.SIGTERM, None)
        handler(signal.SIGTERM, None)
    finally:
        globalLogPublisher.removeObserver(events.append)
    notes = [e for e in events if "again" in e.get("log_format", "")]
    assert len(notes) == 1 and notes[0]["signal"] == "SIGTERM"
    service.stopService()


def test_stopping_the_service_before_shutdown_removes_its_trigger() -> None:
    reactor = SignalReactor()
    service = QuietRepeatedSignals(reactor)
    service.startService()
    service.stopService()
    assert reactor.triggers == []
