"""Real peers and trackers on loopback for integration tests: opentracker, libtorrent, bt.

Everything here binds to 127.0.0.1 only, is bounded in time, and is cleaned up
by the fixtures in conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dhtsafety import dht_safe_args

LOOPBACK = "127.0.0.1"


def integration_required() -> bool:
    """CI sets BT_REQUIRE_INTEGRATION=1: a missing tool there is a failure, not a skip."""
    return os.environ.get("BT_REQUIRE_INTEGRATION") == "1"


def free_port() -> int:
    """A TCP and UDP port free on loopback right now (opentracker needs both)."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind((LOOPBACK, 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class OpenTracker:
    """A real opentracker process serving whitelisted info-hashes on loopback."""

    port: int = 0
    process: subprocess.Popen | None = None
    folder: Path | None = None
    info_hashes: list[bytes] = field(default_factory=list)

    @property
    def announce_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/announce"

    def start(self, info_hashes: list[bytes]) -> None:
        binary = shutil.which("opentracker")
        if binary is None:
            raise FileNotFoundError("opentracker is not installed")
        self.info_hashes = info_hashes
        # opentracker drops root for "nobody" before it reads the whitelist, so the
        # list lives in a world-readable folder of its own (pytest's tmp_path is 0700).
        self.folder = Path(tempfile.mkdtemp(prefix="bt-opentracker-"))
        self.folder.chmod(0o755)
        whitelist = self.folder / "whitelist.txt"
        whitelist.write_text("".join(h.hex() + "\n" for h in info_hashes))
        whitelist.chmod(0o644)
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                binary,
                "-i",
                LOOPBACK,
                "-p",
                str(self.port),
                "-P",
                str(self.port),
                "-d",
                str(self.folder),
                "-w",
                whitelist.name,
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_for(answers, 10, "opentracker to listen")
        # opentracker loads its whitelist in a thread after it listens; an announce
        # before then is refused and the refused client backs off for a long time.
        if info_hashes:
            wait_for(
                lambda: (
                    b"failure reason"
                    not in self.announce(
                        info_hashes[0], b"-XX0000-whitelist-ok", 1, left=1, event="started"
                    )
                    and self.announce(info_hashes[0], b"-XX0000-whitelist-ok", 1, event="stopped")
                    is not None
                ),
                10,
                "opentracker to load its whitelist",
            )

    def announce(
        self, info_hash: bytes, peer_id: bytes, port: int, left: int = 0, event: str = "started"
    ) -> bytes:
        """Announce a test-made peer (the corrupting seeder) as a real client would."""
        query = (
            f"info_hash={quote(info_hash, safe='')}&peer_id={quote(peer_id, safe='')}"
            f"&port={port}&uploaded=0&downloaded=0&left={left}&event={event}&compact=1"
        )
        with urllib.request.urlopen(f"{self.announce_url}?{query}", timeout=5) as response:
            return response.read()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def libtorrent_settings(port: int = 0) -> dict[str, object]:
    """A libtorrent session confined to loopback: no DHT, LSD, UPnP, uTP or encryption."""
    import libtorrent as lt

    return {
        "listen_interfaces": f"{LOOPBACK}:{port}",
        "outgoing_interfaces": LOOPBACK,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "out_enc_policy": int(lt.enc_policy.disabled),
        "in_enc_policy": int(lt.enc_policy.enabled),
        "prefer_rc4": False,
        "alert_mask": 0,
        "announce_to_all_trackers": True,
        "min_announce_interval": 1,
    }


class LibtorrentPeer:
    """A libtorrent session holding one torrent: a seeder, partial seeder or downloader."""

    def __init__(
        self,
        torrent: bytes,
        save_path: Path,
        *,
        upload_only: bool = False,
        upload_rate_limit: int = 0,
        interface: str = LOOPBACK,
        plugins: bool = True,
    ) -> None:
        """``plugins=False``: no ut_pex nor ut_metadata (a peer that learns no addresses)."""
        import libtorrent as lt

        settings = {**libtorrent_settings(), "upload_rate_limit": upload_rate_limit}
        if interface != LOOPBACK:  # "::1": an IPv6-only peer
            settings["listen_interfaces"] = f"[{interface}]:0"
            settings["outgoing_interfaces"] = interface
        flags = lt.session_flags_t.add_default_plugins if plugins else 0
        self.session = lt.session(settings, flags)
        if upload_rate_limit:
            # libtorrent exempts local peers from rate limits; every peer here is local.
            everyone = lt.ip_filter()
            everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
            self.session.set_peer_class_filter(everyone)
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(torrent))
        params.save_path = str(save_path)
        if upload_only:
            params.flags |= lt.torrent_flags.upload_mode
        self.handle = self.session.add_torrent(params)

    @property
    def port(self) -> int:
        return self.session.listen_port()

    def wait_checked(self, timeout: float = 30) -> None:
        import libtorrent as lt

        checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
        wait_for(
            lambda: self.handle.status().state not in checking,
            timeout,
            "libtorrent to check its files",
        )

    def close(self) -> None:
        self.session.remove_torrent(self.handle)
        del self.handle
        del self.session


