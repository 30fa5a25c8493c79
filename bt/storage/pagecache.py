"""Reads that take bytes from the page cache or not at all: ``preadv`` with ``RWF_NOWAIT``.

Why: a seeder serving popular data finds it in the kernel's page cache, and the
hand-off of each read to the disk threads and back (a queue put, a worker
wake-up, the GIL, a reactor wake-up, a Deferred) costs more than the copy itself
(docs/performance.rst). ``RWF_NOWAIT`` (Linux 4.14) makes the kernel copy only
what is in memory now and fail with ``EAGAIN`` rather than start disk I/O, so the
reactor thread may call it: it never waits for a disk. Anything short of the
whole range is treated as not there, and the caller reads through the disk
threads as before. Elsewhere (no ``RWF_NOWAIT``) every call says no.
"""

from __future__ import annotations

import errno
import os

__all__ = ["AVAILABLE", "NotSupported", "pread_cached"]

_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
#: This platform can ask for cached bytes only.
AVAILABLE = _RWF_NOWAIT is not None and hasattr(os, "preadv")


class NotSupported(Exception):
    """This file's file system cannot read without waiting: don't ask it again."""


def pread_cached(fd: int, views: list[memoryview], offset: int) -> bool:
    """Fill ``views`` from ``fd`` at ``offset`` if every byte is in memory now; False
    (the views' contents then undefined) if not. NotSupported if the file system
    cannot tell (NFS, FUSE and the like answer EOPNOTSUPP), which does not change."""
    if not views:
        return True
    if _RWF_NOWAIT is None:
        raise NotSupported("no RWF_NOWAIT on this platform")
    try:
        got = os.preadv(fd, views, offset, _RWF_NOWAIT)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            raise NotSupported(os.strerror(error.errno)) from error
        return False  # EAGAIN: not all of it is in memory
    return got == sum(view.nbytes for view in views)
