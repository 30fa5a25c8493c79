"""A real bt seeder speaks the fast extension (BEP 6) to a client that sets its bit.

``twistd -n bittorrent`` seeds a torrent; a raw loopback client built on
bt.peer.connection.PeerConnection sets the FAST bit (and BEP 10's, as real
clients do) and checks what BEP 6 asks of the seeder: HAVE ALL right after the
handshake, the allowed-fast set of the client's address, a REJECT for a request
it will not serve while choking, a PIECE for an allowed-fast one even then.
The libtorrent download and seeding tests exercise the same code with libtorrent,
which negotiates the fast extension too.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from swarm import LOOPBACK, BtDaemon
from test_half_open_flood import listening_port
from test_seeding import stop_cleanly
from torrents import libtorrent_torrent, write_files

from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.connection import Event, HandshakeReceived, PeerConnection
from bt.peer.messages import (
    AllowedFast,
    HaveNone,
    Interested,
    Message,
    MessageId,
    Piece,
    RejectRequest,
    Request,
    Reserved,
    Unchoke,
)
from bt.policy.allowedfast import ALLOWED_FAST_COUNT, allowed_fast_set

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 30
PIECE = 64 * 1024
BLOCK = 16 * 1024


class FastClient:
    """A blocking loopback peer: our PeerConnection with the FAST bit, every byte kept."""

    def __init__(self, address: tuple[str, int], metainfo: Metainfo) -> None:
        reserved = Reserved.of(Reserved.FAST, Reserved.EXTENSION_PROTOCOL)
        self.wire = PeerConnection(
            b"-XX0001-fastclient01", metainfo.info_hash, metainfo.geometry, reserved=reserved
        )
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.raw = bytearray()
        self.events: list[Event] = []
        self.sock.sendall(self.wire.handshake_bytes())

    def send(self, *messages: Message) -> None:
        self.sock.sendall(b"".join(self.wire.send(m) for m in messages))

    def wait_for(self, what: str, found: Callable[[list[Event]], Any]) -> Any:
        """Read until ``found(events)`` is true (and return it), within TIMEOUT."""
        deadline = time.monotonic() + TIMEOUT
        while not (hit := found(self.events)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {TIMEOUT} s; heard {self.events}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            if not data:
                raise AssertionError(f"bt hung up before {what}; heard {self.events}")
            self.raw += data
            self.events += self.wire.receive_data(data)
        return hit

    def close(self) -> None:
        self.sock.close()


def of(kind: type, events: list[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def test_a_bt_seeder_sends_have_all_and_rejects_requests_explicitly(
    tmp_path: Path, libtorrent: object
) -> None:
    seed_dir = tmp_path / "seed"
    write_files(seed_dir, {"data.bin": 2 * 1024 * 1024 + 1234})
    content = (seed_dir / "data.bin").read_bytes()
    torrent = tmp_path / "data.torrent"
    torrent.write_bytes(libtorrent_torrent(seed_dir / "data.bin", PIECE))
    meta = parse_metainfo(torrent.read_bytes())
    (tmp_path / "bt").mkdir()
    seeder = BtDaemon(tmp_path / "bt", torrent, seed_dir)
    seeder.start()
    client = None
    try:
        port = listening_port(seeder)
        seeder.wait_for_log("pieces already on disk", TIMEOUT)
        client = FastClient((LOOPBACK, port), meta)
        client.wait_for("a handshake", lambda events: of(HandshakeReceived, events))
        assert client.wire.fast, "bt's handshake sets the FAST bit"

        # HAVE ALL, not a bitfield, is the first message after the handshake.
        client.wait_for("a first message", lambda events: len(events) > 1)
        (length,) = struct.unpack_from(">I", client.raw, 68)
        assert (length, client.raw[72]) == (1, MessageId.HAVE_ALL)
        assert client.events[1].bitfield.is_complete()  # type: ignore[union-attr]
        assert MessageId.BITFIELD not in _message_ids(client.raw)

        # We have nothing: the seeder gives us our allowed-fast set (BEP 6, by our IP).
        client.send(HaveNone())
        allowed = allowed_fast_set(LOOPBACK, meta.info_hash, meta.num_pieces)
        client.wait_for(
            "the allowed-fast set",
            lambda events: len(of(AllowedFast, events)) >= ALLOWED_FAST_COUNT,
        )
        assert [m.index for m in of(AllowedFast, client.events)] == allowed

        # Choked: a request outside the set is rejected, one inside it is served.
        outside = next(i for i in range(meta.num_pieces) if i not in allowed)
        client.send(Request(outside, 0, BLOCK), Request(allowed[0], BLOCK, BLOCK))
        client.wait_for(
            "a reject and a piece",
            lambda events: of(RejectRequest, events) and of(Piece, events),
        )
        assert of(RejectRequest, client.events) == [RejectRequest(outside, 0, BLOCK)]
        [piece] = of(Piece, client.events)
        start = allowed[0] * PIECE + BLOCK
        assert (piece.index, piece.begin, piece.block) == (
            allowed[0],
            BLOCK,
            content[start : start + BLOCK],
        )

        # Interested: unchoked, and the piece refused before is served now.
        client.send(Interested())
        client.wait_for("an unchoke", lambda events: Unchoke() in events)
        client.send(Request(outside, 0, BLOCK))
        client.wait_for("a second piece", lambda events: len(of(Piece, events)) >= 2)
        assert of(Piece, client.events)[-1].block == content[outside * PIECE :][:BLOCK]
        assert len(of(RejectRequest, client.events)) == 1
    finally:
        if client is not None:
            client.close()
        stop_cleanly(seeder)


def _message_ids(raw: bytes) -> list[int]:
    """The id of every message after the 68-byte handshake (keep-alives skipped)."""
    ids, pos = [], 68
    while pos + 4 <= len(raw):
        (length,) = struct.unpack_from(">I", raw, pos)
        if length and pos + 4 < len(raw):
            ids.append(raw[pos + 4])
        pos += 4 + length
    return ids
