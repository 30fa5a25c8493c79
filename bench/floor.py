"""The floor of a pure-Python Twisted downloader, beside bt and libtorrent in the same run.

Run: python bench/floor.py --size-mib 512 --piece-kib 16 [--levels wire,verify,write]
     [--threads 1,2] [--with-bt] [--pipeline 500]
(needs libtorrent and opentracker, as the integration tests do).

What would bt reach if its own per-block work (picker, swarm, links, rate meters,
blame, completion chain) cost nothing? This script answers with the least a Python
downloader on Twisted must do, in a process of its own, from the same libtorrent
seeder: one connection, a handshake, INTERESTED, then a fixed pipeline of block
requests in piece order, topped up once per read. Each ``--levels`` entry is one run:

- ``wire``: frames parsed and each block copied out of the read, then dropped.
- ``verify``: and each piece SHA-1-checked in a thread, a batch of pieces per job
  (``--threads 1,2``: each level once per count; with two, two batches run at once,
  as in bt's disk pool of two threads).
- ``write``: and each run of adjacent good pieces written with one ``os.pwritev``
  in the same job, as bt's disk queue does; the output is checked against the
  original.

As in bt, no more blocks are requested while 32 MiB wait for the thread: without
that bound, a client whose thread falls behind holds the whole torrent in fresh
memory, and its page faults cost more than the work.

No choking, endgame, rate meters, HAVE, resume state or second peer: a client that
cannot be used, only measured. If even ``write`` stays below a target, no Python
change to bt's receive path can reach it. Writes bench/out/floor.json; use
bench/repeat.py for medians.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from struct import Struct
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    GIB,
    MIB,
    Deadline,
    Pages,
    ProcSample,
    SeededSwarm,
    add_fresh_pages_option,
    base_parser,
    content_digest,
    content_size,
    exit_on_sigterm,
    loadavg,
    machine_facts,
    make_content,
    require_free,
    run_reporter,
    sample_proc,
    settle,
    write_results,
)
from download import Result, run_bt, run_libtorrent

LEVELS = ("wire", "verify", "write")
BLOCK = 16 * 1024
#: Bytes received and not yet checked above which no more are requested (bt's bound).
QUEUE_LIMIT = 32 * 1024 * 1024
IOV_MAX = os.sysconf("SC_IOV_MAX")
_HEADER = Struct(">I")
_PIECE_HEAD = Struct(">II")
_REQUEST = Struct(">IBIII")


def floor_main(spec: dict[str, Any]) -> None:
    """The floor client's process: download, sample itself at completion, report."""
    from twisted.internet import reactor
    from twisted.internet.protocol import ClientFactory, Protocol
    from twisted.internet.threads import deferToThreadPool
    from twisted.python.threadpool import ThreadPool

    hashes = [bytes.fromhex(h) for h in spec["hashes"]]
    piece_length, total, level = spec["piece_length"], spec["total"], spec["level"]
    pipeline, threads, pid = spec["pipeline"], spec["threads"], os.getpid()
    blocks_per_piece = (piece_length + BLOCK - 1) // BLOCK
    num_pieces = len(hashes)
    fd = -1
    if level == "write":
        fd = os.open(spec["out"], os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, total)
    pool = ThreadPool(threads, threads, "floor-disk")
    pool.start()
    report: dict[str, Any] = {"bad_pieces": 0}

    def piece_size(index: int) -> int:
        return min(piece_length, total - index * piece_length)

    # Every block request of the torrent, in piece order, made up front (not timed).
    requests = [
        _REQUEST.pack(13, 6, index, begin, min(BLOCK, piece_size(index) - begin))
        for index in range(num_pieces)
        for begin in range(0, piece_size(index), BLOCK)
    ]

    def check_and_write(batch: list[tuple[int, list[bytes]]]) -> int:
        """Hash each piece; write each run of adjacent good pieces with one pwritev."""
        bad, run, run_start = 0, [], -1
        datas = [blocks[0] if len(blocks) == 1 else b"".join(blocks) for _, blocks in batch]
        digests = [hashlib.sha1(data).digest() for data in datas]
        for (index, _), data, digest in zip(batch, datas, digests, strict=True):
            good = digest == hashes[index]
            bad += not good
            if fd < 0:
                continue
            if run and (not good or index != run_start + len(run) or len(run) == IOV_MAX):
                os.pwritev(fd, run, run_start * piece_length)
                run = []
            if good:
                run_start = index if not run else run_start
                run.append(data)
        if run:
            os.pwritev(fd, run, run_start * piece_length)
        return bad

    class Floor(Protocol):
        def __init__(self) -> None:
            self.buffer = bytearray()
            self.shaken = False
            self.choked = True
            self.sent = 0  # requests written
            self.received = 0  # blocks received
            self.pieces: dict[int, list[bytes]] = {}
            self.complete = 0  # pieces received whole
            self.settled = 0  # pieces checked (and written)
            self.queued: list[tuple[int, list[bytes]]] = []
            self.queued_bytes = 0  # received, not yet checked (and written)
            self.busy = 0  # jobs in the threads

        def connectionMade(self) -> None:
            report["first_peer"] = asdict(sample_proc(pid))
            reserved = bytes(8)
            info_hash = bytes.fromhex(spec["info_hash"])
            peer_id = b"-FL0001-" + os.urandom(12)
            self.transport.write(b"\x13BitTorrent protocol" + reserved + info_hash + peer_id)
            self.transport.write(b"\x00\x00\x00\x01\x02")  # INTERESTED

        def dataReceived(self, data: bytes) -> None:
            buffer = self.buffer
            buffer += data
            pos, end = 0, len(buffer)
            if not self.shaken:
                if end < 68:
                    return
                self.shaken, pos = True, 68
            with memoryview(buffer) as view:
                while end - pos >= 4:
                    (length,) = _HEADER.unpack_from(buffer, pos)
                    if end - pos - 4 < length:
                        break
                    if length:
                        kind = buffer[pos + 4]
                        if kind == 7:
                            index, begin = _PIECE_HEAD.unpack_from(buffer, pos + 5)
                            self.block(index, begin, bytes(view[pos + 13 : pos + 4 + length]))
                        elif kind == 1:
                            self.choked = False
                        elif kind == 0:
                            self.choked = True
                    pos += 4 + length
            del buffer[:pos]
            self.top_up()

        def connectionLost(self, reason: Any) -> None:
            if "complete" not in report:
                report["error"] = f"connection lost: {reason.value}"
                reactor.stop()

        def block(self, index: int, begin: int, block: bytes) -> None:
            self.received += 1
            blocks = self.pieces.get(index)
            if blocks is None:
                count = (piece_size(index) + BLOCK - 1) // BLOCK
                blocks = self.pieces[index] = [b""] * count
            blocks[begin // BLOCK] = block
            if self.received_piece(index, blocks):
                del self.pieces[index]
                self.complete += 1
                if level == "wire":
                    self.settled += 1
                else:
                    self.queued.append((index, blocks))
                    self.queued_bytes += piece_size(index)
                    self.start_job()
                self.maybe_done()

        def received_piece(self, index: int, blocks: list[bytes]) -> bool:
            return blocks_per_piece == 1 or all(blocks)

        def start_job(self) -> None:
            if self.busy == threads or not self.queued:
                return
            batch, self.queued = self.queued, []
            self.busy += 1
            job = deferToThreadPool(reactor, pool, check_and_write, batch)
            size = sum(piece_size(index) for index, _ in batch)
            job.addCallback(self.job_done, len(batch), size)
            job.addErrback(self.failed)

        def failed(self, failure: Any) -> None:
            report["error"] = failure.getErrorMessage()
            reactor.stop()

        def job_done(self, bad: int, count: int, size: int) -> None:
            self.busy -= 1
            self.queued_bytes -= size
            report["bad_pieces"] += bad
            self.settled += count
            self.start_job()
            self.maybe_done()
            self.top_up()

        def maybe_done(self) -> None:
            if self.settled == num_pieces:
                report["complete"] = asdict(sample_proc(pid))
                self.transport.loseConnection()
                reactor.stop()

        def top_up(self) -> None:
            if self.choked or self.queued_bytes > QUEUE_LIMIT:
                return  # back-pressure, as bt's disk queue applies it
            want = min(len(requests), self.received + pipeline)
            if want > self.sent:
                self.transport.writeSequence(requests[self.sent : want])
                self.sent = want

    class Factory(ClientFactory):
        protocol = Floor

        def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
            report["error"] = str(reason.value)
            reactor.stop()

    reactor.connectTCP("127.0.0.1", spec["port"], Factory())
    reactor.callLater(spec["budget"], reactor.stop)
    reactor.run()
    pool.stop()
    if fd >= 0:
        os.close(fd)
    Path(spec["report"]).write_text(json.dumps(report))


def client_spec(
    torrent: bytes,
    port: int,
    level: str,
    pipeline: int,
    out: Path,
    budget: float,
    threads: int = 1,
) -> dict[str, Any]:
    """What the client process needs: the piece hashes and the seeder, nothing of bt's."""
    from bt.metainfo import parse_metainfo

    meta = parse_metainfo(torrent)
    return {
        "hashes": [h.hex() for h in meta.piece_hashes],
        "piece_length": meta.piece_length,
        "total": meta.total_length,
        "info_hash": meta.info_hash.hex(),
        "port": port,
        "level": level,
        "pipeline": pipeline,
        "threads": threads,
        "out": str(out),
        "report": str(out.with_name(out.name + ".json")),
        "budget": budget,
    }


def client_command(spec_path: Path) -> list[str]:
    """The floor client run on its own, as run_floor and the tests run it."""
    return [sys.executable, __file__, "--client", str(spec_path)]


def run_floor(
    work: Path,
    swarm: SeededSwarm,
    content: Path,
    digest: str,
    level: str,
    pipeline: int,
    threads: int,
    deadline: Deadline,
) -> Result:
    """One floor client in its own process, measured like download.py's clients."""
    name = f"floor-{level}" if threads == 1 else f"floor-{level}-{threads}t"
    out = work / name
    budget = deadline.left() - 5
    spec = client_spec(swarm.torrent_bytes, swarm.port, level, pipeline, out, budget, threads)
    spec_path = work / f"{name}-spec.json"
    spec_path.write_text(json.dumps(spec))
    command = client_command(spec_path)
    started = time.monotonic()
    figures = run_reporter(command, Path(spec["report"]), deadline.left(), f"the {level} floor")
    if "complete" not in figures:
        raise RuntimeError(f"the {level} floor did not finish: {figures.get('error', 'timeout')}")
    if figures["bad_pieces"]:
        raise RuntimeError(f"the {level} floor got {figures['bad_pieces']} bad pieces")
    done = ProcSample(**figures["complete"])
    first = ProcSample(**figures["first_peer"])
    identical = not level == "write" or content_digest(out) == digest
    return Result.measured(name, content_size(content), started, first, done, identical, 0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__.split("\n")[0], "floor.json")
    add_fresh_pages_option(parser)
    parser.set_defaults(size_mib=512, piece_kib=16)
    parser.add_argument(
        "--levels", default=",".join(LEVELS), help=f"comma-separated, of {', '.join(LEVELS)}"
    )
    parser.add_argument("--pipeline", type=int, default=500, help="blocks requested ahead")
    parser.add_argument(
        "--threads",
        default="1",
        help="comma-separated thread counts for verify and write (bt's disk pool has 2)",
    )
    parser.add_argument("--with-bt", action="store_true", help="bt downloads first, too")
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.levels = [level for level in args.levels.split(",") if level]
    unknown = set(args.levels) - set(LEVELS)
    if unknown:
        parser.error(f"--levels: unknown {', '.join(sorted(unknown))}")
    try:
        args.threads = [int(count) for count in args.threads.split(",") if count]
    except ValueError:
        parser.error(f"--threads: not a list of whole numbers: {args.threads!r}")
    if not args.threads or min(args.threads) < 1:
        parser.error("--threads: each count must be at least 1")
    return args


def runs(levels: list[str], threads: list[int]) -> list[tuple[str, int]]:
    """Each level at each thread count; ``wire`` uses no thread, so it runs once."""
    return [
        (level, count)
        for level in levels
        for count in (threads[:1] if level == "wire" else threads)
    ]


def bench(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    facts = machine_facts()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-floor-", dir=args.tmp))
    results: dict[str, Any] = {
        "machine": facts,
        "size_bytes": args.size_mib * MIB,
        "piece_bytes": args.piece_kib * 1024,
        "pipeline": args.pipeline,
        "threads": args.threads,
        "pages": Pages.of(args).label,
    }
    measured: list[Result] = []
    # Every copy stays until the end, and each client gets the same kind of memory, as in
    # download.py (common.recycle_pages): before session 31 each copy was deleted after
    # its run, so the clients after it wrote into pages the VM still held and the first
    # (bt) into pages fresh from the host, several times as costly.
    size = args.size_mib * MIB
    copies = (
        2
        + int(args.with_bt)
        + sum(level == "write" for level, _ in runs(args.levels, args.threads))
    )
    pages = Pages.of(args)
    require_free(args.tmp, copies * size + pages.scratch_bytes(size) + GIB)

    def before_client() -> None:
        settle()
        pages.before_client(work, size)

    try:
        content, digest = make_content(work, "seed", args.size_mib)
        with SeededSwarm(work, content, args.piece_kib * 1024, deadline) as swarm:
            if args.with_bt:
                before_client()
                print("bt downloading", flush=True)
                bt = run_bt(work, swarm.torrent, content, digest, deadline, None, None, swarm.port)
                measured.append(bt)
                time.sleep(deadline.left(5))
                swarm.wait_seeder_alone()
            for level, threads in runs(args.levels, args.threads):
                results[f"loadavg_before_{level}_{threads}"] = loadavg()
                before_client()
                print(f"floor ({level}, {threads} threads) downloading", flush=True)
                measured.append(
                    run_floor(work, swarm, content, digest, level, args.pipeline, threads, deadline)
                )
                time.sleep(deadline.left(5))
            before_client()
            print("libtorrent downloading", flush=True)
            lt_result = run_libtorrent(work, swarm.torrent, content, digest, deadline)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{args.size_mib} MiB, {args.piece_kib} KiB pieces, loopback; "
        f"{facts['nproc']} x {facts['cpu_model']}"
    )
    print(
        f"{'client':16} {'MB/s':>8} {'/ lt':>6} {'CPU s/GiB':>10} {'/ lt':>6} "
        f"{'in transfer':>12} {'/ lt':>6}"
    )
    for result in [*measured, lt_result]:
        rate, cpu = result.rate / lt_result.rate, result.cpu_per_gib / lt_result.cpu_per_gib
        transfer = (result.cpu_transfer_s or 0) / (result.size / GIB)
        lt_transfer = (lt_result.cpu_transfer_s or 0) / (lt_result.size / GIB)
        print(
            f"{result.client:16} {result.rate:8.1f} {rate:6.2f} {result.cpu_per_gib:10.2f} "
            f"{cpu:6.2f} {transfer:12.2f} {transfer / lt_transfer:6.2f}"
        )
        results[result.client] = result.as_json()
        if result is not lt_result:
            key = result.client.replace("-", "_")
            results[f"ratio_{key}_libtorrent"] = round(rate, 4)
            results[f"ratio_cpu_{key}_libtorrent"] = round(cpu, 4)
    results["libtorrent"] = lt_result.as_json()
    if not all(result.identical for result in [*measured, lt_result]):
        print("\nERROR: a download differs from the original", file=sys.stderr)
        results["error"] = "a download differs from the original"
    return results


def main() -> int:
    args = parse_args()
    if args.client:
        floor_main(json.loads(args.client.read_text()))
        return 0
    exit_on_sigterm()
    results = bench(args)
    write_results(args.out, results)
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
