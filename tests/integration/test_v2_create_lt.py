"""``bt create --format v2|hybrid`` against libtorrent, the reference.

libtorrent loads what bt made with the info-hashes bt states, each file's
merkle root equals the one libtorrent computes itself for the same files and
piece size, and a libtorrent downloader gets the files from a bt seeder
started on the folder the torrent was made from (bt rechecks it as v2/hybrid).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, free_port, wait_for
from test_create_swarm import assert_stopped_cleanly, bt_create
from test_download import assert_same_tree
from test_magnets_lt import peer_port
from v2swarm import LAYOUTS, PIECE, V2Library, libtorrent_hashes, libtorrent_roots

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 45


def created(tmp_path: Path, content: Path, fmt: str) -> bytes:
    output = tmp_path / f"{content.name}.{fmt}.torrent"
    # bt create wants a tracker: a free port nobody listens on (libtorrent dials bt).
    tracker = f"http://127.0.0.1:{free_port()}/announce"
    made = bt_create(
        "create", str(content), "--format", fmt, "--piece-size", f"{PIECE // 1024}K",
        "--tracker", tracker, "--output", str(output),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return output.read_bytes()


def check_against_libtorrent(ours: bytes, reference: bytes, fmt: str) -> None:
    """The info-hashes libtorrent reads agree with bt's, and so do all roots."""
    meta = parse_metainfo(ours)
    hashes = libtorrent_hashes(ours)
    assert meta.format == fmt
    assert meta.info_hash_v2 == hashes.v2
    assert meta.info_hash_v1 == hashes.v1
    if fmt == "v2":
        assert hashes.v1 is None and meta.piece_hashes == ()
    else:
        assert hashes.v1 is not None and meta.info_hash == hashes.v1
    theirs = libtorrent_roots(reference)
    assert libtorrent_roots(ours) == theirs
    bt_roots = {
        "/".join(entry.path): entry.pieces_root
        for entry in meta.files
        if not entry.padding and entry.length
    }
    assert bt_roots == theirs


@pytest.mark.parametrize("fmt", ["v2", "hybrid"])
def test_bt_created_torrent_loads_in_libtorrent_and_seeds_to_it(
    tmp_path: Path, libtorrent: object, v2_library: V2Library, fmt: str
) -> None:
    torrents = {}
    for layout in LAYOUTS:
        content = v2_library.content(layout)
        torrents[layout] = created(tmp_path, content, fmt)
        check_against_libtorrent(torrents[layout], v2_library.torrent(fmt, layout), fmt)

    content = v2_library.content("multi")
    torrent = tmp_path / "multi.torrent"
    torrent.write_bytes(torrents["multi"])
    work = tmp_path / "bt"
    work.mkdir()
    seeder = BtDaemon(work, torrent, content.parent)
    downloader = None
    try:
        seeder.start()
        seeder.wait_for_log("pieces already on disk", TIMEOUT)
        (tmp_path / "lt").mkdir()
        downloader = LibtorrentPeer(torrent.read_bytes(), tmp_path / "lt")
        downloader.handle.connect_peer(("127.0.0.1", peer_port(seeder)))
        handle = downloader.handle
        wait_for(lambda: handle.status().is_seeding, TIMEOUT, "libtorrent to download from bt")
        assert_same_tree(content, tmp_path / "lt" / content.name)
    finally:
        if downloader is not None:
            downloader.close()
        status = seeder.stop()
    assert_stopped_cleanly(seeder, status)
