"""Disk queues of many torrents share one thread pool that belongs to the session."""

from __future__ import annotations

import hashlib

import pytest_twisted
from twisted.python.threadpool import ThreadPool

from bt.storage.disk import DiskQueue
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage
from bt.storage.verifier import V1Verifier

DATA = b"x" * 32


def queue(pool: ThreadPool) -> DiskQueue:
    from twisted.internet import reactor

    layout = Layout([len(DATA)], piece_length=16)
    hashes = [hashlib.sha1(DATA[i : i + 16]).digest() for i in (0, 16)]
    return DiskQueue(
        MemoryStorage(layout), V1Verifier(hashes), layout.piece_size, reactor=reactor, pool=pool
    )


@pytest_twisted.ensureDeferred
async def test_queues_share_a_pool_they_neither_start_nor_stop() -> None:
    pool = ThreadPool(minthreads=1, maxthreads=2, name="bt-disk-test")
    pool.start()
    try:
        first, second = queue(pool), queue(pool)
        first.start()
        second.start()
        await first.verify_and_write(0, [DATA[:16]])
        await first.stop()
        assert pool.started, "stopping one torrent's queue must not stop the shared pool"
        await second.verify_and_write(1, [DATA[16:]])
        await second.stop()
    finally:
        pool.stop()
