"""BEP 7: bt downloads from a peer it only knows by an IPv6 address (``peers6``), on ::1."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from swarm import LOOPBACK, BtDaemon, LibtorrentPeer, integration_required
from test_download import assert_same_tree
from torrents import libtorrent_torrent, write_files

from bt import bencode

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


class Peers6Tracker:
    """A minimal HTTP tracker on 127.0.0.1 that hands out one IPv6 peer in ``peers6``."""

    def __init__(self) -> None:
        self.peer6: tuple[str, int] | None = None
        self.announces = 0
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tracker.announces += 1
                peers6 = b""
                if tracker.peer6 is not None:
                    host, port = tracker.peer6
                    peers6 = socket.inet_pton(socket.AF_INET6, host) + struct.pack(">H", port)
                body = bencode.encode({"interval": 1800, "peers": b"", "peers6": peers6})
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}/announce"

    def __enter__(self) -> Peers6Tracker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def tracker6() -> Iterator[Peers6Tracker]:
    if not ipv6_loopback_works():
        if integration_required():
            pytest.fail("::1 is not usable on this machine")
        pytest.skip("::1 is not usable on this machine")
    with Peers6Tracker() as tracker:
        yield tracker


def test_download_from_an_ipv6_peer(
    tmp_path: Path, tracker6: Peers6Tracker, libtorrent: object
) -> None:
    write_files(tmp_path / "seed", {"v6.bin": 1_500_000})
    torrent = tmp_path / "v6.torrent"
    torrent.write_bytes(
        libtorrent_torrent(tmp_path / "seed" / "v6.bin", 65536, tracker=tracker6.url)
    )
    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed", interface="::1")
    try:
        seeder.wait_checked()
        tracker6.peer6 = ("::1", seeder.port)
        (tmp_path / "bt").mkdir()
        bt = BtDaemon(
            tmp_path / "bt", torrent, tmp_path / "bt" / "downloads", ("--log-level", "debug")
        )
        bt.start()
        try:
            bt.wait_for_log("v6.bin: download complete", 60)
        finally:
            bt.stop()
        assert_same_tree(tmp_path / "seed" / "v6.bin", bt.download_dir / "v6.bin")
        assert "connected to ('::1'" in bt.log()
    finally:
        seeder.close()
