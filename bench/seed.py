"""bt against libtorrent seeding one large torrent on loopback: rate, CPU and memory.

Run: python bench/seed.py [--size-mib 1024] [--piece-kib 1024] [--profile]
     python bench/seed.py --multi-file [--files 200]  (bench/out/seed-multi.json)
(needs libtorrent and opentracker, as the integration tests do).

One opentracker serves a single-file torrent whose complete data sits in one folder.
Case A: bt seeds it, as a user runs it (``twistd -n bittorrent`` in a subprocess on the
folder: it hashes the data at start-up, then announces). Case B: a libtorrent session in
its own subprocess seeds the same folder. In each case a fresh libtorrent session in a
subprocess downloads everything, so the downloader is the same program both times and
only the seeder differs. Both copies are hash-checked against the original. A
benchmark, not a test: it prints a table and writes bench/out/seed.json.

The downloader's process samples itself and the seeder (``/proc/<pid>``) when it first
connects to a peer and when it finishes, so the seeder's CPU is counted over the
transfer alone; its start-up check is timed separately (bt: between its "checking" and
"already on disk" log lines; libtorrent: until it leaves the checking states).
Timing uses CLOCK_MONOTONIC, shared by all processes.

Memory conditions are kept equal as in bench/download.py: every copy stays on disk
until the end, and before each transfer the bench pauses 5 s and calls sync(), so both
downloads write into the same kind of page-cache memory and no writeback of earlier
data lands in the middle of one of them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# common also puts tests/ and tests/integration/ on sys.path, where swarm comes from.
from common import (
    GIB,
    LOG_POLL,
    MIB,
    OUT_DIR,
    QUIET_ENV,
    Deadline,
    Pages,
    ProcSample,
    add_fresh_pages_option,
    base_parser,
    bt_daemon,
    content_digest,
    content_size,
    exit_on_sigterm,
    follow_bt,
    loadavg,
    lt_download,
    lt_params,
    lt_reference_peer,
    lt_session,
    machine_facts,
    make_content,
    make_tree_content,
    mib,
    print_hot_spots,
    profile_summary,
    require_free,
    run_reporter,
    sample_proc,
    seconds,
    settle,
    side_by_side,
    start_profiler,
    stop_process,
    stop_profiler,
    warn_on_bt_errors,
    write_results,
    write_tracked_torrent,
)
from swarm import OpenTracker, scrape_counts, wait_for

PAUSE = 5.0  # seconds before each transfer: memory freed by the previous case goes back


@dataclass
class SeedResult:
    """One case: a seeder, and the libtorrent downloader that fetched from it."""

    seeder: str
    size: int
    seeder_pid: int
    # The seeder's start-up: from process start until it was ready (checked, at the tracker).
    ready_s: float
    check_s: float
    check_cpu_s: float
    check_vm_hwm_kib: int
    # The transfer, timed by the downloader: seconds from the downloader's process start.
    first_peer_s: float
    complete_s: float
    downloader_cpu_s: float
    downloader_cpu_transfer_s: float
    downloader_vm_hwm_kib: int
    # The seeder over the transfer (first peer connection to finished).
    seeder_cpu_transfer_s: float
    seeder_cpu_sys_transfer_s: float
    seeder_vm_hwm_kib: int
    seeder_rss_anon_kib: int
    seeder_rss_file_kib: int
    loadavg_before: str
    uploaded_bytes: int | None = None
    identical: bool = False

    @property
    def rate(self) -> float:
        """MB/s the downloader received, from its first peer connection to finished."""
        return self.size / (self.complete_s - self.first_peer_s) / 1e6

    @property
    def seeder_cpu_per_gib(self) -> float:
        return self.seeder_cpu_transfer_s / (self.size / GIB)

    @property
    def check_gib_s(self) -> float:
        return self.size / GIB / self.check_s if self.check_s > 0 else float("inf")

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rate_mb_s": round(self.rate, 2),
            "transfer_s": round(self.complete_s - self.first_peer_s, 3),
            "seeder_cpu_s_per_gib": round(self.seeder_cpu_per_gib, 3),
            "check_gib_s": round(self.check_gib_s, 3),
        }


@dataclass
class Transfer:
    """What the downloader's process reports: samples of itself and of the seeder."""

    started: float
    first: ProcSample
    done: ProcSample
    seeder_first: ProcSample
    seeder_done: ProcSample


