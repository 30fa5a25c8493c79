"""The disk queue: blocking storage and hashing moved off the reactor thread.

Hashing a piece and writing it are one thread job, so a piece is written only
after its hash passed and a failed piece never touches the disk. The queue owns
a dedicated thread pool (not the reactor's, which also resolves host names) and
reports back-pressure to registered producers (peers) so that a slow disk
pauses the network instead of growing memory without bound.

Small pieces are verified and written in batches: with 16 KiB pieces a thread
job, a Deferred chain and a reactor wake-up per piece cost more than the
hashing and writing themselves. Pieces submitted while a batch job is waiting
for a thread join it; one job takes them all (up to a bound), and one reactor
callback fires their Deferreds in submission order, or hands ``write_piece``'s
pieces to their sink in one call (no Deferred per piece). The job hashes every
piece first, then writes the good ones that are adjacent (the picker picks small
pieces in runs) with one ``write_pieces`` call per run: one system call, one
GIL hand-off and one pass through the storage's locks for up to 64 pieces.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from bt.errors import DataMissingError, StorageError
from bt.interfaces import IDiskQueue, IStorage
from bt.logs import Logger
from bt.storage.verifier import PieceVerifier, piece_verifier

if TYPE_CHECKING:
    from bt.metainfo import Metainfo

__all__ = ["DiskQueue", "PressureListener"]

log = Logger()

_T = TypeVar("_T")

#: hash_piece reads this much at a time, so rechecking big pieces stays small in memory.
_RECHECK_CHUNK = 1 << 20

#: Pieces of this size or more get a thread job each, as batching gains nothing there.
_BATCH_BELOW = 1 << 20
#: One batch job takes at most this many pieces or bytes (the piece that crosses
#: the byte bound included), so reads and rechecks sharing the pool wait little.
_BATCH_PIECES = 64
_BATCH_BYTES = 8 << 20
#: Pieces below this size get one batch job at a time, not one per thread: their cost
#: is Python per piece, and a second job only adds a thread taking the GIL from the
#: reactor between its hash and write calls (16 KiB pieces: 269 -> 300 MB/s, median
#: of six pairs; at 256 KiB, where hashing dominates, one job was a quarter slower).
_ONE_BATCH_BELOW = 64 << 10


#: Where ``write_piece`` reports: the (token, None or the Failure) of each piece of a batch.
Sink = Callable[[list[tuple[Any, Failure | None]]], None]


class _PieceJob:
    """A piece waiting for a batch job; ``done`` is the caller's Deferred, or ``sink``
    (with ``token``) takes the outcome together with the batch's other pieces."""

    __slots__ = ("blocks", "done", "index", "sink", "size", "token")

    def __init__(
        self,
        index: int,
        blocks: list[bytes],
        size: int,
        sink: Sink | None = None,
        token: Any = None,
    ) -> None:
        self.index = index
        self.blocks = blocks
        self.size = size
        self.sink = sink
        self.token = token
        self.done: Deferred[None] | None = Deferred() if sink is None else None


class PressureListener(Protocol):
    """What the queue pauses when it is full: an ``IPushProducer`` such as a peer."""

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...


