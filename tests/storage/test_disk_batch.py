"""DiskQueue batches small pieces: one thread job and one reactor wake-up for many pieces.

Each test holds the only disk thread in a write of piece 0 (a gate), queues
pieces behind it, then opens the gate: which pieces share a batch is then
known exactly, with no sleeps.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from test_disk import GatedStorage
from twisted.internet.defer import CancelledError, Deferred, DeferredList
from twisted.internet.threads import deferToThread

from bt.errors import PieceHashError, StorageError
from bt.storage.disk import DiskQueue
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage
from bt.storage.verifier import V1Verifier

#: Every test fails if it logged a failure it did not expect (see conftest.py).
pytestmark = pytest.mark.usefixtures("failures")

SMALL = 16  # bytes per piece in most tests
COUNT = 201  # piece 0 holds the thread, 200 queue behind it


def reactor() -> Any:
    from twisted.internet import reactor

    return reactor


async def within(d: Deferred[Any], seconds: float = 10) -> Any:
    return await d.addTimeout(seconds, reactor())


def disk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "bt-disk" in t.name]


class Torrent:
    """Data, layout and hashes of a single-file torrent of ``count`` pieces."""

    def __init__(self, count: int, piece: int) -> None:
        self.piece = piece
        self.layout = Layout([count * piece], piece_length=piece)
        self.data = bytes((i * 7 + i // 251) % 256 for i in range(count * piece))
        self.hashes = [hashlib.sha1(self.blocks(i)[0]).digest() for i in range(count)]

    def blocks(self, index: int) -> list[bytes]:
        return [self.data[index * self.piece : (index + 1) * self.piece]]


class Peer:
    def __init__(self, queue: DiskQueue | None = None) -> None:
        self.queue = queue
        self.calls: list[tuple[str, int]] = []

    def pauseProducing(self) -> None:
        self.calls.append(("pause", self.queue.pending if self.queue else -1))

    def resumeProducing(self) -> None:
        self.calls.append(("resume", self.queue.pending if self.queue else -1))


@pytest.fixture
def small() -> Torrent:
    return Torrent(COUNT, SMALL)


def gated_queue(torrent: Torrent, storage: GatedStorage, **kw: Any) -> DiskQueue:
    queue = DiskQueue(
        storage, V1Verifier(torrent.hashes), torrent.layout.piece_size, reactor=reactor(), **kw
    )
    queue.start()
    return queue


async def finish(queue: DiskQueue, storage: GatedStorage) -> None:
    """Never leave a pool thread blocked, whatever the test did."""
    storage.gate.set()
    await within(queue.stop())


@pytest.fixture
def one_thread(small: Torrent) -> Iterator[tuple[DiskQueue, GatedStorage]]:
    storage = GatedStorage(small.layout)
    yield gated_queue(small, storage, threads=1, high_water=1000), storage
    storage.gate.set()


async def hold_the_thread(queue: DiskQueue, storage: GatedStorage, torrent: Torrent) -> Deferred:
    """Piece 0 in a batch of its own, its thread blocked in the write."""
    first = queue.verify_and_write(0, torrent.blocks(0))
    assert await within(deferToThread(storage.entered.wait, 10))
    return first


def in_order(jobs: list[Deferred[None]]) -> list[tuple[int, object]]:
    """Record (index, outcome) as each Deferred fires; failures are handled here."""
    fired: list[tuple[int, object]] = []
    for index, job in enumerate(jobs):
        job.addCallbacks(
            lambda result, i=index: fired.append((i, result)),
            lambda failure, i=index: fired.append((i, failure.value)),
        )
    return fired


@pytest_twisted.ensureDeferred
async def test_queued_small_pieces_share_batches_and_fire_in_submission_order(
    small: Torrent, one_thread: tuple[DiskQueue, GatedStorage]
) -> None:
    queue, storage = one_thread
    try:
        jobs = [await hold_the_thread(queue, storage, small)]
        jobs += [queue.verify_and_write(i, small.blocks(i)) for i in range(1, COUNT)]
        fired = in_order(jobs)
        assert queue.batches == 1 and queue.pending == COUNT
        storage.gate.set()
        await within(DeferredList(jobs))
        # 1 for piece 0, then 200 pieces in batches of at most 64: 64 + 64 + 64 + 8.
        assert queue.batches == 5
        assert fired == [(i, None) for i in range(COUNT)]
        assert storage.written == list(range(COUNT))
        assert storage.inner.file_data(0) == small.data
        assert queue.pending == 0
    finally:
        await finish(queue, storage)


@pytest_twisted.ensureDeferred
async def test_each_piece_of_a_batch_gets_its_own_outcome(small: Torrent) -> None:
    """Corrupt pieces fail with their hash error and are not written; a failed
    write fails only its piece; the pieces around them are written."""
    storage = GatedStorage(
        small.layout, fail={5: StorageError("disk full"), 9: OSError("a bug, not a disk error")}
    )
    queue = gated_queue(small, storage, threads=1)
    try:
        jobs = [await hold_the_thread(queue, storage, small)]
        corrupt = {3, 4, 12}
        for i in range(1, 16):
            blocks = [b"\xff" * SMALL] if i in corrupt else small.blocks(i)
            jobs.append(queue.verify_and_write(i, blocks))
        fired = in_order(jobs)
        storage.gate.set()
        await within(DeferredList(jobs))
        assert queue.batches == 2
        assert [i for i, _ in fired] == list(range(16))
        outcomes = dict(fired)
        for i in corrupt:
            assert isinstance(outcomes[i], PieceHashError) and outcomes[i].index == i
        assert isinstance(outcomes[5], StorageError) and str(outcomes[5]) == "disk full"
        assert isinstance(outcomes[9], OSError)
        good = sorted(set(range(16)) - corrupt - {5, 9})
        assert [i for i in good if outcomes[i] is None] == good
        assert storage.written == good
        for i in good:
            assert storage.inner.read(i, 0, SMALL) == small.blocks(i)[0]
        assert queue.pending == 0
    finally:
        await finish(queue, storage)


@pytest_twisted.ensureDeferred
async def test_a_batch_is_bounded_in_bytes_too() -> None:
    """256 KiB pieces: 8 MiB is 32 of them, fewer than the 64-piece bound."""
    torrent = Torrent(65, 256 << 10)
    storage = GatedStorage(torrent.layout)
    queue = gated_queue(torrent, storage, threads=1)
    try:
        jobs = [await hold_the_thread(queue, storage, torrent)]
        jobs += [queue.verify_and_write(i, torrent.blocks(i)) for i in range(1, 65)]
        storage.gate.set()
        await within(DeferredList(jobs, fireOnOneErrback=True))
        assert queue.batches == 3  # piece 0, then 32 + 32
        assert storage.inner.file_data(0) == torrent.data
    finally:
        await finish(queue, storage)


@pytest_twisted.ensureDeferred
async def test_large_pieces_keep_a_job_each() -> None:
    torrent = Torrent(3, 1 << 20)
    storage = MemoryStorage(torrent.layout)
    queue = DiskQueue(
        storage, V1Verifier(torrent.hashes), torrent.layout.piece_size, reactor=reactor()
    )
    queue.start()
    try:
        blocks = [torrent.blocks(i)[0] for i in range(3)]
        split = [[b[j : j + (16 << 10)] for j in range(0, len(b), 16 << 10)] for b in blocks]
        await within(DeferredList([queue.verify_and_write(i, split[i]) for i in range(3)]))
        with pytest.raises(PieceHashError):
            await within(queue.verify_and_write(1, split[2]))
        assert queue.batches == 0
        assert storage.file_data(0) == torrent.data
    finally:
        await within(queue.stop())


@pytest_twisted.ensureDeferred
async def test_pressure_counts_the_pieces_of_batches(small: Torrent) -> None:
    storage = GatedStorage(small.layout)
    queue = gated_queue(small, storage, threads=2, high_water=8, low_water=3)
    peer = Peer(queue)
    queue.add_pressure_listener(peer)
    try:
        jobs = [await hold_the_thread(queue, storage, small)]
        jobs += [queue.verify_and_write(i, small.blocks(i)) for i in range(1, 100)]
        assert peer.calls == [("pause", 9)]  # above 8 pieces pending, once
        storage.gate.set()
        await within(DeferredList(jobs))
        assert peer.calls == [("pause", 9), ("resume", 3)]
        assert not queue.under_pressure
    finally:
        await finish(queue, storage)


@pytest_twisted.ensureDeferred
async def test_stop_waits_for_every_queued_batch(
    small: Torrent, one_thread: tuple[DiskQueue, GatedStorage]
) -> None:
    queue, storage = one_thread
    jobs = [await hold_the_thread(queue, storage, small)]
    jobs += [queue.verify_and_write(i, small.blocks(i)) for i in range(1, COUNT)]
    stopped = queue.stop()
    with pytest.raises(StorageError, match="stopping"):
        await within(queue.verify_and_write(1, small.blocks(1)))
    assert not stopped.called
    storage.gate.set()
    await within(stopped)
    assert all(job.called for job in jobs)  # every piece fired before the stop did
    assert storage.inner.file_data(0) == small.data
    assert queue.pending == 0
    assert disk_threads() == []
    with pytest.raises(StorageError, match="stopped"):
        await within(queue.verify_and_write(1, small.blocks(1)))
    await within(DeferredList(jobs, fireOnOneErrback=True))


@pytest_twisted.ensureDeferred
async def test_cancelling_one_piece_leaves_its_batch_alone(
    small: Torrent, one_thread: tuple[DiskQueue, GatedStorage]
) -> None:
    queue, storage = one_thread
    try:
        first = await hold_the_thread(queue, storage, small)
        jobs = [queue.verify_and_write(i, small.blocks(i)) for i in range(1, 4)]
        jobs[1].cancel()
        with pytest.raises(CancelledError):
            await jobs[1]
        assert queue.pending == 4  # the cancelled piece is still queued for writing
        storage.gate.set()
        await within(first)
        assert await within(jobs[0]) is None and await within(jobs[2]) is None
        assert storage.written == [0, 1, 2, 3]
        assert queue.pending == 0
    finally:
        await finish(queue, storage)


class ShutdownRecordingReactor:
    """The real reactor for thread results; system event triggers are only recorded."""

    def __init__(self) -> None:
        self.triggers: list[Any] = []

    def callFromThread(self, f: Any, *args: Any, **kw: Any) -> None:
        reactor().callFromThread(f, *args, **kw)

    def addSystemEventTrigger(self, phase: str, event: str, f: Any) -> int:
        self.triggers.append(f)
        return len(self.triggers)


@pytest_twisted.ensureDeferred
async def test_forgotten_stop_still_writes_pieces_queued_behind_a_running_batch(
    small: Torrent,
) -> None:
    fake = ShutdownRecordingReactor()
    storage = GatedStorage(small.layout)
    queue = DiskQueue(
        storage, V1Verifier(small.hashes), small.layout.piece_size, reactor=fake, threads=1
    )
    queue.start()
    try:
        jobs = [await hold_the_thread(queue, storage, small)]
        jobs += [queue.verify_and_write(i, small.blocks(i)) for i in range(1, 10)]
        storage.gate.set()
        [trigger] = fake.triggers
        trigger()  # blocks until the pool joined
        assert disk_threads() == []
        assert storage.written == list(range(10))
        await within(DeferredList(jobs, fireOnOneErrback=True))
    finally:
        storage.gate.set()


@pytest_twisted.ensureDeferred
async def test_write_piece_reports_each_batch_in_one_call_with_its_own_outcomes(
    small: Torrent, one_thread: tuple[DiskQueue, GatedStorage]
) -> None:
    """The completion chain's path: no Deferred per piece, one sink call per batch."""
    queue, storage = one_thread
    calls: list[list[tuple[Any, Any]]] = []
    sink = calls.append  # one sink for all (the completion chain's bound method is one too)
    try:
        first = await hold_the_thread(queue, storage, small)
        for i in range(1, COUNT):
            blocks = [bytes(SMALL)] if i == 5 else small.blocks(i)  # piece 5 is corrupt
            queue.write_piece(i, blocks, sink, f"t{i}")
        storage.gate.set()
        await within(first)
        while queue.pending:
            await within(deferToThread(lambda: None))
        # 200 pieces behind piece 0 in batches of at most 64: four sink calls.
        assert [len(batch) for batch in calls] == [64, 64, 64, 8]
        results = [result for batch in calls for result in batch]
        assert [token for token, _ in results] == [f"t{i}" for i in range(1, COUNT)]
        failed = [(token, f.value) for token, f in results if f is not None]
        assert [(t, type(v)) for t, v in failed] == [("t5", PieceHashError)]
        assert 5 not in storage.written and len(storage.written) == COUNT - 1
    finally:
        await finish(queue, storage)


