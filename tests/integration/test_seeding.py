"""bt gives back: libtorrent downloads from a bt seeder, bt feeds bt, and bt leechers trade.

Every bt here is ``twistd -n bittorrent`` as a subprocess; peers find each other
through a real opentracker on loopback.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_download import assert_same_tree, nested_files, tracked_torrent

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 90


def bt_seeder(tmp_path: Path, torrent: Path, content_parent: Path, label: str) -> BtDaemon:
    """A bt daemon started on a folder that already holds the complete data."""
    workdir = tmp_path / label
    workdir.mkdir()
    daemon = BtDaemon(workdir, torrent, content_parent)
    daemon.start()
    daemon.wait_for_log("pieces already on disk", TIMEOUT)
    return daemon


def stop_cleanly(daemon: BtDaemon) -> str:
    status = daemon.stop()
    log = daemon.log()
    assert status == -signal.SIGTERM, log[-3000:]
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
    return log


def uploaded_bytes(log: str, name: str) -> int:
    match = re.search(rf"{re.escape(name)}: uploaded (\d+) bytes", log)
    assert match, f"no totals line in the log:\n{log[-2000:]}"
    return int(match.group(1))


def libtorrent_download(torrent: bytes, save_path: Path) -> LibtorrentPeer:
    save_path.mkdir(parents=True, exist_ok=True)
    peer = LibtorrentPeer(torrent, save_path)
    wait_for(lambda: peer.handle.status().is_seeding, TIMEOUT, "libtorrent to finish downloading")
    return peer


@pytest.mark.parametrize("layout", ["single", "multi"])
def test_libtorrent_downloads_from_a_bt_seeder(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object, layout: str
) -> None:
    if layout == "single":
        files, name = {"image.iso": 3 * 1024 * 1024 + 4321}, "image.iso"
    else:
        files, name = nested_files(), "album"
    torrent = tracked_torrent(tmp_path, opentracker, files, name)
    meta = parse_metainfo(torrent.read_bytes())
    seeder = bt_seeder(tmp_path, torrent, tmp_path / "seed", "bt-seed")
    downloader = None
    try:
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "bt at the tracker")
        downloader = libtorrent_download(torrent.read_bytes(), tmp_path / "lt")
        assert_same_tree(tmp_path / "seed" / name, tmp_path / "lt" / name)
    finally:
        if downloader is not None:
            downloader.close()
        log = stop_cleanly(seeder)
    assert uploaded_bytes(log, name) >= meta.total_length


def test_two_bt_processes_exchange_a_torrent(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    torrent = tracked_torrent(tmp_path, opentracker, nested_files(), "album")
    meta = parse_metainfo(torrent.read_bytes())
    seeder = bt_seeder(tmp_path, torrent, tmp_path / "seed", "bt-seed")
    leecher = BtDaemon(tmp_path / "bt-leech", torrent, tmp_path / "bt-leech" / "downloads")
    (tmp_path / "bt-leech").mkdir()
    try:
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "bt at the tracker")
        leecher.start()
        leecher.wait_for_log("album: download complete", TIMEOUT)
        assert_same_tree(tmp_path / "seed" / "album", leecher.download_dir / "album")
    finally:
        leech_log = stop_cleanly(leecher)
        seed_log = stop_cleanly(seeder)
    assert uploaded_bytes(seed_log, "album") >= meta.total_length
    assert uploaded_bytes(leech_log, "album") == 0


def test_bt_leechers_upload_to_each_other(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    size = 6 * 1024 * 1024
    torrent = tracked_torrent(tmp_path, opentracker, {"share.bin": size}, "share.bin")
    meta = parse_metainfo(torrent.read_bytes())
    # A slow libtorrent seeder leaves time for the bt leechers to trade pieces.
    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed", upload_rate_limit=1 << 20)
    leechers = []
    try:
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "lt at the tracker")
        for label in ("bt-a", "bt-b"):
            (tmp_path / label).mkdir()
            leecher = BtDaemon(tmp_path / label, torrent, tmp_path / label / "downloads")
            leecher.start()
            leechers.append(leecher)
        for leecher in leechers:
            leecher.wait_for_log("share.bin: download complete", TIMEOUT)
            assert_same_tree(tmp_path / "seed" / "share.bin", leecher.download_dir / "share.bin")
    finally:
        logs = [stop_cleanly(leecher) for leecher in leechers]
        seeder.close()
    uploads = [uploaded_bytes(log, "share.bin") for log in logs]
    assert all(up > 0 for up in uploads), uploads
