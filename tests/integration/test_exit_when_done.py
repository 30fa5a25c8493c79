"""``twistd -n bittorrent --exit-when-done`` as a script runs it: download from a libtorrent
seeder, exit 0 with the file verified; exit 1 when a torrent cannot complete.

Three daemons share one seeder and run at once, to keep the test short.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest
from dhtsafety import dht_safe_args
from swarm import LOOPBACK, BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_download import tracked_torrent

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 90
NAME = "image.iso"


def exit_status(daemon: BtDaemon) -> int:
    assert daemon.process is not None
    try:
        return daemon.process.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running:\n{daemon.log()[-4000:]}") from None


def test_exits_0_once_downloaded_and_1_when_a_torrent_fails(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    torrent = tracked_torrent(tmp_path, opentracker, {NAME: 2 * 1024 * 1024 + 123}, NAME)
    meta = parse_metainfo(torrent.read_bytes())
    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed")
    daemons: dict[str, BtDaemon] = {}
    try:
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "the seeder")
        for label, extra in (
            ("plain", ()),
            ("no-seeding", ("--seed-ratio", "0")),
            ("broken", ()),
        ):
            work = tmp_path / label
            work.mkdir()
            daemons[label] = BtDaemon(
                work, torrent, work / "downloads", extra_args=("--exit-when-done", *extra)
            )
        # A folder where the file must go: the first write fails, the torrent is in error.
        (tmp_path / "broken" / "downloads" / NAME).mkdir(parents=True)
        for daemon in daemons.values():
            daemon.start()
        statuses = {label: exit_status(daemon) for label, daemon in daemons.items()}
        logs = {label: daemon.log() for label, daemon in daemons.items()}
    finally:
        seeder.close()
    assert statuses == {"plain": 0, "no-seeding": 0, "broken": 1}, logs
    for label in ("plain", "no-seeding"):
        downloaded = tmp_path / label / "downloads" / NAME
        assert filecmp.cmp(tmp_path / "seed" / NAME, downloaded, shallow=False), label
        assert "--exit-when-done: 1 torrent done; stopping" in logs[label]
    assert "seed ratio 0 reached; stopped seeding" in logs["no-seeding"]
    assert f"{NAME}: error:" in logs["broken"] and "exit status 1" in logs["broken"]
    for log in logs.values():
        assert "Traceback" not in log and "Unhandled" not in log, log[-4000:]


def test_daemonised_it_exits_too_and_removes_its_pidfile(tmp_path: Path) -> None:
    """The parent returns 0 once started; the daemon stops by itself (here: nothing to do)."""
    pidfile = tmp_path / "bt.pid"
    started = subprocess.run(
        dht_safe_args(
            [
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                f"--pidfile={pidfile}",
                f"--logfile={tmp_path / 'bt.log'}",
                "bittorrent",
                "--exit-when-done",
                "--state-dir",
                str(tmp_path / "state"),
                "--download-dir",
                str(tmp_path),
                "--listen",
                f"tcp:0:interface={LOOPBACK}",
                "--control",
                "none",
            ]
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    wait_for(lambda: not pidfile.exists(), 30, "the daemon to exit")
    log = (tmp_path / "bt.log").read_text()
    assert "--exit-when-done: no torrent to download; stopping with exit status 1" in log
