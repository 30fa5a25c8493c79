"""bt against libtorrent in crowds on loopback: one seeder to many downloaders, and one
downloader from many seeders.

Run: python bench/swarms.py seed [--peers 50] [--size-mib 16] [--procs 4] [--full]
     python bench/swarms.py seeders [--peers 50] [--size-mib 64] [--procs 4] [--full]
(needs libtorrent; ``seeders`` also needs opentracker, as the integration tests do).

- ``seed``: bt seeds one torrent (``twistd -n bittorrent``, every peer unchoked, room
  for every connection), then a libtorrent session does (not auto-managed, bench/
  common.py's LT_BEST: every peer unchoked), to ``--peers`` libtorrent downloaders at
  once. The downloaders are separate libtorrent sessions spread over ``--procs``
  processes; each dials the seeder alone (the torrent has no tracker, the sessions have
  no ut_pex), so they never learn of each other and upload nothing to each other. The
  seeder is sampled from /proc every 0.1 s: its CPU per GiB served between the start
  signal and the last downloader finishing, and its peak RSS. Figures: aggregate rate
  (every byte the downloaders got, over the time from the start signal to the last
  finish) and the steady rate between 10% and 90% of all bytes.
- ``seeders``: ``--peers`` libtorrent seeders (separate sessions in ``--procs``
  processes) each holding the whole torrent announce to one opentracker; bt downloads
  it (``--max-peers`` above the seeder count), then a fresh libtorrent session does
  (bench/download.py's downloaders, as in its single-seeder comparison).

The downloaders of ``seed`` write into ``--leech-dir`` (default /dev/shm: many copies
on a disk would bring writeback into the middle of the run); everything is deleted at
the end. ``--full`` takes the issue's sizes (seed: 6 GiB served in all, split over the
peers; seeders: 1 GiB). Prints a table and one JSON line; writes
bench/out/swarms-<case>-<peers>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    GIB,
    MIB,
    OUT_DIR,
    QUIET_ENV,
    Deadline,
    ProcSample,
    bt_seeder,
    exit_on_sigterm,
    gil_profiler,
    libtorrent_settings,
    loadavg,
    lt_params,
    lt_session,
    machine_facts,
    make_content,
    mib,
    require_free,
    sample_proc,
    scrape_counts,
    settle,
    start_seeding,
    stop_process,
    stop_profiler,
    wait_for,
    wall_profiler,
    warn_on_bt_errors,
    write_results,
    write_tracked_torrent,
)
from swarm import OpenTracker
from torrents import libtorrent_torrent

POLL = 0.05  # seconds between progress polls in the downloader processes
SAMPLE = 0.1  # seconds between /proc samples of the seeder


def shares(total: int, parts: int) -> list[int]:
    """``total`` items over ``parts`` processes as evenly as possible (none empty)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def quiet_session(settings: dict[str, Any]) -> Any:
    """One light libtorrent session of a crowd: loopback, no plugins (no ut_pex, so it
    learns no other peer), few threads."""
    import libtorrent as lt

    config = {**libtorrent_settings(), "aio_threads": 1, "hashing_threads": 1, **settings}
    return lt.session(config, 0)


# -- the crowd processes -----------------------------------------------------------------


