"""A half-open flood against a bt seeder does not keep a real peer out.

500 sockets connect to a ``twistd -n bittorrent`` seeder limited to 20
connections and never send a handshake; each one the seeder closes is opened
again at once. While that runs, a libtorrent peer connects once and must
download the whole torrent well before the flood's first connections would
have timed out of their handshake under the old rule (20 s).
"""

from __future__ import annotations

import re
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flood import HalfOpenFlood
from swarm import LOOPBACK, BtDaemon, LibtorrentPeer, integration_required, wait_for
from test_download import wait_for_same_tree
from torrents import libtorrent_torrent, write_files

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FLOOD = 500
MAX_CONNECTIONS = 20
#: Less than the full handshake timeout (20 s) a flood connection used to hold a slot for.
DOWNLOAD_WITHIN = 15.0


@pytest.fixture
def file_descriptors() -> Iterator[None]:
    """Enough for the flood's sockets, here and (inherited) in bt; restored after."""
    needed = FLOOD + 300  # each process holds one end of each flood socket, and its own files
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        message = f"ulimit -n allows {hard} file descriptors; a {FLOOD}-socket flood needs {needed}"
        if integration_required():
            pytest.fail(message)
        pytest.skip(message)
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def listening_port(daemon: BtDaemon) -> int:
    daemon.wait_for_log("listening for peers on port", 30)
    match = re.search(r"listening for peers on port (\d+)", daemon.log())
    assert match, daemon.log()
    return int(match.group(1))


def test_libtorrent_downloads_from_a_bt_seeder_during_a_half_open_flood(
    tmp_path: Path, libtorrent: object, file_descriptors: None
) -> None:
    seed_dir = tmp_path / "seed"
    write_files(seed_dir, {"data.bin": 2 * 1024 * 1024 + 1234})
    torrent = tmp_path / "data.torrent"
    torrent.write_bytes(libtorrent_torrent(seed_dir / "data.bin", 64 * 1024))
    (tmp_path / "bt").mkdir()
    seeder = BtDaemon(
        tmp_path / "bt",
        torrent,
        seed_dir,
        extra_args=("--max-connections", str(MAX_CONNECTIONS)),
    )
    seeder.start()
    flood = downloader = None
    try:
        port = listening_port(seeder)
        seeder.wait_for_log("pieces already on disk", 30)
        flood = HalfOpenFlood((LOOPBACK, port), FLOOD, duration=60)
        flood.start()
        wait_for(lambda: flood.connected >= FLOOD, 10, f"{FLOOD} flood connections")
        (tmp_path / "lt").mkdir()
        downloader = LibtorrentPeer(torrent.read_bytes(), tmp_path / "lt")
        before = flood.connected
        started = time.monotonic()
        downloader.handle.connect_peer((LOOPBACK, port))
        wait_for(
            lambda: downloader.handle.status().is_seeding,
            DOWNLOAD_WITHIN,
            "libtorrent to download from the flooded seeder",
        )
        took = time.monotonic() - started
        assert flood.running, "the flood ended before the download did"
        # The flood really ran while the download did: the seeder kept closing its sockets.
        assert flood.connected - before >= FLOOD, (flood.connected, before)
        wait_for_same_tree(seed_dir / "data.bin", tmp_path / "lt" / "data.bin")
        print(f"downloaded in {took:.1f} s; flood: {flood.connected} connects")
    finally:
        if flood is not None:
            flood.stop()
        if downloader is not None:
            downloader.close()
        status = seeder.stop()
    log = seeder.log()
    assert status == -signal.SIGTERM, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    # The flood did overflow the half-open budget, and the seeder said so (once a minute).
    assert "half-open budget of 64 full: closed" in log, log[-3000:]
