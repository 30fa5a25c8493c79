"""The ``bt`` command, driven through ``main(argv)`` against a fake control API.

The fake is a real ``http.server`` on 127.0.0.1:0 in a thread, so the CLI's
own urllib calls, headers and bodies are what is checked; no reactor is used.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from torrents import handmade_info, handmade_torrent, write_files

from bt.cli import main
from bt.cli.client import parse_event_stream
from bt.magnet import parse_magnet
from bt.metainfo import load_metainfo, parse_metainfo
from bt.status import FilePriority, FileStatus, MagnetState, TorrentState, TorrentStatus

TOKEN = "s3cret-token"
UBUNTU = "abcd" + "1" * 36
DEBIAN = "abcd" + "2" * 36
OTHER = "ef01" + "3" * 36


def torrent_status(info_hash: str, name: str, **changes: Any) -> TorrentStatus:
    values: dict[str, Any] = {
        "info_hash": info_hash,
        "name": name,
        "state": TorrentState.DOWNLOADING,
        "error": None,
        "size": 3 * 1024 * 1024,
        "wanted": 3 * 1024 * 1024,
        "done": 1024 * 1024,
        "progress": 1 / 3,
        "pieces": 48,
        "pieces_have": 16,
        "piece_length": 65536,
        "download_rate": 512_000.0,
        "upload_rate": 1000.0,
        "downloaded": 1024 * 1024,
        "uploaded": 4096,
        "ratio": 0.0013,
        "peers": 5,
        "seeds": 2,
        "eta": 95.0,
        "hash_failures": 0,
        "tracker_errors": 0,
        "upload_limit": None,
        "download_limit": None,
        "download_dir": "/srv/downloads",
        "private": False,
        "files": (
            FileStatus(0, f"{name}/a.bin", 2 * 1024 * 1024, FilePriority.NORMAL, 1024 * 1024),
            FileStatus(1, f"{name}/b.txt", 1024 * 1024, FilePriority.SKIP, 0),
        ),
    }
    values.update(changes)
    return TorrentStatus(**values)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeApi:
    """The control API's contract, answered from a few in-memory torrents."""

    torrents: list[TorrentStatus] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    #: (method, path) -> (status, body) answered instead of the normal behaviour.
    overrides: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    session: dict[str, Any] = field(
        default_factory=lambda: {
            "version": "0.1.0",
            "torrents": 3,
            "peers": 5,
            "download_rate": 0.0,
            "upload_rate": 0.0,
            "downloaded": 0,
            "uploaded": 0,
            "upload_limit": None,
            "download_limit": 1048576.0,
            "listen_port": 6881,
        }
    )

    def listing(self) -> dict[str, Any]:
        return {"torrents": [t.to_json(files=False) for t in self.torrents]}

    def answer(self, request: Request) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, error(401, "missing or wrong bearer token")
        if (request.method, request.path) in self.overrides:
            return self.overrides[request.method, request.path]
        parts = request.path.removeprefix("/api/v1/").split("/")
        if parts == ["torrents"] and request.method == "GET":
            return 200, self.listing()
        if parts == ["torrents"] and request.method == "POST":
            if request.headers.get("Content-Type") == "application/json":
                magnet = parse_magnet(request.json()["magnet"])
                assert magnet.info_hash is not None
                fetching = torrent_status(
                    magnet.info_hash.hex(), magnet.display_name, state=MagnetState.FETCHING_METADATA
                )
                return 201, fetching.to_json()
            meta = parse_metainfo(request.body)
            added = torrent_status(meta.info_hash.hex(), meta.name)
            return 201, added.to_json()
        if parts == ["session"]:
            if request.method == "PATCH":
                self.session.update(request.json())
            return 200, self.session
        by_hash = {t.info_hash: t for t in self.torrents}
        if parts[0] == "torrents" and parts[1] in by_hash:
            torrent = by_hash[parts[1]]
            if len(parts) == 3 and request.method == "POST":
                return 200, torrent.to_json()
            if request.method == "DELETE":
                return 204, None
            if request.method == "PATCH":
                return 200, {**torrent.to_json(), **request.json()}
            return 200, torrent.to_json()
        return 404, error(404, f"no torrent {parts[-1]}")


