"""Run one benchmark of bench/ several times and report the median of every figure.

Run: python bench/repeat.py [--runs 5] [--out FILE] SCRIPT [SCRIPT'S OPTIONS ...]
e.g. python bench/repeat.py --runs 5 download.py --multi-file

libtorrent's own rate moves a lot between runs on a shared machine (issue 18), so a
figure for docs/performance.rst is the median of several runs, each of which measures
bt and libtorrent in the same session. Each run writes its JSON to a temporary file;
this script collects them, takes the median, minimum and maximum of every number in
them (nested keys joined with dots) and writes everything, with the commit and the load
average of each run, to ``--out`` (default bench/out/repeat-<script>.json). The table
shows the rates, ratios, CPU per GiB and peak memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT_DIR, QUIET_ENV, exit_on_sigterm, git_commit, loadavg, write_results

BENCH = Path(__file__).resolve().parent
#: Figures shown in the table (every number is in the JSON): any key containing one.
SHOWN = ("rate_mb_s", "ratio", "cpu_s_per_gib", "vm_hwm_kib", "_s_median", "percent", "wall_s")


def numbers(tree: Any, prefix: str = "") -> dict[str, float]:
    """Every number of a JSON tree, keyed by its dotted path (lists are skipped)."""
    found: dict[str, float] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            found.update(numbers(value, f"{prefix}{key}."))
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        found[prefix[:-1]] = float(tree)
    return found


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median, minimum and maximum of each number present in every run."""
    flat = [numbers(run) for run in runs]
    keys = [key for key in flat[0] if all(key in other for other in flat)]
    return {
        key: {
            "median": statistics.median(f[key] for f in flat),
            "min": min(f[key] for f in flat),
            "max": max(f[key] for f in flat),
        }
        for key in keys
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    parser.add_argument("script", help="a script of bench/, e.g. download.py")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the script's options")
    args = parser.parse_args()
    exit_on_sigterm()
    out = args.out or OUT_DIR / f"repeat-{Path(args.script).stem}.json"
    measured = git_commit()
    runs: list[dict[str, Any]] = []
    loads: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bt-bench-repeat-") as folder:
        for number in range(args.runs):
            report = Path(folder) / f"run-{number}.json"
            loads.append(loadavg())
            print(f"== run {number + 1} of {args.runs} (load {loads[-1]})", flush=True)
            command = [sys.executable, str(BENCH / args.script), *args.options]
            status = subprocess.run([*command, "--out", str(report)], env=QUIET_ENV).returncode
            if status != 0 or not report.exists():
                print(f"run {number + 1} failed with status {status}", file=sys.stderr)
                continue
            runs.append(json.loads(report.read_text()))
    if not runs:
        print("every run failed", file=sys.stderr)
        return 1
    summary = summarise(runs)
    print(f"\n{args.script} {' '.join(args.options)}: {len(runs)} runs, commit {measured}")
    print(f"load averages before each run: {'; '.join(loads)}")
    width = max((len(k) for k in summary), default=10)
    print(f"{'figure':{width}}  {'median':>10}  {'min':>10}  {'max':>10}")
    for key, value in summary.items():
        if any(part in key for part in SHOWN):
            low, mid, high = value["min"], value["median"], value["max"]
            print(f"{key:{width}}  {mid:10.3f}  {low:10.3f}  {high:10.3f}")
    results = {
        "command": ["bench/repeat.py", "--runs", str(args.runs), args.script, *args.options],
        "commit": measured,
        "loadavg_before_runs": loads,
        "runs_ok": len(runs),
        "median": {key: value["median"] for key, value in summary.items()},
        "summary": summary,
        "runs": runs,
    }
    write_results(out, results)
    shown = {k: v for k, v in results["median"].items() if any(p in k for p in SHOWN)}
    print(json.dumps({"commit": measured, "runs": len(runs), "median": shown}))
    return 0 if len(runs) == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