def download_from(
    work: Path,
    label: str,
    torrent: Path,
    seeder_pid: int,
    deadline: Deadline,
    pages: Pages,
    size: int,
) -> Transfer:
    """Run the libtorrent downloader in its own process, watching ``seeder_pid``; it
    writes into the run's kind of memory (``pages``), so the same downloader is not
    slowed by fresh memory in one case and not in the other."""
    save = work / f"dl-{label}"
    save.mkdir()
    pages.before_client(work, size)
    report = work / f"dl-{label}.json"
    command = [
        sys.executable,
        __file__,
        "--leech",
        str(torrent),
        str(save),
        str(report),
        f"{deadline.left():.0f}",
        str(seeder_pid),
    ]
    started = time.monotonic()
    what = f"the libtorrent downloader ({label})"
    figures = run_reporter(command, report, deadline.left() + 5, what)
    return Transfer(started=started, **{key: ProcSample(**value) for key, value in figures.items()})


def leech(torrent: Path, save: Path, report: Path, budget: float, seeder_pid: int) -> None:
    """The downloader's process: fetch everything, sampling itself and the seeder."""
    import libtorrent as lt

    pid = os.getpid()
    session = lt_session(
        int(
            lt.alert.category_t.connect_notification
            | lt.alert.category_t.status_notification
            | lt.alert.category_t.tracker_notification
        )
    )
    handle = session.add_torrent(lt_params(torrent, save))
    samples: dict[str, ProcSample] = {}
    limit = time.monotonic() + budget

    def sample(moment: str) -> Callable[[], None]:
        def take() -> None:
            samples[moment] = sample_proc(pid)
            samples[f"seeder_{moment}"] = sample_proc(seeder_pid)

        return take

    lt_download(session, limit, sample("first"), sample("done"))
    if "first" not in samples:
        raise RuntimeError("libtorrent finished without a peer connection alert")
    # Let the "completed" announce finish first: removed while it is in flight, the torrent's
    # "stopped" announce is lost and the tracker keeps listing it into the next case.
    settled = time.monotonic() + min(5.0, max(0.0, limit - time.monotonic()))
    replied = False
    while not replied and time.monotonic() < settled:
        session.wait_for_alert(50)
        replied = any(isinstance(a, lt.tracker_reply_alert) for a in session.pop_alerts())
    session.remove_torrent(handle)
    del handle, session  # closes the files and announces "stopped"
    report.write_text(json.dumps({key: asdict(value) for key, value in samples.items()}))


def lt_seed(torrent: Path, save: Path, ready: Path, budget: float) -> None:
    """The libtorrent seeder's process: check the data, report, seed until SIGTERM."""
    import libtorrent as lt

    pid = os.getpid()
    parent = os.getppid()
    metainfo = torrent.read_bytes()
    begun = sample_proc(pid)
    seeder = lt_reference_peer(metainfo, save)
    try:
        checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
        wait_for(
            lambda: seeder.handle.status().state not in checking,
            budget,
            "libtorrent to check its files",
            step=LOG_POLL,
        )
        checked = sample_proc(pid)
        if not seeder.handle.status().is_seeding:
            raise RuntimeError("libtorrent did not find the complete data")
        partial = ready.with_suffix(".tmp")
        partial.write_text(json.dumps({"begun": asdict(begun), "checked": asdict(checked)}))
        partial.rename(ready)
        limit = time.monotonic() + budget
        while time.monotonic() < limit and os.getppid() == parent:
            time.sleep(0.2)
    finally:
        seeder.close()


