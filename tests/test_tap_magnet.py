"""``twistd bittorrent --torrent 'magnet:?...'``: a magnet is accepted where a .torrent is."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from test_plugin import twistd
from test_tap_goals import parsed

from bt.exitwhendone import ExitWhenDone
from bt.status import MagnetState
from bt.tap import makeService

HASH = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
URI = f"magnet:?xt=urn:btih:{HASH}&dn=Debian&x.pe=127.0.0.1:9"


@pytest_twisted.ensureDeferred
async def test_a_magnet_given_with_torrent_starts_fetching(tmp_path: Path) -> None:
    options = parsed(tmp_path, "--torrent", URI, "--exit-when-done")
    session = makeService(options)
    try:
        [status] = session.torrent_statuses()  # type: ignore[attr-defined]
        assert (status.info_hash, status.name) == (HASH, "Debian")
        assert status.state == MagnetState.FETCHING_METADATA
        (watcher,) = [s for s in session if isinstance(s, ExitWhenDone)]  # type: ignore[attr-defined]
        assert watcher.wait_for_first, "the torrent comes once its metadata does"
    finally:
        await session.stopService()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("magnet:?xt=urn:btih:1234", "btih"),
        ("magnet:?dn=nothing", "xt"),
    ],
)
def test_a_bad_magnet_exits_at_once_with_one_line(tmp_path: Path, uri: str, problem: str) -> None:
    result = twistd("-n", "bittorrent", "--torrent", uri, cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("twistd bittorrent: error: ") and problem in line
    assert "Traceback" not in result.stdout + result.stderr