@implementer(IDiskQueue)
class DiskQueue:
    """Runs storage jobs in a ``bt-disk`` thread pool and returns Deferreds.

    Lifecycle: construct (no side effects), ``start()``, then ``stop()`` which
    refuses new work, waits for the jobs already queued, and stops the pool.
    Work offered before ``start`` or after ``stop`` began fails with
    StorageError: a job submitted to a stopped pool would never fire.
    Invalid arguments (a piece or range that does not exist) raise ValueError
    at once: they are the caller's bug, not a disk condition.

    Back-pressure counts pieces waiting to be verified and written (the
    memory a download holds): above ``high_water`` every pressure listener is
    paused; at ``low_water`` or below they are resumed. Reads for seeding and
    hash checks never pause peers: they are bounded per peer already, and
    with 200 peers counting them paused and resumed every peer many times a
    second. The storage is the caller's: the
    queue never closes it.

    Pieces under 1 MiB are verified and written in batches, at most ``threads``
    batch jobs at a time (one for pieces under 64 KiB); a batch's Deferreds fire in
    submission order (pieces of concurrent batches, like any concurrent jobs, may
    finish in any order).
    """

    def __init__(
        self,
        storage: IStorage,
        verifier: PieceVerifier,
        piece_size: Callable[[int], int],
        *,
        threads: int = 2,
        reactor: Any = None,
        high_water: int = 32,
        low_water: int | None = None,
        pool: ThreadPool | None = None,
    ) -> None:
        """``verifier``: the torrent's hash rule (``bt.storage.verifier.piece_verifier``).

        ``pool``: a thread pool shared with other queues and owned by the caller
        (started and stopped by it); without one the queue owns a pool of ``threads``."""
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if low_water is None:
            low_water = high_water // 2
        if not 0 <= low_water < high_water:
            raise ValueError(f"need 0 <= low_water < high_water, got {low_water}, {high_water}")
        self._storage = storage
        #: The torrent's hash rule (v1, v2 or hybrid: ``bt.storage.verifier``).
        self.verifier = verifier
        self._piece_size = piece_size
        self._reactor = reactor
        self._high_water = high_water
        self._low_water = low_water
        self._owns_pool = pool is None
        self._pool = pool or ThreadPool(minthreads=1, maxthreads=threads, name="bt-disk")
        self._state = "new"
        self._pending = 0
        #: Pieces submitted by verify_and_write and not yet written (the pressure).
        self._writing = 0
        self._paused = False
        self._listeners: list[PressureListener] = []
        self._stopped: list[Deferred[None]] = []
        self._shutdown_trigger: Any = None
        self._threads = threads
        # Pieces waiting for a batch job. The lock makes "take the pieces" and
        # "no batch job is waiting to take them" one step for the disk thread.
        self._lock = threading.Lock()
        self._queued: deque[_PieceJob] = deque()
        self._batch_waiting = False  # a batch job is submitted and has not taken its pieces
        self._batches_running = 0  # submitted, result not yet back in the reactor thread
        #: Batch jobs submitted to the pool so far (tests and benchmarks read it).
        self.batches = 0

    @classmethod
    def for_metainfo(cls, storage: IStorage, metainfo: Metainfo, **options: Any) -> DiskQueue:
        """The queue of one torrent: its pieces checked as its format says (v1, v2, hybrid)."""
        return cls(storage, piece_verifier(metainfo), metainfo.geometry.piece_size, **options)

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        """Start the thread pool; stop() runs at reactor shutdown if nobody called it."""
        if self._state != "new":
            raise StorageError(f"disk queue cannot start: it is {self._state}")
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        self._state = "running"
        if not self._owns_pool:
            return
        self._pool.start()
        # Pool threads are not daemons: a forgotten stop() would hang interpreter exit.
        # "during" runs after every service's stopService (the "before" phase) is done.
        self._shutdown_trigger = self._reactor.addSystemEventTrigger(
            "during", "shutdown", self._stop_at_shutdown
        )

    def stop(self) -> Deferred[None]:
        """Refuse new work, let queued jobs finish, then stop the pool. Idempotent."""
        if self._state == "new":
            self._state = "stopped"
        if self._state == "stopped":
            return defer.succeed(None)
        done: Deferred[None] = Deferred()
        self._stopped.append(done)
        if self._state == "running":
            self._state = "stopping"
            if self._shutdown_trigger is not None:
                self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
                self._shutdown_trigger = None
            if self._pending == 0:
                self._stop_pool()
        return done

    def _stop_at_shutdown(self) -> None:
        """The safety net, as for the reactor's own pool: a blocking stop that runs queued jobs."""
        self._shutdown_trigger = None
        if self._state != "stopped":
            if self._queued:
                # A batch job can be running with pieces queued behind it: have
                # them written before the join, as the pool does with its jobs.
                self._start_batch(bounded=False)
            self._stop_pool()

    def _stop_pool(self) -> None:
        # Normally every job has fired, so the workers are idle and the join is immediate.
        self._state = "stopped"
        if self._owns_pool:
            self._pool.stop()
        waiters, self._stopped = self._stopped, []
        for waiter in waiters:
            waiter.callback(None)

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet finished."""
        return self._pending

    # -- jobs -------------------------------------------------------------

    def verify_and_write(self, index: int, blocks: Sequence[bytes]) -> Deferred[None]:
        """Hash piece ``index`` from its ``blocks`` and write it only if the hash matches.

        Fails with PieceHashError(index), writing nothing, when it does not (a v2
        piece's error carries the leaf hashes of the blocks received).
        The blocks are joined in the disk thread, hashed and written with one
        call each; the caller must not change them until the Deferred fires.
        """
        size = self._piece_checked(index, blocks)
        if size >= _BATCH_BELOW:
            return self._submit(self._verify_and_write, index, list(blocks), write=True)
        if self._state != "running":
            return defer.fail(StorageError(f"disk queue is {self._state}, not accepting work"))
        job = _PieceJob(index, list(blocks), size)
        self._queue_job(job)
        # A cancelled caller's Deferred is simply not fired again (Deferred
        # suppresses that), while the piece still counts as pending until written.
        return job.done  # type: ignore[return-value]

    def write_piece(self, index: int, blocks: Sequence[bytes], sink: Sink, token: Any) -> None:
        """``verify_and_write`` without a Deferred per piece: ``sink`` gets ``(token,
        None or the Failure)`` of this piece in one list with the other pieces of
        its batch that it takes, in submission order (a failure to start included)."""
        size = self._piece_checked(index, blocks)
        if self._state != "running":
            sink([(token, Failure(StorageError(f"disk queue is {self._state}")))])
        elif size >= _BATCH_BELOW:
            written = self._submit(self._verify_and_write, index, list(blocks), write=True)
            written.addCallbacks(lambda _: sink([(token, None)]), lambda f: sink([(token, f)]))
            written.addErrback(lambda f: log.failure("piece {index}", f, index=index))
        else:
            self._queue_job(_PieceJob(index, list(blocks), size, sink, token))

    def _piece_checked(self, index: int, blocks: Sequence[bytes]) -> int:
        self._check_index(index)
        first = blocks[0] if len(blocks) == 1 else None
        if type(first) is bytes:  # a one-block piece, as received: skip the generator
            size = len(first)
        else:
            size = sum(memoryview(block).nbytes for block in blocks)
        if size != self._piece_size(index):
            raise ValueError(
                f"piece {index}: blocks hold {size} bytes, piece has {self._piece_size(index)}"
            )
        return size

    def _queue_job(self, job: _PieceJob) -> None:
        self._pending += 1
        self._writing += 1
        self._update_pressure()
        with self._lock:
            self._queued.append(job)
            start = not self._batch_waiting and self._batches_running < self._batch_limit(job)
            if start:
                self._batch_waiting = True
        if start:
            self._start_batch()

    def read(self, index: int, begin: int, length: int) -> Deferred[bytes]:
        """Bytes to serve to a peer; DataMissingError if they are not all on disk."""
        self._check_range(index, begin, length)
        return self._submit(self._read, index, begin, length)

    def read_now(self, index: int, begin: int, sizes: Sequence[int]) -> list[bytearray] | None:
        """Buffers of ``sizes`` bytes from ``begin`` if they are in memory now, else None.

        Runs on the calling (reactor) thread but never waits (``FileStorage.read_cached``);
        None also when the storage cannot tell (then the disk threads' read, which
        reports any error)."""
        reader = getattr(self._storage, "read_cached", None)  # storages that can tell
        if reader is None or self._state != "running":
            return None
        self._check_range(index, begin, sum(sizes))
        return reader(index, begin, sizes)  # type: ignore[no-any-return]

    def hash_piece(self, index: int) -> Deferred[bool]:
        """Whether piece ``index`` on disk matches its hash (missing data: False)."""
        self._check_index(index)
        return self._submit(self._hash_piece, index, self._piece_size(index))

    def call(self, job: Callable[..., _T], *args: object) -> Deferred[_T]:
        """Run any blocking job (resume state I/O, say) in the disk threads."""
        return self._submit(job, *args)

    def file_stamps(self) -> Deferred[tuple[tuple[int, int], ...]]:
        """Per file (size, mtime ns), for resume state (``IStorage.file_stamps``)."""
        return self._submit(self._storage.file_stamps)

    def existing_lengths(self) -> Deferred[list[int]]:
        """Per file, the bytes on disk now (``IStorage.existing_lengths``), off the reactor."""
        return self._submit(self._storage.existing_lengths)

    def prepare(self) -> Deferred[None]:
        """Create zero-length files and the like (``IStorage.prepare``) off the reactor."""
        return self._submit(self._storage.prepare)

    def set_skipped(self, files: frozenset[int]) -> Deferred[None]:
        """Tell the storage which files are skipped (``IStorage.set_skipped``): may move data."""
        return self._submit(self._storage.set_skipped, files)

    def parted_pieces(self) -> Deferred[list[int]]:
        """Pieces kept aside for skipped files (``IStorage.parted_pieces``), for checks."""
        return self._submit(self._storage.parted_pieces)

    def sync(self) -> Deferred[None]:
        """Make written pieces durable; do it before saving resume state that claims them."""
        return self._submit(self._storage.sync)

    # -- back-pressure ----------------------------------------------------

    @property
    def under_pressure(self) -> bool:
        return self._paused

    def add_pressure_listener(self, listener: PressureListener) -> None:
        """Pause ``listener`` while the queue is full; paused at once if it is full now."""
        self._listeners.append(listener)
        if self._paused:
            self._notify(listener, "pauseProducing")

    def remove_pressure_listener(self, listener: PressureListener) -> None:
        """Forget ``listener`` (e.g. a peer that disconnected); it is not resumed."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, listener: PressureListener, method: str) -> None:
        try:
            getattr(listener, method)()
        except Exception:
            # One broken peer must not fail the disk job whose completion triggered this.
            log.failure(
                "pressure listener {listener!r}.{method} failed", listener=listener, method=method
            )

    def _update_pressure(self) -> None:
        if not self._paused and self._writing > self._high_water:
            self._paused = True
            for listener in list(self._listeners):
                self._notify(listener, "pauseProducing")
        elif self._paused and self._writing <= self._low_water:
            self._paused = False
            for listener in list(self._listeners):
                self._notify(listener, "resumeProducing")

    # -- plumbing ---------------------------------------------------------

    def _submit(self, job: Callable[..., _T], *args: object, write: bool = False) -> Deferred[_T]:
        if self._state != "running":
            return defer.fail(StorageError(f"disk queue is {self._state}, not accepting work"))
        self._pending += 1
        if write:
            self._writing += 1
            self._update_pressure()
        inner = deferToThreadPool(self._reactor, self._pool, job, *args)
        inner.addBoth(self._job_done, write)
        # A separate Deferred for the caller: cancelling it must not make the
        # queue believe a job finished while its thread still runs.
        outer: Deferred[_T] = Deferred()
        inner.chainDeferred(outer)
        # Only after the caller's callbacks ran, so stop() fires after all of them.
        inner.addBoth(self._maybe_idle)
        return outer

    def _job_done(self, result: _T, write: bool) -> _T:
        self._pending -= 1
        if write:
            self._writing -= 1
            self._update_pressure()
        return result

    def _maybe_idle(self, _: object) -> None:
        if self._pending == 0 and self._state == "stopping":
            self._stop_pool()

    def _start_batch(self, *, bounded: bool = True) -> None:
        self._batches_running += 1
        self.batches += 1
        batch = deferToThreadPool(self._reactor, self._pool, self._run_batch, bounded)
        batch.addCallbacks(self._batch_done, self._batch_failed)

    def _batch_done(self, outcomes: list[tuple[_PieceJob, Failure | None]]) -> None:
        self._batches_running -= 1
        # Start the next batch first: the disk works while the reactor runs callbacks.
        self._maybe_start_batch()
        sinks: dict[Sink, list[tuple[Any, Failure | None]]] = {}
        for job, failure in outcomes:
            self._pending -= 1
            self._writing -= 1
            self._update_pressure()
            if job.sink is not None:
                sinks.setdefault(job.sink, []).append((job.token, failure))
            elif failure is None:
                job.done.callback(None)  # type: ignore[union-attr]
            else:
                job.done.errback(failure)  # type: ignore[union-attr]
        for sink, results in sinks.items():
            try:
                sink(results)
            except Exception:
                log.failure("disk batch sink {sink!r} failed", sink=sink)
        self._maybe_idle(None)

    def _batch_failed(self, failure: Failure) -> None:
        # Only a bug in _run_batch gets here (each piece's errors are its outcome);
        # its pieces are lost and stop() would wait for them forever: say so loudly.
        self._batches_running -= 1
        log.failure("disk batch job failed; its pieces never complete", failure=failure)
        self._maybe_start_batch()

    def _maybe_start_batch(self) -> None:
        with self._lock:
            start = (
                bool(self._queued)
                and not self._batch_waiting
                and self._batches_running < self._batch_limit(self._queued[0])
            )
            if start:
                self._batch_waiting = True
        if start:
            self._start_batch()

    def _batch_limit(self, job: _PieceJob) -> int:
        """How many batch jobs may run at once with ``job`` next in line."""
        return 1 if job.size < _ONE_BATCH_BELOW else self._threads

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.verifier.num_pieces:
            raise ValueError(f"piece {index} outside 0..{self.verifier.num_pieces - 1}")

    def _check_range(self, index: int, begin: int, length: int) -> None:
        self._check_index(index)
        size = self._piece_size(index)
        if begin < 0 or length <= 0 or begin + length > size:
            raise ValueError(f"range {begin}+{length} outside piece {index} of {size} bytes")

    # -- in the pool thread -----------------------------------------------

    def _verified(self, index: int, blocks: list[bytes]) -> bytes:
        """The piece as one buffer, its hash checked (PieceHashError: write nothing).

        One buffer, hashed in one call and written in one call: each call releases
        the GIL and must win it back from the busy reactor thread, which costs far
        more than the copy (64 updates of 16 KiB took 2.5x as long as a join and one
        update of 1 MiB with the reactor busy). (A v2 piece needs one SHA-256 per
        16 KiB leaf whatever we do.)"""
        data = blocks[0] if len(blocks) == 1 else b"".join(blocks)
        self.verifier.verify(index, data)
        return data

    def _verify_and_write(self, index: int, blocks: list[bytes]) -> None:
        self._storage.write(index, 0, self._verified(index, blocks))

    def _run_batch(self, bounded: bool) -> list[tuple[_PieceJob, Failure | None]]:
        """Verify and write every queued piece (up to the bound); each outcome is its own."""
        jobs: list[_PieceJob] = []
        with self._lock:
            self._batch_waiting = False
            queued = self._queued
            size = 0
            while queued and not (bounded and (len(jobs) >= _BATCH_PIECES or size >= _BATCH_BYTES)):
                job = queued.popleft()
                jobs.append(job)
                size += job.size
        failures: dict[int, Failure] = {}  # job position -> why that piece failed
        verified: list[tuple[int, int, bytes]] = []  # (index, job position, data)
        for position, job in enumerate(jobs):
            blocks, job.blocks = job.blocks, []  # do not keep them alive until the reactor runs
            try:
                data = self._verified(job.index, blocks)
            except Exception:
                # Not swallowed: it fails this piece's Deferred, as a job of its own would.
                failures[position] = Failure()
            else:
                verified.append((job.index, position, data))
        # Storages that can write a run of pieces at once get adjacent pieces together;
        # a failed write fails the pieces it held, and only those.
        write_pieces = getattr(self._storage, "write_pieces", None)
        runs = _runs(verified) if write_pieces is not None else [[piece] for piece in verified]
        for run in runs:
            try:
                if len(run) == 1:
                    index, _, data = run[0]
                    self._storage.write(index, 0, data)
                else:
                    write_pieces(run[0][0], [data for _, _, data in run])  # type: ignore[misc]
            except Exception:
                failure = Failure()  # the run's pieces are not all on disk: fail each
                for _, position, _ in run:
                    failures[position] = failure
        return [(job, failures.get(position)) for position, job in enumerate(jobs)]

    def _read(self, index: int, begin: int, length: int) -> bytes:
        data = self._storage.read(index, begin, length)
        if len(data) != length:
            raise DataMissingError(index, begin, length, len(data))
        return data

    def _hash_piece(self, index: int, size: int) -> bool:
        digest = self.verifier.hasher(index)
        for begin in range(0, size, _RECHECK_CHUNK):
            length = min(_RECHECK_CHUNK, size - begin)
            data = self._storage.read(index, begin, length)
            if len(data) != length:
                return False
            digest.update(data)
        return digest.matches()


def _runs(pieces: list[tuple[int, int, bytes]]) -> list[list[tuple[int, int, bytes]]]:
    """``(index, ...)`` items sorted by index and cut into runs of adjacent indexes."""
    runs: list[list[tuple[int, int, bytes]]] = []
    for piece in sorted(pieces, key=lambda item: item[0]):
        if runs and runs[-1][-1][0] + 1 == piece[0]:
            runs[-1].append(piece)
        else:
            runs.append([piece])
    return runs
