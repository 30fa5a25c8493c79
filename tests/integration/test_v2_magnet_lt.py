"""v2 magnets with a libtorrent seeder on loopback (BEP 9 + BEP 52).

bt given only ``xt=urn:btmh:1220<v2 hash>`` (and, for a hybrid, both ``btih``
and ``btmh``) and the seeder's address fetches the info dict by ut_metadata,
the piece layers by hash requests, then the files; what it keeps in its state
folder is a complete .torrent (with ``piece layers``) with the right hashes.
The other way, a libtorrent given only the magnet gets all of that from a bt
seeder: bt serves the metadata and answers libtorrent's piece-layer requests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from swarm import LibtorrentPeer, wait_for
from test_create_swarm import assert_stopped_cleanly
from test_download import assert_same_tree
from test_magnets_lt import LibtorrentMagnet, magnet_daemon, peer_port
from test_seeding import bt_seeder
from v2swarm import Hashes, RequestLog, V2Library, libtorrent_hashes, session_counter

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 45


def magnet(hashes: Hashes, name: str, port: int) -> str:
    """btmh alone for a v2-only torrent, btih and btmh for a hybrid; the peer by x.pe."""
    topics = [f"xt=urn:btmh:1220{hashes.v2.hex()}"]
    if hashes.v1 is not None:
        topics.insert(0, f"xt=urn:btih:{hashes.v1.hex()}")
    return f"magnet:?{'&'.join(topics)}&dn={name}&x.pe=127.0.0.1:{port}"


@pytest.mark.parametrize("fmt", ["v2", "hybrid"])
def test_bt_downloads_a_v2_magnet_from_a_libtorrent_seeder(
    tmp_path: Path, libtorrent: object, v2_library: V2Library, fmt: str
) -> None:
    content = v2_library.content("multi")  # big.bin and mid.bin have piece layers
    torrent = v2_library.torrent(fmt, "multi")
    hashes = libtorrent_hashes(torrent)
    seeder = LibtorrentPeer(torrent, content.parent)
    daemon = None
    try:
        seeder.wait_checked()
        daemon = magnet_daemon(tmp_path, magnet(hashes, content.name, seeder.port))
        daemon.wait_for_log(f"{content.name}: metadata fetched", TIMEOUT)
        daemon.wait_for_log(f"{content.name}: download complete", TIMEOUT)
        assert_same_tree(content, daemon.download_dir / content.name)
        # The piece layers came from libtorrent's answers to bt's hash requests.
        assert session_counter(seeder.session, "ses.num_outgoing_hashes") >= 1
    finally:
        seeder.close()
        status = daemon.stop() if daemon is not None else None
    assert daemon is not None
    assert_stopped_cleanly(daemon, status)
    [saved] = (daemon.state_dir / "torrents").glob("*.torrent")
    meta = parse_metainfo(saved.read_bytes())  # refuses a v2 torrent without its layers
    assert (meta.format, meta.info_hash_v1, meta.info_hash_v2) == (fmt, hashes.v1, hashes.v2)
    assert len(meta.piece_layers) == 2  # big.bin and mid.bin


@pytest.mark.parametrize("fmt", ["v2", "hybrid"])
def test_libtorrent_with_only_a_v2_magnet_downloads_from_a_bt_seeder(
    tmp_path: Path, libtorrent: object, v2_library: V2Library, fmt: str
) -> None:
    content = v2_library.content("multi")
    torrent = tmp_path / "tree.torrent"
    torrent.write_bytes(v2_library.torrent(fmt, "multi"))
    hashes = libtorrent_hashes(torrent.read_bytes())
    seeder = bt_seeder(tmp_path, torrent, content.parent, "bt-seed")
    client = None
    try:
        client = LibtorrentMagnet(magnet(hashes, content.name, peer_port(seeder)), tmp_path / "lt")
        answers = RequestLog(client)
        handle = client.handle
        wait_for(lambda: handle.status().has_metadata, TIMEOUT, "libtorrent's metadata from bt")
        wait_for(lambda: handle.status().is_seeding, TIMEOUT, "libtorrent to download from bt")
        assert_same_tree(content, tmp_path / "lt" / content.name)
        if fmt == "v2":  # (a hybrid may complete over v1, SHA-1 only)
            # libtorrent can check a whole file against its root without the piece
            # layer, so only its log shows that bt answered its hash requests.
            answers.collect()
            assert answers.hashes_received >= 1, "bt answered no hash request of libtorrent"
    finally:
        if client is not None:
            client.close()
        status = seeder.stop()
    assert_stopped_cleanly(seeder, status)
