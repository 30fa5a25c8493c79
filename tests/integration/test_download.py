"""bt downloads from real libtorrent seeders found through a real tracker (opentracker).

Each test runs ``twistd -n bittorrent`` as a subprocess, exactly as a user
would, and checks the files it leaves are byte-identical to the originals.
"""

from __future__ import annotations

import filecmp
import signal
from pathlib import Path

import pytest
from corrupt_seeder import CorruptSeeder
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from torrents import libtorrent_torrent, write_files

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PIECE = 64 * 1024
DOWNLOAD_TIMEOUT = 90


def assert_same_tree(expected: Path, actual: Path) -> None:
    if expected.is_file():
        assert filecmp.cmp(expected, actual, shallow=False), actual
        return
    expected_files = sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file())
    actual_files = sorted(p.relative_to(actual) for p in actual.rglob("*") if p.is_file())
    assert actual_files == expected_files
    for relative in expected_files:
        assert filecmp.cmp(expected / relative, actual / relative, shallow=False), relative


def wait_for_same_tree(expected: Path, actual: Path, timeout: float = 10.0) -> None:
    """``assert_same_tree`` once libtorrent's files are all there: it reports seeding
    when every piece passed its hash, which can be before its disk thread has written
    the last of them (a 77-byte file was missing once in CI under load)."""

    def same() -> bool:
        try:
            assert_same_tree(expected, actual)
        except (AssertionError, FileNotFoundError):
            return False
        return True

    try:
        wait_for(same, timeout, f"{actual} to match {expected}")
    except TimeoutError:
        assert_same_tree(expected, actual)  # says what differs (unless it just caught up)


def run_download(tmp_path: Path, torrent: Path, expected: Path, name: str) -> BtDaemon:
    daemon = BtDaemon(tmp_path / "bt", torrent, tmp_path / "bt" / "downloads")
    (tmp_path / "bt").mkdir(exist_ok=True)
    daemon.start()
    try:
        daemon.wait_for_log("download complete", DOWNLOAD_TIMEOUT)
        assert_same_tree(expected, daemon.download_dir / name)
    finally:
        status = daemon.stop()
    # twistd re-raises SIGTERM after a clean stop; anything else is a crash.
    assert status == -signal.SIGTERM, daemon.log()[-3000:]
    assert "Traceback" not in daemon.log() and "Unhandled" not in daemon.log()
    return daemon


def started(tracker: OpenTracker, info_hash: bytes, peers: int) -> None:
    wait_for(lambda: scrape_counts(tracker, info_hash) >= peers, 30, "peers at the tracker")


def test_single_file_from_a_libtorrent_seeder(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    size = 3 * 1024 * 1024 + 12_345  # last piece shorter than the others
    torrent = tracked_torrent(tmp_path, opentracker, {"big.bin": size}, "big.bin")
    meta = parse_metainfo(torrent.read_bytes())
    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed")
    try:
        started(opentracker, meta.info_hash, 1)
        daemon = run_download(tmp_path, torrent, tmp_path / "seed" / "big.bin", "big.bin")
        assert "big.bin: download complete" in daemon.log()
    finally:
        seeder.close()


def nested_files() -> dict[str, int]:
    return {
        "album/cover.jpg": 150_001,
        "album/disc1/01.flac": 1_000_003,
        "album/disc1/empty.txt": 0,
        "album/disc2/deeper/02.flac": 700_000,
        "album/notes.txt": 999,
    }


def tracked_torrent(
    tmp_path: Path,
    tracker: OpenTracker,
    files: dict[str, int],
    name: str,
    piece_length: int = PIECE,
) -> Path:
    """Content (in tmp_path/seed) and a .torrent announcing to the running ``tracker``."""
    seed_dir = tmp_path / "seed"
    write_files(seed_dir, files)
    provisional = libtorrent_torrent(seed_dir / name, piece_length)
    tracker.start([parse_metainfo(provisional).info_hash])
    torrent = tmp_path / f"{name}.torrent"
    announced = libtorrent_torrent(seed_dir / name, piece_length, tracker=tracker.announce_url)
    torrent.write_bytes(announced)
    return torrent


def test_nested_multi_file_with_empty_file_and_short_last_piece(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    torrent = tracked_torrent(tmp_path, opentracker, nested_files(), "album")
    meta = parse_metainfo(torrent.read_bytes())
    assert meta.total_length % PIECE and any(f.length == 0 for f in meta.files)
    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed")
    try:
        started(opentracker, meta.info_hash, 1)
        run_download(tmp_path, torrent, tmp_path / "seed" / "album", "album")
    finally:
        seeder.close()


def corrupt_pieces(path: Path, pieces: list[int], base_offset: int, total: int) -> None:
    """Overwrite the given pieces of the torrent byte stream inside one file."""
    with open(path, "r+b") as handle:
        for index in pieces:
            start = index * PIECE - base_offset
            size = min(PIECE, total - index * PIECE)
            handle.seek(start)
            handle.write(b"\x00" * size)


def test_pieces_come_from_two_partial_seeders(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    size = 2 * 1024 * 1024 + 777
    torrent = tracked_torrent(tmp_path, opentracker, {"half.bin": size}, "half.bin")
    meta = parse_metainfo(torrent.read_bytes())
    original = tmp_path / "seed" / "half.bin"
    peers = []
    for parity in (0, 1):
        folder = tmp_path / f"partial{parity}"
        folder.mkdir()
        copy = folder / "half.bin"
        copy.write_bytes(original.read_bytes())
        # Each seeder lacks every other piece: neither alone can complete the download.
        missing = [i for i in range(meta.num_pieces) if i % 2 == parity]
        corrupt_pieces(copy, missing, 0, size)
        peers.append(LibtorrentPeer(torrent.read_bytes(), folder, upload_only=True))
    try:
        for peer in peers:
            peer.wait_checked()
            assert 0 < peer.handle.status().num_pieces < meta.num_pieces
        started(opentracker, meta.info_hash, 2)
        run_download(tmp_path, torrent, original, "half.bin")
        assert all(p.handle.status().total_payload_upload > 0 for p in peers)
    finally:
        for peer in peers:
            peer.close()


def test_corrupting_seeder_is_banned_and_download_completes(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    size = 2 * 1024 * 1024
    torrent = tracked_torrent(tmp_path, opentracker, {"data.bin": size}, "data.bin")
    meta = parse_metainfo(torrent.read_bytes())
    data = (tmp_path / "seed" / "data.bin").read_bytes()
    liar = CorruptSeeder(meta.info_hash, data, PIECE, bad_pieces=range(0, meta.num_pieces, 2))
    liar.start()
    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed")
    try:
        opentracker.announce(meta.info_hash, liar.peer_id, liar.port)
        started(opentracker, meta.info_hash, 2)
        daemon = run_download(tmp_path, torrent, tmp_path / "seed" / "data.bin", "data.bin")
        assert liar.bad_blocks_served > 0, "the test needs bt to have asked the liar"
        log = daemon.log()
        assert "failed its hash check" in log
        assert f"banned peer 127.0.0.1:{liar.port}" in log
    finally:
        seeder.close()
        liar.stop()