def leechers_main(spec_path: Path) -> None:
    """A process of ``seed``'s downloaders: wait for the go file, dial, report progress."""
    spec = json.loads(spec_path.read_text())
    torrent = Path(spec["torrent"])
    sessions, handles = [], []
    for number in spec["numbers"]:
        session = quiet_session({"connections_limit": 20})
        save = Path(spec["save_root"]) / f"dl{number:03d}"
        save.mkdir(parents=True)
        handles.append(session.add_torrent(lt_params(torrent, save)))
        sessions.append(session)
    Path(spec["ready"]).write_text("ready")
    go, limit = Path(spec["go"]), time.monotonic() + spec["budget"]
    while not go.exists():
        if time.monotonic() > limit or os.getppid() != spec["parent"]:
            return
        time.sleep(0.01)
    for handle in handles:
        handle.connect_peer(("127.0.0.1", spec["port"]))
    started = time.monotonic()
    first: list[float | None] = [None] * len(handles)
    finished: list[float | None] = [None] * len(handles)
    timeline: list[tuple[float, int]] = []
    while None in finished and time.monotonic() < limit:
        now, total = time.monotonic(), 0
        for slot, handle in enumerate(handles):
            if finished[slot] is not None:
                total += spec["size"]
                continue
            status = handle.status()
            total += status.total_wanted_done
            if first[slot] is None and status.total_wanted_done:
                first[slot] = now
            if status.is_seeding:
                finished[slot] = now
        timeline.append((now, total))
        time.sleep(POLL)
    report = {"started": started, "first": first, "finished": finished, "timeline": timeline}
    report["cpu"] = sample_proc(os.getpid()).cpu
    Path(spec["report"]).write_text(json.dumps(report))
    for session, handle in zip(sessions, handles, strict=True):
        session.remove_torrent(handle)


def seeders_main(spec_path: Path) -> None:
    """A process of ``seeders``' seeders: each session holds the whole data, announces."""
    import libtorrent as lt

    spec = json.loads(spec_path.read_text())
    torrent, save = Path(spec["torrent"]), Path(spec["save"])
    sessions, handles = [], []
    for _ in range(spec["count"]):
        session = quiet_session({"unchoke_slots_limit": -1, "alert_mask": 0})
        params = lt_params(torrent, save)
        params.flags |= lt.torrent_flags.seed_mode  # the data is known complete: no check
        handles.append(session.add_torrent(params))
        sessions.append(session)
    Path(spec["ready"]).write_text("ready")
    limit = time.monotonic() + spec["budget"]
    report = Path(spec["report"])
    while time.monotonic() < limit and os.getppid() == spec["parent"]:
        # Payload sent so far, for the bytes the seeders sent per byte downloaded.
        uploaded = sum(handle.status().total_payload_upload for handle in handles)
        report.with_suffix(".tmp").write_text(json.dumps({"uploaded": uploaded}))
        report.with_suffix(".tmp").rename(report)
        time.sleep(0.2)
    for session, handle in zip(sessions, handles, strict=True):
        session.remove_torrent(handle)


def lt_seed_main(torrent: Path, save: Path, ready: Path, budget: float) -> None:
    """``seed``'s libtorrent seeder: LT_BEST, not auto-managed, until its parent goes."""
    session = lt_session(0)
    handle = session.add_torrent(lt_params(torrent, save))
    parent = os.getppid()
    wait_for(lambda: handle.status().is_seeding, budget, "libtorrent to check its data", 0.02)
    partial = ready.with_suffix(".tmp")
    partial.write_text(json.dumps({"port": session.listen_port()}))
    partial.rename(ready)
    limit = time.monotonic() + budget
    while time.monotonic() < limit and os.getppid() == parent:
        time.sleep(0.2)


def start_crowd(
    work: Path, flag: str, label: str, specs: list[dict[str, Any]], deadline: Deadline
) -> list[subprocess.Popen[bytes]]:
    """Start one process per spec and wait until each has set up its sessions."""
    processes = []
    for number, spec in enumerate(specs):
        spec.update(
            ready=str(work / f"{label}-{number}.ready"),
            report=str(work / f"{label}-{number}.report"),
            parent=os.getpid(),
            budget=deadline.left(),
        )
        path = work / f"{label}-{number}.json"
        path.write_text(json.dumps(spec))
        command = [sys.executable, __file__, flag, str(path)]
        processes.append(subprocess.Popen(command, env=QUIET_ENV))

    def ready() -> bool:
        for process in processes:
            if process.poll() not in (None, 0):
                raise RuntimeError(f"a {label} process exited with {process.returncode}")
        return all(Path(spec["ready"]).exists() for spec in specs)

    wait_for(ready, deadline.left(300), f"the {label} processes to set up", 0.05)
    return processes


