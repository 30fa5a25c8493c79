"""The twistd plugin: discoverable after install, documents its options, fails fast and readably."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dhtsafety import dht_safe_args
from torrents import handmade_info, handmade_torrent

REPO = Path(__file__).resolve().parent.parent


def python(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def twistd(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``twistd ARGS``; a ``bittorrent`` run never reaches the public DHT (``dht_safe_args``)."""
    argv = dht_safe_args(args) if "bittorrent" in args else list(args)
    return python("-c", "from twisted.scripts.twistd import run; run()", *argv, cwd=cwd, env=env)


def test_twistd_help_lists_the_plugin(tmp_path: Path) -> None:
    result = twistd("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "bittorrent" in result.stdout


def test_plugin_help_describes_every_option(tmp_path: Path) -> None:
    result = twistd("bittorrent", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--torrent", "--download-dir", "--listen", "--state-dir"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not bencode", "not valid bencode: invalid value type byte b'n' at offset 0"),
        (b"d4:infod4:name2:..ee", "missing key 'info.piece length'"),
        (None, "cannot read: No such file or directory"),
    ],
)
def test_bad_torrent_exits_at_once_with_one_line(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    torrent = tmp_path / "bad.torrent"
    if content is not None:
        torrent.write_bytes(content)
    result = twistd("-n", "bittorrent", "--torrent", str(torrent), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"twistd bittorrent: error: {torrent}: {problem}"]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "twistd.pid").exists()


def test_unsafe_path_in_torrent_is_refused_by_the_daemon(tmp_path: Path) -> None:
    torrent = tmp_path / "evil.torrent"
    torrent.write_bytes(handmade_torrent(handmade_info([(["..", "escape"], 10)])))
    result = twistd("-n", "bittorrent", "--torrent", str(torrent), cwd=tmp_path)
    assert result.returncode == 1
    assert "info.files[0].path[0] is '..', which is not a safe file name" in result.stderr


def test_bad_log_level_is_a_usage_error(tmp_path: Path) -> None:
    result = twistd("-n", "bittorrent", "--log-level", "loud", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "twistd bittorrent: error: --log-level: 'loud' is not a level; "
        "choose one of debug, info, warn, error, critical"
    )
    assert result.stdout == ""


@pytest.mark.integration
def test_regular_install_ships_the_plugin(tmp_path: Path) -> None:
    """The wheel `pip install .` installs holds bt and the plugin, no __init__ in twisted/."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("bt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/bittorrent.py" in names
    assert "bt/tap.py" in names
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        timeout=300,
        check=True,
    )
    # Run from an empty folder with only the installed copy of bt on the path.
    env = {**os.environ, "PYTHONPATH": str(target)}
    work = tmp_path / "cwd"
    work.mkdir()
    probe = python(
        "-c", "import bt, twisted.plugins.bittorrent as p; print(bt.__file__)", cwd=work, env=env
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(target))
    result = twistd("--help", cwd=work, env=env)
    assert "bittorrent" in result.stdout


# -- start-up failures: one line on stderr, both with -n and daemonised -----------

LOOPBACK = "127.0.0.1"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        yield holder.getsockname()[1]


def daemon_args(tmp_path: Path, mode: str) -> list[str]:
    """twistd's own options: foreground, or daemonised with a pidfile and a log."""
    if mode == "-n":
        return ["-n", f"--logfile={tmp_path / 'bt.log'}"]
    return [f"--pidfile={tmp_path / 'bt.pid'}", f"--logfile={tmp_path / 'bt.log'}"]


def assert_one_line_failure(result: subprocess.CompletedProcess, line: str, tmp_path: Path) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"twistd bittorrent: error: {line}"]
    assert result.stdout == ""
    log = (tmp_path / "bt.log").read_text() if (tmp_path / "bt.log").exists() else ""
    assert "Traceback" not in log
    assert not (tmp_path / "bt.pid").exists() and not (tmp_path / "twistd.pid").exists()


