"""BEP 9 with real libtorrent peers on loopback: magnets in both directions.

bt given only a magnet (with ``tr=`` to opentracker, or with only ``x.pe=``)
downloads from a libtorrent seeder, or from one that dials bt while it holds a
bare magnet (only the info-hash); a libtorrent client holding only the magnet
downloads from a bt seeder (bt serves the metadata); and a bt restarted with
the magnet in its state folder serves without any other peer, its metadata
coming from that folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, libtorrent_settings, wait_for
from test_download import (
    DOWNLOAD_TIMEOUT,
    assert_same_tree,
    nested_files,
    tracked_torrent,
    wait_for_same_tree,
)
from test_seeding import bt_seeder, stop_cleanly

from bt.metainfo import Metainfo, parse_metainfo

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
    files, name = layout_files(layout)
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
        wait_for_same_tree(tmp_path / "seed" / name, tmp_path / "lt" / name)
    finally:
        if client is not None:
            client.close()
        stop_cleanly(seeder)


def layout_files(layout: str) -> tuple[dict[str, int], str]:
    if layout == "single":
        return {"image.iso": 2 * 1024 * 1024 + 4321}, "image.iso"
    return nested_files(), "album"


def libtorrent_seeder(
    tmp_path: Path, tracker: OpenTracker, layout: str
) -> tuple[str, Metainfo, LibtorrentPeer]:
    """Content of ``layout`` (in tmp_path/seed), its metainfo, and a libtorrent seeding it."""
    files, name = layout_files(layout)
    torrent = tracked_torrent(tmp_path, tracker, files, name)
    return (
        name,
        parse_metainfo(torrent.read_bytes()),
        LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed"),
    )


def magnet_daemon(tmp_path: Path, uri: str | None) -> BtDaemon:
    workdir = tmp_path / "bt"
    workdir.mkdir(exist_ok=True)
    extra = ("--torrent", uri) if uri is not None else ()
    daemon = BtDaemon(workdir, None, workdir / "downloads", extra_args=extra)
    daemon.start()
    return daemon


@pytest.mark.parametrize("layout", ["single", "multi"])
@pytest.mark.parametrize("found_by", ["tr", "x.pe"])
def test_bt_downloads_by_magnet_from_a_libtorrent_seeder(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object, layout: str, found_by: str
) -> None:
    name, meta, seeder = libtorrent_seeder(tmp_path, opentracker, layout)
    daemon = None
    try:
        seeder.wait_checked()
        uri = f"magnet:?xt=urn:btih:{meta.info_hash.hex()}&dn={name}"
        if found_by == "tr":
            uri += f"&tr={opentracker.announce_url}"
        else:
            uri += f"&x.pe=127.0.0.1:{seeder.port}"
        daemon = magnet_daemon(tmp_path, uri)
        daemon.wait_for_log(f"{name}: metadata fetched", TIMEOUT)
        daemon.wait_for_log(f"{name}: download complete", DOWNLOAD_TIMEOUT)
        assert_same_tree(tmp_path / "seed" / name, daemon.download_dir / name)
        saved = daemon.state_dir / "torrents" / f"{meta.info_hash.hex()}.torrent"
        assert parse_metainfo(saved.read_bytes()).info_hash == meta.info_hash
    finally:
        seeder.close()
        if daemon is not None:
            stop_cleanly(daemon)


def test_a_restarted_bt_serves_a_magnet_from_its_state_dir_alone(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    name, meta, seeder = libtorrent_seeder(tmp_path, opentracker, "multi")
    try:
        seeder.wait_checked()
        uri = f"magnet:?xt=urn:btih:{meta.info_hash.hex()}&x.pe=127.0.0.1:{seeder.port}"
        first = magnet_daemon(tmp_path, uri)
        try:
            first.wait_for_log(f"{name}: download complete", DOWNLOAD_TIMEOUT)
        finally:
            stop_cleanly(first)
    finally:
        seeder.close()  # from now on bt is the only peer that has anything
    (tmp_path / "bt" / "bt.log").rename(tmp_path / "bt" / "first.log")
    again = magnet_daemon(tmp_path, None)  # nothing but its state folder
    client = None
    try:
        uri = f"magnet:?xt=urn:btih:{meta.info_hash.hex()}&x.pe=127.0.0.1:{peer_port(again)}"
        client = LibtorrentMagnet(uri, tmp_path / "lt")
        wait_for(lambda: client.handle.status().is_seeding, TIMEOUT, "libtorrent to finish")
        wait_for_same_tree(tmp_path / "seed" / name, tmp_path / "lt" / name)
    finally:
        if client is not None:
            client.close()
        log = stop_cleanly(again)
    assert "fetching metadata" not in log


def test_a_magnet_posted_to_the_api_shows_before_its_metadata_then_downloads(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    name, meta, seeder = libtorrent_seeder(tmp_path, opentracker, "single")
    daemon = magnet_daemon(tmp_path, None)
    try:
        seeder.wait_checked()
        daemon.wait_for_api()
        uri = f"magnet:?xt=urn:btih:{meta.info_hash.hex()}&dn=Shown&x.pe=127.0.0.1:{seeder.port}"
        status, added = daemon.api("POST", "/api/v1/torrents", {"magnet": uri})
        assert status == 201, added
        assert (added["info_hash"], added["name"]) == (meta.info_hash.hex(), "Shown")
        assert added["state"] == "fetching metadata"
        bad_status, bad = daemon.api("POST", "/api/v1/torrents", {"magnet": "magnet:?dn=x"})
        assert bad_status == 400 and "xt" in bad["error"]["message"]
        daemon.wait_for_log(f"{name}: download complete", DOWNLOAD_TIMEOUT)
        _, listing = daemon.api("GET", "/api/v1/torrents")
        [shown] = listing["torrents"]
        assert (shown["name"], shown["progress"]) == (name, 1.0)
    finally:
        seeder.close()
        stop_cleanly(daemon)


def test_bt_fetches_a_bare_magnet_from_a_libtorrent_seeder_that_dials_it(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    name, meta, seeder = libtorrent_seeder(tmp_path, opentracker, "single")
    # Only the info-hash: no tracker, no peer. The metadata must come from who dials us.
    daemon = magnet_daemon(tmp_path, f"magnet:?xt=urn:btih:{meta.info_hash.hex()}")
    try:
        seeder.wait_checked()
        daemon.wait_for_log("fetching metadata", TIMEOUT)
        port = peer_port(daemon)

        def dialled_and_fetched() -> bool:
            if "metadata fetched" in daemon.log():
                return True
            seeder.handle.connect_peer(("127.0.0.1", port))
            return False

        wait_for(dialled_and_fetched, TIMEOUT, "bt to fetch the metadata", step=1.0)
        daemon.wait_for_log(f"{name}: download complete", DOWNLOAD_TIMEOUT)
        assert_same_tree(tmp_path / "seed" / name, daemon.download_dir / name)
    finally:
        seeder.close()
        stop_cleanly(daemon)
