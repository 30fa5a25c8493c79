"""aria2 downloads from a bt seeder on loopback, through a real opentracker.

aria2 sends its BITFIELD again after some HAVEs; bt used to drop it for that as a
protocol violation, and aria2 never came back, so its download stalled.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from swarm import OpenTracker, free_port, scrape_counts, wait_for
from test_create_swarm import bt_create
from test_download import assert_same_tree, tracked_torrent
from test_seeding import bt_seeder, stop_cleanly, uploaded_bytes
from v2swarm import V2Library, libtorrent_hashes

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

#: Small pieces, so aria2 announces many with HAVE (and sends its late bitfield).
PIECE = 16 * 1024
SIZE = 3 * 1024 * 1024 + 777
TIMEOUT = 60


def aria2_command(aria2c: str, torrent: Path, out: Path) -> list[str]:
    """aria2c confined to loopback: no DHT, LPD or PEX; it stops once it has the file."""
    return [
        aria2c,
        "--no-conf",
        f"--dir={out}",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        f"--listen-port={free_port()}",
        "--seed-time=0",
        "--bt-stop-timeout=40",
        "--bt-tracker-connect-timeout=5",
        "--bt-tracker-timeout=5",
        "--summary-interval=0",
        "--console-log-level=warn",
        "--file-allocation=none",
        "--check-integrity=true",
        str(torrent),
    ]


def test_aria2_downloads_from_a_bt_seeder(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object, aria2c: str
) -> None:
    name = "share.bin"
    torrent = tracked_torrent(tmp_path, opentracker, {name: SIZE}, name, PIECE)
    meta = parse_metainfo(torrent.read_bytes())
    assert meta.num_pieces > 100
    seeder = bt_seeder(tmp_path, torrent, tmp_path / "seed", "bt-seed")
    try:
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "bt at the tracker")
        out = tmp_path / "aria2"
        out.mkdir()
        try:
            done = subprocess.run(
                aria2_command(aria2c, torrent, out),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"aria2c did not finish in {TIMEOUT} s\n--- bt log ---\n{seeder.log()[-4000:]}"
            ) from exc
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{seeder.log()[-4000:]}"
        assert_same_tree(tmp_path / "seed" / name, out / name)
    finally:
        log = stop_cleanly(seeder)
    assert uploaded_bytes(log, name) >= meta.total_length
    assert "bitfield message after other messages" not in log


def aria2_info_hash(aria2c: str, torrent: Path) -> str:
    shown = subprocess.run(
        [aria2c, "--no-conf", "-S", str(torrent)], capture_output=True, text=True, timeout=30
    )
    match = re.search(r"Info Hash: ([0-9a-f]{40})", shown.stdout)
    assert match, shown.stdout + shown.stderr
    return match.group(1)


def test_aria2_misreads_hybrid_torrents_so_bt_creates_v1_by_default(
    tmp_path: Path, aria2c: str, libtorrent: object, v2_library: V2Library
) -> None:
    """aria2 1.36 drops dict keys that are empty strings, and every BEP 52 file tree has
    them: it hashes a different info dict, so it can never meet the swarm of a hybrid
    (it refuses the real v1 hash in handshakes; it refuses v2-only torrents outright).
    When this fails, aria2 learnt hybrids: ``--format hybrid`` may become the default."""
    hybrid = tmp_path / "hybrid.torrent"
    hybrid.write_bytes(v2_library.torrent("hybrid", "multi"))
    real = libtorrent_hashes(hybrid.read_bytes()).v1
    assert real is not None
    assert aria2_info_hash(aria2c, hybrid) != real.hex()

    default = tmp_path / "default.torrent"
    tracker = f"http://127.0.0.1:{free_port()}/announce"  # bt create needs one; never used
    made = bt_create(
        "create", str(v2_library.content("multi")), "--tracker", tracker, "--output", str(default)
    )
    assert made.returncode == 0, made.stderr
    hashes = libtorrent_hashes(default.read_bytes())
    assert hashes.v2 == b"" and hashes.v1 is not None, "bt create's default is not v1"
    assert aria2_info_hash(aria2c, default) == hashes.v1.hex()
