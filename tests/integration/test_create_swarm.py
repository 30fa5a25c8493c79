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


@pytest.mark.parametrize("format", ["v1", "v2", "hybrid"])
def test_a_created_torrent_goes_from_one_bt_to_another(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object, format: str
) -> None:
    lt = libtorrent
    seed_parent = tmp_path / "seed"
    write_files(seed_parent, nested_files())
    content = seed_parent / "album"
    # The info-hashes do not depend on the tracker URL, so the tracker's
    # whitelist can be written before its port is known.
    _, provisional = create_torrent(content, piece_length=64 * 1024, format=format)
    opentracker.start(list(provisional.info_hashes))

    torrent = tmp_path / "album.torrent"
    made = bt_create(
        "create",
        str(content),
        "--tracker",
        opentracker.announce_url,
        "--piece-size",
        "64K",
        "--format",
        format,
        "--output",
        str(torrent),
    )
    assert made.returncode == 0, made.stderr
    meta = load_metainfo(torrent)
    assert meta.info_hash == provisional.info_hash and meta.format == format
    real = [f for f in meta.files if not f.padding]
    assert meta.is_multi_file and any(f.length == 0 for f in real)
    info = lt.torrent_info(lt.bdecode(torrent.read_bytes()))  # type: ignore[attr-defined]
    if format == "v1":
        assert meta.total_length % meta.piece_length  # a short last piece
        assert info.num_files() == len(meta.files)
    else:  # every file padded to a piece boundary, as libtorrent pads
        assert meta.total_length % meta.piece_length == 0
        assert meta.info_hash_v2 is not None
        assert str(info.info_hashes().v2) == meta.info_hash_v2.hex()
    if meta.info_hash_v1 is not None:
        assert str(info.info_hashes().v1) == meta.info_hash_v1.hex()
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
