"""``bt events`` follows a real daemon through a live download from a libtorrent seeder.

twistd runs bt as a user would; opentracker and libtorrent on loopback; the
``bt`` command reads the server-sent events and prints one JSON object per
line. Every state change of the download arrives, in order, ``finished``
included, and the stream ends when the daemon stops.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from torrents import libtorrent_torrent, write_files

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PIECE = 64 * 1024
TIMEOUT = 60


class Follower:
    """``bt events --json --progress`` as a subprocess; its lines, read in a thread."""

    def __init__(self, state_dir: Path) -> None:
        script = Path(sys.executable).with_name("bt")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "bt.cli"]
        self.process = subprocess.Popen(
            [*command, "--state-dir", str(state_dir), "events", "--json", "--progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append({**json.loads(line), "at": time.monotonic()})

    def told(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["event"] == kind]

    def wait(self, test: Any, what: str) -> None:
        try:
            wait_for(lambda: test(), TIMEOUT, what, step=0.05)
        except TimeoutError as exc:
            kinds = [(e["event"], e["data"].get("state")) for e in self.events][-20:]
            raise AssertionError(f"{exc}; last events {kinds}") from None

    def finish(self) -> tuple[int, str]:
        try:
            status = self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise
        self._reader.join(5)
        assert self.process.stderr is not None
        return status, self.process.stderr.read()


def test_bt_events_follows_a_live_download_from_added_to_finished_and_removed(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    seed = tmp_path / "seed"
    write_files(seed, {"events.bin": 3 * 1024 * 1024 + 77})
    provisional = libtorrent_torrent(seed / "events.bin", PIECE)
    opentracker.start([parse_metainfo(provisional).info_hash])
    data = libtorrent_torrent(seed / "events.bin", PIECE, tracker=opentracker.announce_url)
    info_hash = parse_metainfo(data).info_hash.hex()
    seeder = LibtorrentPeer(data, seed)
    wait_for(lambda: scrape_counts(opentracker, bytes.fromhex(info_hash)) >= 1, 30, "the seeder")
    work = tmp_path / "bt"
    work.mkdir()
    bt = BtDaemon(work, None, work / "downloads")
    bt.start()
    follower: Follower | None = None
    try:
        bt.wait_for_api()
        follower = Follower(bt.state_dir)
        # A new listener gets a progress summary within a second: it is connected.
        follower.wait(lambda: follower.told("progress"), "the first progress summary")

        status, added = bt.api("POST", "/api/v1/torrents", data)
        assert status == 201, added
        follower.wait(lambda: follower.told("finished"), "the download to finish")
        life = [
            (e["event"], e["data"]["state"])
            for e in follower.events
            if e["event"] != "progress" and e["data"]["info_hash"] == info_hash
        ]
        assert life == [
            ("torrent-added", "stopped"),
            ("state-changed", "checking"),
            ("state-changed", "downloading"),
            ("state-changed", "seeding"),
            ("finished", "seeding"),
        ], life
        ids = [e["id"] for e in follower.events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

        def summed_up_as_seeding() -> bool:
            summaries = [e["data"]["torrents"] for e in follower.told("progress")]
            listed = [t for torrents in summaries for t in torrents if t["info_hash"] == info_hash]
            return any(t["state"] == "seeding" and t["progress"] == 1.0 for t in listed)

        follower.wait(summed_up_as_seeding, "a progress summary of the seeding torrent")
        assert (bt.download_dir / "events.bin").read_bytes() == (seed / "events.bin").read_bytes()

        sent = time.monotonic()
        assert bt.api("DELETE", f"/api/v1/torrents/{info_hash}")[0] == 200
        follower.wait(lambda: follower.told("removed"), "removed")
        assert follower.told("removed")[0]["at"] - sent < 2.0
    finally:
        bt.stop()
        seeder.close()
        if follower is not None:
            status, err = follower.finish()
            assert status == 1 and "ended the event stream" in err, err
