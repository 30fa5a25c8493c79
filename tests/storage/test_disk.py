"""DiskQueue: hashing and writing off the reactor thread, shutdown, back-pressure."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import pytest_twisted
from twisted.internet.defer import CancelledError, Deferred
from zope.interface import implementer

from bt.errors import PieceHashError, StorageError
from bt.interfaces import IStorage
from bt.storage.disk import DiskQueue
from bt.storage.files import FileStorage
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage
from bt.storage.verifier import V1Verifier

#: Every test fails if it logged a failure it did not expect (see conftest.py).
pytestmark = pytest.mark.usefixtures("failures")

PIECE = 32
BLOCK = 8


class Entry(NamedTuple):
    path: tuple[str, ...]
    length: int
    offset: int
    padding: bool = False


FILES = [Entry(("t", "a"), 20, 0), Entry(("t", "b"), 50, 20)]
LAYOUT = Layout.from_files(FILES, PIECE)
DATA = bytes((i * 7) % 256 for i in range(LAYOUT.total_length))
HASHES = [
    hashlib.sha1(DATA[i * PIECE : i * PIECE + LAYOUT.piece_size(i)]).digest()
    for i in range(LAYOUT.num_pieces)
]


def blocks_of(index: int, data: bytes = DATA) -> list[bytes]:
    piece = data[index * PIECE : index * PIECE + LAYOUT.piece_size(index)]
    return [piece[i : i + BLOCK] for i in range(0, len(piece), BLOCK)]


def reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def queue_for(storage: IStorage, **kw: Any) -> DiskQueue:
    queue = DiskQueue(storage, V1Verifier(HASHES), LAYOUT.piece_size, reactor=reactor(), **kw)
    queue.start()
    return queue


async def within(d: Deferred[Any], seconds: float = 10) -> Any:
    """A Deferred that never fires must fail the test, not hang the run."""
    return await d.addTimeout(seconds, reactor())


def disk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "bt-disk" in t.name]


@implementer(IStorage)
class GatedStorage:
    """MemoryStorage whose writes wait for a gate: jobs stay in flight until the test says.

    ``entered`` is set by the first write; ``fail`` maps piece indexes to the error
    their write raises; ``written`` lists the pieces written, in order.
    """

    def __init__(self, layout: Layout = LAYOUT, fail: dict[int, Exception] | None = None) -> None:
        self.inner = MemoryStorage(layout)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = fail or {}
        self.written: list[int] = []

    def read(self, index: int, begin: int, length: int) -> bytes:
        return self.inner.read(index, begin, length)

    def write(self, index: int, begin: int, data: object) -> None:
        self.entered.set()
        if not self.gate.wait(10):
            raise StorageError("gate never opened")
        if index in self.fail:
            raise self.fail[index]
        self.written.append(index)
        self.inner.write(index, begin, data)

    def sync(self) -> None:
        self.inner.sync()

    def existing_lengths(self) -> list[int]:
        return self.inner.existing_lengths()

    def close(self) -> None:
        self.inner.close()


class Peer:
    """A pressure listener that records what it was told."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")


@pytest.fixture
def gated() -> Iterator[GatedStorage]:
    storage = GatedStorage()
    yield storage
    storage.gate.set()  # never leave a pool thread blocked, whatever the test did


@pytest_twisted.ensureDeferred
async def test_good_piece_is_written_to_its_files(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path, FILES, LAYOUT)
    queue = queue_for(storage)
    try:
        for index in range(LAYOUT.num_pieces):
            assert await within(queue.verify_and_write(index, blocks_of(index))) is None
        await within(queue.sync())
    finally:
        await within(queue.stop())
        storage.close()
    assert (tmp_path / "t" / "a").read_bytes() == DATA[:20]
    assert (tmp_path / "t" / "b").read_bytes() == DATA[20:]


