"""A bt seeder dials the leechers its tracker names: some leechers never dial.

Transmission drops loopback (and other "martian") addresses a tracker hands it,
so it is served only by a seeder that dials it, as libtorrent's seeders do.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from swarm import LOOPBACK, BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_download import assert_same_tree, tracked_torrent
from test_seeding import stop_cleanly, uploaded_bytes

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PIECE = 64 * 1024
TIMEOUT = 60


def test_a_bt_seeder_dials_a_leecher_that_only_announces(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    """The leecher announces before the seeder exists, so its tracker answer is empty and
    it never learns (or dials) the seeder: only a seeder that asks its tracker for peers
    and dials them serves it (Transmission drops loopback peers from trackers alike)."""
    name = "share.bin"
    torrent = tracked_torrent(tmp_path, opentracker, {name: 1024 * 1024 + 99}, name, PIECE)
    meta = parse_metainfo(torrent.read_bytes())
    (tmp_path / "lt").mkdir()
    leecher = LibtorrentPeer(torrent.read_bytes(), tmp_path / "lt")
    seeder = None
    try:
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "lt at the tracker")
        (tmp_path / "bt-seed").mkdir()
        seeder = BtDaemon(
            tmp_path / "bt-seed", torrent, tmp_path / "seed", ("--log-level", "debug")
        )
        seeder.start()
        wait_for(
            lambda: leecher.handle.status().is_seeding,
            TIMEOUT,
            f"the leecher to get the file from the bt seeder\n{seeder.log()[-3000:]}",
        )
        assert_same_tree(tmp_path / "seed" / name, tmp_path / "lt" / name)
        # The seeder's peer is the address the tracker gave (an outgoing connection);
        # the leecher never heard of the seeder, so it cannot have dialled it.
        assert f"connected to ('{LOOPBACK}', {leecher.port})" in seeder.log()
    finally:
        leecher.close()
        log = stop_cleanly(seeder) if seeder is not None else ""
    assert uploaded_bytes(log, name) >= meta.total_length
