"""The machine's hashing limit: hashlib SHA-1 and SHA-256 over in-memory buffers.

Run: python bench/hashlimit.py [--threads 2] [--mib-per-thread 512] [--rounds 3]

Each thread hashes the same buffer over and over (no I/O, no Python between
updates beyond the call), so the rate is what the CPUs give hashlib (OpenSSL)
and the ceiling of any recheck: bt's and libtorrent's checks read data too,
and v2 hashes 16 KiB leaves and then the tree above them. Buffers of 1 MiB are
the v1 piece case; 16 KiB buffers are v2's leaves. hashlib releases the GIL on
buffers over 2 KiB, so threads run in parallel. Median of ``rounds``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import threading
import time
from typing import Any

MIB = 1024 * 1024
GIB = 1024 * MIB
#: (label, algorithm, buffer bytes): what bench/recheck.py reports.
CASES = (
    ("sha1 1 MiB", "sha1", MIB),
    ("sha256 1 MiB", "sha256", MIB),
    ("sha256 16 KiB", "sha256", 16 * 1024),
)


def rate(algorithm: str, buffer: int, threads: int, per_thread: int) -> float:
    """GiB/s of ``threads`` threads each hashing ``per_thread`` bytes in ``buffer`` calls."""
    data = bytes(range(256)) * (buffer // 256)
    calls = max(1, per_thread // buffer)
    new = getattr(hashlib, algorithm)
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in range(calls):
            new(data).digest()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    begun = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - begun
    return threads * calls * buffer / GIB / elapsed


def measure(threads: int = 2, per_thread: int = 512 * MIB, rounds: int = 3) -> dict[str, Any]:
    """Median GiB/s of every case, with 1 thread and with ``threads``."""
    results: dict[str, Any] = {}
    for label, algorithm, buffer in CASES:
        for count in sorted({1, threads}):
            runs = [rate(algorithm, buffer, count, per_thread) for _ in range(rounds)]
            results[f"{label}, {count} thread{'s' if count > 1 else ''}"] = {
                "gib_s": round(statistics.median(runs), 4),
                "runs": [round(r, 4) for r in runs],
                "cpu_s_per_gib": round(count / statistics.median(runs), 4),
            }
    return results


def lines(results: dict[str, Any]) -> list[str]:
    return [
        f"hashlib {label}: {figures['gib_s']:.3f} GiB/s (CPU {figures['cpu_s_per_gib']:.2f} s/GiB)"
        for label, figures in results.items()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mib-per-thread", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = measure(args.threads, args.mib_per_thread * MIB, args.rounds)
    print("\n".join(lines(results)))
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