# -- seed: one seeder, many downloaders ---------------------------------------------------


def serve_crowd(
    work: Path, who: str, seeder_pid: int, port: int, args: argparse.Namespace, deadline: Deadline
) -> dict[str, Any]:
    """Start the downloaders against the seeder on ``port``; time them and sample it."""
    save_root = Path(tempfile.mkdtemp(prefix=f"bt-bench-crowd-{who}-", dir=args.leech_dir))
    go = work / f"go-{who}"
    specs, first = [], 0
    for count in shares(args.peers, args.procs):
        specs.append(
            {
                "torrent": str(work / "bare.torrent"),
                "save_root": str(save_root),
                "numbers": list(range(first, first + count)),
                "go": str(go),
                "port": port,
                "size": args.size_mib * MIB,
            }
        )
        first += count
    processes: list[subprocess.Popen[bytes]] = []
    profiler: subprocess.Popen[bytes] | None = None
    try:
        processes = start_crowd(work, "--leechers", f"leech-{who}", specs, deadline)
        load = loadavg()
        samples = [sample_proc(seeder_pid)]
        if who == "bt" and args.profile is not None:
            if args.profile_idle:
                profiler = wall_profiler(seeder_pid, args.profile)
            else:
                profiler = gil_profiler(seeder_pid, args.profile)
        go.write_text("go")
        went = time.monotonic()
        while any(p.poll() is None for p in processes):
            deadline.left()
            time.sleep(SAMPLE)
            samples.append(sample_proc(seeder_pid))
        if any(p.returncode != 0 for p in processes):
            raise RuntimeError(f"a downloader process of {who} failed")
        reports = [json.loads(Path(spec["report"]).read_text()) for spec in specs]
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        for process in processes:
            stop_process(process, signal.SIGTERM, 10)
        shutil.rmtree(save_root, ignore_errors=True)
    return crowd_figures(who, went, samples, reports, args, load)


def crowd_figures(
    who: str,
    went: float,
    samples: list[ProcSample],
    reports: list[dict[str, Any]],
    args: argparse.Namespace,
    load: str,
) -> dict[str, Any]:
    """Aggregate and steady rates, the seeder's CPU per GiB served and its peak RSS."""
    finished = [t for r in reports for t in r["finished"]]
    if None in finished:
        raise RuntimeError(f"{finished.count(None)} downloaders of {who} did not finish")
    firsts = [t for r in reports for t in r["first"] if t is not None]
    end = max(finished)
    served = args.peers * args.size_mib * MIB
    steady = steady_rate(reports, served)
    before = max((s for s in samples if s.at <= went), key=lambda s: s.at, default=samples[0])
    after = min((s for s in samples if s.at >= end), key=lambda s: s.at, default=samples[-1])
    cpu = after.cpu - before.cpu
    return {
        "seeder": who,
        "peers": args.peers,
        "served_bytes": served,
        "first_byte_s": round(min(firsts) - went, 3),
        "last_finish_s": round(end - went, 3),
        "first_finish_s": round(min(finished) - went, 3),
        "aggregate_rate_mb_s": round(served / (end - went) / 1e6, 2),
        "steady_rate_mb_s": round(steady / 1e6, 2),
        "seeder_cpu_s": round(cpu, 3),
        "seeder_cpu_s_per_gib": round(cpu / (served / GIB), 3),
        "seeder_sys_s_per_gib": round((after.cpu_sys - before.cpu_sys) / (served / GIB), 3),
        "seeder_read_per_byte_served": round((after.read_chars - before.read_chars) / served, 3),
        "seeder_cpu_percent": round(100 * cpu / max(after.at - before.at, 1e-9), 1),
        "seeder_vm_hwm_kib": after.vm_hwm_kib,
        "seeder_rss_anon_kib": after.rss_anon_kib,
        "downloaders_cpu_s": round(sum(r["cpu"] for r in reports), 2),
        "downloaders_cpu_s_per_gib": round(sum(r["cpu"] for r in reports) / (served / GIB), 3),
        "loadavg_before": load,
    }


