"""Pieces/s of 16 KiB pieces through DiskQueue.verify_and_write (no network).

    python bench/disk_batch.py [--disk-module /tmp/oldbt/disk_old.py] [--storage memory|file]

A feeder submits ``--burst`` pieces per reactor turn while fewer than
``--window`` are pending (the torrent's high water), as peers' data arrives.
``--disk-module`` loads another disk.py (e.g. a copy of an older version) for
a before/after comparison in the same tree.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, reactor, task

from bt.storage.files import FileStorage
from bt.storage.layout import Layout
from bt.storage.memory import MemoryStorage
from bt.storage.verifier import V1Verifier


class Entry:
    def __init__(self, path: tuple[str, ...], length: int, offset: int) -> None:
        self.path, self.length, self.offset, self.padding = path, length, offset, False


def load_queue_class(path: str | None) -> type:
    if path is None:
        from bt.storage.disk import DiskQueue

        return DiskQueue
    spec = importlib.util.spec_from_file_location("disk_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DiskQueue


async def run(args: argparse.Namespace) -> None:
    piece = args.piece_kib << 10
    count = args.pieces
    layout = Layout([count * piece], piece_length=piece)
    payload = os.urandom(piece)
    pieces = [bytes([i % 256]) + payload[1:] for i in range(256)]
    hashes = [hashlib.sha1(pieces[i % 256]).digest() for i in range(count)]
    folder = tempfile.TemporaryDirectory(dir=args.dir)
    if args.storage == "file":
        storage = FileStorage(Path(folder.name), [Entry(("f",), count * piece, 0)], layout)
    else:
        storage = MemoryStorage(layout)
    queue_class = load_queue_class(args.disk_module)
    # A queue from an older bt (--disk-module) took the hashes; today's takes a verifier.
    takes_verifier = "verifier" in inspect.signature(queue_class).parameters
    check = V1Verifier(hashes) if takes_verifier else hashes
    queue = queue_class(storage, check, layout.piece_size, threads=args.threads, reactor=reactor)
    queue.start()
    done: defer.Deferred[None] = defer.Deferred()
    state = {"next": 0, "finished": 0, "scheduled": False}

    def finished(_: object) -> None:
        state["finished"] += 1
        if state["finished"] == count:
            done.callback(None)
        else:
            schedule()

    def schedule() -> None:
        # One feed per reactor turn at most, and none while the window is full:
        # like peers, paused while the disk is behind, rather than a busy loop.
        if not state["scheduled"] and state["next"] < count and queue.pending < args.window:
            state["scheduled"] = True
            reactor.callLater(0, feed)

    def feed() -> None:
        state["scheduled"] = False
        n = 0
        while state["next"] < count and n < args.burst and queue.pending < args.window:
            index = state["next"]
            state["next"] += 1
            n += 1
            queue.verify_and_write(index, [pieces[index % 256]]).addCallback(finished)
        schedule()

    wall, cpu = time.perf_counter(), time.process_time()
    schedule()
    await done
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await queue.stop()
    storage.close()
    folder.cleanup()
    gib = count * piece / (1 << 30)
    print(
        f"{args.disk_module or 'bt.storage.disk'} {args.storage}: {count} pieces of "
        f"{args.piece_kib} KiB in {wall:.2f} s = {count / wall:,.0f} pieces/s, "
        f"{count * piece / wall / 1e6:.0f} MB/s, CPU {cpu / gib:.2f} s/GiB"
        + (f", {queue.batches} batches" if hasattr(queue, "batches") else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--disk-module", default=None)
    parser.add_argument("--storage", choices=["memory", "file"], default="memory")
    parser.add_argument("--dir", default=None, help="folder for --storage file (default: TMPDIR)")
    parser.add_argument("--pieces", type=int, default=40_000)
    parser.add_argument("--piece-kib", type=int, default=16)
    parser.add_argument("--burst", type=int, default=4, help="pieces submitted per reactor turn")
    parser.add_argument("--window", type=int, default=32, help="pieces pending at most")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    task.react(lambda _: defer.ensureDeferred(run(args)))


if __name__ == "__main__":
    main()
