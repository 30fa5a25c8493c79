"""A lying seeder: claims every piece and serves flipped bytes for some of them.

Plain sockets and threads, so it runs beside a bt subprocess without a reactor.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterable

from bt.bitfield import Bitfield
from bt.peer.messages import (
    BitfieldMessage,
    Handshake,
    Unchoke,
    encode,
    encode_handshake,
    encode_piece_header,
)

LOOPBACK = "127.0.0.1"


class CorruptSeeder:
    """Serves ``data`` for ``info_hash``; blocks of pieces in ``bad_pieces`` are corrupted."""

    def __init__(
        self, info_hash: bytes, data: bytes, piece_length: int, bad_pieces: Iterable[int]
    ) -> None:
        self.info_hash = info_hash
        self.data = data
        self.piece_length = piece_length
        self.num_pieces = -(-len(data) // piece_length)
        self.bad_pieces = set(bad_pieces)
        self.peer_id = b"-XX0000-corruptpeer!"
        self.blocks_served = 0
        self.bad_blocks_served = 0
        self._server = socket.create_server((LOOPBACK, 0))
        self._server.settimeout(0.2)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._server.getsockname()[1]

    def start(self) -> None:
        thread = threading.Thread(target=self._accept_loop, name="corrupt-seeder", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()
        for thread in self._threads:
            thread.join(5)
        self._server.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(30)
            with self._lock:
                self._connections.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, connection: socket.socket, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = connection.recv(size - len(chunks))
            if not chunk:
                raise ConnectionError("closed")
            chunks += chunk
        return bytes(chunks)

    def _serve(self, connection: socket.socket) -> None:
        try:
            if not self._greet(connection, self._read(connection, 68)):
                return
            full = Bitfield.full(self.num_pieces).to_bytes()
            connection.sendall(encode(BitfieldMessage(full)) + encode(Unchoke()))
            while not self._stopping.is_set():
                (length,) = struct.unpack(">I", self._read(connection, 4))
                if length:
                    self._on_message(connection, self._read(connection, length))
        except (OSError, ConnectionError):
            pass
        finally:
            connection.close()

    def _greet(self, connection: socket.socket, handshake: bytes) -> bool:
        """Answer the peer's handshake; False drops the connection."""
        connection.sendall(encode_handshake(Handshake(self.info_hash, self.peer_id)))
        return True

    def _on_message(self, connection: socket.socket, body: bytes) -> None:
        if body[0] == 6:  # request
            index, begin, size = struct.unpack(">III", body[1:13])
            self._send_block(connection, index, begin, size)

    def _send_block(self, connection: socket.socket, index: int, begin: int, size: int) -> None:
        start = index * self.piece_length + begin
        block = self.data[start : start + size]
        self.blocks_served += 1
        if index in self.bad_pieces:
            block = bytes(b ^ 0xFF for b in block)
            self.bad_blocks_served += 1
        connection.sendall(encode_piece_header(index, begin, len(block)) + block)
