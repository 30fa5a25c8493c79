"""Restarts, crashes and full disks never lose verified data nor invent it.

Each test runs ``twistd -n bittorrent`` as a subprocess against a slow libtorrent
seeder (rate-limited, so a download takes a few seconds and can be interrupted).
"""

from __future__ import annotations

import hashlib
import re
import resource
import signal
from pathlib import Path

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_download import assert_same_tree, tracked_torrent

from bt.metainfo import Metainfo, parse_metainfo
from bt.storage.resume import ResumeState

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SIZE = 4 * 1024 * 1024
RATE = 512 * 1024  # the seeder's upload limit: the download takes about 8 s
TIMEOUT = 90


def slow_swarm(tmp_path: Path, tracker: OpenTracker) -> tuple[Path, Metainfo, LibtorrentPeer]:
    torrent = tracked_torrent(tmp_path, tracker, {"data.bin": SIZE}, "data.bin")
    meta = parse_metainfo(torrent.read_bytes())
    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed", upload_rate_limit=RATE)
    wait_for(lambda: scrape_counts(tracker, meta.info_hash) >= 1, 30, "the seeder at the tracker")
    return torrent, meta, seeder


def daemon(tmp_path: Path, torrent: Path, **kwargs: object) -> BtDaemon:
    workdir = tmp_path / "bt"
    workdir.mkdir(exist_ok=True)
    return BtDaemon(workdir, torrent, workdir / "downloads", **kwargs)  # type: ignore[arg-type]


def resume_file(bt: BtDaemon, meta: Metainfo) -> Path:
    return bt.workdir / "state" / "resume" / f"{meta.info_hash.hex()}.resume"


def valid_pieces(path: Path, meta: Metainfo) -> list[int]:
    """Pieces whose bytes on disk match their hash (what a restart may keep)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    valid = []
    for index, expected in enumerate(meta.piece_hashes):
        start = index * meta.piece_length
        piece = data[start : start + meta.piece_size(index)]
        if hashlib.sha1(piece).digest() == expected:
            valid.append(index)
    return valid


def saved_state(bt: BtDaemon, meta: Metainfo) -> ResumeState:
    """The resume state on disk, checked to claim only pieces whose bytes are really there."""
    data = resume_file(bt, meta).read_bytes()
    state = ResumeState.decode(data, meta.info_hash, meta.num_pieces)
    assert set(state.have) <= set(valid_pieces(bt.download_dir / "data.bin", meta))
    return state


def restart_to_completion(bt: BtDaemon) -> None:
    bt.logfile.rename(bt.workdir / f"run-{len(list(bt.workdir.glob('run-*')))}.log")
    bt.start()
    bt.wait_for_log("data.bin: download complete", TIMEOUT)
    stop_cleanly(bt)


def stop_cleanly(bt: BtDaemon) -> None:
    status = bt.stop()
    assert status == -signal.SIGTERM, bt.log()[-3000:]
    assert "Traceback" not in bt.log(), bt.log()[-3000:]


def test_kill_9_halfway_then_restart_completes_without_refetching_much(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    torrent, meta, seeder = slow_swarm(tmp_path, opentracker)
    try:
        bt = daemon(tmp_path, torrent)
        bt.start()
        target = bt.download_dir / "data.bin"
        wait_for(
            lambda: len(valid_pieces(target, meta)) >= 0.6 * meta.num_pieces,
            TIMEOUT,
            "60% of the pieces on disk",
        )
        bt.kill()
        assert "download complete" not in bt.log(), "the crash must come mid-download"
        restart_to_completion(bt)
        assert_same_tree(tmp_path / "seed" / "data.bin", target)
        kept = re.search(r"(\d+) of \d+ pieces already on disk", bt.log())
        assert kept, bt.log()[-2000:]
        refetched = (meta.num_pieces - int(kept.group(1))) * meta.piece_length
        assert refetched < SIZE / 2
    finally:
        seeder.close()


def test_sigterm_saves_state_and_the_restart_does_not_rehash(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    torrent, meta, seeder = slow_swarm(tmp_path, opentracker)
    try:
        bt = daemon(tmp_path, torrent)
        bt.start()
        wait_for(
            lambda: len(valid_pieces(bt.download_dir / "data.bin", meta)) >= 8,
            TIMEOUT,
            "the download to be under way",
        )
        stop_cleanly(bt)
        state = saved_state(bt, meta)
        assert 0 < state.have.count() < meta.num_pieces

        restart_to_completion(bt)
        log = bt.log()
        assert f"resumed {state.have.count()} verified pieces from saved state" in log
        assert "checking" not in log
        assert_same_tree(tmp_path / "seed" / "data.bin", bt.download_dir / "data.bin")
    finally:
        seeder.close()


def test_a_changed_file_makes_the_resume_state_stale(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    torrent, meta, seeder = slow_swarm(tmp_path, opentracker)
    try:
        bt = daemon(tmp_path, torrent)
        bt.start()
        bt.wait_for_log("data.bin: download complete", TIMEOUT)
        stop_cleanly(bt)
        data = bt.download_dir / "data.bin"
        with open(data, "r+b") as handle:  # damage piece 0 behind bt's back
            handle.write(b"\xff" * 100)
        restart_to_completion(bt)
        log = bt.log()
        assert "data.bin changed since the resume state was saved" in log
        assert f"{meta.num_pieces - 1} of {meta.num_pieces} pieces already on disk" in log
        assert_same_tree(tmp_path / "seed" / "data.bin", data)
    finally:
        seeder.close()


def _small_file_limit() -> None:
    """In the child: files may not grow past 1 MiB, and the write fails instead of killing."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_disk_full_stops_the_torrent_without_false_completion(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    torrent, meta, seeder = slow_swarm(tmp_path, opentracker)
    try:
        bt = daemon(tmp_path, torrent, preexec=_small_file_limit)
        bt.start()
        bt.wait_for_log("paused by the disk error", TIMEOUT)
        log = bt.log()
        target = bt.download_dir / "data.bin"
        assert f"cannot write {target}: File too large (EFBIG)" in log
        stop_cleanly(bt)
        assert "download complete" not in bt.log()
        saved = resume_file(bt, meta)
        if saved.exists():  # no file at all when no piece was written before the error
            assert saved_state(bt, meta).have.count() < meta.num_pieces
    finally:
        seeder.close()
