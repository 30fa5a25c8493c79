"""aria2 downloads from a bt seeder on loopback, through a real opentracker.

aria2 sends its BITFIELD again after some HAVEs; bt used to drop it for that as a
protocol violation, and aria2 never came back, so its download stalled.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from swarm import OpenTracker, free_port, scrape_counts, wait_for
from test_download import assert_same_tree, tracked_torrent
from test_seeding import bt_seeder, stop_cleanly, uploaded_bytes

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
