"""Byte views and the file calls that take them: vectored writes, whole reads.

What every storage (files, the part file, memory) shares: data arrives as blocks
(bytes, views, or lists of them) and goes to the kernel uncopied, one vectored call
per file span, resumed after short writes.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

__all__ = ["as_views", "pread_all", "pwrite_all", "take"]


def _iov_max() -> int:
    try:
        value = os.sysconf("SC_IOV_MAX")
    except (ValueError, OSError):
        return 1024
    return value if value > 0 else 1024


_IOV_MAX = _iov_max()


def as_views(data: object) -> list[memoryview]:
    """``data`` (bytes-like, or a sequence of them) as flat byte views, no copies."""
    if isinstance(data, bytes | bytearray | memoryview):
        items: Sequence[object] = (data,)
    elif isinstance(data, Sequence):
        items = data
    else:
        raise TypeError(f"expected bytes-like or a sequence of them, got {type(data).__name__}")
    views = []
    for item in items:
        view = memoryview(item).cast("B")  # type: ignore[arg-type]
        if view.nbytes:
            views.append(view)
    return views


def take(views: list[memoryview], count: int) -> tuple[list[memoryview], list[memoryview]]:
    """Split ``views`` after ``count`` bytes: (the first ``count`` bytes, the rest)."""
    head: list[memoryview] = []
    position = 0
    while count and position < len(views):
        view = views[position]
        if view.nbytes <= count:
            head.append(view)
            count -= view.nbytes
            position += 1
        else:
            head.append(view[:count])
            return head, [view[count:], *views[position + 1 :]]
    return head, views[position:]


def pwrite_all(fd: int, views: list[memoryview], offset: int) -> None:
    """One vectored write per batch of IOV_MAX buffers, resumed after a short write."""
    while views:
        batch = views[:_IOV_MAX]
        if hasattr(os, "pwritev"):
            written = os.pwritev(fd, batch, offset)
        else:  # pragma: no cover - platforms without pwritev
            written = os.pwrite(fd, b"".join(batch), offset)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        offset += written
        _, views = take(views, written)


def pread_all(fd: int, length: int, offset: int) -> bytes:
    """Up to ``length`` bytes; shorter only at end of file."""
    data = os.pread(fd, length, offset)
    if len(data) == length or not data:
        return data
    chunks = [data]
    got = len(data)
    while got < length:
        chunk = os.pread(fd, length - got, offset + got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
