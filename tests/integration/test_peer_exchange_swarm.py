"""BEP 11 with real libtorrent peers: bt learns a peer it could find no other way.

The seeder S has no tracker and no extensions plugin (it never announces,
never dials, never gossips); the leecher P knows S (told with connect_peer)
and announces to the tracker, the only one the tracker knows. bt, given the
tracker, finds P; only P's ut_pex can name S, and only S has the whole file.
P downloads slowly (a per-torrent limit), so it stays a leecher connected to
S for the whole test: libtorrent closes seed-to-seed connections and then
would have no S to tell of. libtorrent sends its first ut_pex 1-3 s after the
extended handshake and then once a minute, so the test allows 90 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from swarm import LOOPBACK, BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_download import assert_same_tree
from torrents import libtorrent_torrent, write_files

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PIECE = 64 * 1024
SIZE = 4 * 1024 * 1024 + 4321
PEX_TIMEOUT = 90


def connected_ports(peer: LibtorrentPeer) -> set[int]:
    return {info.ip[1] for info in peer.handle.get_peer_info()}


def test_bt_learns_a_seeder_only_a_libtorrent_peer_knows_through_its_ut_pex(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    name = "share.bin"
    write_files(tmp_path / "seed", {name: SIZE})
    untracked = libtorrent_torrent(tmp_path / "seed" / name, PIECE)
    meta = parse_metainfo(untracked)
    opentracker.start([meta.info_hash])
    torrent = tmp_path / f"{name}.torrent"
    torrent.write_bytes(
        libtorrent_torrent(tmp_path / "seed" / name, PIECE, tracker=opentracker.announce_url)
    )
    assert parse_metainfo(torrent.read_bytes()).info_hash == meta.info_hash

    seeder = LibtorrentPeer(untracked, tmp_path / "seed", plugins=False)
    (tmp_path / "p").mkdir()
    middle = LibtorrentPeer(torrent.read_bytes(), tmp_path / "p")
    daemon = None
    try:
        seeder.wait_checked()
        middle.handle.set_download_limit(16 * 1024)  # ~4 minutes for the file: it stays a leecher
        middle.handle.connect_peer((LOOPBACK, seeder.port))
        wait_for(lambda: seeder.port in connected_ports(middle), 30, "P to connect to S")
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "P at the tracker")
        (tmp_path / "bt").mkdir()
        daemon = BtDaemon(
            tmp_path / "bt", torrent, tmp_path / "bt" / "downloads", ("--log-level", "debug")
        )
        daemon.start()
        # Only an outgoing connection names S by its listen port: bt dialled it.
        daemon.wait_for_log(f"connected to ('{LOOPBACK}', {seeder.port})", PEX_TIMEOUT)
        daemon.wait_for_log(f"{name}: download complete", PEX_TIMEOUT)
        assert_same_tree(tmp_path / "seed" / name, daemon.download_dir / name)
        assert not middle.handle.status().is_seeding, "P could not have served the whole file"
    finally:
        log = daemon.log() if daemon is not None else ""
        if daemon is not None:
            daemon.stop()
        middle.close()
        seeder.close()
    assert "Traceback" not in log and "Unhandled" not in log


def test_libtorrent_peers_learn_each_other_from_a_bt_seeders_ut_pex(
    tmp_path: Path, libtorrent: object
) -> None:
    """Two libtorrent leechers that know only bt (each dialled it) and no tracker: bt's
    ut_pex names each to the other by its listen port (the ``p`` of its extended
    handshake), and one of them dials the other."""
    name = "share.bin"
    write_files(tmp_path / "seed", {name: SIZE})
    untracked = libtorrent_torrent(tmp_path / "seed" / name, PIECE)
    (tmp_path / "bt").mkdir()
    torrent = tmp_path / f"{name}.torrent"
    torrent.write_bytes(untracked)
    daemon = BtDaemon(tmp_path / "bt", torrent, tmp_path / "seed", ("--log-level", "debug"))
    leechers: list[LibtorrentPeer] = []
    try:
        daemon.start()
        daemon.wait_for_log("listening for peers on port", 30)
        daemon.wait_for_log("pieces already on disk", 30)
        port = int(daemon.log().split("listening for peers on port ")[1].split()[0])
        for number in (1, 2):
            (tmp_path / f"l{number}").mkdir()
            leecher = LibtorrentPeer(untracked, tmp_path / f"l{number}")
            leecher.handle.set_download_limit(16 * 1024)  # they stay leechers, who want peers
            leecher.handle.connect_peer((LOOPBACK, port))
            leechers.append(leecher)
            wait_for(lambda: port in connected_ports(leechers[-1]), 30, f"L{number} to reach bt")
        first, second = leechers
        wait_for(
            lambda: second.port in connected_ports(first) or first.port in connected_ports(second),
            PEX_TIMEOUT,
            f"a leecher to dial the other\n{daemon.log()[-3000:]}",
        )
    finally:
        for leecher in leechers:
            leecher.close()
        log = daemon.log()
        daemon.stop()
    assert "Traceback" not in log and "Unhandled" not in log
