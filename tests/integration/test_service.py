"""bt as a managed service: daemon mode, the control API on live downloads, the
watch folder, restarts, selective download, and the ``bt`` command, all against
real libtorrent seeders and a real opentracker on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from dhtsafety import dht_safe_args
from prometheus_client.parser import text_string_to_metric_families
from swarm import LOOPBACK, BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from torrents import libtorrent_torrent, write_files

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PIECE = 64 * 1024
TIMEOUT = 90


def tracked(tmp_path: Path, tracker: OpenTracker, files: dict[str, int], name: str) -> bytes:
    seed = tmp_path / "seed"
    write_files(seed, files)
    provisional = libtorrent_torrent(seed / name, PIECE)
    tracker.start([parse_metainfo(provisional).info_hash])
    return libtorrent_torrent(seed / name, PIECE, tracker=tracker.announce_url)


def seeding(tracker: OpenTracker, data: bytes, folder: Path, **options: Any) -> LibtorrentPeer:
    peer = LibtorrentPeer(data, folder, **options)
    info_hash = parse_metainfo(data).info_hash
    wait_for(lambda: scrape_counts(tracker, info_hash) >= 1, 30, "the seeder at the tracker")
    return peer


def daemon(tmp_path: Path, *extra: str, torrent: Path | None = None) -> BtDaemon:
    work = tmp_path / "bt"
    work.mkdir(exist_ok=True)
    return BtDaemon(work, torrent, work / "downloads", extra_args=extra)


def torrent_state(bt: BtDaemon, info_hash: str) -> dict[str, Any]:
    status, body = bt.api("GET", f"/api/v1/torrents/{info_hash}")
    assert status == 200, body
    return body


def wait_state(bt: BtDaemon, info_hash: str, test: Any, what: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.update(torrent_state(bt, info_hash))
        return bool(test(seen))

    try:
        wait_for(check, TIMEOUT, what, step=0.2)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last status {seen}\n{bt.log()[-4000:]}") from None
    return seen


def stop_cleanly(bt: BtDaemon) -> None:
    assert bt.stop() == -signal.SIGTERM, bt.log()[-3000:]
    assert "Traceback" not in bt.log() and "Unhandled" not in bt.log(), bt.log()[-5000:]


def bt_command(bt: BtDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``bt`` console script, pointed at the daemon's state folder."""
    script = Path(sys.executable).with_name("bt")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bt.cli"]
    return subprocess.run(
        [*command, "--state-dir", str(bt.state_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_daemon_mode_pidfile_log_api_and_sigterm(tmp_path: Path) -> None:
    """Plain ``twistd bittorrent`` (no -n): the parent returns, the daemon serves, TERM stops it."""
    work = tmp_path / "daemon"
    work.mkdir()
    state = work / "state"
    pidfile, logfile = work / "bt.pid", work / "bt.log"
    started = subprocess.run(
        dht_safe_args(
            [
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                f"--pidfile={pidfile}",
                f"--logfile={logfile}",
                "bittorrent",
                "--state-dir",
                str(state),
                "--download-dir",
                str(work / "downloads"),
                "--listen",
                f"tcp:0:interface={LOOPBACK}",
                "--control",
                "tcp:0",  # no interface given: bound to loopback anyway
            ]
        ),
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    wait_for(pidfile.exists, 20, "the pidfile")
    pid = int(pidfile.read_text())
    try:
        wait_for(lambda: (state / "control.json").exists(), 20, "control.json")
        url = json.loads((state / "control.json").read_text())["url"]
        assert url.startswith(f"http://{LOOPBACK}:")
        token = (state / "control.token").read_text().strip()
        assert (state / "control.token").stat().st_mode & 0o777 == 0o600

        def get(path: str, auth: str | None) -> tuple[int, bytes]:
            headers = {"Authorization": f"Bearer {auth}"} if auth else {}
            request = urllib.request.Request(url.rstrip("/") + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()

        for path in ("/api/v1/session", "/api/v1/torrents", "/metrics"):
            assert get(path, None)[0] == 401, path
            assert get(path, "wrong-token")[0] == 401, path
        status, body = get("/api/v1/session", token)
        assert status == 200 and json.loads(body)["torrents"] == 0
        status, body = get("/metrics", token)
        families = {f.name for f in text_string_to_metric_families(body.decode())}
        assert "bt_torrents" in families
        os.kill(pid, signal.SIGTERM)

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, 30, "the daemon to exit")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    log = logfile.read_text()
    assert "Main loop terminated" in log and "Traceback" not in log, log[-3000:]
    assert not (state / "control.json").exists(), "a stopped daemon leaves no stale address"
    assert not pidfile.exists()


def test_api_add_pause_resume_remove_on_a_live_download(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    size = 6 * 1024 * 1024 + 4321
    data = tracked(tmp_path, opentracker, {"live.bin": size}, "live.bin")
    info_hash = parse_metainfo(data).info_hash.hex()
    # A slow seeder (2 MiB/s) so the download is still running when we pause it.
    seeder = seeding(opentracker, data, tmp_path / "seed", upload_rate_limit=2 * 1024 * 1024)
    bt = daemon(tmp_path)
    bt.start()
    try:
        bt.wait_for_api()
        assert bt.api("POST", "/api/v1/torrents", b"not a torrent")[0] == 400
        status, added = bt.api("POST", "/api/v1/torrents", data)
        assert status == 201, added
        assert added["info_hash"] == info_hash and added["name"] == "live.bin"
        assert bt.api("POST", "/api/v1/torrents", data)[0] == 409
        wait_state(bt, info_hash, lambda s: 0 < s["done"] < s["wanted"], "download under way")

        status, paused = bt.api("POST", f"/api/v1/torrents/{info_hash}/pause")
        assert status == 200 and paused["state"] == "paused", paused
        done_when_paused = torrent_state(bt, info_hash)["done"]
        assert torrent_state(bt, info_hash)["peers"] == 0
        time.sleep(2)  # a real swarm: nothing may arrive while paused
        assert torrent_state(bt, info_hash)["done"] == done_when_paused

        status, resumed = bt.api("POST", f"/api/v1/torrents/{info_hash}/resume")
        # "checking": the files are compared with their size and mtime at the pause first.
        assert status == 200 and resumed["state"] in ("checking", "downloading", "seeding"), resumed
        wait_state(bt, info_hash, lambda s: s["state"] == "seeding", "download complete")
        downloaded = bt.download_dir / "live.bin"
        assert downloaded.read_bytes() == (tmp_path / "seed" / "live.bin").read_bytes()

        # bt status --json gives scripts what the API gives.
        listing = bt_command(bt, "status", "--json")
        assert listing.returncode == 0, listing.stderr
        from_cli = json.loads(listing.stdout)
        _, from_api = bt.api("GET", "/api/v1/torrents")
        stable = ("info_hash", "name", "state", "size", "wanted", "done", "progress", "pieces")
        assert [{k: t[k] for k in stable} for t in from_cli["torrents"]] == [
            {k: t[k] for k in stable} for t in from_api["torrents"]
        ]
        table = bt_command(bt, "status")
        assert table.returncode == 0 and "live.bin" in table.stdout, table.stdout + table.stderr

        status, body = bt.api("DELETE", f"/api/v1/torrents/{info_hash}?delete_data=true")
        assert status == 200, body
        assert not downloaded.exists()
        assert bt.api("GET", "/api/v1/torrents")[1]["torrents"] == []
        assert bt.api("GET", f"/api/v1/torrents/{info_hash}")[0] == 404
    finally:
        stop_cleanly(bt)
        seeder.close()


def test_watch_dir_torrent_completes_and_is_remembered_across_a_restart(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    data = tracked(tmp_path, opentracker, {"w/a.bin": 700_001, "w/b.bin": 300_000}, "w")
    info_hash = parse_metainfo(data).info_hash.hex()
    seeder = seeding(opentracker, data, tmp_path / "seed")
    watch = tmp_path / "watch"
    watch.mkdir()
    bt = daemon(tmp_path, "--watch-dir", str(watch))
    bt.start()
    try:
        bt.wait_for_api()
        (watch / "w.torrent").write_bytes(data)
        bt.wait_for_log("w: download complete", TIMEOUT)
        assert (watch / "w.torrent.added").exists()
    finally:
        stop_cleanly(bt)
    seeder.close()

    again = daemon(tmp_path)  # no --torrent, no --watch-dir: only the state folder
    earlier = len(again.log())  # twistd appends to the same log file
    again.start()
    try:
        again.wait_for_api()
        state = wait_state(again, info_hash, lambda s: s["state"] == "seeding", "restored seed")
        assert state["progress"] == 1.0
        log = again.log()[earlier:]
        assert "resumed 16 verified pieces" in log and "checking" not in log, log
    finally:
        stop_cleanly(again)


def test_skipping_a_file_downloads_only_the_wanted_files_pieces_and_never_creates_it(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    files = {"s/first.bin": 10 * PIECE + 100, "s/skipped.bin": 20 * PIECE, "s/last.bin": 5 * PIECE}
    data = tracked(tmp_path, opentracker, files, "s")
    meta = parse_metainfo(data)
    info_hash = meta.info_hash.hex()
    seeder = seeding(opentracker, data, tmp_path / "seed")
    bt = daemon(tmp_path)
    bt.start()
    try:
        bt.wait_for_api()
        status, added = bt.api("POST", "/api/v1/torrents?paused=true", data)
        assert status == 201 and added["state"] in ("checking", "paused"), added
        index = [f["path"] for f in added["files"]].index("s/skipped.bin")
        status, patched = bt.api(
            "PATCH", f"/api/v1/torrents/{info_hash}", {"file_priorities": {str(index): "skip"}}
        )
        assert status == 200 and patched["files"][index]["priority"] == "skip", patched
        bt.api("POST", f"/api/v1/torrents/{info_hash}/resume")
        done = wait_state(bt, info_hash, lambda s: s["state"] == "seeding", "wanted files done")
        # Only pieces holding bytes of a wanted file were fetched.
        wanted = {
            piece
            for n, f in enumerate(meta.files)
            if n != index and f.length
            for piece in range(f.offset // PIECE, (f.offset + f.length - 1) // PIECE + 1)
        }
        assert done["pieces_have"] == len(wanted) < meta.num_pieces
        assert done["progress"] == 1.0 and done["wanted"] < done["size"]
        for name in ("first.bin", "last.bin"):
            assert (bt.download_dir / "s" / name).read_bytes() == (
                tmp_path / "seed" / "s" / name
            ).read_bytes()
        # The skipped file is not created: the bytes of its two boundary pieces wait in
        # the part file, and the neighbours' boundary pieces are whole.
        skipped = bt.download_dir / "s" / "skipped.bin"
        assert not skipped.exists()
        parts = bt.state_dir / "parts" / f"{info_hash}.parts"
        assert parts.exists()
        # Wanted again: those bytes move into place and the rest is downloaded.
        status, _ = bt.api(
            "PATCH", f"/api/v1/torrents/{info_hash}", {"file_priorities": {str(index): "normal"}}
        )
        assert status == 200
        whole = wait_state(
            bt, info_hash, lambda s: s["pieces_have"] == meta.num_pieces, "the whole torrent"
        )
        assert whole["state"] == "seeding"
        for name in ("first.bin", "skipped.bin", "last.bin"):
            assert (bt.download_dir / "s" / name).read_bytes() == (
                tmp_path / "seed" / "s" / name
            ).read_bytes()
        assert not parts.exists()  # no skipped file needs a slot any more
    finally:
        stop_cleanly(bt)
        seeder.close()
