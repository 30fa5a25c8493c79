"""Writes to a peer's TCP socket in one ``sendmsg`` while the transport has nothing queued.

Why: Twisted's transport takes only ``bytes``, joins its buffer into one string before
each send, and pauses a streaming producer as soon as 64 KiB wait. A seeder then pays,
per 64 KiB, a join (a copy), a send, two ``epoll_ctl`` and a pause and resume of its
upload queue, and copies each cached block twice (the slice out of the cached chunk,
the join) before the kernel copies it once more.

When the transport's buffer is empty nothing is ahead of our bytes, so writing to the
socket ourselves keeps their order: one ``sendmsg`` takes the headers and memoryview
slices of the cached chunks of a whole batch of blocks, copied once, by the kernel.
What the kernel does not take goes to the transport as ``bytes`` (a copy of that tail
only), and the transport's streaming producer (the upload queue) is paused as Twisted
pauses it when its buffer is full (``producerPaused``, then ``pauseProducing``): the
transport resumes it once it has written the tail, so Twisted's flow control decides
when we may write again. (Not by setting ``bufferSize`` to 0: a TCP transport also
reads with ``recv(bufferSize)``, and ``recv(0)`` looks like the peer hanging up.)

Only a plain TCP transport of Twisted's own (``twisted.internet.tcp``) qualifies: its
buffer is read through ``dataBuffer``, ``offset`` and ``_tempDataLen`` (checked to exist
when the connection is made). Any other transport (TLS, a test's in-memory one) gets
:func:`for_transport` None and the caller writes through the transport as before.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from typing import Any, TypeAlias

from twisted.internet import interfaces

Buffer: TypeAlias = bytes | bytearray | memoryview

__all__ = ["Buffer", "DirectWriter", "as_bytes", "for_transport", "piece_parts"]

_PIECE_HEADER = struct.Struct(">IBII")
_PIECE = 7


def piece_parts(blocks: Sequence[tuple[int, int, Buffer]]) -> list[Buffer]:
    """PIECE messages for ``(index, begin, data)`` blocks: each header, then its data uncopied."""
    pack = _PIECE_HEADER.pack
    parts: list[Buffer] = []
    for index, begin, data in blocks:
        parts.append(pack(9 + len(data), _PIECE, index, begin))
        parts.append(data)
    return parts


def as_bytes(parts: Sequence[Buffer]) -> list[bytes]:
    """The parts as ``bytes``, which is all a Twisted transport accepts (views are copied)."""
    return [part if type(part) is bytes else bytes(part) for part in parts]


def for_transport(transport: Any) -> DirectWriter | None:
    """A direct writer for a plain TCP transport of Twisted's, else None (write as before)."""
    if not interfaces.ITCPTransport.providedBy(transport):
        return None
    if interfaces.ISSLTransport.providedBy(transport):
        return None
    try:
        handle = transport.getHandle()
        ready = (
            isinstance(transport.dataBuffer, bytes)
            and isinstance(transport.offset, int)
            and isinstance(transport._tempDataLen, int)
            and isinstance(transport.producerPaused, bool)
        )
    except AttributeError:
        return None
    if not ready or not isinstance(handle, socket.socket) or handle.type != socket.SOCK_STREAM:
        return None
    return DirectWriter(transport, handle)


class DirectWriter:
    """One connection's writes, straight to its socket whenever the transport is idle."""

    __slots__ = ("_sock", "_transport", "bytes_direct", "bytes_queued")

    def __init__(self, transport: Any, sock: socket.socket) -> None:
        self._transport = transport
        self._sock = sock
        #: Bytes the kernel took from sendmsg, and bytes handed to the transport instead.
        self.bytes_direct = 0
        self.bytes_queued = 0

    def idle(self) -> bool:
        """Nothing is waiting in the transport: our bytes may go first."""
        transport = self._transport
        return (
            not transport._tempDataLen
            and transport.offset == len(transport.dataBuffer)
            and transport.connected
            and not transport.disconnecting
        )

    def write(self, parts: Sequence[Buffer]) -> None:
        """Write ``parts`` in order: to the socket while the transport is idle, the rest to it."""
        if self.idle():
            try:
                sent = self._sock.sendmsg(parts)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # a reset: the transport finds it when it writes the rest
            self.bytes_direct += sent
            if sent:
                parts = _unsent(parts, sent)
                if not parts:
                    return
        rest = as_bytes(parts)
        self.bytes_queued += sum(len(part) for part in rest)
        transport = self._transport
        transport.writeSequence(rest)
        producer = transport.producer
        if producer is not None and transport.streamingProducer and not transport.producerPaused:
            # Any byte left in the transport pauses its producer until written.
            transport.producerPaused = True
            producer.pauseProducing()


def _unsent(parts: Sequence[Buffer], sent: int) -> list[Buffer]:
    """What is left of ``parts`` once their first ``sent`` bytes are written."""
    for number, part in enumerate(parts):
        size = len(part)  # bytes, or a view of bytes (one byte per item)
        if sent < size:
            rest = list(parts[number:])
            if sent:
                rest[0] = memoryview(part)[sent:]
            return rest
        sent -= size
    return []
