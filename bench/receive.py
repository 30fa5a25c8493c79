"""bt's receive path alone, in one process: reactor-thread microseconds per block.

Run: python bench/receive.py [--size-mib 64] [--piece-kib 16] [--read-kib 64] [--runs 5]
     python bench/receive.py --runs 1 --profile

The loopback benchmarks (download.py) measure bt against libtorrent, but their rates
move by 15% from run to run with the machine, the seeder and the page cache, which
hides any change worth a few percent. This one feeds a real Torrent (its protocol,
swarm, picker and completion chain) from a scripted seeder in memory, cut into reads
of ``--read-kib`` as Twisted's TCP transport delivers them. Its disk queue is the
real one over memory, but its thread pool is held: every ``--flush-reads`` reads the
jobs queued meanwhile (hashing and writing, the disk threads' work, which download.py
measures) run untimed, and then their results are delivered, timed, as the reactor
gets them. Only bt's ``dataReceived`` and those deliveries are timed, so the seeder's
own cost is left out. It prints the time per block and the rate the reactor
thread could reach at that cost alone: no system calls, no Twisted reactor, no disk
threads taking the GIL, so a real download is several times slower. The work is
deterministic: the fastest of ``--runs`` runs (each in a fresh process) moves by a
few percent, so compare two commits by running it in each.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from test_torrent import ScriptedPeer  # noqa: E402
from torrents import handmade_info, handmade_torrent  # noqa: E402
from twisted.internet.testing import MemoryReactorClock, StringTransport  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

from bt.bitfield import Bitfield  # noqa: E402
from bt.metainfo import Metainfo, parse_metainfo  # noqa: E402
from bt.peer.messages import BitfieldMessage, Request, Unchoke  # noqa: E402
from bt.storage.disk import DiskQueue  # noqa: E402
from bt.storage.memory import MemoryStorage  # noqa: E402
from bt.storage.verifier import piece_verifier  # noqa: E402
from bt.torrent import Torrent  # noqa: E402

OUT = ROOT / "bench" / "out" / "receive.json"
_PIECE_HEADER = struct.Struct(">IBII")


class HeldPool:
    """The disk threads, held: a job waits until ``flush`` runs it in this thread,
    outside the timed region; its result is then delivered (timed, like the
    reactor's ``callFromThread``). Jobs run at once while not ``holding`` (start-up)."""

    def __init__(self) -> None:
        self.holding = False
        self.held: list[
            tuple[Callable[[bool, Any], None], Callable[..., Any], tuple[Any, ...]]
        ] = []

    def callInThreadWithCallback(
        self, on_result: Callable[[bool, Any], None], job: Callable[..., Any], *args: Any
    ) -> None:
        if self.holding:
            self.held.append((on_result, job, args))
        else:
            on_result(*self._run(job, args))

    def flush(self, profiler: cProfile.Profile | None = None) -> float:
        """Run the held jobs, then deliver their results; returns the delivery time
        (the only part ``profiler`` sees)."""
        held, self.held = self.held, []
        results = [(on_result, self._run(job, args)) for on_result, job, args in held]
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter()
        for on_result, (success, result) in results:
            on_result(success, result)
        spent = time.perf_counter() - start
        if profiler is not None:
            profiler.disable()
        return spent

    @staticmethod
    def _run(job: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        try:
            return True, job(*args)
        except Exception:
            return False, Failure()


class ThreadlessReactor(MemoryReactorClock):
    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        f(*args, **kw)


def build(size: int, piece_length: int) -> tuple[Torrent, ScriptedPeer, bytes, HeldPool]:
    block = bytes(range(256)) * 64  # 16 KiB, the same for every block
    data = block * (size // len(block))
    info = handmade_info([(["data.bin"], len(data))], piece_length=piece_length, data=data)
    metainfo: Metainfo = parse_metainfo(handmade_torrent(info))
    reactor, pool = ThreadlessReactor(), HeldPool()
    storage = MemoryStorage.for_torrent(metainfo)
    disk = DiskQueue(
        storage, piece_verifier(metainfo), metainfo.piece_size, reactor=reactor, pool=pool
    )  # type: ignore[arg-type]
    torrent = Torrent(
        metainfo,
        disk,
        storage=storage,
        peer_id=b"-BT0100-receivebench",
        port=6881,
        reactor=reactor,
        rng=random.Random(1),
    )
    torrent.startService()
    pool.holding = True
    protocol = torrent.swarm.factory.for_candidate(("10.0.0.1", 1)).buildProtocol(None)
    peer = ScriptedPeer(protocol, metainfo, b"-LT2000-seeder000001", StringTransport())
    full = Bitfield.full(metainfo.num_pieces)
    peer.say(BitfieldMessage(full.to_bytes()), Unchoke(), handshake=True)
    return torrent, peer, block, pool


def run(
    size_mib: int, piece_kib: int, read_kib: int, flush_reads: int, profile: bool
) -> dict[str, Any]:
    torrent, peer, block, pool = build(size_mib << 20, piece_kib << 10)
    read_size = read_kib << 10
    finished = torrent.when_finished()
    stream = bytearray()
    spent = 0.0
    blocks = reads = 0
    profiler = cProfile.Profile() if profile else None
    gc.collect()
    while not finished.called:
        requests = [e for e in peer.heard() if isinstance(e, Request)]
        if not requests and pool.held:
            spent += pool.flush(profiler)
            continue
        if not requests:
            raise SystemExit("bt stopped asking before the torrent finished")
        for r in requests:
            stream += _PIECE_HEADER.pack(9 + r.length, 7, r.index, r.begin)
            stream += block[: r.length]
        blocks += len(requests)
        # Deliver what is buffered in reads of read_size, keeping a partial tail (a
        # message cut across reads, as TCP does) unless bt has nothing left to ask.
        while len(stream) >= read_size or (stream and not _asks(peer)):
            chunk = bytes(stream[:read_size])
            del stream[:read_size]
            if profiler is not None:
                profiler.enable()
            start = time.perf_counter()
            peer.protocol.dataReceived(chunk)
            spent += time.perf_counter() - start
            if profiler is not None:
                profiler.disable()
            reads += 1
            if reads % flush_reads == 0 or not _asks(peer):
                spent += pool.flush(profiler)
    result = {
        "size_mib": size_mib,
        "piece_kib": piece_kib,
        "read_kib": read_kib,
        "flush_reads": flush_reads,
        "blocks": blocks,
        "reads": reads,
        "seconds_in_data_received": round(spent, 4),
        "us_per_block": round(spent / blocks * 1e6, 3),
        "blocks_per_second": round(blocks / spent),
        "mb_per_second_at_that_cost": round(blocks * 16384 / spent / 1e6, 1),
    }
    torrent.stopService()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(os.environ.get("RECEIVE_SORT", "tottime")).print_stats(30)
    return result


def _asks(peer: ScriptedPeer) -> bool:
    """bt has written requests the seeder has not read yet."""
    return bool(peer.transport.value())


def _run_apart(args: argparse.Namespace) -> dict[str, Any]:
    """One run in a fresh process: the runs in one process slowed down by a third
    from the second on (a heap full of the first run's objects)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run.json"
        command = [sys.executable, __file__, "--runs", "1", "--out", str(out)]
        command += ["--size-mib", str(args.size_mib), "--piece-kib", str(args.piece_kib)]
        command += ["--read-kib", str(args.read_kib), "--flush-reads", str(args.flush_reads)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=600)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--piece-kib", type=int, default=16)
    parser.add_argument("--read-kib", type=int, default=64, help="bytes per dataReceived")
    parser.add_argument(
        "--flush-reads", type=int, default=4, help="reads between two batches written"
    )
    parser.add_argument("--runs", type=int, default=3, help="report the fastest of this many")
    parser.add_argument("--profile", action="store_true", help="cProfile dataReceived")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.runs == 1:
        results = [
            run(args.size_mib, args.piece_kib, args.read_kib, args.flush_reads, args.profile)
        ]
    else:
        results = [_run_apart(args) for _ in range(args.runs)]
    best = min(results, key=lambda r: r["us_per_block"])
    best["runs_us_per_block"] = [r["us_per_block"] for r in results]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(best, indent=2) + "\n")
    for key, value in best.items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
