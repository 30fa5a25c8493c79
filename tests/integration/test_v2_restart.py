"""A v2-only torrent across a daemon restart: its resume state is keyed by the v2
info-hash, and the restart resumes from it without hashing the data again.

``twistd -n bittorrent`` downloads a libtorrent-made v2-only single-file torrent
(whose last piece ends in virtual padding) from a rate-limited libtorrent seeder,
is stopped with SIGTERM midway and restarted.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_download import assert_same_tree
from torrents import libtorrent_v2_torrent, pseudo_random_bytes
from v2swarm import libtorrent_hashes, with_announce

from bt.metainfo import Metainfo, parse_metainfo
from bt.storage.resume import ResumeState

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PIECE = 64 * 1024
SIZE = 48 * PIECE + 5000  # the last piece: 5000 bytes, then padding (never on disk)
RATE = 512 * 1024  # the seeder's upload limit: the download takes about 6 s
TIMEOUT = 90


def pieces_on_disk(target: Path, content: bytes) -> list[int]:
    """Pieces whose bytes on disk are the content's (what a resume may claim)."""
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return []
    return [
        index
        for index in range(-(-SIZE // PIECE))
        if data[index * PIECE : (index + 1) * PIECE] == content[index * PIECE : (index + 1) * PIECE]
    ]


def stop_cleanly(bt: BtDaemon) -> str:
    status = bt.stop()
    log = bt.log()
    assert status == -signal.SIGTERM, log[-3000:]
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
    return log


def test_a_v2_torrent_resumes_after_a_restart_without_rehashing(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    content = pseudo_random_bytes(SIZE, seed=16)
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "solo.bin").write_bytes(content)
    plain = libtorrent_v2_torrent(tmp_path / "seed" / "solo.bin", PIECE)
    hashes = libtorrent_hashes(plain)
    opentracker.start(hashes.wire)
    torrent = tmp_path / "solo.torrent"
    torrent.write_bytes(with_announce(plain, opentracker.announce_url))
    meta: Metainfo = parse_metainfo(torrent.read_bytes())
    assert meta.format == "v2" and meta.info_hash_v2 == hashes.v2

    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed", upload_rate_limit=RATE)
    work = tmp_path / "bt"
    work.mkdir()
    bt = BtDaemon(work, torrent, work / "downloads")
    target = bt.download_dir / "solo.bin"
    try:
        seeder.wait_checked()
        wait_for(
            lambda: any(scrape_counts(opentracker, h) for h in hashes.wire),
            30,
            "libtorrent at the tracker",
        )
        bt.start()
        wait_for(lambda: len(pieces_on_disk(target, content)) >= 8, TIMEOUT, "the download")
        stop_cleanly(bt)
        resume = work / "state" / "resume" / f"{hashes.v2.hex()}.resume"
        state = ResumeState.decode(resume.read_bytes(), hashes.v2, meta.num_pieces)
        assert 0 < state.have.count() < meta.num_pieces
        assert set(state.have) <= set(pieces_on_disk(target, content))

        bt.logfile.rename(work / "run-0.log")
        bt.start()
        bt.wait_for_log("solo.bin: download complete", TIMEOUT)
        log = stop_cleanly(bt)
    finally:
        seeder.close()
    assert f"resumed {state.have.count()} verified pieces from saved state" in log, log[-3000:]
    assert "checking" not in log, log[-3000:]
    assert target.stat().st_size == SIZE, "the file is its exact length, not padded"
    assert_same_tree(tmp_path / "seed" / "solo.bin", target)