@pytest.mark.parametrize("mode", ["-n", "daemon"])
@pytest.mark.parametrize("option", ["--listen", "--control"])
def test_a_taken_port_is_one_line_naming_the_option(
    tmp_path: Path, mode: str, option: str, taken_port: int
) -> None:
    endpoint = f"tcp:{taken_port}:interface={LOOPBACK}"
    ports = {"--listen": f"tcp:0:interface={LOOPBACK}", "--control": "tcp:0", option: endpoint}
    result = twistd(
        *daemon_args(tmp_path, mode),
        "bittorrent",
        "--state-dir",
        str(tmp_path / "state"),
        *(arg for pair in ports.items() for arg in pair),
        cwd=tmp_path,
    )
    problem = f"cannot listen on {LOOPBACK}:{taken_port}: Address already in use"
    assert_one_line_failure(result, f"{option} {endpoint}: {problem}", tmp_path)


@pytest.mark.parametrize("mode", ["-n", "daemon"])
def test_a_malformed_listen_endpoint_is_one_line(tmp_path: Path, mode: str) -> None:
    result = twistd(*daemon_args(tmp_path, mode), "bittorrent", "--listen", "garbage", cwd=tmp_path)
    assert_one_line_failure(
        result,
        "--listen garbage: not a Twisted endpoint (Unknown endpoint type: 'garbage')",
        tmp_path,
    )


@pytest.mark.parametrize("mode", ["-n", "daemon"])
def test_a_json_log_that_cannot_be_opened_is_one_line(tmp_path: Path, mode: str) -> None:
    (tmp_path / "not-a-folder").write_text("")
    where = tmp_path / "not-a-folder" / "bt.json"
    result = twistd(
        *daemon_args(tmp_path, mode),
        "bittorrent",
        "--state-dir",
        str(tmp_path / "state"),
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--control",
        "none",
        "--json-log",
        str(where),
        cwd=tmp_path,
    )
    assert_one_line_failure(result, f"--json-log {where}: {where.parent} is not a folder", tmp_path)


def test_option_errors_go_to_stderr_without_the_usage_text(tmp_path: Path) -> None:
    result = twistd("-n", "bittorrent", "--max-peers", "x", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "twistd bittorrent: error: --max-peers: 'x' is not a whole number of at least 1"
    ]