def test_write_piece_on_a_stopped_queue_reports_a_storage_error(small: Torrent) -> None:
    queue = DiskQueue(
        MemoryStorage(small.layout), V1Verifier(small.hashes), small.layout.piece_size
    )
    calls: list[Any] = []
    queue.write_piece(1, small.blocks(1), calls.append, "t")
    [[(token, failure)]] = calls
    assert token == "t" and failure.check(StorageError)


class RunStorage(GatedStorage):
    """GatedStorage that also takes runs of pieces (``write_pieces``), recorded as
    (first, count); a run holding a piece of ``fail`` raises that piece's error."""

    def __init__(self, layout: Layout, fail: dict[int, Exception] | None = None) -> None:
        super().__init__(layout, fail)
        self.runs: list[tuple[int, int]] = []

    def write_pieces(self, first: int, data: list[bytes]) -> None:
        pieces = range(first, first + len(data))
        for index in pieces:
            if index in self.fail:
                raise self.fail[index]
        self.runs.append((first, len(data)))
        self.written.extend(pieces)
        self.inner.write_pieces(first, data)


@pytest_twisted.ensureDeferred
async def test_adjacent_pieces_of_a_batch_are_written_as_runs(small: Torrent) -> None:
    """Submitted out of order, a corrupt piece and a missing one in between: one
    ``write_pieces`` per run of adjacent good pieces, outcomes in submission order."""
    storage = RunStorage(small.layout)
    queue = gated_queue(small, storage, threads=1)
    try:
        jobs = [await hold_the_thread(queue, storage, small)]
        order = [*range(40, 30, -1), *range(1, 20), 20, *range(21, 30)]  # 30 never comes
        for i in order:
            blocks = [b"\xff" * SMALL] if i == 20 else small.blocks(i)
            jobs.append(queue.verify_and_write(i, blocks))
        fired = in_order(jobs)
        storage.gate.set()
        await within(DeferredList(jobs))
        assert queue.batches == 2
        assert [i for i, _ in fired] == list(range(len(jobs)))  # submission order
        outcomes = {index: outcome for index, (_, outcome) in zip([0, *order], fired, strict=True)}
        assert isinstance(outcomes[20], PieceHashError)
        assert all(outcomes[i] is None for i in order if i != 20)
        assert storage.runs == [(1, 19), (21, 9), (31, 10)]
        for i in [0, *order]:
            if i != 20:
                assert storage.inner.read(i, 0, SMALL) == small.blocks(i)[0]
    finally:
        await finish(queue, storage)


