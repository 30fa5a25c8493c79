"""The twistd plugin: discoverable after install, documents its options, fails fast and readably."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from torrents import handmade_info, handmade_torrent

REPO = Path(__file__).resolve().parent.parent


def twistd(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


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
    assert "--log-level: choose one of debug, info, warn, error, critical" in (
        result.stdout + result.stderr
    )


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
    probe = subprocess.run(
        [sys.executable, "-c", "import bt, twisted.plugins.bittorrent as p; print(bt.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.startswith(str(target))
    result = twistd("--help", cwd=work, env=env)
    assert "bittorrent" in result.stdout