def test_version_shows_bts_version(tmp_path: Path) -> None:
    from bt import __version__

    result = twistd("bittorrent", "--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"bt {__version__} (Twisted ")


# -- a running daemon: its state folder's lock, its files' modes, two SIGTERMs ------


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def silent_tracker() -> Iterator[str]:
    """An announce URL that accepts connections and never answers: stopping takes seconds."""
    with socket.socket() as server:
        server.bind((LOOPBACK, 0))
        server.listen(16)
        yield f"http://{LOOPBACK}:{server.getsockname()[1]}/announce"


@pytest.fixture
def with_empty_file(tmp_path: Path, silent_tracker: str) -> Path:
    """A torrent whose empty file (in a folder) is created as soon as the torrent starts."""
    info = handmade_info([(["sub", "empty"], 0), (["data.bin"], 20_000)], name="m")
    torrent = tmp_path / "m.torrent"
    torrent.write_bytes(handmade_torrent(info, announce=silent_tracker.encode()))
    return torrent


def start_daemon(
    tmp_path: Path, name: str, torrent: Path, *twistd_options: str
) -> tuple[int, Path, Path]:
    """A daemonised twistd bittorrent; returns its pid, log file and download folder."""
    work = tmp_path / name
    work.mkdir()
    pidfile, logfile, downloads = work / "bt.pid", work / "bt.log", work / "downloads"
    result = twistd(
        f"--pidfile={pidfile}",
        f"--logfile={logfile}",
        *twistd_options,
        "bittorrent",
        "--state-dir",
        str(tmp_path / "state"),
        "--download-dir",
        str(downloads),
        "--listen",
        f"tcp:0:interface={LOOPBACK}",
        "--control",
        "tcp:0",
        "--torrent",
        str(torrent),
        cwd=work,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pid = int(pidfile.read_text())
    wait_until(lambda: (downloads / "m" / "sub" / "empty").exists(), "the empty file")
    return pid, logfile, downloads


def assert_modes(downloads: Path, folders: int, files: int) -> None:
    """The download folder, the torrent's subfolder and its empty file have these modes."""
    empty = downloads / "m" / "sub" / "empty"
    # Created, then given its mode: wait for the second step.
    wait_until(lambda: stat.S_IMODE(empty.stat().st_mode) == files, f"{empty} mode {files:o}", 10)
    for folder in (downloads, downloads / "m", downloads / "m" / "sub"):
        assert stat.S_IMODE(folder.stat().st_mode) == folders, folder


@pytest.fixture
def daemons() -> Iterator[list[int]]:
    """Pids of daemons a test started; killed if the test left them running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_daemon_holds_its_state_dir_makes_readable_files_and_stops_quietly(
    tmp_path: Path, with_empty_file: Path, daemons: list[int]
) -> None:
    pid, logfile, downloads = start_daemon(tmp_path, "first", with_empty_file)
    daemons.append(pid)
    # Under twistd's default umask (077), downloads are still for others to read.
    assert_modes(downloads, 0o755, 0o644)
    # The state folder, with the API token, stays private.
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700

    second = twistd(
        "-n",
        "--pidfile=",
        "bittorrent",
        "--state-dir",
        str(tmp_path / "state"),
        "--listen",
        f"tcp:0:interface={LOOPBACK}",
        "--control",
        "tcp:0",
        cwd=tmp_path,
    )
    assert second.returncode == 1
    assert second.stderr.splitlines() == [
        f"twistd bittorrent: error: --state-dir {tmp_path / 'state'}: in use by another bt "
        f"daemon (pid {pid}); stop it or give this one its own --state-dir"
    ]

    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: "Received SIGTERM" in logfile.read_text(), "the first SIGTERM")
    os.kill(pid, signal.SIGTERM)  # impatient: the stopped announce is still waiting
    wait_until(lambda: not alive(pid), "the daemon to exit", timeout=60)
    log = logfile.read_text()
    assert "received SIGTERM again: still stopping cleanly" in log, log
    assert "ReactorNotRunning" not in log and "Traceback" not in log, log
    assert "Main loop terminated" in log


def test_an_explicit_umask_is_honoured(
    tmp_path: Path, with_empty_file: Path, daemons: list[int]
) -> None:
    pid, _log, downloads = start_daemon(tmp_path, "d", with_empty_file, "--umask=027")
    daemons.append(pid)
    assert_modes(downloads, 0o750, 0o640)
    os.kill(pid, signal.SIGKILL)  # nothing to see at exit; quick
    wait_until(lambda: not alive(pid), "the daemon to exit")


# -- Twisted's plugin cache ----------------------------------------------------------

CACHE_COMMAND = re.compile(r'python -c "(from twisted\.plugin import [^"]+)"')


def test_the_documented_command_refreshes_the_plugin_cache(tmp_path: Path) -> None:
    """docs/operations.rst and contrib/bt.service give one command; it writes dropin.cache."""
    commands = {
        CACHE_COMMAND.search((REPO / name).read_text()).group(1)  # type: ignore[union-attr]
        for name in ("docs/operations.rst", "contrib/bt.service")
    }
    assert commands == {"from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"}
    (code,) = commands
    plugins = tmp_path / "site" / "twisted" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "bittorrent.py").write_text((REPO / "twisted/plugins/bittorrent.py").read_text())
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    result = python("-c", code, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert b"bittorrent" in (plugins / "dropin.cache").read_bytes()
