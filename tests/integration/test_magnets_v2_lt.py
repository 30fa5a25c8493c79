"""BEP 52 magnets with real libtorrent peers on loopback: metadata, then piece layers.

bt given a v2 (``urn:btmh``) or hybrid magnet fetches the info dictionary from
a libtorrent seeder, then the piece layers by hash requests (chunks of 512
proved against each file's root, as libtorrent asks them itself), and saves a
complete .torrent; the hybrid one downloads too. A libtorrent client given only
a v2 magnet fetches the metadata and the piece layers from a bt seeder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from swarm import LibtorrentPeer, OpenTracker, wait_for
from test_download import DOWNLOAD_TIMEOUT, assert_same_tree, wait_for_same_tree
from test_magnets_lt import TIMEOUT, LibtorrentMagnet, magnet_daemon, peer_port
from test_seeding import bt_seeder, stop_cleanly
from torrents import libtorrent_v2_torrent, write_files

from bt.metainfo import parse_metainfo

#: Whether this bt verifies v2 pieces (bt.storage.verifier, from branch v2-verify).
V2_VERIFIER = importlib.util.find_spec("bt.storage.verifier") is not None

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

#: 16 KiB pieces: "big.bin" has 600 of them (two chunks of piece-layer hashes).
PIECE = 16384
FILES = {"big.bin": 600 * PIECE - 1234, "mid.bin": 5 * PIECE + 9, "tiny.txt": 77}


def _content(tmp_path: Path, *, hybrid: bool) -> tuple[Path, bytes]:
    write_files(tmp_path / "seed", {f"album/{name}": size for name, size in FILES.items()})
    torrent = libtorrent_v2_torrent(tmp_path / "seed" / "album", PIECE, hybrid=hybrid)
    path = tmp_path / "album.torrent"
    path.write_bytes(torrent)
    return path, torrent


def hash_requests(session: object) -> int:
    """Hash requests a libtorrent session sent (its session stats counter)."""
    import libtorrent as lt

    session.post_session_stats()  # type: ignore[attr-defined]
    for _ in range(50):
        for alert in session.pop_alerts():  # type: ignore[attr-defined]
            if isinstance(alert, lt.session_stats_alert):
                return int(alert.values["ses.num_outgoing_hash_request"])
        session.wait_for_alert(100)  # type: ignore[attr-defined]
    raise AssertionError("no session stats from libtorrent")


@pytest.mark.parametrize("kind", ["v2", "hybrid"])
def test_bt_fetches_a_v2_magnets_piece_layers_from_libtorrent(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object, kind: str
) -> None:
    _, torrent = _content(tmp_path, hybrid=kind == "hybrid")
    meta = parse_metainfo(torrent)
    assert meta.info_hash_v2 is not None and len(meta.piece_layers) == 2
    seeder = LibtorrentPeer(torrent, tmp_path / "seed")
    daemon = None
    try:
        seeder.wait_checked()
        uri = f"magnet:?xt=urn:btmh:1220{meta.info_hash_v2.hex()}&dn=album"
        if kind == "hybrid":
            uri += f"&xt=urn:btih:{meta.info_hash.hex()}"
        daemon = magnet_daemon(tmp_path, uri + f"&x.pe=127.0.0.1:{seeder.port}")
        daemon.wait_for_log("album: metadata fetched", TIMEOUT)
        daemon.wait_for_log("album: fetching 3 piece-layer chunk(s)", TIMEOUT)
        saved = daemon.state_dir / "torrents" / f"{meta.info_hash.hex()}.torrent"
        wait_for(saved.exists, TIMEOUT, "the complete .torrent in the state folder")
        complete = parse_metainfo(saved.read_bytes())  # every piece layer required
        assert complete.info_hash == meta.info_hash
        assert dict(complete.piece_layers) == dict(meta.piece_layers)
        if kind == "hybrid" or V2_VERIFIER:  # a v2-only one needs the merkle verifier
            daemon.wait_for_log("album: download complete", DOWNLOAD_TIMEOUT)
            assert_same_tree(tmp_path / "seed" / "album", daemon.download_dir / "album")
    finally:
        seeder.close()
        if daemon is not None:
            stop_cleanly(daemon)


def test_libtorrent_with_only_a_v2_magnet_gets_piece_layers_from_a_bt_seeder(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    path, torrent = _content(tmp_path, hybrid=True)
    meta = parse_metainfo(torrent)
    assert meta.info_hash_v2 is not None
    seeder = bt_seeder(tmp_path, path, tmp_path / "seed", "bt-seed")
    client = None
    try:
        port = peer_port(seeder)
        uri = f"magnet:?xt=urn:btmh:1220{meta.info_hash_v2.hex()}&x.pe=127.0.0.1:{port}"
        client = LibtorrentMagnet(uri, tmp_path / "lt")
        wait_for(lambda: client.handle.status().has_metadata, TIMEOUT, "libtorrent's metadata")
        finished = lambda: client.handle.status().is_seeding  # noqa: E731
        wait_for(finished, DOWNLOAD_TIMEOUT, "libtorrent to finish")
        wait_for_same_tree(tmp_path / "seed" / "album", tmp_path / "lt" / "album")
        assert hash_requests(client.session) == 3  # the piece layers, from bt, at once
    finally:
        if client is not None:
            client.close()
        stop_cleanly(seeder)
