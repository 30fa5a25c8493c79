"""Many torrents in one bt daemon: second start-up, idle CPU, memory and ``bt status``.

Run: python bench/many_torrents.py [--torrents 1000] [--active 100] [--full]
(``--full``: the issue's 10,000 torrents, 100 of them active).

``--torrents`` single-file torrents of 16-48 KiB each (bench/scale.py's maker), their
data complete on disk, no trackers, no peers. A ``twistd -n bittorrent`` daemon (control
API on loopback, as a user runs it) gets them through the API, ``--active`` started
(they check their data and seed) and the rest added paused; once every one is in and
the state is saved, it is stopped. The measured start is the second: the same state
folder, nothing on the command line. Figures: seconds from the process start until the
API lists every torrent with the active ones seeding (the API polled every 0.5 s; and
the "checking" log lines of that start, which should be none: no rehash), then after
``--settle-s`` the idle CPU in % of one core and the RSS over ``--window-s``, and the
wall time of ``bt status`` (the CLI in a fresh process, its table to /dev/null),
``bt status --json`` and the API's GET /api/v1/torrents alone, medians of 5.
Targets (issue 18, at 10,000): start-up < 60 s, idle CPU < 2%, RSS < 1 GiB,
``bt status`` < 1 s. Prints a table and one JSON line; writes
bench/out/many-torrents-<torrents>.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    OUT_DIR,
    QUIET_ENV,
    cpu_percent,
    cpu_window,
    exit_on_sigterm,
    loadavg,
    machine_facts,
    mib,
    sample_proc,
    wait_for,
    warn_on_bt_errors,
    write_results,
)
from scale import make_torrents
from swarm import BtDaemon

TARGETS = {"startup_s": 60.0, "idle_cpu_percent": 2.0, "rss_mib": 1024.0, "status_wall_s": 1.0}
LIST = "/api/v1/torrents"


def daemon_for(work: Path, args: argparse.Namespace) -> BtDaemon:
    """The daemon of both starts: one state folder, the control API on a loopback port."""
    extra = ("--no-dht", "--max-connections", str(args.active * 4 + 100))
    return BtDaemon(work / "bt", None, work / "data", extra)


def listing(daemon: BtDaemon) -> list[dict[str, Any]]:
    status, document = daemon.api("GET", LIST)
    if status != 200:
        raise RuntimeError(f"GET {LIST} answered {status}: {document}")
    return document["torrents"]


def all_in(daemon: BtDaemon, count: int, active: int) -> bool:
    """Every torrent listed, ``active`` of them seeding (the API not up yet: not yet)."""
    if not (daemon.state_dir / "control.json").exists():
        return False
    try:
        torrents = listing(daemon)
    except OSError:
        return False
    seeding = sum(1 for t in torrents if t["state"] == "seeding")
    return len(torrents) == count and seeding >= active


def first_start(daemon: BtDaemon, paths: list[Path], args: argparse.Namespace) -> float:
    """Add every torrent through the API (the first ``--active`` started), then stop."""
    began = time.monotonic()
    daemon.start()
    daemon.wait_for_api(60)

    def add(numbered: tuple[int, Path]) -> None:
        number, path = numbered
        query = "" if number < args.active else "?paused=true"
        status, reply = daemon.api("POST", LIST + query, body=path.read_bytes())
        if status not in (200, 201):
            raise RuntimeError(f"adding {path.name} answered {status}: {reply}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, enumerate(paths)))
    added = time.monotonic() - began
    wait_for(lambda: all_in(daemon, len(paths), args.active), 600, "every torrent in", 1.0)
    # bt saves a torrent's record and resume state a few seconds after its check.
    time.sleep(args.settle_s)
    daemon.stop()
    print(f"first start: {len(paths)} torrents added in {added:.1f} s, stopped", flush=True)
    return added


def timed_runs(command: list[str], runs: int = 5) -> list[float]:
    """Wall seconds of each of ``runs`` runs of ``command`` (output to /dev/null)."""
    walls = []
    for _ in range(runs):
        begun = time.monotonic()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, env=QUIET_ENV, check=False)
        walls.append(time.monotonic() - begun)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}")
    return walls


def api_walls(daemon: BtDaemon, runs: int = 5) -> list[float]:
    walls = []
    for _ in range(runs):
        begun = time.monotonic()
        listing(daemon)
        walls.append(time.monotonic() - begun)
    return walls


def second_start(daemon: BtDaemon, args: argparse.Namespace) -> dict[str, Any]:
    """The measured start: the saved state only; then idle figures and status times."""
    first_log = daemon.logfile.with_name("bt-first.log")
    daemon.logfile.rename(first_log)
    load = loadavg()
    began = time.monotonic()
    daemon.start()
    assert daemon.process is not None
    pid = daemon.process.pid
    try:
        wait_for(
            lambda: all_in(daemon, args.torrents, args.active),
            args.timeout,
            "the second start to list every torrent",
            0.5,
        )
        startup = time.monotonic() - began
        at_ready = sample_proc(pid)
        print(f"second start: every torrent listed after {startup:.1f} s", flush=True)
        time.sleep(args.settle_s)
        first, last = cpu_window(pid, args.window_s)
        cli = [sys.executable, "-m", "bt.cli", "--state-dir", str(daemon.state_dir), "status"]
        status_walls = timed_runs(cli)
        json_walls = timed_runs([*cli, "--json"])
        get_walls = api_walls(daemon)
        after = sample_proc(pid)
    finally:
        daemon.stop()
    log = daemon.log()
    warn_on_bt_errors(log)
    return {
        "loadavg_before": load,
        "startup_s": round(startup, 2),
        "checking_lines": log.count(": checking "),
        "rss_at_ready_kib": at_ready.vm_rss_kib,
        "idle_window_s": round(last.at - first.at, 1),
        "idle_cpu_percent": round(cpu_percent(first, last), 2),
        "rss_kib": last.vm_rss_kib,
        "rss_anon_kib": last.rss_anon_kib,
        "vm_hwm_kib": after.vm_hwm_kib,
        "status_wall_s": [round(w, 3) for w in status_walls],
        "status_wall_s_median": round(statistics.median(status_walls), 3),
        "status_json_wall_s_median": round(statistics.median(json_walls), 3),
        "api_list_wall_s_median": round(statistics.median(get_walls), 3),
        "loadavg_after": loadavg(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torrents", type=int, default=1000, help="torrents (1000)")
    parser.add_argument("--active", type=int, default=100, help="of them started (100)")
    parser.add_argument("--full", action="store_true", help="the issue's 10,000 torrents")
    parser.add_argument("--settle-s", type=float, default=15, help="wait after start-up (15)")
    parser.add_argument("--window-s", type=float, default=30, help="idle window (30)")
    parser.add_argument("--timeout", type=float, default=600, help="budget of a start, seconds")
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where data is written")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    args = parser.parse_args(argv)
    if args.full:
        args.torrents = 10_000
    return args


def main() -> int:
    args = parse_args()
    exit_on_sigterm()
    facts = machine_facts()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-many-", dir=args.tmp))
    try:
        begun = time.monotonic()
        paths = make_torrents(work, args.torrents)
        print(f"made {args.torrents} torrents in {time.monotonic() - begun:.1f} s", flush=True)
        daemon = daemon_for(work, args)
        daemon.workdir.mkdir()
        try:
            added_s = first_start(daemon, paths, args)
            bt = second_start(daemon, args)
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bt["first_start_add_s"] = round(added_s, 1)
    passed = {
        "startup": bt["startup_s"] < TARGETS["startup_s"],
        "idle_cpu": bt["idle_cpu_percent"] < TARGETS["idle_cpu_percent"],
        "rss": bt["rss_kib"] / 1024 < TARGETS["rss_mib"],
        "status": bt["status_wall_s_median"] < TARGETS["status_wall_s"],
    }
    rows = [
        ("second start until all listed", f"{bt['startup_s']:.1f} s", "< 60 s"),
        ("'checking' log lines (rehash)", str(bt["checking_lines"]), "0"),
        ("idle CPU, % of a core", f"{bt['idle_cpu_percent']:.2f}", "< 2"),
        ("RSS idle", mib(bt["rss_kib"]), "< 1024 MiB"),
        ("bt status wall (median of 5)", f"{bt['status_wall_s_median']:.3f} s", "< 1 s"),
        ("bt status --json wall", f"{bt['status_json_wall_s_median']:.3f} s", "-"),
        ("GET /api/v1/torrents alone", f"{bt['api_list_wall_s_median']:.3f} s", "-"),
    ]
    print(f"\nbt, {args.torrents} torrents ({args.active} active); load {bt['loadavg_before']}")
    for label, value, target in rows:
        print(f"{label:32}  {value:>12}  {target:>10}")
    results = {
        "machine": facts,
        "torrents": args.torrents,
        "active": args.active,
        "bt": bt,
        "targets": TARGETS,
        "passed": passed,
    }
    write_results(args.out or OUT_DIR / f"many-torrents-{args.torrents}.json", results)
    brief = {k: bt[k] for k in ("startup_s", "idle_cpu_percent", "status_wall_s_median")}
    print(json.dumps({"torrents": args.torrents, **brief, "rss_kib": bt["rss_kib"], **passed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
