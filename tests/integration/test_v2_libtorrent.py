"""BEP 52 with libtorrent on loopback: v2-only and hybrid torrents made by libtorrent.

One bt daemon per case does both directions, so the suite pays for one bt start:
it downloads from a libtorrent seeder found through opentracker (bt dials
libtorrent and announces the v2 hash, both for a hybrid), the files must be
byte-identical with no padding file on disk; then the libtorrent seeder leaves
and a fresh libtorrent downloader gets everything from bt (libtorrent dials bt:
with the v2 hash for a v2-only torrent, with the v1 hash and the v2 bit for a
hybrid).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_create_swarm import assert_stopped_cleanly
from test_download import assert_same_tree
from test_magnets_lt import peer_port
from test_seeding import uploaded_bytes
from v2swarm import LAYOUTS, V2Library, libtorrent_hashes, with_announce

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 45


def no_padding_on_disk(folder: Path) -> None:
    pads = [p for p in folder.rglob("*") if ".pad" in p.parts]
    assert not pads, f"padding files were written: {pads}"


@pytest.mark.parametrize("layout", ["single", "multi"])
@pytest.mark.parametrize("fmt", ["v2", "hybrid"])
def test_libtorrent_v2_torrent_goes_to_bt_and_back(
    tmp_path: Path,
    opentracker: OpenTracker,
    libtorrent: object,
    v2_library: V2Library,
    fmt: str,
    layout: str,
) -> None:
    name = LAYOUTS[layout][1]
    content = v2_library.content(layout)
    plain = v2_library.torrent(fmt, layout)
    hashes = libtorrent_hashes(plain)
    opentracker.start(hashes.wire)
    torrent = tmp_path / f"{name}.torrent"
    torrent.write_bytes(with_announce(plain, opentracker.announce_url))

    seeder = LibtorrentPeer(torrent.read_bytes(), content.parent)
    work = tmp_path / "bt"
    work.mkdir()
    daemon = BtDaemon(work, torrent, work / "downloads")
    downloader = None
    try:
        seeder.wait_checked()
        wait_for(
            lambda: any(scrape_counts(opentracker, h) for h in hashes.wire),
            30,
            "libtorrent at the tracker",
        )
        daemon.start()
        daemon.wait_for_log(f"{name}: download complete", TIMEOUT)
        assert_same_tree(content, daemon.download_dir / name)
        no_padding_on_disk(daemon.download_dir)
        seeder.close()
        seeder = None

        (tmp_path / "lt").mkdir()
        downloader = LibtorrentPeer(torrent.read_bytes(), tmp_path / "lt")
        downloader.handle.connect_peer(("127.0.0.1", peer_port(daemon)))
        handle = downloader.handle
        wait_for(lambda: handle.status().is_seeding, TIMEOUT, "libtorrent to download from bt")
        assert_same_tree(content, tmp_path / "lt" / name)
    finally:
        for peer in (seeder, downloader):
            if peer is not None:
                peer.close()
        status = daemon.stop()
    log = assert_stopped_cleanly(daemon, status)
    wanted = sum(LAYOUTS[layout][0].values())
    assert uploaded_bytes(log, name) >= wanted
