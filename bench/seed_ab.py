"""Before/after of bt's seeder to many light peers: two source trees, alternated, one lock.

Run (under the shared lock, from the worktree of the newer code)::

   flock /tmp/bench.lock python bench/seed_ab.py --trees /work/wt/pseed-base . --rounds 3

Each round runs bench/scale.py's 200-connection seeding case (bt side only: the same
light asyncio peers, the same 256 MiB torrent) once per tree, in turn, with that tree
first on PYTHONPATH, so every tree sees the same machine load. Prints throughput, CPU
per GiB and peak RSS per run and the medians; writes bench/out/seed-ab.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MIB, OUT_DIR, bt_seeder, loadavg, make_content, require_free, start_seeding
from scale import client_meta, libtorrent_torrent, run_client


def one_run(tree: Path, work: Path, torrent: Path, content: Path, args: argparse.Namespace) -> Any:
    """bt of ``tree`` (first on its PYTHONPATH) seeding to scale.py's light peers."""
    run_dir = Path(tempfile.mkdtemp(prefix="bt-", dir=work))
    env = {"PYTHONPATH": str(tree)}
    daemon = bt_seeder(run_dir / "bt", torrent, content.parent, args.connections, env)
    try:
        port = start_seeding(daemon, 120)
        assert daemon.process is not None
        return run_client(run_dir, "bt", port, daemon.process.pid, client_meta(torrent), args)
    finally:
        daemon.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", nargs="+", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--idle-s", type=float, default=1.0)
    parser.add_argument("--transfer-s", type=float, default=8.0)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"))
    parser.add_argument("--out", type=Path, default=OUT_DIR / "seed-ab.json")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in args.trees]
    require_free(args.tmp, args.size_mib * MIB + 2**30)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-ab-", dir=args.tmp))
    runs: dict[str, list[dict[str, Any]]] = {str(t): [] for t in trees}
    try:
        content, _ = make_content(work, "data", args.size_mib)
        torrent = work / "bare.torrent"
        torrent.write_bytes(libtorrent_torrent(content, MIB))
        os.sync()
        for number in range(args.rounds):
            for tree in trees:
                load = loadavg()
                result = one_run(tree, work, torrent, content, args)
                result["loadavg"] = load
                runs[str(tree)].append(result)
                print(
                    f"round {number + 1} {tree}: {result['handshakes']} peers, "
                    f"{result['throughput_mb_s']:.1f} MB/s, "
                    f"{result['seeder_transfer_cpu_percent']:.0f}% CPU, "
                    f"{result['seeder_cpu_s_per_gib']:.2f} s/GiB, peak "
                    f"{result['seeder_vm_hwm_kib'] / 1024:.0f} MiB (load {load})",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for tree, results in runs.items():
        rates = [r["throughput_mb_s"] for r in results]
        cpus = [r["seeder_cpu_s_per_gib"] for r in results]
        print(
            f"{tree}: median {statistics.median(rates):.1f} MB/s "
            f"({', '.join(f'{r:.0f}' for r in rates)}), "
            f"{statistics.median(cpus):.2f} s/GiB"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(runs, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
