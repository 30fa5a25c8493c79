"""A bt seeder whose file is cut short while libtorrent downloads from it.

Before: bt kept saying "seeding", the requests for the lost pieces went
unanswered and libtorrent waited on them forever. Now the connection that asks
for them is closed, bt's bitfield tells the truth when libtorrent comes back,
and bt's status names the damaged file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_download import PIECE, tracked_torrent

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SIZE = 48 * PIECE  # 3 MiB
KEPT = 16 * PIECE  # the file is cut to its first third


def test_a_file_cut_short_under_a_bt_seed_does_not_hang_libtorrent(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    torrent = tracked_torrent(tmp_path, opentracker, {"image.iso": SIZE}, "image.iso")
    meta = parse_metainfo(torrent.read_bytes())
    work = tmp_path / "bt"
    work.mkdir()
    # Slow enough that libtorrent is mid-download when the file is cut.
    bt = BtDaemon(work, torrent, tmp_path / "seed", extra_args=("--upload-limit", "600K"))
    bt.start()
    downloader = None
    try:
        bt.wait_for_log("pieces already on disk", 30)
        bt.wait_for_api()
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "bt at the tracker")
        (tmp_path / "lt").mkdir()
        downloader = LibtorrentPeer(torrent.read_bytes(), tmp_path / "lt")
        # Come back to bt soon after it closes the connection (libtorrent waits 60 s).
        downloader.session.apply_settings({"min_reconnect_time": 1})
        handle = downloader.handle
        wait_for(lambda: handle.status().num_pieces >= 4, 30, "libtorrent to get a few pieces")
        os.truncate(tmp_path / "seed" / "image.iso", KEPT)

        bt.wait_for_log("data changed on disk: image.iso has", 20)
        _, status = bt.api("GET", f"/api/v1/torrents/{meta.info_hash.hex()}")
        assert status["state"] == "downloading"
        assert "image.iso" in status["error"]
        assert status["pieces_have"] == KEPT // PIECE

        def no_false_promises() -> bool:
            """libtorrent hears from bt (again) only the pieces bt really has."""
            peers = handle.get_peer_info()
            return all(sum(peer.pieces) <= KEPT // PIECE for peer in peers)

        wait_for(no_false_promises, 20, "libtorrent to see bt without the lost pieces")

        def kept_pieces_downloaded() -> bool:
            return all(handle.status().pieces[: KEPT // PIECE])

        wait_for(kept_pieces_downloaded, 30, "libtorrent to get every piece bt still has")
        assert no_false_promises()
    finally:
        if downloader is not None:
            downloader.close()
        bt.stop()
    log = bt.log()
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
    assert "cannot serve piece" in log or "whose data we lost" in log
