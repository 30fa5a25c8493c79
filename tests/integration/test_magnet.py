"""BEP 9 with real libtorrent peers on loopback: magnets in both directions.

A libtorrent client holding only the magnet downloads from a bt seeder (bt
serves the metadata).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from swarm import BtDaemon, OpenTracker, libtorrent_settings, wait_for
from test_download import assert_same_tree, nested_files, tracked_torrent
from test_seeding import bt_seeder, stop_cleanly

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 90


def peer_port(daemon: BtDaemon) -> int:
    daemon.wait_for_log("listening for peers on port", 30)
    match = re.search(r"listening for peers on port (\d+)", daemon.log())
    assert match
    return int(match.group(1))


class LibtorrentMagnet:
    """A libtorrent session given only a magnet link."""

    def __init__(self, uri: str, save_path: Path) -> None:
        import libtorrent as lt

        save_path.mkdir(parents=True, exist_ok=True)
        self.session = lt.session(libtorrent_settings())
        params = lt.parse_magnet_uri(uri)
        params.save_path = str(save_path)
        self.handle = self.session.add_torrent(params)

    def close(self) -> None:
        self.session.remove_torrent(self.handle)
        del self.handle
        del self.session


@pytest.mark.parametrize("layout", ["single", "multi"])
def test_libtorrent_with_only_the_magnet_downloads_from_a_bt_seeder(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object, layout: str
) -> None:
    if layout == "single":
        files, name = {"image.iso": 2 * 1024 * 1024 + 4321}, "image.iso"
    else:
        files, name = nested_files(), "album"
    torrent = tracked_torrent(tmp_path, opentracker, files, name)
    meta = parse_metainfo(torrent.read_bytes())
    seeder = bt_seeder(tmp_path, torrent, tmp_path / "seed", "bt-seed")
    client = None
    try:
        # No tracker in the magnet: only bt's address, so the metadata must come from bt.
        uri = f"magnet:?xt=urn:btih:{meta.info_hash.hex()}&x.pe=127.0.0.1:{peer_port(seeder)}"
        client = LibtorrentMagnet(uri, tmp_path / "lt")
        wait_for(lambda: client.handle.status().has_metadata, TIMEOUT, "libtorrent's metadata")
        wait_for(lambda: client.handle.status().is_seeding, TIMEOUT, "libtorrent to finish")
        assert_same_tree(tmp_path / "seed" / name, tmp_path / "lt" / name)
    finally:
        if client is not None:
            client.close()
        stop_cleanly(seeder)
