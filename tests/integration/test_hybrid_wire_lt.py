"""A hybrid torrent (BEP 52) between bt and libtorrent on loopback: both hashes on the wire.

bt announces under both info-hashes and dials with the v1 hash and the v2 bit,
which libtorrent answers with the v2 hash; libtorrent dialling bt is answered
the same way. Either side downloads from the other, byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, wait_for
from test_download import DOWNLOAD_TIMEOUT, assert_same_tree, wait_for_same_tree
from test_magnets_lt import peer_port
from test_seeding import bt_seeder, stop_cleanly
from torrents import write_files

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PIECE = 32768
FILES = {"album/one.bin": 40 * PIECE + 5, "album/two.txt": 999, "album/three.bin": 3 * PIECE}


def hybrid_torrent(tmp_path: Path, tracker: OpenTracker) -> tuple[Path, bytes]:
    """Content in tmp_path/seed and a hybrid .torrent announcing to ``tracker``."""
    import libtorrent as lt

    write_files(tmp_path / "seed", FILES)

    def made(announce: str | None) -> bytes:
        fs = lt.file_storage()
        lt.add_files(fs, str(tmp_path / "seed" / "album"))
        creator = lt.create_torrent(fs, PIECE, flags=0)
        if announce:
            creator.add_tracker(announce)
        lt.set_piece_hashes(creator, str(tmp_path / "seed"))
        return lt.bencode(creator.generate())

    meta = parse_metainfo(made(None))
    assert meta.format == "hybrid"
    tracker.start(list(meta.info_hashes))  # bt announces under both
    data = made(tracker.announce_url)
    assert parse_metainfo(data).info_hashes == meta.info_hashes
    path = tmp_path / "album.torrent"
    path.write_bytes(data)
    return path, data


def test_bt_downloads_a_hybrid_from_libtorrent(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    path, data = hybrid_torrent(tmp_path, opentracker)
    seeder = LibtorrentPeer(data, tmp_path / "seed")
    workdir = tmp_path / "bt"
    workdir.mkdir()
    daemon = BtDaemon(workdir, path, workdir / "downloads")
    try:
        seeder.wait_checked()
        daemon.start()
        daemon.wait_for_log("album: download complete", DOWNLOAD_TIMEOUT)
        assert_same_tree(tmp_path / "seed" / "album", daemon.download_dir / "album")
    finally:
        seeder.close()
        stop_cleanly(daemon)


def test_libtorrent_downloads_a_hybrid_from_bt(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    path, data = hybrid_torrent(tmp_path, opentracker)
    seeder = bt_seeder(tmp_path, path, tmp_path / "seed", "bt-seed")
    client = None
    try:
        (tmp_path / "lt").mkdir()
        client = LibtorrentPeer(data, tmp_path / "lt")
        client.handle.connect_peer(("127.0.0.1", peer_port(seeder)))
        done = lambda: client.handle.status().is_seeding  # noqa: E731
        wait_for(done, DOWNLOAD_TIMEOUT, "libtorrent to finish")
        wait_for_same_tree(tmp_path / "seed" / "album", tmp_path / "lt" / "album")
    finally:
        if client is not None:
            client.close()
        stop_cleanly(seeder)
