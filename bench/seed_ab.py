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
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import MIB, OUT_DIR, Deadline, follow_bt, loadavg, make_content, require_free
from scale import libtorrent_torrent, run_client


def one_run(tree: Path, work: Path, torrent: Path, content: Path, args: argparse.Namespace) -> Any:
    from bt.metainfo import load_metainfo

    metainfo = load_metainfo(torrent)
    meta = {
        "info_hash": metainfo.info_hash.hex(),
        "piece_length": metainfo.piece_length,
        "total": metainfo.total_length,
    }
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tree)
    common.QUIET_ENV["PYTHONPATH"] = str(tree)
    try:
        run_dir = Path(tempfile.mkdtemp(prefix="bt-", dir=work))
        daemon = common.bt_daemon(
            run_dir / "bt",
            torrent,
            content.parent,
            "--max-peers",
            str(args.connections + 50),
            "--max-connections",
            str(args.connections * 2),
            "--upload-slots",
            "-1",
        )
        daemon.workdir.mkdir()
        try:
            daemon.start()
            assert daemon.process is not None
            follow_bt(daemon, {"checked": "pieces already on disk"}, "checked", 120, "check")
            found = re.search(r"listening for peers on port (\d+)", daemon.log())
            assert found is not None
            return run_client(run_dir, "bt", int(found.group(1)), daemon.process.pid, meta, args)
        finally:
            daemon.stop()
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
        common.QUIET_ENV.pop("PYTHONPATH", None)


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
    Deadline(3600)
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
