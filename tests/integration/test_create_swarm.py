"""A torrent made by ``bt create`` works in the real world.

libtorrent loads it, and two bt daemons (``twistd -n bittorrent`` subprocesses)
trade it through a real opentracker on loopback: one seeds the folder the
torrent was made from, the other downloads into an empty folder.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from swarm import BtDaemon, OpenTracker, scrape_counts, wait_for
from test_download import assert_same_tree, nested_files
from torrents import write_files

from bt.create import create_torrent
from bt.metainfo import load_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 30


def bt_create(*argv: str) -> subprocess.CompletedProcess[str]:
    """The ``bt`` command as a user runs it (``python -m bt.cli`` is the console script)."""
    return subprocess.run(
        [sys.executable, "-m", "bt.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_stopped_cleanly(daemon: BtDaemon, status: int | None) -> str:
    """Its log, once the stop was clean (SIGTERM's status, no traceback)."""
    log = daemon.log()
    # twistd re-raises SIGTERM after a clean stop; anything else is a crash.
    assert status == -signal.SIGTERM, log[-3000:]
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
    return log


def test_a_created_torrent_goes_from_one_bt_to_another(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    lt = libtorrent
    seed_parent = tmp_path / "seed"
    write_files(seed_parent, nested_files())
    content = seed_parent / "album"
    # The info-hash does not depend on the tracker URL, so the tracker's
    # whitelist can be written before its port is known.
    _, provisional = create_torrent(content, piece_length=64 * 1024)
    opentracker.start([provisional.info_hash])

    torrent = tmp_path / "album.torrent"
    made = bt_create(
        "create",
        str(content),
        "--tracker",
        opentracker.announce_url,
        "--piece-size",
        "64K",
        "--output",
        str(torrent),
    )
    assert made.returncode == 0, made.stderr
    meta = load_metainfo(torrent)
    assert meta.info_hash == provisional.info_hash
    assert meta.is_multi_file and any(f.length == 0 for f in meta.files)
    assert meta.total_length % meta.piece_length  # a short last piece
    info = lt.torrent_info(lt.bdecode(torrent.read_bytes()))  # type: ignore[attr-defined]
    assert str(info.info_hashes().v1) == meta.info_hash.hex()
    assert info.num_files() == len(meta.files)
    assert [t.url for t in info.trackers()] == [opentracker.announce_url]

    seeder = BtDaemon(tmp_path / "seeder", torrent, seed_parent)
    downloader = BtDaemon(tmp_path / "leecher", torrent, tmp_path / "leecher" / "downloads")
    for daemon in (seeder, downloader):
        daemon.workdir.mkdir()
    try:
        seeder.start()
        seeder.wait_for_log("pieces already on disk", TIMEOUT)
        wait_for(
            lambda: scrape_counts(opentracker, meta.info_hash) >= 1, TIMEOUT, "the seeder announced"
        )
        downloader.start()
        downloader.wait_for_log("download complete", TIMEOUT)
        assert_same_tree(content, downloader.download_dir / "album")
    finally:
        statuses = [daemon.stop() for daemon in (downloader, seeder)]
    for daemon, status in zip((downloader, seeder), statuses, strict=True):
        assert_stopped_cleanly(daemon, status)
