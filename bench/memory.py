"""bt's memory as the torrent grows: peak RSS downloading 4 GiB against 1 GiB on loopback.

Run: python bench/memory.py [--small-mib 1024] [--large-mib 4096] [--libtorrent]
(needs libtorrent and opentracker, as the integration tests do).

Each size runs on its own: random content is written in 16 MiB chunks (never more
in memory), a libtorrent seeder and an opentracker serve it as in bench/download.py,
bt downloads it as a user runs it (``twistd -n bittorrent``), and its VmHWM (peak
resident memory, threads included) is read from /proc at the moment it logs
completion; its RSS is also sampled every 0.25 s while it downloads (the JSON keeps
the timeline), which tells a peak of transient buffers from growth with progress.
The data of one size is deleted before the next is written, so the disk
needs the larger size twice (original and bt's copy) plus 1 GiB. bt writes with
pwrite, not mmap, so its RSS is its own memory, not page cache.

Targets (issue 8): the large torrent's peak RSS under 150 MiB and within 10% of the
small one's. ``--libtorrent`` also downloads each size with libtorrent, for reference
(libtorrent memory-maps its files, so compare its RssAnon, not its VmHWM).
Writes bench/out/memory.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    GIB,
    MIB,
    Deadline,
    LogWatcher,
    SeededSwarm,
    base_parser,
    exit_on_sigterm,
    loadavg,
    machine_facts,
    make_content,
    require_free,
    sample_proc,
    settle,
    write_results,
)
from download import Result, run_bt, run_libtorrent

#: Peak RSS of the large torrent must stay under this, and within this ratio of the small.
TARGET_PEAK_MIB = 150
TARGET_GROWTH = 1.10


def one_size(args: argparse.Namespace, size_mib: int, deadline: Deadline) -> dict[str, Any]:
    """Write ``size_mib`` MiB, let bt (and maybe libtorrent) download it, delete it all."""
    piece = args.piece_kib * 1024
    work = Path(tempfile.mkdtemp(prefix="bt-bench-memory-", dir=args.tmp))
    try:
        content, digest = make_content(work, "seed", size_mib)
        with SeededSwarm(work, content, piece, deadline) as swarm:
            settle()
            load = loadavg()
            timeline: list[tuple[float, int, int]] = []

            def record(watcher: LogWatcher) -> None:
                # RSS every ~0.25 s: is the peak transient (buffers) or grown (per piece)?
                if not timeline or time.monotonic() - timeline[-1][0] >= 0.25:
                    now = sample_proc(watcher.pid)
                    timeline.append((now.at, now.vm_rss_kib, now.rss_anon_kib))

            bt = run_bt(work, swarm.torrent, content, digest, deadline, None, record)
            print(
                f"{size_mib} MiB: bt {bt.rate:.1f} MB/s, peak RSS {bt.vm_hwm_kib / 1024:.0f} MiB",
                flush=True,
            )
            lt_result: Result | None = None
            if args.libtorrent:
                time.sleep(deadline.left(5))
                swarm.wait_seeder_alone()
                settle()
                lt_result = run_libtorrent(work, swarm.torrent, content, digest, deadline)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    begun = timeline[0][0] if timeline else 0.0
    quartiles = [
        max((rss for at, rss, _ in timeline if at - begun <= q * bt.complete_s), default=0)
        for q in (0.25, 0.5, 0.75, 1.0)
    ]
    print(
        f"{size_mib} MiB: highest RSS by 25/50/75/100% of the download time: "
        + " / ".join(f"{kib / 1024:.0f}" for kib in quartiles)
        + " MiB",
        flush=True,
    )
    return {
        "size_mib": size_mib,
        "rss_by_quarter_kib": quartiles,
        "rss_timeline": [(round(at - begun, 2), rss, anon) for at, rss, anon in timeline],
        "pieces": -(-size_mib * MIB // piece),
        "loadavg_before_bt": load,
        "bt": bt.as_json(),
        "libtorrent": lt_result.as_json() if lt_result is not None else None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__.split("\n")[0], "memory.json")
    parser.add_argument("--small-mib", type=int, default=1024, help="small torrent (1024)")
    parser.add_argument("--large-mib", type=int, default=4096, help="large torrent (4096)")
    parser.add_argument(
        "--libtorrent", action="store_true", help="libtorrent downloads each size too"
    )
    return parser.parse_args(argv)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    free = shutil.disk_usage(args.tmp).free
    copies = 3 if args.libtorrent else 2
    large = args.large_mib
    if free < copies * large * MIB + GIB:
        # Say so, and measure the largest size the disk holds instead.
        fits = int((free - GIB) / copies / MIB) // 256 * 256
        print(
            f"{args.tmp} has {free / GIB:.1f} GiB free, not enough for {large} MiB; "
            f"using {fits} MiB",
            flush=True,
        )
        large = fits
    require_free(args.tmp, copies * large * MIB + GIB)
    facts = machine_facts()
    runs = [one_size(args, size, deadline) for size in (args.small_mib, large)]
    small, big = runs
    small_peak = small["bt"]["vm_hwm_kib"] / 1024
    big_peak = big["bt"]["vm_hwm_kib"] / 1024
    growth = big_peak / small_peak
    passed = {
        "peak_under_target": big_peak < TARGET_PEAK_MIB,
        "growth_within_target": growth <= TARGET_GROWTH,
    }
    print()
    print(f"{args.piece_kib} KiB pieces, loopback; {facts['nproc']} x {facts['cpu_model']}")
    print(f"load average at start: {facts['loadavg_at_start']}")
    header = f"{'torrent':>10}  {'pieces':>7}  {'bt MB/s':>8}  {'peak RSS':>9}  {'RssAnon':>8}"
    print(header + ("  lt RssAnon" if args.libtorrent else ""))
    for run in runs:
        bt = run["bt"]
        line = (
            f"{run['size_mib']:>6} MiB  {run['pieces']:>7}  {bt['rate_mb_s']:>8.1f}  "
            f"{bt['vm_hwm_kib'] / 1024:>5.0f} MiB  {bt['rss_anon_kib'] / 1024:>4.0f} MiB"
        )
        if run["libtorrent"]:
            line += f"  {run['libtorrent']['rss_anon_kib'] / 1024:>7.0f} MiB"
        print(line)
    print(
        f"peak RSS {big['size_mib']} MiB / {small['size_mib']} MiB: {growth:.3f} "
        f"(target <= {TARGET_GROWTH}); {big_peak:.0f} MiB (target < {TARGET_PEAK_MIB} MiB)"
    )
    if not all(run["bt"]["identical"] for run in runs):
        print("\nERROR: a download differs from the original", file=sys.stderr)
    return {
        "machine": facts,
        "piece_bytes": args.piece_kib * 1024,
        "requested_large_mib": args.large_mib,
        "runs": runs,
        "bt_peak_small_mib": round(small_peak, 1),
        "bt_peak_large_mib": round(big_peak, 1),
        "growth_ratio": round(growth, 4),
        "target_peak_mib": TARGET_PEAK_MIB,
        "target_growth": TARGET_GROWTH,
        "passed": passed,
    }


def main() -> int:
    args = parse_args()
    exit_on_sigterm()
    results = bench(args)
    write_results(args.out, results)
    return 0 if all(run["bt"]["identical"] for run in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
