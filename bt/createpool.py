"""The thread pool ``bt create`` hashes in, and how its jobs read files.

Pieces are independent, so they are hashed in parallel: a thread pool reads
each piece's bytes with ``os.pread`` and hashes them with ``hashlib``, which
releases the GIL on large buffers. At most ``2 x workers`` jobs are in flight,
so memory stays near ``workers x piece length`` whatever the size. Results come
back in submission order, so the caller can join digests as they finish.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bt.errors import CreateError

__all__ = ["Progress", "SourceFile", "read_chunks", "read_exact", "run_ordered"]

T = TypeVar("T")

#: ``(done_bytes, total_bytes)``, called from the creating thread as pieces finish.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file going into the torrent."""

    #: Where to read it (symbolic links already resolved).
    source: Path
    #: Path components inside the torrent, below its name.
    components: tuple[str, ...]
    length: int


def run_ordered(
    jobs: Iterable[tuple[Callable[[], T], int]],
    total: int,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[T]:
    """Every job's result, in order; each job comes with the bytes it covers, for progress.

    ``jobs`` is consumed lazily (a torrent may have millions of pieces), at most
    ``2 x workers`` ahead of the results; ``total`` is the sum of their sizes.
    """
    workers = max(1, workers or os.cpu_count() or 1)
    in_flight = 2 * workers
    results: list[T] = []
    done = 0
    if progress is not None:
        progress(0, total)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bt-create") as pool:
        pending: deque[tuple[Future[T], int]] = deque()

        def collect() -> None:
            nonlocal done
            future, size = pending.popleft()
            results.append(future.result())
            done += size
            if progress is not None:
                progress(done, total)

        try:
            for job, size in jobs:
                pending.append((pool.submit(job), size))
                if len(pending) >= in_flight:
                    collect()
            while pending:
                collect()
        finally:
            for future, _ in pending:
                future.cancel()
    return results


def read_chunks(source: Path, offset: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``source`` from ``offset``, as ``pread`` returns them.

    Runs in a pool thread. A file shorter than it was when it was listed is an
    error: the torrent would describe data that is not there.
    """
    try:
        fd = os.open(source, os.O_RDONLY)
    except OSError as exc:
        raise CreateError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        left = length
        while left:
            chunk = os.pread(fd, left, offset)
            if not chunk:
                raise CreateError(f"{source}: the file shrank while it was being hashed")
            yield chunk
            offset += len(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise CreateError(f"{source}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_exact(source: Path, offset: int, length: int) -> bytes:
    """``length`` bytes of ``source`` from ``offset`` in one buffer (usually one ``pread``)."""
    chunks = list(read_chunks(source, offset, length))
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