def steady_rate(reports: list[dict[str, Any]], total: int) -> float:
    """Bytes per second between 10% and 90% of every byte received (all processes)."""
    events = sorted((t, n, b) for n, r in enumerate(reports) for t, b in r["timeline"])
    latest = [0] * len(reports)
    crossed: dict[float, float] = {}
    for at, number, done in events:
        latest[number] = done
        got = sum(latest)
        for mark in (0.1, 0.9):
            if mark not in crossed and got >= mark * total:
                crossed[mark] = at
    if len(crossed) < 2 or crossed[0.9] <= crossed[0.1]:
        return float("nan")
    return 0.8 * total / (crossed[0.9] - crossed[0.1])


def case_seed(args: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    size = args.size_mib * MIB
    require_free(args.tmp, size + GIB)
    require_free(args.leech_dir, args.peers * size + GIB)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-swarms-", dir=args.tmp))
    results: dict[str, Any] = {}
    try:
        content, _ = make_content(work, "data", args.size_mib)
        torrent = work / "bare.torrent"
        torrent.write_bytes(libtorrent_torrent(content, args.piece_kib * 1024))
        settle()
        daemon = bt_seeder(work / "bt", torrent, content.parent, args.peers)
        try:
            port = start_seeding(daemon, deadline.left(300))
            assert daemon.process is not None
            print(f"bt seeding; {args.peers} downloaders", flush=True)
            pid = daemon.process.pid
            results["bt"] = serve_crowd(work, "bt", pid, port, args, deadline)
        finally:
            daemon.stop()
        warn_on_bt_errors(daemon.log())
        time.sleep(deadline.left(3))
        settle()
        ready = work / "lt-ready.json"
        command = [sys.executable, __file__, "--lt-seed", str(torrent), str(content.parent)]
        process = subprocess.Popen([*command, str(ready), f"{deadline.left():.0f}"], env=QUIET_ENV)
        try:
            wait_for(ready.exists, deadline.left(300), "the libtorrent seeder", 0.05)
            port = json.loads(ready.read_text())["port"]
            print(f"libtorrent seeding; {args.peers} downloaders", flush=True)
            pid = process.pid
            results["libtorrent"] = serve_crowd(work, "libtorrent", pid, port, args, deadline)
        finally:
            stop_process(process, signal.SIGTERM, 20)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bt, lt_result = results["bt"], results["libtorrent"]
    results["ratio_bt_libtorrent"] = round(
        bt["aggregate_rate_mb_s"] / lt_result["aggregate_rate_mb_s"], 4
    )
    results["ratio_steady_bt_libtorrent"] = round(
        bt["steady_rate_mb_s"] / lt_result["steady_rate_mb_s"], 4
    )
    results["ratio_cpu_s_per_gib_bt_libtorrent"] = round(
        bt["seeder_cpu_s_per_gib"] / lt_result["seeder_cpu_s_per_gib"], 4
    )
    rows = [
        ("aggregate rate (MB/s)", "aggregate_rate_mb_s", str),
        ("steady rate 10-90% (MB/s)", "steady_rate_mb_s", str),
        ("first byte after start (s)", "first_byte_s", str),
        ("first / last finish (s)", None, None),
        ("seeder CPU s/GiB served", "seeder_cpu_s_per_gib", str),
        ("  of which in the kernel", "seeder_sys_s_per_gib", str),
        ("seeder bytes read / served", "seeder_read_per_byte_served", str),
        ("seeder CPU % of a core", "seeder_cpu_percent", str),
        ("seeder peak RSS (VmHWM)", "seeder_vm_hwm_kib", mib),
        ("downloaders' CPU (s)", "downloaders_cpu_s", str),
        ("downloaders' CPU s/GiB", "downloaders_cpu_s_per_gib", str),
        ("load average before", "loadavg_before", str),
    ]
    print(f"\none seeder to {args.peers} libtorrent downloaders, {args.size_mib} MiB each")
    print(f"{'':28}  {'bt':>14}  {'libtorrent':>14}")
    for label, key, show in rows:
        if key is None:
            cells = [f"{r['first_finish_s']:.2f}/{r['last_finish_s']:.2f}" for r in (bt, lt_result)]
        else:
            assert show is not None
            cells = [show(r[key]) for r in (bt, lt_result)]
        print(f"{label:28}  {cells[0]:>14}  {cells[1]:>14}")
    print(f"{'ratio bt/libtorrent (rate)':28}  {results['ratio_bt_libtorrent']:>14}")
    return results


# -- seeders: many seeders, one downloader ------------------------------------------------


def case_seeders(args: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    import download

    size = args.size_mib * MIB
    require_free(args.tmp, 3 * size + GIB)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-swarms-", dir=args.tmp))
    tracker = OpenTracker()
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {}
    try:
        content, digest = make_content(work, "seed", args.size_mib)
        piece = args.piece_kib * 1024
        torrent, _, info_hash = write_tracked_torrent(work, content, piece, tracker, deadline)
        specs = [
            {"torrent": str(torrent), "save": str(content.parent), "count": count}
            for count in shares(args.peers, args.procs)
        ]
        processes = start_crowd(work, "--seeders", "seeders", specs, deadline)
        wait_for(
            lambda: scrape_counts(tracker, info_hash) >= args.peers,
            deadline.left(120),
            f"{args.peers} seeders at the tracker",
        )
        pids = [p.pid for p in processes]
        ports = seeder_ports(pids)
        print(f"{args.peers} seeders ready ({len(ports)} ports); bt downloading", flush=True)
        settle()
        load_bt = loadavg()
        extra = ("--max-peers", str(args.peers + 10), "--max-connections", str(args.peers + 60))
        seeders_before, sent_before = crowd_cpu(pids), crowd_uploaded(specs)
        bt = download.run_bt(
            work, torrent, content, digest, deadline, args.profile, None, ports, extra, gil_profiler
        )
        seeders_bt = crowd_cpu(pids) - seeders_before
        time.sleep(0.5)  # the crowd's next report of what it sent
        sent_bt = crowd_uploaded(specs) - sent_before
        print(f"bt: {bt.rate:.1f} MB/s; libtorrent downloading", flush=True)
        time.sleep(deadline.left(5))
        wait_for(
            lambda: scrape_counts(tracker, info_hash) == args.peers,
            deadline.left(30),
            "bt to leave the tracker",
        )
        settle()
        load_lt = loadavg()
        seeders_before, sent_before = crowd_cpu(pids), crowd_uploaded(specs)
        lt_result = download.run_libtorrent(work, torrent, content, digest, deadline)
        seeders_lt = crowd_cpu(pids) - seeders_before
        time.sleep(0.5)
        sent_lt = crowd_uploaded(specs) - sent_before
    finally:
        for process in processes:
            stop_process(process, signal.SIGTERM, 10)
        tracker.stop()
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "peers": args.peers,
        "loadavg_before_bt": load_bt,
        "loadavg_before_libtorrent": load_lt,
        "bt": bt.as_json(),
        "libtorrent": lt_result.as_json(),
        "ratio_bt_libtorrent": round(bt.rate / lt_result.rate, 4),
        "ratio_cpu_bt_libtorrent": round(bt.cpu_per_gib / lt_result.cpu_per_gib, 4),
        # Seeders' CPU over each download, idle time between the two included (settle()).
        "seeders_cpu_s_per_gib_bt": round(seeders_bt / (size / GIB), 3),
        "seeders_cpu_s_per_gib_libtorrent": round(seeders_lt / (size / GIB), 3),
        # Payload the seeders sent per byte of the torrent: above 1, blocks sent twice.
        "seeders_sent_per_byte_bt": round(sent_bt / size, 3),
        "seeders_sent_per_byte_libtorrent": round(sent_lt / size, 3),
    }
    print(f"\n{args.size_mib} MiB from {args.peers} libtorrent seeders")
    print(f"load average before bt: {load_bt}; before libtorrent: {load_lt}")
    print(
        f"seeders' CPU s/GiB while bt / libtorrent downloads: "
        f"{results['seeders_cpu_s_per_gib_bt']} / {results['seeders_cpu_s_per_gib_libtorrent']}"
    )
    print(
        f"seeders' payload sent per byte, to bt / libtorrent: "
        f"{results['seeders_sent_per_byte_bt']} / {results['seeders_sent_per_byte_libtorrent']}"
    )
    print(download.table(bt, lt_result))
    if not (bt.identical and lt_result.identical):
        print("\nERROR: a download differs from the original", file=sys.stderr)
    return results


def crowd_uploaded(specs: list[dict[str, Any]]) -> int:
    """Payload bytes the crowd's seeders have sent so far (their last reports)."""
    total = 0
    for spec in specs:
        report = Path(spec["report"])
        if report.exists():
            total += json.loads(report.read_text())["uploaded"]
    return total


def crowd_cpu(pids: list[int]) -> float:
    """CPU seconds the crowd's processes have used so far (user and system)."""
    return sum(sample_proc(pid).cpu for pid in pids)


def seeder_ports(pids: list[int]) -> set[int]:
    """The loopback ports the seeder processes listen on (from /proc/net/tcp and their fds)."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# -- command line ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", nargs="?", choices=["seed", "seeders"])
    parser.add_argument("--peers", type=int, default=50, help="downloaders or seeders (50)")
    parser.add_argument("--size-mib", type=int, default=None, help="torrent size")
    parser.add_argument("--piece-kib", type=int, default=1024, help="piece length (1024)")
    parser.add_argument("--procs", type=int, default=4, help="processes of the crowd (4)")
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--timeout", type=float, default=900, help="budget, seconds")
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where data is written")
    shm = Path("/dev/shm")
    parser.add_argument(
        "--leech-dir", type=Path, default=shm if shm.is_dir() else Path("/tmp"), help="seed: copies"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy GIL-holder stacks of bt to this file"
    )
    parser.add_argument(
        "--profile-idle",
        action="store_true",
        help="seed: --profile samples every thread, waiting too (wall clock), not the GIL holder",
    )
    parser.add_argument("--leechers", help=argparse.SUPPRESS)
    parser.add_argument("--seeders", help=argparse.SUPPRESS)
    parser.add_argument("--lt-seed", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size_mib is None:
        if args.case == "seed":
            args.size_mib = max(8, 6144 // args.peers) if args.full else 16
        else:
            args.size_mib = 1024 if args.full else 64
    return args


def main() -> int:
    args = parse_args()
    if args.leechers:
        leechers_main(Path(args.leechers))
        return 0
    if args.seeders:
        seeders_main(Path(args.seeders))
        return 0
    if args.lt_seed:
        torrent, save, ready, budget = args.lt_seed
        lt_seed_main(Path(torrent), Path(save), Path(ready), float(budget))
        return 0
    if args.case is None:
        raise SystemExit("name a case: seed or seeders")
    exit_on_sigterm()
    deadline = Deadline(args.timeout)
    facts = machine_facts()
    case = case_seed if args.case == "seed" else case_seeders
    results = {
        "machine": facts,
        "case": args.case,
        "size_bytes": args.size_mib * MIB,
        "piece_bytes": args.piece_kib * 1024,
        "procs": args.procs,
        **case(args, deadline),
    }
    out = args.out or OUT_DIR / f"swarms-{args.case}-{args.peers}.json"
    write_results(out, results)
    brief = {k: v for k, v in results.items() if k.startswith("ratio")}
    print(json.dumps({"case": args.case, "peers": args.peers, **brief}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