@pytest_twisted.ensureDeferred
async def test_a_failed_run_fails_its_own_pieces_only(small: Torrent) -> None:
    storage = RunStorage(small.layout, fail={12: StorageError("disk full")})
    queue = gated_queue(small, storage, threads=1)
    try:
        jobs = [await hold_the_thread(queue, storage, small)]
        order = [*range(10, 15), *range(20, 23), 30]
        jobs += [queue.verify_and_write(i, small.blocks(i)) for i in order]
        fired = in_order(jobs)
        storage.gate.set()
        await within(DeferredList(jobs))
        outcomes = {index: outcome for index, (_, outcome) in zip([0, *order], fired, strict=True)}
        for i in range(10, 15):
            assert isinstance(outcomes[i], StorageError) and str(outcomes[i]) == "disk full"
        assert all(outcomes[i] is None for i in (20, 21, 22, 30))
        assert storage.runs == [(20, 3)] and storage.written == [0, 20, 21, 22, 30]
        assert queue.pending == 0
    finally:
        await finish(queue, storage)


@pytest_twisted.ensureDeferred
async def test_blocks_that_cannot_be_joined_fail_their_piece_not_the_batch(small: Torrent) -> None:
    storage = RunStorage(small.layout)
    queue = gated_queue(small, storage, threads=1)
    try:
        jobs = [await hold_the_thread(queue, storage, small)]
        strided = memoryview(bytes(SMALL))[::2]  # the right size, but no contiguous buffer
        jobs += [queue.verify_and_write(1, small.blocks(1))]
        jobs += [queue.verify_and_write(2, [strided, b"\0" * (SMALL // 2)])]
        jobs += [queue.verify_and_write(3, small.blocks(3))]
        fired = in_order(jobs)
        storage.gate.set()
        await within(DeferredList(jobs))
        assert [outcome is None for _, outcome in fired] == [True, True, False, True]
        assert isinstance(fired[2][1], TypeError)  # bytes.join refuses a strided view
        assert storage.written == [0, 1, 3] and queue.pending == 0
    finally:
        await finish(queue, storage)


@pytest_twisted.ensureDeferred
async def test_tiny_pieces_get_one_batch_job_at_a_time_larger_ones_one_per_thread() -> None:
    """Two threads: pieces under 64 KiB wait for the running batch; 64 KiB ones do not."""
    for piece, expected in ((16 << 10, 1), (64 << 10, 2)):
        torrent = Torrent(8, piece)
        storage = GatedStorage(torrent.layout)
        queue = gated_queue(torrent, storage, threads=2)
        try:
            jobs = [await hold_the_thread(queue, storage, torrent)]
            jobs += [queue.verify_and_write(i, torrent.blocks(i)) for i in range(1, 8)]
            assert queue.batches == expected, f"{piece} bytes a piece"
            storage.gate.set()
            await within(DeferredList(jobs, fireOnOneErrback=True))
            assert storage.inner.file_data(0) == torrent.data
        finally:
            await finish(queue, storage)
