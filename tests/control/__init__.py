"""Tests of the control API; here: a fake session honouring the API's session contract.

The API is tested against this fake, not the engine: the tests say what the API
does with each answer of the session (an error, a Deferred that fires later)
without running torrents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from treq.testing import StubTreq
from twisted.internet import defer, protocol

from bt import bencode
from bt.control.api import ControlResource
from bt.control.auth import BearerAuth
from bt.errors import DuplicateTorrentError, UnknownTorrentError
from bt.metainfo import Metainfo
from bt.status import (
    UNCHANGED,
    FilePriority,
    FileStatus,
    SessionStatus,
    TorrentState,
    TorrentStatus,
)

TOKEN = "test-token-abc"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def torrent_bytes(name: str = "example", sizes: tuple[int, ...] = (40_000,)) -> bytes:
    """A valid .torrent with one file per size (a single-file torrent for one size)."""
    piece_length = 16_384
    payload = bytes(sum(sizes))
    pieces = b"".join(
        hashlib.sha1(payload[i : i + piece_length]).digest()
        for i in range(0, len(payload), piece_length)
    )
    info: dict[str, Any] = {"name": name, "piece length": piece_length, "pieces": pieces}
    if len(sizes) == 1:
        info["length"] = sizes[0]
    else:
        info["files"] = [{"path": [f"f{i}"], "length": s} for i, s in enumerate(sizes)]
    return bencode.encode({"announce": "http://tracker.invalid/announce", "info": info})


def make_status(info_hash: str, name: str = "example", **changes: Any) -> TorrentStatus:
    status = TorrentStatus(
        info_hash=info_hash,
        name=name,
        state=TorrentState.DOWNLOADING,
        error=None,
        size=40_000,
        wanted=40_000,
        done=16_384,
        progress=0.4096,
        pieces=3,
        pieces_have=1,
        piece_length=16_384,
        download_rate=1500.0,
        upload_rate=250.0,
        downloaded=20_000,
        uploaded=5_000,
        ratio=0.125,
        peers=4,
        seeds=1,
        eta=16.0,
        hash_failures=2,
        tracker_errors=3,
        upload_limit=None,
        download_limit=None,
        download_dir="/data",
        private=False,
        files=(FileStatus(0, "example", 40_000, FilePriority.NORMAL, 16_384),),
    )
    return replace(status, **changes)


@dataclass
class FakeTorrent:
    info_hash: bytes


class FakeSession:
    """In-memory torrents; records every call; can hold the Deferreds it returns."""

    def __init__(self, state_dir: Path = Path("/nonexistent")) -> None:
        self.config = SimpleNamespace(state_dir=state_dir)
        self.torrents: dict[bytes, TorrentStatus] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.limits: dict[str, float | None] = {"upload": None, "download": None}
        #: The session status's DHT fields (none: no DHT).
        self.dht: dict[str, int] = {}
        #: When True, pause/remove return Deferreds the test fires from ``held``.
        self.hold = False
        self.held: list[defer.Deferred[None]] = []
        #: Raised by the next call of that name (to test error mapping).
        self.fail: dict[str, Exception] = {}

    def _check(self, name: str) -> None:
        if name in self.fail:
            raise self.fail.pop(name)

    def _get(self, info_hash: bytes) -> TorrentStatus:
        if info_hash not in self.torrents:
            raise UnknownTorrentError(f"no torrent with info-hash {info_hash.hex()}")
        return self.torrents[info_hash]

    def _later(self) -> defer.Deferred[None]:
        if not self.hold:
            return defer.succeed(None)
        waiting: defer.Deferred[None] = defer.Deferred()
        self.held.append(waiting)
        return waiting

    def status(self) -> SessionStatus:
        self._check("status")
        statuses = list(self.torrents.values())
        return SessionStatus(
            version="0.1.0",
            torrents=len(statuses),
            peers=sum(s.peers for s in statuses),
            download_rate=sum(s.download_rate for s in statuses),
            upload_rate=sum(s.upload_rate for s in statuses),
            downloaded=123_456,
            uploaded=7_890,
            upload_limit=self.limits["upload"],
            download_limit=self.limits["download"],
            listen_port=6881,
            **self.dht,
        )

    def torrent_statuses(self) -> list[TorrentStatus]:
        return list(self.torrents.values())

    def torrent_status(self, info_hash: bytes) -> TorrentStatus:
        self._check("torrent_status")
        return self._get(info_hash)

    def add_torrent(
        self, metainfo: Metainfo, *, paused: bool = False, download_dir: Path | None = None
    ) -> FakeTorrent:
        self.calls.append(("add_torrent", metainfo.name, paused, download_dir))
        self._check("add_torrent")
        if metainfo.info_hash in self.torrents:
            raise DuplicateTorrentError(f"{metainfo.name} is already in the session")
        files = tuple(
            FileStatus(i, "/".join(f.path), f.length, FilePriority.NORMAL, 0)
            for i, f in enumerate(metainfo.files)
        )
        self.torrents[metainfo.info_hash] = make_status(
            metainfo.info_hash.hex(),
            metainfo.name,
            state=TorrentState.PAUSED if paused else TorrentState.DOWNLOADING,
            download_dir=str(download_dir or "/data"),
            files=files,
        )
        return FakeTorrent(metainfo.info_hash)

    def add_magnet(
        self, magnet: Any, *, paused: bool = False, download_dir: Path | None = None
    ) -> None:
        """As the session: DuplicateTorrentError, else shown at once (by its key: a v2
        magnet's truncated hash)."""
        from bt.status import MagnetState

        self.calls.append(("add_magnet", magnet.uri(), paused, download_dir))
        if magnet.key in self.torrents:
            raise DuplicateTorrentError(f"{magnet.display_name}: already added")
        self.torrents[magnet.key] = make_status(
            magnet.key.hex(),
            magnet.display_name,
            state=MagnetState.FETCHING_METADATA,
            download_dir=str(download_dir or "/data"),
        )

    def remove_torrent(self, info_hash: bytes, *, delete_data: bool = False) -> defer.Deferred:
        self._get(info_hash)
        self.calls.append(("remove_torrent", info_hash, delete_data))
        later = self._later()
        later.addCallback(lambda _: self.torrents.pop(info_hash, None) and None)
        return later

    def pause_torrent(self, info_hash: bytes) -> defer.Deferred[None]:
        status = self._get(info_hash)
        self.calls.append(("pause_torrent", info_hash))
        later = self._later()

        def paused(_: object) -> None:
            self.torrents[info_hash] = replace(status, state=TorrentState.PAUSED)

        return later.addCallback(paused)

    def resume_torrent(self, info_hash: bytes) -> None:
        status = self._get(info_hash)
        self.calls.append(("resume_torrent", info_hash))
        self.torrents[info_hash] = replace(status, state=TorrentState.DOWNLOADING)

    def move_torrent(
        self, info_hash: bytes, folder: Path, *, move: bool = True
    ) -> defer.Deferred[None]:
        status = self._get(info_hash)
        self._check("move_torrent")
        self.calls.append(("move_torrent", info_hash, folder, move))
        later = self._later()

        def moved(_: object) -> None:
            self.torrents[info_hash] = replace(status, download_dir=str(folder))

        return later.addCallback(moved)

    def recheck_torrent(self, info_hash: bytes) -> None:
        status = self._get(info_hash)
        self.calls.append(("recheck_torrent", info_hash))
        self.torrents[info_hash] = replace(status, state=TorrentState.CHECKING)

    def set_torrent_limits(
        self, info_hash: bytes, *, upload: Any = UNCHANGED, download: Any = UNCHANGED
    ) -> None:
        status = self._get(info_hash)
        self.calls.append(("set_torrent_limits", info_hash, upload, download))
        self._check("set_torrent_limits")
        if upload is not UNCHANGED:
            status = replace(status, upload_limit=upload)
        if download is not UNCHANGED:
            status = replace(status, download_limit=download)
        self.torrents[info_hash] = status

    def set_file_priorities(self, info_hash: bytes, priorities: Mapping[int, FilePriority]) -> None:
        status = self._get(info_hash)
        self.calls.append(("set_file_priorities", info_hash, dict(priorities)))
        self._check("set_file_priorities")
        files = tuple(
            replace(f, priority=priorities.get(f.index, f.priority)) for f in status.files
        )
        self.torrents[info_hash] = replace(status, files=files)

    def set_limits(self, *, upload: Any = UNCHANGED, download: Any = UNCHANGED) -> None:
        self.calls.append(("set_limits", upload, download))
        self._check("set_limits")
        if upload is not UNCHANGED:
            self.limits["upload"] = upload
        if download is not UNCHANGED:
            self.limits["download"] = download


#: A small body cap so the 413 tests need not send 64 MiB.
TEST_MAX_BODY = 256 * 1024


def stub_client(session: FakeSession, token: str = TOKEN) -> StubTreq:
    """An in-memory HTTP client of the API as the daemon serves it (auth in front)."""
    resource = ControlResource(session, max_body=TEST_MAX_BODY, run_blocking=defer.maybeDeferred)
    return StubTreq(BearerAuth(resource, token))


class Recorder(protocol.Protocol):
    """A raw client: keeps what it receives, fires ``lost`` when the server closes."""

    def __init__(self) -> None:
        self.data = b""
        self.lost: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)
