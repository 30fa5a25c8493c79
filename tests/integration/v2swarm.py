"""BitTorrent v2 and hybrid (BEP 52) fixtures for the libtorrent interop tests.

Everything a test needs to know about a torrent comes from libtorrent (its
create_torrent, torrent_info and file_storage), not from bt's own parser, so
these fixtures work whatever state bt's v2 support is in and are an
independent reference for it.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from corrupt_seeder import CorruptSeeder
from swarm import LibtorrentPeer
from test_magnets_lt import LibtorrentMagnet
from torrents import libtorrent_torrent, libtorrent_v2_torrent, write_files

from bt import bencode

PIECE = 64 * 1024
BLOCK = 16 * 1024

#: Every kind of file BEP 52 treats differently: below one block, one block, below a
#: piece, one piece, empty, two pieces and a bit, and a file with a short last piece,
#: in nested folders (no file beside a folder of the same stem: libtorrent refuses those).
#: Two files of one size give a hybrid two padding entries with the same path.
MULTI_FILES = {
    "tree/a/tiny.txt": 999,
    "tree/c/tiny_too.txt": 999,
    "tree/a/block.bin": BLOCK,
    "tree/a/two_blocks.bin": 20_000,
    "tree/b/piece.bin": PIECE,
    "tree/b/empty.dat": 0,
    "tree/big.bin": 4 * PIECE + 3,
    "tree/mid.bin": PIECE + 1,
}
SINGLE_FILES = {"solo.bin": 3 * PIECE + 5_000}

LAYOUTS = {"single": (SINGLE_FILES, "solo.bin"), "multi": (MULTI_FILES, "tree")}


def write_layout(parent: Path, layout: str) -> Path:
    """The content of ``layout`` under ``parent``; returns the torrent's root (file or folder)."""
    files, name = LAYOUTS[layout]
    write_files(parent, files, seed=7)
    return parent / name


def libtorrent_made(content: Path, piece_length: int, fmt: str) -> bytes:
    """libtorrent's .torrent of ``content`` in ``fmt``: "v1", "v2" (v2-only) or "hybrid"."""
    if fmt == "v1":
        return libtorrent_torrent(content, piece_length)
    if fmt not in ("v2", "hybrid"):
        raise ValueError(f"format {fmt!r} is not v1, v2 or hybrid")
    return libtorrent_v2_torrent(content, piece_length, hybrid=fmt == "hybrid")


def with_announce(torrent: bytes, url: str) -> bytes:
    """The same torrent (same info dict, so the same info-hashes) announcing to ``url``."""
    top = bencode.decode(torrent)
    top[b"announce"] = url.encode()
    return bencode.encode(top)


@dataclass(frozen=True)
class Hashes:
    """A torrent's identities as libtorrent computes them."""

    v1: bytes | None
    v2: bytes

    @property
    def wire(self) -> list[bytes]:
        """Every 20-byte hash the torrent is known by on the wire and at trackers."""
        return [h for h in (self.v1, self.v2[:20]) if h]


def libtorrent_hashes(torrent: bytes) -> Hashes:
    import libtorrent as lt

    hashes = lt.torrent_info(lt.bdecode(torrent)).info_hashes()
    v1 = bytes.fromhex(str(hashes.v1)) if hashes.has_v1() else None
    v2 = bytes.fromhex(str(hashes.v2)) if hashes.has_v2() else b""  # b"": a v1 torrent
    return Hashes(v1, v2)


def libtorrent_roots(torrent: bytes) -> dict[str, bytes]:
    """Path (``/`` separators, torrent name first) -> pieces root of every non-empty file."""
    import libtorrent as lt

    files = lt.torrent_info(lt.bdecode(torrent)).files()
    roots = {}
    for index in range(files.num_files()):
        if files.file_flags(index) & lt.file_storage.flag_pad_file or not files.file_size(index):
            continue
        roots[files.file_path(index).replace("\\", "/")] = bytes.fromhex(str(files.root(index)))
    return roots


def v2_stream(torrent: bytes, save_path: Path) -> tuple[bytes, int]:
    """The torrent's byte stream as libtorrent lays it out (zeros for its pad files,
    padded to whole pieces) and its piece length."""
    import libtorrent as lt

    info = lt.torrent_info(lt.bdecode(torrent))
    files = info.files()
    stream = bytearray()
    for index in range(files.num_files()):
        size = files.file_size(index)
        if files.file_flags(index) & lt.file_storage.flag_pad_file:
            stream += bytes(size)
        elif size:
            stream += (save_path / files.file_path(index)).read_bytes()
    stream += bytes(-len(stream) % info.piece_length())
    return bytes(stream), info.piece_length()