#: Every daemon started, so the fixture in conftest.py can stop leftovers of a failed test.
RUNNING: list[BtDaemon] = []


@dataclass
class BtDaemon:
    """``twistd -n bittorrent`` run as a subprocess, as a user would run it."""

    workdir: Path
    #: Given with --torrent (None: the daemon starts with what its state folder holds).
    torrent: Path | None
    download_dir: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None
    #: Runs in the child before exec (resource limits for disk-fault tests).
    preexec: Callable[[], None] | None = None
    #: Added to the child's environment (a benchmark's PYTHONPATH, say).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def logfile(self) -> Path:
        return self.workdir / "bt.log"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def wait_for_api(self, timeout: float = 20) -> None:
        """Until the daemon wrote where its control API listens."""
        self.wait_for_log("listening for peers", timeout)
        wait_for(lambda: (self.state_dir / "control.json").exists(), timeout, "control.json")

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        timeout: float = 10,
    ) -> Any:
        """Call the control API as a script would; returns (status, decoded JSON or text)."""
        info = json.loads((self.state_dir / "control.json").read_text())
        if token is None:
            token = (self.state_dir / "control.token").read_text().strip()
        data = None
        headers = {"Authorization": f"Bearer {token}"}
        if isinstance(body, bytes):
            data, headers["Content-Type"] = body, "application/x-bittorrent"
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(
            info["url"].rstrip("/") + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read(), error.headers
        if "json" in kind.get("Content-Type", ""):
            return status, json.loads(raw)
        return status, raw.decode()

    def start(self) -> None:
        RUNNING.append(self)
        self.download_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            f"--logfile={self.logfile}",
            "bittorrent",
            *(("--torrent", str(self.torrent)) if self.torrent is not None else ()),
            "--download-dir",
            str(self.download_dir),
            "--listen",
            f"tcp:0:interface={LOOPBACK}",
            "--state-dir",
            str(self.state_dir),
            "--control",
            f"tcp:0:interface={LOOPBACK}",
            *self.extra_args,
        ]
        command = dht_safe_args(command)  # never the public DHT (tests/dhtsafety.py)
        # What bt prints before its log exists (a refused option or .torrent) goes here.
        with open(self.workdir / "bt.out", "wb") as output:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                preexec_fn=self.preexec,
            )

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float) -> None:
        def seen() -> bool:
            if self.process is not None and self.process.poll() is not None:
                printed = (self.workdir / "bt.out").read_text(errors="replace")
                raise AssertionError(
                    f"bt exited with {self.process.returncode}:\n{printed}\n{self.log()}"
                )
            return text in self.log()

        try:
            wait_for(seen, timeout, f"{text!r} in bt's log", step=0.2)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- bt log ---\n{self.log()[-6000:]}") from None

    def kill(self) -> None:
        """SIGKILL: the crash case; nothing gets a chance to clean up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self, grace: float = 15) -> int | None:
        """SIGTERM, then SIGKILL if bt has not exited after ``grace`` seconds."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def scrape_counts(tracker: OpenTracker, info_hash: bytes) -> int:
    """Peers (seeders plus leechers) the tracker knows for ``info_hash``."""
    from bt import bencode

    url = f"http://{LOOPBACK}:{tracker.port}/scrape?info_hash={quote(info_hash, safe='')}"
    with urllib.request.urlopen(url, timeout=5) as response:
        files = bencode.decode(response.read()).get(b"files", {})
    entry = files.get(info_hash, {})
    return int(entry.get(b"complete", 0)) + int(entry.get(b"incomplete", 0))