@pytest_twisted.ensureDeferred
async def test_bad_piece_fails_and_leaves_the_files_untouched(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a").write_bytes(b"A" * 20)
    storage = FileStorage(tmp_path, FILES, LAYOUT)
    queue = queue_for(storage)
    corrupt = blocks_of(0)
    corrupt[1] = b"\xff" * BLOCK
    try:
        with pytest.raises(PieceHashError) as caught:
            await within(queue.verify_and_write(0, corrupt))
    finally:
        await within(queue.stop())
        storage.close()
    assert caught.value.index == 0
    assert (tmp_path / "t" / "a").read_bytes() == b"A" * 20
    assert not (tmp_path / "t" / "b").exists()


@pytest_twisted.ensureDeferred
async def test_read_serves_written_data_and_refuses_missing_data() -> None:
    storage = MemoryStorage(LAYOUT)
    queue = queue_for(storage)
    try:
        await within(queue.verify_and_write(1, blocks_of(1)))
        assert await within(queue.read(1, 8, 16)) == DATA[40:56]
        with pytest.raises(StorageError, match="only 0 on disk"):
            await within(queue.read(0, 0, 8))
    finally:
        await within(queue.stop())


@pytest_twisted.ensureDeferred
async def test_hash_piece_tells_good_from_missing_and_corrupt() -> None:
    storage = MemoryStorage(LAYOUT)
    queue = queue_for(storage)
    try:
        await within(queue.verify_and_write(0, blocks_of(0)))
        await within(queue.verify_and_write(2, blocks_of(2)))
        assert await within(queue.hash_piece(0)) is True
        assert await within(queue.hash_piece(2)) is True  # the short last piece
        assert await within(queue.hash_piece(1)) is False  # never written
        storage.write(0, 3, b"!")
        assert await within(queue.hash_piece(0)) is False
    finally:
        await within(queue.stop())


class Sha256Verifier:
    """Any object with ``num_pieces``, ``verify`` and ``hasher`` will do."""

    def __init__(self, hashes: list[bytes]) -> None:
        self.hashes = hashes
        self.num_pieces = len(hashes)

    def verify(self, index: int, data: bytes) -> None:
        if hashlib.sha256(data).digest() != self.hashes[index]:
            raise PieceHashError(index, (b"leaf",))

    def hasher(self, index: int) -> Any:
        return hashlib.sha256()


@pytest_twisted.ensureDeferred
async def test_the_verifier_is_pluggable_and_its_error_reaches_the_caller() -> None:
    hashes = [hashlib.sha256(b"".join(blocks_of(i))).digest() for i in range(LAYOUT.num_pieces)]
    storage = MemoryStorage(LAYOUT)
    queue = DiskQueue(storage, Sha256Verifier(hashes), LAYOUT.piece_size, reactor=reactor())
    queue.start()
    try:
        await within(queue.verify_and_write(0, blocks_of(0)))
        with pytest.raises(PieceHashError) as caught:
            await within(queue.verify_and_write(1, [*blocks_of(2), bytes(26)]))
        assert caught.value.leaf_hashes == (b"leaf",)
    finally:
        await within(queue.stop())


@pytest_twisted.ensureDeferred
async def test_storage_errors_reach_the_caller(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(b"a file where the folder must be")
    storage = FileStorage(tmp_path, FILES, LAYOUT)
    queue = queue_for(storage)
    try:
        with pytest.raises(StorageError, match="cannot open"):
            await within(queue.verify_and_write(0, blocks_of(0)))
        assert queue.pending == 0
    finally:
        await within(queue.stop())
        storage.close()


def test_caller_bugs_raise_at_once() -> None:
    queue = DiskQueue(MemoryStorage(LAYOUT), V1Verifier(HASHES), LAYOUT.piece_size)
    with pytest.raises(ValueError):
        queue.verify_and_write(0, blocks_of(0)[:-1])  # short piece
    with pytest.raises(ValueError):
        queue.verify_and_write(LAYOUT.num_pieces, [b""])
    with pytest.raises(ValueError):
        queue.read(2, 0, 7)  # last piece holds 6 bytes
    with pytest.raises(ValueError):
        queue.read(0, 0, 0)
    with pytest.raises(ValueError):
        DiskQueue(
            MemoryStorage(LAYOUT), V1Verifier(HASHES), LAYOUT.piece_size, high_water=4, low_water=4
        )


@pytest_twisted.ensureDeferred
async def test_work_before_start_is_refused() -> None:
    queue = DiskQueue(
        MemoryStorage(LAYOUT), V1Verifier(HASHES), LAYOUT.piece_size, reactor=reactor()
    )
    with pytest.raises(StorageError, match="new"):
        await within(queue.verify_and_write(0, blocks_of(0)))
    await within(queue.stop())  # stopping a queue that never started is fine
    assert disk_threads() == []


@pytest_twisted.ensureDeferred
async def test_stop_waits_for_work_in_flight_and_refuses_new_work(
    gated: GatedStorage,
) -> None:
    queue = queue_for(gated)
    written = queue.verify_and_write(0, blocks_of(0))
    queued = queue.verify_and_write(1, blocks_of(1))
    stopped = queue.stop()
    assert not stopped.called
    assert not queue.running
    with pytest.raises(StorageError, match="stopping"):
        await within(queue.verify_and_write(2, blocks_of(2)))
    also_stopped = queue.stop()  # a second stop() waits for the same thing

    gated.gate.set()
    await within(stopped)
    assert written.called and queued.called  # both fired before the stop did
    await within(written)
    await within(queued)
    await within(also_stopped)
    assert gated.inner.read(0, 0, PIECE) + gated.inner.read(1, 0, PIECE) == DATA[:64]
    assert disk_threads() == []
    with pytest.raises(StorageError, match="stopped"):
        await within(queue.read(0, 0, 8))
    assert (await within(queue.stop())) is None


@pytest_twisted.ensureDeferred
async def test_cancelled_caller_does_not_end_the_job_early(gated: GatedStorage) -> None:
    queue = queue_for(gated)
    result = queue.verify_and_write(0, blocks_of(0))
    result.cancel()
    with pytest.raises(CancelledError):
        await result
    assert queue.pending == 1  # the thread still holds the job
    stopped = queue.stop()
    assert not stopped.called
    gated.gate.set()
    await within(stopped)
    assert gated.inner.read(0, 0, PIECE) == DATA[:PIECE]


@pytest_twisted.ensureDeferred
async def test_pressure_pauses_listeners_above_high_water_and_resumes_at_low(
    gated: GatedStorage,
) -> None:
    queue = queue_for(gated, threads=1, high_water=2, low_water=1)
    early, late = Peer(), Peer()
    queue.add_pressure_listener(early)
    try:
        jobs = [queue.verify_and_write(i, blocks_of(i)) for i in range(2)]
        assert early.calls == [] and not queue.under_pressure  # 2 pending: not above
        jobs.append(queue.verify_and_write(2, blocks_of(2)))
        assert early.calls == ["pause"] and queue.under_pressure
        jobs.append(queue.read(0, 0, 1))
        assert early.calls == ["pause"]  # paused once, not per job
        queue.add_pressure_listener(late)
        assert late.calls == ["pause"]  # joined while full: paused at once

        gated.gate.set()
        for job in jobs:
            await within(job)
        assert queue.pending == 0
        assert early.calls == ["pause", "resume"]
        assert late.calls == ["pause", "resume"]
        assert not queue.under_pressure
    finally:
        await within(queue.stop())


@pytest_twisted.ensureDeferred
async def test_reads_for_seeding_never_pause_peers(gated: GatedStorage) -> None:
    """Only pieces waiting to be written are pressure: seeding reads are bounded per
    peer, and counting them paused every peer of a busy seeder over and over."""
    queue = queue_for(gated, threads=1, high_water=2, low_water=1)
    listener = Peer()
    queue.add_pressure_listener(listener)
    gated.gate.set()
    try:
        await within(queue.verify_and_write(0, blocks_of(0)))
        reads = [queue.read(0, 0, 16) for _ in range(10)]
        assert queue.pending == 10 and not queue.under_pressure
        for read in reads:
            await within(read)
        assert listener.calls == []
    finally:
        await within(queue.stop())


@pytest_twisted.ensureDeferred
async def test_removed_and_broken_listeners_do_not_disturb_jobs(
    gated: GatedStorage, failures: list[dict[str, Any]]
) -> None:
    class Broken(Peer):
        def resumeProducing(self) -> None:
            raise RuntimeError("peer went away badly")

    queue = queue_for(gated, threads=1, high_water=1, low_water=0)
    gone, broken = Peer(), Broken()
    queue.add_pressure_listener(gone)
    queue.add_pressure_listener(broken)
    try:
        jobs = [queue.verify_and_write(i, blocks_of(i)) for i in range(2)]
        queue.remove_pressure_listener(gone)
        gated.gate.set()
        for job in jobs:
            assert await within(job) is None
    finally:
        await within(queue.stop())
    assert gone.calls == ["pause"]
    assert broken.calls == ["pause"]
    assert [event["log_failure"].type for event in failures] == [RuntimeError]
    failures.clear()


class TriggerRecordingReactor:
    """The real reactor for thread results; system event triggers are only recorded."""

    def __init__(self) -> None:
        self.triggers: dict[int, tuple[str, str, Any]] = {}

    def callFromThread(self, f: Any, *args: Any, **kw: Any) -> None:
        reactor().callFromThread(f, *args, **kw)

    def addSystemEventTrigger(self, phase: str, event: str, f: Any) -> int:
        handle = len(self.triggers) + 1
        self.triggers[handle] = (phase, event, f)
        return handle

    def removeSystemEventTrigger(self, handle: int) -> None:
        del self.triggers[handle]


@pytest_twisted.ensureDeferred
async def test_forgotten_stop_happens_at_reactor_shutdown() -> None:
    """Pool threads are not daemons: without this the interpreter would never exit."""
    fake = TriggerRecordingReactor()
    queue = DiskQueue(MemoryStorage(LAYOUT), V1Verifier(HASHES), LAYOUT.piece_size, reactor=fake)
    queue.start()
    [(phase, event, trigger)] = fake.triggers.values()
    assert (phase, event) == ("during", "shutdown")
    await within(queue.verify_and_write(0, blocks_of(0)))
    trigger()
    assert disk_threads() == []
    with pytest.raises(StorageError):
        await within(queue.read(0, 0, 1))


@pytest_twisted.ensureDeferred
async def test_stop_removes_the_shutdown_trigger() -> None:
    fake = TriggerRecordingReactor()
    queue = DiskQueue(MemoryStorage(LAYOUT), V1Verifier(HASHES), LAYOUT.piece_size, reactor=fake)
    queue.start()
    await within(queue.stop())
    assert fake.triggers == {}