class RequestLog:
    """What a libtorrent session was asked for and was answered, from its peer log:
    REQUEST messages received, HASHES messages received (answers to its hash requests)."""

    _REQUEST = re.compile(r"<== REQUEST \[ piece: (\d+) s: ([0-9a-f]+) l: ([0-9a-f]+)")

    def __init__(self, peer: LibtorrentPeer | LibtorrentMagnet) -> None:
        import libtorrent as lt

        self.session = peer.session
        self.counts: Counter[tuple[int, int]] = Counter()
        self.hashes_received = 0
        self.session.apply_settings(
            {
                "alert_mask": lt.alert.category_t.peer_log_notification,
                "alert_queue_size": 100_000,
            }
        )

    def collect(self) -> Counter[tuple[int, int]]:
        """(piece, begin) -> how many times it was asked for, up to now."""
        for alert in self.session.pop_alerts():
            message = alert.message()
            match = self._REQUEST.search(message)
            if match:
                self.counts[(int(match.group(1)), int(match.group(2), 16))] += 1
            elif "<== HASHES [" in message:
                self.hashes_received += 1
        return self.counts


class OneBadBlockSeeder(CorruptSeeder):
    """A v2 seeder on raw sockets that flips the bytes of the first block it serves, once.

    It answers every handshake naming one of ``info_hashes`` with that hash and the
    v2 bit, claims every piece, rejects hash requests (so the reference block hashes
    must come from another peer) and counts what each block was asked for.
    """

    def __init__(self, info_hashes: list[bytes], stream: bytes, piece_length: int) -> None:
        super().__init__(info_hashes[0], stream, piece_length, bad_pieces=())
        self.info_hashes = info_hashes
        self.peer_id = b"-XX0000-onebadblock!"
        self.bad_block: tuple[int, int] | None = None
        self.requests: Counter[tuple[int, int]] = Counter()
        self.hash_requests = 0

    def _greet(self, connection: socket.socket, handshake: bytes) -> bool:
        info_hash = handshake[28:48]
        if info_hash not in self.info_hashes:
            return False
        reserved = bytes([0, 0, 0, 0, 0, 0, 0, 0x10])  # byte 7, 0x10: v2
        connection.sendall(b"\x13BitTorrent protocol" + reserved + info_hash + self.peer_id)
        return True

    def _on_message(self, connection: socket.socket, body: bytes) -> None:
        if body[0] == 21:  # hash request: answered with a hash reject (23), same fields
            self.hash_requests += 1
            connection.sendall(struct.pack(">IB", len(body), 23) + body[1:])
        else:
            super()._on_message(connection, body)

    def _send_block(self, connection: socket.socket, index: int, begin: int, size: int) -> None:
        from bt.peer.messages import encode_piece_header

        start = index * self.piece_length + begin
        block = self.data[start : start + size]
        with self._lock:
            self.requests[(index, begin)] += 1
            self.blocks_served += 1
            corrupt = self.bad_block is None
            if corrupt:
                self.bad_block = (index, begin)
                self.bad_blocks_served += 1
        if corrupt:
            block = bytes(b ^ 0xFF for b in block)
        connection.sendall(encode_piece_header(index, begin, len(block)) + block)


class V2Library:
    """Content and libtorrent-made torrents shared by every v2 test of a session: the
    files are only read (by seeders), each downloader writes into its own folder."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self._content: dict[str, Path] = {}
        self._torrents: dict[tuple[str, str], bytes] = {}

    def content(self, layout: str) -> Path:
        if layout not in self._content:
            self._content[layout] = write_layout(self.parent / layout, layout)
        return self._content[layout]

    def torrent(self, fmt: str, layout: str) -> bytes:
        """libtorrent's .torrent (``fmt`` "v2" or "hybrid") of ``layout``, no tracker."""
        if (fmt, layout) not in self._torrents:
            content = self.content(layout)
            self._torrents[fmt, layout] = libtorrent_made(content, PIECE, fmt)
        return self._torrents[fmt, layout]


def session_counter(session: object, name: str, timeout: float = 5) -> int:
    """One of a libtorrent session's counters (``ses.num_outgoing_hashes``...) right now.

    Other alerts popped meanwhile are dropped: call it after the RequestLog is read.
    """
    import libtorrent as lt

    session.post_session_stats()  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.wait_for_alert(100)  # type: ignore[attr-defined]
        for alert in session.pop_alerts():  # type: ignore[attr-defined]
            if isinstance(alert, lt.session_stats_alert):
                return int(alert.values[name])
    raise TimeoutError(f"libtorrent posted no session stats in {timeout:g} s")