def error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            self.command,
            url.path,
            urllib.parse.parse_qs(url.query),
            dict(self.headers.items()),
            self.rfile.read(length),
        )
        self.server.api.requests.append(request)
        status, body = self.server.api.answer(request)
        raw = (
            b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_DELETE = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    api: FakeApi
    daemon_threads = True


@dataclass
class Daemon:
    api: FakeApi
    url: str
    state_dir: Path

    def run(self, *argv: str) -> int:
        return main(["--state-dir", str(self.state_dir), *argv])

    @property
    def last(self) -> Request:
        return self.api.requests[-1]


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BT_STATE_DIR", "BT_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    api = FakeApi(
        [
            torrent_status(UBUNTU, "ubuntu.iso"),
            torrent_status(DEBIAN, "debian.iso", state=TorrentState.SEEDING, progress=1.0),
            torrent_status(OTHER, "same name", state=TorrentState.PAUSED),
        ]
    )
    server = _Server(("127.0.0.1", 0), _Handler)
    server.api = api
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    state = tmp_path / "state"
    write_control_files(state, url)
    try:
        yield Daemon(api, url, state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_control_files(state: Path, url: str, token: str = TOKEN) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "control.json").write_text(json.dumps({"url": url, "pid": 1}))
    (state / "control.token").write_text(token + "\n")
    (state / "control.token").chmod(0o600)


def torrent_file(tmp_path: Path, name: str = "new.bin") -> Path:
    path = tmp_path / f"{name}.torrent"
    path.write_bytes(handmade_torrent(handmade_info(name=name)))
    return path


# --- status ------------------------------------------------------------------------------


def test_status_json_is_exactly_the_apis_document(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("status", "--json") == 0
    assert json.loads(capsys.readouterr().out) == daemon.api.listing()
    assert (daemon.last.method, daemon.last.path) == ("GET", "/api/v1/torrents")
    assert daemon.last.headers["Authorization"] == f"Bearer {TOKEN}"


def wide_status(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """``bt status`` on a terminal wide enough for the hash column."""
    monkeypatch.setenv("COLUMNS", "160")
    assert daemon.run("status") == 0
    return capsys.readouterr().out


def test_status_table_shows_each_torrent(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = wide_status(daemon, capsys, monkeypatch)
    for text in ("ubuntu.iso", "debian.iso", "downloading", "seeding", "paused", "abcd1111"):
        assert text in out
    assert "33.3%" in out and "500.0 KiB/s" in out and "1m35s" in out
    assert "3 torrents" in out


def test_status_of_thousands_of_torrents_prints_plain_aligned_lines(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bt.cli.render import RICH_ROWS

    daemon.api.torrents[:] = [
        torrent_status(f"{n:040x}", f"t{n:05d}.bin", error="disk full" if n == 7 else None)
        for n in range(RICH_ROWS + 1)
    ]
    out = wide_status(daemon, capsys, monkeypatch)
    lines = out.splitlines()
    assert lines[0].split() == [
        *("Hash", "Name", "State", "Progress", "Size", "Down", "Up", "Peers", "ETA", "Ratio")
    ]
    assert len(lines) == RICH_ROWS + 3  # heading, a line per torrent, the caption
    assert lines[-1].startswith(f"{RICH_ROWS + 1} torrents, ") and "peers (seeds)" in lines[-1]
    assert lines[8].split()[:3] == ["00000000", "t00007.bin", "(disk"]
    assert "33.3%" in lines[1] and "500.0 KiB/s" in lines[1] and "1m35s" in lines[1]
    assert max(len(line) for line in lines) <= 160


def test_status_filters_by_prefix_and_name(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("status", "--json", "abcd2", "same name") == 0
    shown = json.loads(capsys.readouterr().out)["torrents"]
    assert [t["info_hash"] for t in shown] == [DEBIAN, OTHER]


def test_status_with_no_torrents(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.api.torrents.clear()
    assert daemon.run("status") == 0
    assert capsys.readouterr().out == "no torrents\n"


def test_daemon_options_also_work_after_the_command(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--json", "--state-dir", str(daemon.state_dir)]) == 0
    assert json.loads(capsys.readouterr().out) == daemon.api.listing()


# --- finding the daemon ------------------------------------------------------------------


def test_missing_control_json_says_so_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--state-dir", str(tmp_path), "status"]) == 2
    assert capsys.readouterr().err == (
        f"bt: no daemon found: {tmp_path / 'control.json'} missing "
        "(is twistd bittorrent running with this --state-dir?)\n"
    )


def test_state_dir_and_token_from_the_environment(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (daemon.state_dir / "control.token").write_text("stale")
    monkeypatch.setenv("BT_STATE_DIR", str(daemon.state_dir))
    monkeypatch.setenv("BT_TOKEN", TOKEN)
    assert main(["status", "--json"]) == 0
    assert daemon.last.headers["Authorization"] == f"Bearer {TOKEN}"


def test_url_and_token_options_need_no_files(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    args = ["--state-dir", str(empty), "--url", daemon.url, "--token", TOKEN, "status", "--json"]
    assert main(args) == 0


def test_a_wrong_token_gives_the_apis_message_and_where_the_token_came_from(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    (daemon.state_dir / "control.token").write_text("wrong")
    assert daemon.run("status") == 1
    token_file = daemon.state_dir / "control.token"
    assert capsys.readouterr().err == (
        f"bt: missing or wrong bearer token (token from {token_file})\n"
    )


def test_an_unreadable_token_file_exits_2(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    (daemon.state_dir / "control.token").unlink()
    assert daemon.run("status") == 2
    assert "cannot read the control token" in capsys.readouterr().err


def test_an_empty_token_file_exits_2(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    (daemon.state_dir / "control.token").write_text("\n")
    assert daemon.run("status") == 2
    assert "is empty" in capsys.readouterr().err
    assert daemon.api.requests == []


def test_no_daemon_listening_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    write_control_files(tmp_path, url)
    assert main(["--state-dir", str(tmp_path), "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bt: cannot reach the daemon at {url}: ") and "refused" in err


def test_an_error_without_json_still_says_something(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.api.overrides["GET", "/api/v1/torrents"] = (500, b"oops")
    assert daemon.run("status") == 1
    assert capsys.readouterr().err == "bt: the daemon answered 500 Internal Server Error\n"


# --- naming torrents ---------------------------------------------------------------------


def test_an_ambiguous_prefix_lists_the_candidates_and_does_nothing(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("pause", "abcd") == 1
    err = capsys.readouterr().err
    assert "'abcd' matches 2 torrents" in err
    assert f"{UBUNTU}  ubuntu.iso" in err and f"{DEBIAN}  debian.iso" in err
    assert [r.method for r in daemon.api.requests] == ["GET"]


def test_an_unknown_torrent_lists_what_the_daemon_has(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("resume", "fedora.iso") == 1
    err = capsys.readouterr().err
    assert "no torrent matches 'fedora.iso'" in err and OTHER in err


def test_a_prefix_shorter_than_four_is_not_a_prefix(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("pause", "abc") == 1
    assert "at least 4 characters" in capsys.readouterr().err


def test_full_hash_in_upper_case(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon.run("pause", UBUNTU.upper()) == 0
    assert (daemon.last.method, daemon.last.path) == ("POST", f"/api/v1/torrents/{UBUNTU}/pause")


# --- acting on torrents ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "said"), [("pause", "paused"), ("resume", "resumed"), ("recheck", "rechecking")]
)
def test_actions_post_to_each_torrent(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], command: str, said: str
) -> None:
    assert daemon.run(command, "abcd1", "same name") == 0
    posts = [(r.method, r.path) for r in daemon.api.requests[1:]]
    assert posts == [
        ("POST", f"/api/v1/torrents/{UBUNTU}/{command}"),
        ("POST", f"/api/v1/torrents/{OTHER}/{command}"),
    ]
    assert capsys.readouterr().out == f"{said} ubuntu.iso\n{said} same name\n"


def test_remove_with_delete_data(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon.run("remove", "debian.iso", "--delete-data") == 0
    assert (daemon.last.method, daemon.last.path) == ("DELETE", f"/api/v1/torrents/{DEBIAN}")
    assert daemon.last.query == {"delete_data": ["true"]}
    assert capsys.readouterr().out == "removed debian.iso and its data\n"


def test_remove_keeps_data_by_default(daemon: Daemon) -> None:
    assert daemon.run("remove", "ef01") == 0
    assert daemon.last.method == "DELETE" and daemon.last.query == {}


def test_a_failure_on_one_torrent_does_not_stop_the_others(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.api.overrides["POST", f"/api/v1/torrents/{UBUNTU}/recheck"] = (
        409,
        error(409, "ubuntu.iso is already checking"),
    )
    assert daemon.run("recheck", "ubuntu.iso", "debian.iso") == 1
    captured = capsys.readouterr()
    assert captured.err == "bt: ubuntu.iso is already checking\n"
    assert captured.out == "rechecking debian.iso\n"


# --- add ---------------------------------------------------------------------------------


def test_add_uploads_the_file_bytes(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = torrent_file(tmp_path)
    meta = load_metainfo(path)
    assert daemon.run("add", str(path), "--paused", "--download-dir", "rel/dir") == 0
    request = daemon.last
    assert (request.method, request.path) == ("POST", "/api/v1/torrents")
    assert request.body == path.read_bytes()
    assert request.headers["Content-Type"] == "application/x-bittorrent"
    assert request.query == {"paused": ["true"], "download_dir": [str(Path("rel/dir").resolve())]}
    assert capsys.readouterr().out == f"added new.bin {meta.info_hash.hex()} (paused)\n"


def test_add_without_options_sends_no_query(daemon: Daemon, tmp_path: Path) -> None:
    assert daemon.run("add", str(torrent_file(tmp_path))) == 0
    assert daemon.last.query == {}


def test_add_refuses_a_bad_file_itself_and_adds_the_rest(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"d4:infoi1ee")
    good = torrent_file(tmp_path)
    assert daemon.run("add", str(bad), str(good)) == 1
    captured = capsys.readouterr()
    assert captured.err == f"bt: {bad}: info is not a dictionary\n"
    assert captured.out.startswith("added new.bin ")
    assert [r.body for r in daemon.api.requests] == [good.read_bytes()]


def test_add_reports_the_apis_refusal(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.api.overrides["POST", "/api/v1/torrents"] = (409, error(409, "new.bin is already added"))
    assert daemon.run("add", str(torrent_file(tmp_path))) == 1
    assert capsys.readouterr().err == "bt: new.bin is already added\n"


MAGNET = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Debian"


def test_add_sends_a_magnet_link_and_says_it_is_fetching(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("add", MAGNET, "--paused", "--download-dir", "rel/dir") == 0
    request = daemon.last
    assert (request.method, request.path) == ("POST", "/api/v1/torrents")
    assert request.json() == {
        "magnet": MAGNET,
        "paused": True,
        "download_dir": str(Path("rel/dir").resolve()),
    }
    assert capsys.readouterr().out == (
        "added Debian c12fe1c06bba254a9dc9f519b335aa7c1367a88a (paused): fetching metadata\n"
    )


def test_status_shows_a_magnet_fetching_metadata_with_the_peers_tried(
    daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # wide: the hash column too
    daemon.api.torrents = [
        torrent_status(
            "c12fe1c06bba254a9dc9f519b335aa7c1367a88a",
            "Debian",
            state=MagnetState.FETCHING_METADATA,
            peers=2,
            peers_tried=5,
            progress=0.0,
        )
    ]
    assert daemon.run("status") == 0
    out = capsys.readouterr().out
    assert "c12fe1c0" in out and "Debian" in out and "fetching metadata" in out
    assert "2, 5 tried" in out


def test_add_refuses_a_bad_magnet_itself_with_one_line(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("add", "magnet:?xt=urn:btih:nothex&dn=x") == 1
    err = capsys.readouterr().err
    assert err.startswith("bt: ") and err.count("\n") == 1 and "btih" in err
    assert daemon.api.requests == []


# --- files and priorities ----------------------------------------------------------------


def test_files_lists_paths_and_priorities(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("files", "ubuntu.iso") == 0
    out = capsys.readouterr().out
    assert "ubuntu.iso/a.bin" in out and "normal" in out and "50.0%" in out
    assert "ubuntu.iso/b.txt" in out and "skip" in out
    assert (daemon.last.method, daemon.last.path) == ("GET", f"/api/v1/torrents/{UBUNTU}")


def test_files_json_is_the_apis_document(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("files", "--json", "abcd1") == 0
    served = json.loads(json.dumps(daemon.api.torrents[0].to_json()))
    assert json.loads(capsys.readouterr().out) == served


def test_priority_patches_the_files(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon.run("priority", "ubuntu.iso", "0", "1", "--high") == 0
    assert (daemon.last.method, daemon.last.path) == ("PATCH", f"/api/v1/torrents/{UBUNTU}")
    assert daemon.last.json() == {"file_priorities": {"0": "high", "1": "high"}}
    assert daemon.last.headers["Content-Type"] == "application/json"
    assert capsys.readouterr().out == "ubuntu.iso: files 0, 1 set to high\n"


def test_move_posts_the_absolute_folder(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    assert daemon.run("move", "ubuntu.iso", "media") == 0
    assert (daemon.last.method, daemon.last.path) == ("POST", f"/api/v1/torrents/{UBUNTU}/move")
    assert daemon.last.json() == {"download_dir": str(tmp_path / "media"), "move": True}
    assert capsys.readouterr().out == f"ubuntu.iso: moved to {tmp_path / 'media'}\n"


def test_move_with_no_move_only_points_at_the_folder(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("move", "ubuntu.iso", "/srv/found", "--no-move") == 0
    assert daemon.last.json() == {"download_dir": "/srv/found", "move": False}
    assert capsys.readouterr().out == "ubuntu.iso: now looks for its data in /srv/found\n"


def test_a_refused_move_is_the_daemons_message(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.api.overrides["POST", f"/api/v1/torrents/{UBUNTU}/move"] = (
        409,
        error(409, "not moved: cannot move /a/x: /b/x exists with other content"),
    )
    assert daemon.run("move", "ubuntu.iso", "/b") == 1
    assert "exists with other content" in capsys.readouterr().err


def test_an_index_out_of_range_points_at_bt_files_and_patches_nothing(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("priority", "ubuntu.iso", "1", "7", "--skip") == 1
    assert capsys.readouterr().err == (
        "bt: file index 7 out of range: ubuntu.iso has 2 files (see 'bt files ubuntu.iso')\n"
    )
    assert [r.method for r in daemon.api.requests] == ["GET", "GET"], "no PATCH sent"


def test_the_bt_files_hint_quotes_the_torrent_as_typed(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("priority", "same name", "2", "3", "--high") == 1
    assert capsys.readouterr().err == (
        "bt: file indexes 2, 3 out of range: same name has 2 files "
        """(see "bt files 'same name'")\n"""
    )


def test_priority_help_says_what_each_level_and_argument_means(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["priority", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "normal them" not in text
    assert "--skip do not download these files" in text
    assert "--normal download them (the default)" in text
    assert "FILE_INDEX a file's number in the # column of 'bt files TORRENT'" in text


@pytest.mark.parametrize(
    "argv", [["priority", "x", "0"], ["priority", "x", "-1", "--skip"], ["priority", "x", "a"]]
)
def test_priority_needs_indexes_and_one_level(daemon: Daemon, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        daemon.run(*argv)
    assert exit_.value.code == 2 and daemon.api.requests == []


# --- limits ------------------------------------------------------------------------------


def test_global_limits(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon.run("limit", "--up", "500K", "--down", "none") == 0
    assert (daemon.last.method, daemon.last.path) == ("PATCH", "/api/v1/session")
    assert daemon.last.json() == {"upload_limit": 512000, "download_limit": None}
    assert capsys.readouterr().out == "global limits: up 500.0 KiB/s, down unlimited\n"


def test_a_torrents_limits_where_zero_is_unlimited(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("limit", "debian.iso", "--down", "0") == 0
    assert (daemon.last.method, daemon.last.path) == ("PATCH", f"/api/v1/torrents/{DEBIAN}")
    assert daemon.last.json() == {"download_limit": None}


def test_limit_without_rates_shows_the_current_ones(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.run("limit") == 0
    assert (daemon.last.method, daemon.last.path) == ("GET", "/api/v1/session")
    assert capsys.readouterr().out == "global limits: up unlimited, down 1.0 MiB/s\n"


def test_a_bad_rate_is_a_usage_error(daemon: Daemon) -> None:
    with pytest.raises(SystemExit) as exit_:
        daemon.run("limit", "--up", "fast")
    assert exit_.value.code == 2


# --- info (local) ------------------------------------------------------------------------


def test_info_shows_a_torrent_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = handmade_info([(["a", "x.bin"], 30_000), (["y.txt"], 5)], name="pack")
    info["private"] = 1
    path = tmp_path / "pack.torrent"
    tiers = [[b"http://a/announce"], [b"udp://b:1", b"udp://c:2"]]
    path.write_bytes(
        handmade_torrent(info, announce="http://a/announce", **{"announce-list": tiers})
    )
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    meta = load_metainfo(path)
    assert f"info-hash:    {meta.info_hash.hex()}" in out
    assert "pieces:       2 x 16.0 KiB" in out and "private:      yes" in out
    assert "tier 1: http://a/announce" in out and "tier 2: udp://b:1, udp://c:2" in out
    assert "pack/a/x.bin" in out and "pack/y.txt" in out


def test_info_of_a_bad_file_prints_the_metainfo_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.torrent"
    path.write_bytes(b"le")
    assert main(["info", str(path)]) == 1
    assert capsys.readouterr().err == f"bt: {path}: top level is not a dictionary\n"


# --- create ------------------------------------------------------------------------------


def test_create_writes_a_torrent_with_tiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_files(tmp_path, {"album/a.bin": 50_000, "album/sub/b.bin": 7})
    output = tmp_path / "out.torrent"
    argv = [
        "create",
        str(tmp_path / "album"),
        "--tracker",
        "http://a/announce",
        "--tracker",
        "udp://b:1/announce,udp://c:2/announce",
        "--private",
        "--piece-size",
        "32K",
        "--comment",
        "a comment",
        "--web-seed",
        "http://seed/",
        "-o",
        str(output),
    ]
    assert main(argv) == 0
    meta = load_metainfo(output)
    assert meta.trackers == (
        ("http://a/announce",),
        ("udp://b:1/announce", "udp://c:2/announce"),
    )
    assert meta.private and meta.piece_length == 32 * 1024 and meta.comment == "a comment"
    assert meta.url_list == ("http://seed/",)
    out = capsys.readouterr().out
    assert f"created {output} (v1): album, 2 files" in out and meta.info_hash.hex() in out


def test_create_names_the_output_after_the_content_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(tmp_path, {"movie.mkv": 20_000})
    monkeypatch.chdir(tmp_path)
    assert main(["create", "movie.mkv", "-t", "http://a/announce"]) == 0
    assert load_metainfo(tmp_path / "movie.mkv.torrent").name == "movie.mkv"


def test_create_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_files(tmp_path, {"f.bin": 20_000})
    output = tmp_path / "f.torrent"
    output.write_bytes(b"keep me")
    argv = ["create", str(tmp_path / "f.bin"), "-t", "http://a/announce", "-o", str(output)]
    assert main(argv) == 1
    assert capsys.readouterr().err == f"bt: {output} already exists; use --force to overwrite it\n"
    assert output.read_bytes() == b"keep me"
    assert main([*argv, "--force"]) == 0
    assert load_metainfo(output).name == "f.bin"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "f.torrent"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--piece-size", "100K"], "must be a power of two"),
        (["--piece-size", "8K"], "must be a power of two"),
        (["-t", "not-a-url"], "is not a tracker URL"),
    ],
)
def test_create_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    write_files(tmp_path, {"f.bin": 20_000})
    argv = ["create", str(tmp_path / "f.bin"), "-t", "http://a/announce", *extra]
    assert main([*argv, "-o", str(tmp_path / "x.torrent")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.torrent").exists()


def test_create_needs_a_tracker(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["create", str(tmp_path)])
    assert exit_.value.code == 2


def test_create_of_an_empty_folder_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    argv = ["create", str(tmp_path / "empty"), "-t", "http://a/announce", "-o", str(tmp_path / "x")]
    assert main(argv) == 1
    assert "holds no files" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# --- v2 and hybrid torrents (BEP 52) -------------------------------------------------------

V2_FULL = "5e6f" + "7" * 60
HYBRID_V2 = "9a9b" + "8" * 60


@pytest.fixture
def v2_daemon(daemon: Daemon) -> Daemon:
    """The usual three torrents, UBUNTU made hybrid, and a v2-only one."""
    daemon.api.torrents[0] = torrent_status(
        UBUNTU, "ubuntu.iso", format="hybrid", info_hash_v1=UBUNTU, info_hash_v2=HYBRID_V2
    )
    daemon.api.torrents.append(
        torrent_status(V2_FULL[:40], "v2.iso", format="v2", info_hash_v2=V2_FULL)
    )
    return daemon


def test_status_shows_both_hashes_of_a_hybrid_and_marks_a_v2_id(
    v2_daemon: Daemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = wide_status(v2_daemon, capsys, monkeypatch)
    assert "abcd1111" in out and "v2 9a9b8888" in out
    assert "5e6f7777 v2" in out


def test_status_json_carries_the_format_and_both_hashes(
    v2_daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert v2_daemon.run("status", "--json", UBUNTU[:6]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["torrents"]
    assert (shown["format"], shown["info_hash_v1"], shown["info_hash_v2"]) == (
        "hybrid",
        UBUNTU,
        HYBRID_V2,
    )


def test_a_torrent_is_found_by_its_v2_hash_or_a_prefix_of_it(
    v2_daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert v2_daemon.run("pause", HYBRID_V2[:8]) == 0
    assert v2_daemon.last.path == f"/api/v1/torrents/{UBUNTU}/pause"
    assert v2_daemon.run("pause", HYBRID_V2) == 0
    assert v2_daemon.last.path == f"/api/v1/torrents/{UBUNTU}/pause"
    assert v2_daemon.run("pause", V2_FULL) == 0  # the whole v2 hash names the v2-only id
    assert v2_daemon.last.path == f"/api/v1/torrents/{V2_FULL[:40]}/pause"


# --- events ------------------------------------------------------------------------------

EVENTS = ("GET", "/api/v1/events")


def stream(*events: tuple[int, str, Any]) -> bytes:
    body = b": connected\n\n"
    for event_id, kind, data in events:
        body += f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()
        body += b": keep-alive\n\n"
    return body


def about(state: str, error: str | None = None, name: str = "ubuntu.iso") -> dict[str, Any]:
    return {"info_hash": UBUNTU, "name": name, "state": state, "error": error}


LIFE = stream(
    (7, "torrent-added", about("stopped")),
    (8, "progress", {"torrents": [{"download_rate": 2048.0, "upload_rate": 0.0}]}),
    (9, "state-changed", about("error", "disk full")),
    (10, "removed", about("error", "disk full", name="evil\x1b[2Jname")),
)


def test_each_event_is_one_line_progress_left_out_and_the_end_is_said(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.api.overrides[EVENTS] = (200, LIFE)
    assert daemon.run("events") == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("torrent-added      ubuntu.iso (abcd1111): stopped")
    assert lines[1].endswith("state-changed      ubuntu.iso (abcd1111): error (disk full)")
    assert "\x1b" not in out and "evil\\x1b[2Jname" in lines[2]
    assert err == "bt: the daemon ended the event stream (it stopped?)\n"
    sent = daemon.last
    assert (sent.path, sent.headers["Authorization"]) == ("/api/v1/events", f"Bearer {TOKEN}")
    assert sent.headers["Accept"] == "text/event-stream"
    assert "last-event-id" not in {name.lower() for name in sent.headers}


def test_json_gives_every_event_with_its_id_and_progress_on_request(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.api.overrides[EVENTS] = (200, LIFE)
    daemon.run("events", "--json", "--progress", "--last-event-id", "6")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["id"], e["event"]) for e in lines] == [
        (7, "torrent-added"),
        (8, "progress"),
        (9, "state-changed"),
        (10, "removed"),
    ]
    assert lines[2]["data"] == about("error", "disk full")
    headers = {name.lower(): value for name, value in daemon.last.headers.items()}
    assert headers["last-event-id"] == "6"  # urllib sends it as Last-event-id


def test_progress_lines_sum_the_rates(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.api.overrides[EVENTS] = (200, LIFE)
    daemon.run("events", "--progress")
    [progress] = [line for line in capsys.readouterr().out.splitlines() if "progress" in line]
    assert progress.endswith("progress           1 torrents, down 2.0 KiB/s, up 0 B/s")


def test_a_refusal_is_the_apis_message(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.api.overrides[EVENTS] = (
        503,
        {"error": {"status": 503, "message": "16 event streams are open already"}},
    )
    assert daemon.run("events") == 1
    assert capsys.readouterr().err == "bt: 16 event streams are open already\n"


def test_a_bad_last_event_id_is_a_usage_error(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        daemon.run("events", "--last-event-id", "yesterday")
    assert exited.value.code == 2
    assert "not an event id" in capsys.readouterr().err


def test_the_parser_reads_server_sent_events_as_the_specification_says() -> None:
    raw = (
        b": comment\r\n\r\n"
        b"id: 3\r\nevent: a\r\ndata: one\r\ndata: two\r\n\r\n"
        b"data:no space\n\n"
        b"event: no-data\n\n"
        b"id: x\nevent: b\ndata: {}\n\n"
        b"event: unfinished\ndata: 1\n"
    )
    events = list(parse_event_stream(io.BytesIO(raw)))
    assert events == [(3, "a", "one\ntwo"), (3, "message", "no space"), (3, "b", "{}")]
