"""v2 magnets with a libtorrent seeder on loopback (BEP 9 + BEP 52).

bt given only ``xt=urn:btmh:1220<v2 hash>`` (and, for a hybrid, both ``btih``
and ``btmh``) and the seeder's address fetches the info dict by ut_metadata,
the piece layers by hash requests, then the files; what it keeps in its state
folder is a complete .torrent (with ``piece layers``) with the right hashes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from swarm import LibtorrentPeer
from test_create_swarm import assert_stopped_cleanly
from test_download import assert_same_tree
from test_magnets_lt import magnet_daemon
from v2swarm import V2Library, libtorrent_hashes

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 45


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
        topics = [f"xt=urn:btmh:1220{hashes.v2.hex()}"]
        if hashes.v1 is not None:
            topics.insert(0, f"xt=urn:btih:{hashes.v1.hex()}")
        uri = f"magnet:?{'&'.join(topics)}&dn={content.name}&x.pe=127.0.0.1:{seeder.port}"
        daemon = magnet_daemon(tmp_path, uri)
        daemon.wait_for_log(f"{content.name}: metadata fetched", TIMEOUT)
        daemon.wait_for_log(f"{content.name}: download complete", TIMEOUT)
        assert_same_tree(content, daemon.download_dir / content.name)
    finally:
        seeder.close()
        status = daemon.stop() if daemon is not None else None
    assert daemon is not None
    assert_stopped_cleanly(daemon, status)
    [saved] = (daemon.state_dir / "torrents").glob("*.torrent")
    meta = parse_metainfo(saved.read_bytes())  # refuses a v2 torrent without its layers
    assert (meta.format, meta.info_hash_v1, meta.info_hash_v2) == (fmt, hashes.v1, hashes.v2)
    assert len(meta.piece_layers) == 2  # big.bin and mid.bin