def thread_profiles(raw: Path, top: int = 8) -> dict[str, Any]:
    """Per thread (the first frame of each stack with --threads): its share of all samples
    and its innermost frames (with their callers and line numbers), as shares of that
    thread's samples.

    Without --gil, py-spy's --nonblocking sampling keeps threads blocked in epoll_wait or
    in a Condition.wait, so within one thread the shares approximate wall-clock time.
    """
    leaves: dict[str, collections.Counter[str]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = stack.split(";")
            leaf = frames[-1] if len(frames) < 3 else f"{frames[-1]} <- {frames[-2]}"
            leaves.setdefault(frames[0], collections.Counter())[leaf] += int(count)
    total = max(sum(sum(c.values()) for c in leaves.values()), 1)
    threads = []
    for thread, counter in sorted(leaves.items(), key=lambda item: -sum(item[1].values())):
        samples = sum(counter.values())
        threads.append(
            {
                "thread": thread,
                "samples": samples,
                "share": round(100.0 * samples / total, 1),
                "leaves": [(f, round(100.0 * n / samples, 1)) for f, n in counter.most_common(top)],
            }
        )
    return {"samples": total, "threads": threads}


def seeded_bytes(log: str, name: str) -> int | None:
    match = re.search(rf"{re.escape(name)}: uploaded (\d+) bytes", log)
    return int(match.group(1)) if match else None


def pause_and_settle(deadline: Deadline) -> str:
    time.sleep(deadline.left(PAUSE))
    settle()
    return loadavg()


def case_bt(
    work: Path,
    torrent: Path,
    content: Path,
    info_hash: bytes,
    tracker: OpenTracker,
    deadline: Deadline,
    profile: Path | None,
    gil: bool = False,
    *,
    pages: Pages,
) -> tuple[SeedResult, Transfer]:
    """Case A: ``twistd -n bittorrent`` seeds the folder holding the complete data."""
    name = content.name
    workdir = work / "bt-seed"
    workdir.mkdir()
    daemon = bt_daemon(workdir, torrent, content.parent)
    profiler: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        daemon.start()
        assert daemon.process is not None
        pid = daemon.process.pid
        watcher = follow_bt(
            daemon,
            {"checking": f"{name}: checking ", "checked": "pieces already on disk"},
            "checked",
            deadline.left(),
            "check its data",
        )
        found = re.search(r"(\d+) of (\d+) pieces already on disk", daemon.log())
        if not found or found.group(1) != found.group(2):
            raise RuntimeError(f"bt did not find the complete data:\n{daemon.log()[-4000:]}")
        wait_for(
            lambda: scrape_counts(tracker, info_hash) >= 1,
            deadline.left(30),
            "the bt seeder at the tracker",
        )
        ready = time.monotonic()
        checking = watcher.seen.get("checking") or watcher.seen["checked"]
        checked = watcher.seen["checked"]
        print(
            f"bt seeder ready after {ready - started:.1f} s "
            f"(check {checked.at - checking.at:.2f} s); libtorrent downloading",
            flush=True,
        )
        load = pause_and_settle(deadline)
        if profile is not None:
            profiler = start_profiler(pid, profile, threads=True, gil=gil, rate=250)
            time.sleep(1)  # let py-spy attach before the transfer starts
        size = content_size(content)
        transfer = download_from(work, "from-bt", torrent, pid, deadline, pages, size)
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
        status = daemon.stop()
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        daemon.stop()
    log = daemon.log()
    warn_on_bt_errors(log)
    if status != -signal.SIGTERM:
        print(f"warning: bt exited with status {status}", file=sys.stderr)
    result = SeedResult(
        seeder="bt",
        size=content_size(content),
        seeder_pid=pid,
        ready_s=ready - started,
        check_s=checked.at - checking.at,
        check_cpu_s=checked.cpu - checking.cpu,
        check_vm_hwm_kib=checked.vm_hwm_kib,
        loadavg_before=load,
        uploaded_bytes=seeded_bytes(log, name),
        **transfer_fields(transfer),
    )
    return result, transfer


def case_libtorrent(
    work: Path,
    torrent: Path,
    content: Path,
    info_hash: bytes,
    tracker: OpenTracker,
    deadline: Deadline,
    *,
    pages: Pages,
) -> tuple[SeedResult, Transfer]:
    """Case B: a libtorrent session in its own process seeds the same folder."""
    ready_file = work / "lt-seed-ready.json"
    command = [
        sys.executable,
        __file__,
        "--lt-seed",
        str(torrent),
        str(content.parent),
        str(ready_file),
        f"{deadline.left():.0f}",
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, env=QUIET_ENV)
    try:

        def is_ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the libtorrent seeder exited with {process.returncode}")
            return ready_file.exists()

        wait_for(is_ready, deadline.left(), "the libtorrent seeder to check its data", 0.01)
        figures = json.loads(ready_file.read_text())
        begun, checked = ProcSample(**figures["begun"]), ProcSample(**figures["checked"])
        wait_for(
            lambda: scrape_counts(tracker, info_hash) >= 1,
            deadline.left(30),
            "the libtorrent seeder at the tracker",
        )
        ready = time.monotonic()
        print(
            f"libtorrent seeder ready after {ready - started:.1f} s "
            f"(check {checked.at - begun.at:.2f} s); libtorrent downloading",
            flush=True,
        )
        load = pause_and_settle(deadline)
        size = content_size(content)
        transfer = download_from(work, "from-lt", torrent, process.pid, deadline, pages, size)
    finally:
        stop_process(process, signal.SIGTERM, 20)
    result = SeedResult(
        seeder="libtorrent",
        size=content_size(content),
        seeder_pid=process.pid,
        ready_s=ready - started,
        check_s=checked.at - begun.at,
        check_cpu_s=checked.cpu - begun.cpu,
        check_vm_hwm_kib=checked.vm_hwm_kib,
        loadavg_before=load,
        **transfer_fields(transfer),
    )
    return result, transfer


def transfer_fields(transfer: Transfer) -> dict[str, Any]:
    return {
        "first_peer_s": transfer.first.at - transfer.started,
        "complete_s": transfer.done.at - transfer.started,
        "downloader_cpu_s": transfer.done.cpu,
        "downloader_cpu_transfer_s": transfer.done.cpu - transfer.first.cpu,
        "downloader_vm_hwm_kib": transfer.done.vm_hwm_kib,
        "seeder_cpu_transfer_s": transfer.seeder_done.cpu - transfer.seeder_first.cpu,
        "seeder_cpu_sys_transfer_s": transfer.seeder_done.cpu_sys - transfer.seeder_first.cpu_sys,
        "seeder_vm_hwm_kib": transfer.seeder_done.vm_hwm_kib,
        "seeder_rss_anon_kib": transfer.seeder_done.rss_anon_kib,
        "seeder_rss_file_kib": transfer.seeder_done.rss_file_kib,
    }


def wait_tracker_empty(tracker: OpenTracker, info_hash: bytes, deadline: Deadline) -> None:
    """The next case should meet a swarm of its seeder alone: wait for "stopped" announces."""
    try:
        wait_for(
            lambda: scrape_counts(tracker, info_hash) == 0,
            deadline.left(30),
            "the previous case to leave the tracker",
        )
    except TimeoutError as exc:
        print(f"warning: {exc}", file=sys.stderr)


def table(bt: SeedResult, lt_result: SeedResult) -> str:
    rows = [
        ("downloader rate from first peer (MB/s)", f"{bt.rate:.1f}", f"{lt_result.rate:.1f}"),
        (
            "transfer time",
            seconds(bt.complete_s - bt.first_peer_s),
            seconds(lt_result.complete_s - lt_result.first_peer_s),
        ),
        (
            "seeder CPU user+sys, transfer",
            seconds(bt.seeder_cpu_transfer_s),
            seconds(lt_result.seeder_cpu_transfer_s),
        ),
        (
            "  of which sys",
            seconds(bt.seeder_cpu_sys_transfer_s),
            seconds(lt_result.seeder_cpu_sys_transfer_s),
        ),
        ("seeder CPU s/GiB", f"{bt.seeder_cpu_per_gib:.2f}", f"{lt_result.seeder_cpu_per_gib:.2f}"),
        (
            "downloader CPU, transfer",
            seconds(bt.downloader_cpu_transfer_s),
            seconds(lt_result.downloader_cpu_transfer_s),
        ),
        ("seeder peak RSS (VmHWM)", mib(bt.seeder_vm_hwm_kib), mib(lt_result.seeder_vm_hwm_kib)),
        (
            "seeder RssAnon at finish",
            mib(bt.seeder_rss_anon_kib),
            mib(lt_result.seeder_rss_anon_kib),
        ),
        (
            "seeder RssFile at finish",
            mib(bt.seeder_rss_file_kib),
            mib(lt_result.seeder_rss_file_kib),
        ),
        ("seeder ready after start", seconds(bt.ready_s), seconds(lt_result.ready_s)),
        ("start-up check time", seconds(bt.check_s), seconds(lt_result.check_s)),
        ("start-up check CPU", seconds(bt.check_cpu_s), seconds(lt_result.check_cpu_s)),
        ("start-up check (GiB/s)", f"{bt.check_gib_s:.2f}", f"{lt_result.check_gib_s:.2f}"),
        ("byte-identical", str(bt.identical), str(lt_result.identical)),
    ]
    return side_by_side("seeder:", rows, bt.rate, lt_result.rate)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__.split("\n")[0], "seed.json")
    add_fresh_pages_option(parser)
    parser.add_argument("--libtorrent-first", action="store_true", help="run case B before case A")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the bt seeder (perturbs its figures)"
    )
    parser.add_argument(
        "--profile-gil", action="store_true", help="--profile sampling only the GIL holder"
    )
    parser.add_argument(
        "--multi-file", action="store_true", help="a folder of --files files instead of one"
    )
    parser.add_argument("--files", type=int, default=200, help="files of --multi-file")
    parser.add_argument("--leech", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--lt-seed", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.multi_file and args.out == OUT_DIR / "seed.json":
        args.out = OUT_DIR / "seed-multi.json"
    return args


def bench(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    size = args.size_mib * MIB
    piece = args.piece_kib * 1024
    # The original and the two downloaded copies, plus room for everything else.
    pages = Pages.of(args)
    require_free(args.tmp, 3 * size + pages.scratch_bytes(size) + GIB)
    facts = machine_facts()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-seed-", dir=args.tmp))
    tracker = OpenTracker()
    args.profile = args.profile or args.profile_gil
    name = "seed-bt-profile-gil.txt" if args.profile_gil else "seed-bt-profile.txt"
    profile = OUT_DIR / name if args.profile else None
    if profile is not None:
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.unlink(missing_ok=True)
    results: dict[str, SeedResult] = {}
    try:
        if args.multi_file:
            content, digest = make_tree_content(work, "seed", args.size_mib, args.files)
        else:
            content, digest = make_content(work, "seed", args.size_mib)
        torrent, _, info_hash = write_tracked_torrent(work, content, piece, tracker, deadline)
        settle()
        order = ["libtorrent", "bt"] if args.libtorrent_first else ["bt", "libtorrent"]

        for number, seeder in enumerate(order):
            if number:
                wait_tracker_empty(tracker, info_hash, deadline)
            if seeder == "bt":
                result, _ = case_bt(
                    work,
                    torrent,
                    content,
                    info_hash,
                    tracker,
                    deadline,
                    profile,
                    args.profile_gil,
                    pages=pages,
                )
            else:
                result, _ = case_libtorrent(
                    work, torrent, content, info_hash, tracker, deadline, pages=pages
                )
            results[seeder] = result
            print(f"{seeder} seeder: downloader got {result.rate:.1f} MB/s", flush=True)
        # Only now, with every process gone, read the copies back (they stayed until the end).
        for label, seeder in (("from-bt", "bt"), ("from-lt", "libtorrent")):
            copy = work / f"dl-{label}" / content.name
            results[seeder].identical = content_digest(copy) == digest
    finally:
        tracker.stop()
        shutil.rmtree(work, ignore_errors=True)

    bt, lt_result = results["bt"], results["libtorrent"]
    print()
    print(
        f"{args.size_mib} MiB in {args.files if args.multi_file else 1} file(s), "
        f"{args.piece_kib} KiB pieces, loopback; "
        f"{facts['nproc']} x {facts['cpu_model']}; order: {' then '.join(order)}"
        + (
            f"; bt PROFILED ({'GIL holder' if args.profile_gil else 'all threads'})"
            if profile
            else ""
        )
    )
    print(
        f"load average at start: {facts['loadavg_at_start']}; before bt's transfer: "
        f"{bt.loadavg_before}; before libtorrent's: {lt_result.loadavg_before}"
    )
    print(table(bt, lt_result))
    out: dict[str, Any] = {
        "machine": facts,
        "size_bytes": size,
        "piece_bytes": piece,
        "files": args.files if args.multi_file else 1,
        "order": order,
        "profiled": "gil" if args.profile_gil else args.profile,
        "pages": pages.label,
        "bt": bt.as_json(),
        "libtorrent": lt_result.as_json(),
        "ratio_bt_libtorrent": round(bt.rate / lt_result.rate, 4),
        "ratio_seeder_cpu_s_per_gib_bt_libtorrent": round(
            bt.seeder_cpu_per_gib / lt_result.seeder_cpu_per_gib, 4
        ),
    }
    if profile is not None and profile.exists():
        summary = profile_summary(profile, top=25)
        threads = thread_profiles(profile)
        out["bt_profile"] = {**summary, **threads, "raw": str(profile)}
        print(f"\nbt seeder, {threads['samples']} py-spy samples; per thread, innermost frames:")
        for thread in threads["threads"]:
            print(f"  {thread['share']:5.1f}%  {thread['thread']}")
            for frame, percent in thread["leaves"]:
                print(f"          {percent:5.1f}  {frame}")
        print_hot_spots("bt seeder", summary)
    if not (bt.identical and lt_result.identical):
        print("\nERROR: a download differs from the original", file=sys.stderr)
    return out


def main() -> int:
    args = parse_args()
    exit_on_sigterm()
    if args.leech:
        torrent, save, report, budget, seeder_pid = args.leech
        leech(Path(torrent), Path(save), Path(report), float(budget), int(seeder_pid))
        return 0
    if args.lt_seed:
        torrent, save, ready, budget = args.lt_seed
        lt_seed(Path(torrent), Path(save), Path(ready), float(budget))
        return 0
    results = bench(args)
    write_results(args.out, results)
    return 0 if results["bt"]["identical"] and results["libtorrent"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
