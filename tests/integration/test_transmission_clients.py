"""bt as transmission-daemon: Debian's transmission-remote, the transmission-rpc library
and Transmission's own web client drive it, each against a live download from a
libtorrent seeder through opentracker, all on loopback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import need
from swarm import LOOPBACK, BtDaemon, OpenTracker, wait_for
from test_service import PIECE, TIMEOUT, daemon, seeding, stop_cleanly, tracked, wait_state

from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

WEB_HOME = Path("/usr/share/transmission/web")
#: Slow enough that the download is still running while the clients act on it.
SEED_RATE = 1024 * 1024


def control_port(bt: BtDaemon) -> int:
    url = json.loads((bt.state_dir / "control.json").read_text())["url"]
    return int(url.rstrip("/").rsplit(":", 1)[1])


def token(bt: BtDaemon) -> str:
    return (bt.state_dir / "control.token").read_text().strip()


def remote(bt: BtDaemon, *args: str) -> str:
    """transmission-remote against the daemon (the password from TR_AUTH: not in argv)."""
    command = ["transmission-remote", f"{LOOPBACK}:{control_port(bt)}", "-ne", *args]
    env = {**os.environ, "TR_AUTH": f"anyone:{token(bt)}"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}\n{bt.log()[-3000:]}"
    assert "Error" not in done.stdout + done.stderr, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def test_transmission_remote_drives_a_live_download(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    need(shutil.which("transmission-remote") is not None, "transmission-remote (transmission-cli)")
    files = {"pack/wanted.bin": 48 * PIECE + 77, "pack/skipped.bin": 16 * PIECE}
    data = tracked(tmp_path, opentracker, files, "pack")
    info_hash = parse_metainfo(data).info_hash.hex()
    torrent_file = tmp_path / "pack.torrent"
    torrent_file.write_bytes(data)
    seeder = seeding(opentracker, data, tmp_path / "seed", upload_rate_limit=SEED_RATE)
    bt = daemon(tmp_path)
    bt.start()
    try:
        bt.wait_for_api()
        assert "Sum:" in remote(bt, "-l")
        assert "success" in remote(bt, "--start-paused", "-a", str(torrent_file))
        listing = remote(bt, "-l")
        assert re.search(r"^\s+1\s.*Stopped\s+pack$", listing, re.M), listing

        listed = remote(bt, "-t", "1", "-f")
        assert "pack (2 files)" in listed and "pack/skipped.bin" in listed, listed
        skipped = next(
            line.split(":")[0].strip() for line in listed.splitlines() if "skipped.bin" in line
        )
        remote(bt, "-t", "1", "-G", skipped)
        assert re.search(
            rf"^\s*{skipped}:.*No .*pack/skipped.bin", remote(bt, "-t", "1", "-f"), re.M
        )
        remote(bt, "-t", info_hash, "-s")  # a hashString works wherever an id does
        wait_state(bt, info_hash, lambda s: 0 < s["done"] < s["wanted"], "download under way")
        trackers = remote(bt, "-t", "1", "-it")
        assert opentracker.announce_url.rsplit("/", 1)[0] in trackers, trackers
        remote(bt, "-t", "1", "--reannounce")
        peers = remote(bt, "-t", "1", "-ip")
        assert re.search(rf"^{re.escape(LOOPBACK)}\s", peers, re.M), peers  # the seeder

        remote(bt, "-t", "1", "-S")
        wait_state(bt, info_hash, lambda s: s["state"] == "paused", "stopped")
        assert re.search(r"^\s+1\s.*Stopped\s+pack$", remote(bt, "-l"), re.M)
        remote(bt, "-t", "1", "-s")

        info = remote(bt, "-si")
        assert "RPC version: 17" in info and str(bt.download_dir) in info, info
        remote(bt, "-d", "500", "-u", "300")
        limits = remote(bt, "-si")
        assert "Download speed limit: 500 kB/s" in limits, limits
        assert "Upload speed limit: 300 kB/s" in limits, limits
        _, session = bt.api("GET", "/api/v1/session")
        assert (session["download_limit"], session["upload_limit"]) == (500_000, 300_000)
        remote(bt, "-D", "-U")  # no limits again
        assert bt.api("GET", "/api/v1/session")[1]["download_limit"] is None
        remote(bt, "-t", "1", "-u", "200")
        assert "Upload Limit: 200 kB/s" in remote(bt, "-t", "1", "-i")

        wait_state(bt, info_hash, lambda s: s["state"] == "seeding", "the wanted file done")
        details = remote(bt, "-t", "1", "-i")
        assert "Percent Done: 100%" in details and "Hash: " + info_hash in details, details
        stats = remote(bt, "-st")
        assert "CURRENT SESSION" in stats and "Downloaded:" in stats, stats
        wanted = bt.download_dir / "pack" / "wanted.bin"
        assert wanted.read_bytes() == (tmp_path / "seed" / "pack" / "wanted.bin").read_bytes()
        assert not (bt.download_dir / "pack" / "skipped.bin").exists()

        # torrent-set-location with move: the data goes, the torrent stays complete.
        elsewhere = tmp_path / "elsewhere"
        remote(bt, "-t", "1", "--move", str(elsewhere))
        moved = elsewhere / "pack" / "wanted.bin"
        assert moved.read_bytes() == (tmp_path / "seed" / "pack" / "wanted.bin").read_bytes()
        assert not wanted.exists() and not (bt.download_dir / "pack").exists()
        wait_state(bt, info_hash, lambda s: s["state"] == "seeding", "seeding after the move")
        details = remote(bt, "-t", "1", "-i")
        assert "Percent Done: 100%" in details and f"Location: {elsewhere}" in details, details
        wanted = moved

        remote(bt, "-t", "1", "--remove-and-delete")
        wait_for(lambda: not wanted.exists(), 10, "the data deleted")
        assert bt.api("GET", "/api/v1/torrents")[1]["torrents"] == []
        assert not re.search(r"^\s+1\s", remote(bt, "-l"), re.M)
    finally:
        stop_cleanly(bt)
        seeder.close()


def test_the_transmission_rpc_library_adds_gets_stops_starts_and_removes(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object
) -> None:
    try:
        import transmission_rpc
    except ImportError:
        need(False, "the transmission-rpc library (the test extra)")
    data = tracked(tmp_path, opentracker, {"lib.bin": 64 * PIECE + 5}, "lib.bin")
    info_hash = parse_metainfo(data).info_hash.hex()
    seeder = seeding(opentracker, data, tmp_path / "seed", upload_rate_limit=SEED_RATE)
    bt = daemon(tmp_path)
    bt.start()
    try:
        bt.wait_for_api()
        client = transmission_rpc.Client(
            host=LOOPBACK, port=control_port(bt), username="me", password=token(bt), timeout=10
        )
        assert client.get_session().rpc_version == 17
        added = client.add_torrent(data, download_dir=str(bt.download_dir))
        assert added.hashString == info_hash and added.name == "lib.bin"
        wait_state(bt, info_hash, lambda s: s["done"] > 0, "download under way")
        fields = ["id", "name", "status", "percentDone", "totalSize", "rateDownload", "eta"]
        got = client.get_torrent(added.id, arguments=fields)
        assert got.name == "lib.bin" and got.total_size == 64 * PIECE + 5
        assert got.status in ("downloading", "seeding")
        everything = client.get_torrent(info_hash)  # every field the library knows
        assert everything.hashString == info_hash and everything.get_files()[0].name == "lib.bin"

        client.stop_torrent(added.id)
        wait_for(lambda: client.get_torrent(added.id).status == "stopped", 20, "stopped")
        client.start_torrent(added.id)

        def complete() -> bool:
            return client.get_torrent(added.id, arguments=["percentDone"]).percent_done == 1

        wait_for(complete, TIMEOUT, "the download complete", step=0.3)
        assert client.get_torrent(added.id).status == "seeding"
        downloaded = bt.download_dir / "lib.bin"
        assert downloaded.read_bytes() == (tmp_path / "seed" / "lib.bin").read_bytes()

        # What Sonarr-style tools set: labels, ratios and folders, kept across a restart.
        client.change_torrent(added.id, labels=["linux", "iso"], seed_ratio_limit=30.5)
        client.change_torrent(added.id, seed_ratio_mode=1)
        later = tmp_path / "later"
        client.set_session(seed_ratio_limit=12.25, seed_ratio_limited=True, download_dir=str(later))
        remote(bt, "-t", "1", "-L", "linux,iso,x86")  # Debian's transmission-remote too
        prefs = ["labels", "seedRatioLimit", "seedRatioMode"]

        def kept(client: transmission_rpc.Client, folder: Path) -> None:
            got = client.get_torrent(added.id, arguments=prefs)
            assert (got.labels, got.seed_ratio_limit, got.seed_ratio_mode.value) == (
                ["linux", "iso", "x86"],
                30.5,
                1,
            )
            session = client.get_session()
            assert session.seed_ratio_limit == 12.25 and session.seed_ratio_limited
            assert session.download_dir == str(folder)

        kept(client, later)
        stop_cleanly(bt)
        bt.logfile.rename(bt.workdir / "first-run.log")
        bt.start()
        bt.wait_for_api()
        client = transmission_rpc.Client(
            host=LOOPBACK, port=control_port(bt), username="me", password=token(bt), timeout=10
        )
        kept(client, bt.download_dir)  # --download-dir on the command line wins over the saved
        client.remove_torrent(added.id, delete_data=True)
        wait_for(lambda: not downloaded.exists(), 10, "the data deleted")
        assert client.get_torrents() == []
    finally:
        stop_cleanly(bt)
        seeder.close()


def test_transmissions_web_client_from_web_home_lists_the_torrent_then_session_close(
    tmp_path: Path,
) -> None:
    chromium = shutil.which("chromium")
    need(chromium is not None and WEB_HOME.is_dir(), "chromium and transmission-daemon's web")
    need(shutil.which("transmission-remote") is not None, "transmission-remote (transmission-cli)")
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "shown-in-web.bin").write_bytes(os.urandom(3 * PIECE))
    from torrents import libtorrent_torrent

    data = libtorrent_torrent(seed / "shown-in-web.bin", PIECE)
    bt = daemon(tmp_path, "--web-home", str(WEB_HOME))
    bt.start()
    try:
        bt.wait_for_api()
        assert bt.api("POST", "/api/v1/torrents?paused=true", data)[0] == 201
        url = f"http://me:{token(bt)}@{LOOPBACK}:{control_port(bt)}/transmission/web/"
        command = [
            str(chromium),
            "--headless",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ]
        if os.geteuid() == 0:
            command.insert(2, "--no-sandbox")
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        page = subprocess.run(
            command, capture_output=True, text=True, timeout=90, env=env, check=False
        )
        assert 'class="torrent_name">shown-in-web.bin<' in page.stdout, (
            page.stdout[-3000:] + page.stderr[-2000:]
        )
        # session-close stops the daemon, as it stops transmission-daemon.
        assert "success" in remote(bt, "--exit")
        assert bt.process is not None and bt.process.wait(20) == 0, bt.log()[-3000:]
        assert "Traceback" not in bt.log(), bt.log()[-5000:]
        assert not (bt.state_dir / "control.json").exists()
    finally:
        bt.stop()
