"""bt against libtorrent seeding one large torrent on loopback: rate, CPU and memory.

Run: python bench/seed.py [--size-mib 1024] [--piece-kib 1024] [--profile]
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from download import (
    GIB,
    LOG_POLL,
    MIB,
    OUT_DIR,
    Deadline,
    LogWatcher,
    ProcSample,
    file_digest,
    loadavg,
    machine_facts,
    profile_summary,
    sample_proc,
    settle,
    stop_profiler,
    tracked_torrent,
    write_content,
)
from swarm import (
    BtDaemon,
    LibtorrentPeer,
    OpenTracker,
    libtorrent_settings,
    scrape_counts,
    wait_for,
)

PAUSE = 5.0  # seconds before each transfer: memory freed by the previous case goes back
QUIET_ENV = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}


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
    work: Path, label: str, torrent: Path, seeder_pid: int, deadline: Deadline
) -> Transfer:
    """Run the libtorrent downloader in its own process, watching ``seeder_pid``."""
    save = work / f"dl-{label}"
    save.mkdir()
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
    process = subprocess.Popen(command, env=QUIET_ENV)
    try:
        status = process.wait(deadline.left() + 5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    if status != 0 or not report.exists():
        raise RuntimeError(f"the libtorrent downloader ({label}) failed with status {status}")
    figures = json.loads(report.read_text())
    return Transfer(started=started, **{key: ProcSample(**value) for key, value in figures.items()})


def leech(torrent: Path, save: Path, report: Path, budget: float, seeder_pid: int) -> None:
    """The downloader's process: fetch everything, sampling itself and the seeder."""
    import libtorrent as lt

    pid = os.getpid()
    settings = libtorrent_settings()
    settings["alert_mask"] = int(
        lt.alert.category_t.connect_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
    )
    session = lt.session(settings)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent.read_bytes()))
    params.save_path = str(save)
    handle = session.add_torrent(params)
    samples: dict[str, ProcSample] = {}
    limit = time.monotonic() + budget
    while "done" not in samples:
        if time.monotonic() > limit:
            raise TimeoutError("libtorrent did not complete in time")
        session.wait_for_alert(50)
        for alert in session.pop_alerts():
            if "first" not in samples and isinstance(alert, lt.peer_connect_alert):
                samples["first"] = sample_proc(pid)
                samples["seeder_first"] = sample_proc(seeder_pid)
            elif isinstance(alert, lt.torrent_finished_alert):
                samples["done"] = sample_proc(pid)
                samples["seeder_done"] = sample_proc(seeder_pid)
            elif isinstance(alert, lt.torrent_error_alert):
                raise RuntimeError(alert.message())
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
    seeder = LibtorrentPeer(metainfo, save)
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


def start_profiler(pid: int, out: Path, gil: bool) -> subprocess.Popen[bytes]:
    """py-spy sampling bt without pausing it, one stack root per thread, as collapsed stacks.

    With ``gil``, only the thread holding the GIL is sampled: where bt's Python time goes.
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--nonblocking", "--threads"]
    command += ["--gil"] if gil else []
    command += ["--format", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
) -> tuple[SeedResult, Transfer]:
    """Case A: ``twistd -n bittorrent`` seeds the folder holding the complete data."""
    name = content.name
    workdir = work / "bt-seed"
    workdir.mkdir()
    daemon = BtDaemon(workdir, torrent, content.parent)
    profiler: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        daemon.start()
        assert daemon.process is not None
        pid = daemon.process.pid
        watcher = LogWatcher(
            daemon.logfile,
            pid,
            {"checking": f"{name}: checking ", "checked": "pieces already on disk"},
        )
        limit = time.monotonic() + deadline.left()
        while "checked" not in watcher.seen:
            if daemon.process.poll() is not None:
                raise RuntimeError(
                    f"bt exited with {daemon.process.returncode}:\n{daemon.log()[-4000:]}"
                )
            if time.monotonic() > limit:
                raise TimeoutError(f"bt did not check its data in time:\n{daemon.log()[-4000:]}")
            time.sleep(LOG_POLL)
            watcher.poll()
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
            profiler = start_profiler(pid, profile, gil)
            time.sleep(1)  # let py-spy attach before the transfer starts
        transfer = download_from(work, "from-bt", torrent, pid, deadline)
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
        status = daemon.stop()
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        daemon.stop()
    log = daemon.log()
    if "Traceback" in log or "Unhandled" in log:
        print(f"warning: bt logged an error:\n{log[-3000:]}", file=sys.stderr)
    if status != -signal.SIGTERM:
        print(f"warning: bt exited with status {status}", file=sys.stderr)
    result = SeedResult(
        seeder="bt",
        size=content.stat().st_size,
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
        transfer = download_from(work, "from-lt", torrent, process.pid, deadline)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
    result = SeedResult(
        seeder="libtorrent",
        size=content.stat().st_size,
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
    def mib(kib: int) -> str:
        return f"{kib / 1024:.0f} MiB"

    def seconds(value: float) -> str:
        return f"{value:.2f} s"

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
    width = max(len(r[0]) for r in rows)
    lines = [f"{'seeder:':{width}}  {'bt':>12}  {'libtorrent':>12}"]
    lines += [f"{label:{width}}  {a:>12}  {b:>12}" for label, a, b in rows]
    lines.append(f"{'ratio bt/libtorrent (rate)':{width}}  {bt.rate / lt_result.rate:>12.3f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="torrent size (default 1024)")
    parser.add_argument("--piece-kib", type=int, default=1024, help="piece length (default 1024)")
    parser.add_argument(
        "--timeout", type=float, default=900, help="budget for the whole run, seconds"
    )
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where the data is written")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "seed.json", help="JSON results")
    parser.add_argument("--libtorrent-first", action="store_true", help="run case B before case A")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the bt seeder (perturbs its figures)"
    )
    parser.add_argument(
        "--profile-gil", action="store_true", help="--profile sampling only the GIL holder"
    )
    parser.add_argument("--leech", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--lt-seed", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    size = args.size_mib * MIB
    piece = args.piece_kib * 1024
    free = shutil.disk_usage(args.tmp).free
    # The original and the two downloaded copies, plus room for everything else.
    if free < 3 * size + GIB:
        raise SystemExit(
            f"{args.tmp} has {free / GIB:.1f} GiB free; this run needs {(3 * size + GIB) / GIB:.1f}"
        )
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
        seed_dir = work / "seed"
        seed_dir.mkdir()
        content = seed_dir / "bench.bin"
        begun = time.monotonic()
        digest = write_content(content, size)
        print(f"wrote {args.size_mib} MiB in {time.monotonic() - begun:.1f} s", flush=True)
        torrent_bytes = tracked_torrent(content, piece, tracker, deadline)
        torrent = work / "bench.torrent"
        torrent.write_bytes(torrent_bytes)
        from bt.metainfo import parse_metainfo

        info_hash = parse_metainfo(torrent_bytes).info_hash
        settle()
        order = ["libtorrent", "bt"] if args.libtorrent_first else ["bt", "libtorrent"]
        for number, seeder in enumerate(order):
            if number:
                wait_tracker_empty(tracker, info_hash, deadline)
            if seeder == "bt":
                result, _ = case_bt(
                    work, torrent, content, info_hash, tracker, deadline, profile, args.profile_gil
                )
            else:
                result, _ = case_libtorrent(work, torrent, content, info_hash, tracker, deadline)
            results[seeder] = result
            print(f"{seeder} seeder: downloader got {result.rate:.1f} MB/s", flush=True)
        # Only now, with every process gone, read the copies back (they stayed until the end).
        for label, seeder in (("from-bt", "bt"), ("from-lt", "libtorrent")):
            results[seeder].identical = file_digest(work / f"dl-{label}" / content.name) == digest
    finally:
        tracker.stop()
        shutil.rmtree(work, ignore_errors=True)

    bt, lt_result = results["bt"], results["libtorrent"]
    print()
    print(
        f"{args.size_mib} MiB, {args.piece_kib} KiB pieces, loopback; "
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
        "order": order,
        "profiled": "gil" if args.profile_gil else args.profile,
        "bt": bt.as_json(),
        "libtorrent": lt_result.as_json(),
        "ratio_bt_libtorrent": round(bt.rate / lt_result.rate, 4),
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
        print("\nbt seeder hot spots, % of py-spy samples (self):")
        for frame, percent in summary["self"]:
            print(f"  {percent:5.1f}  {frame}")
        print("bt seeder hot spots, % of py-spy samples (inclusive):")
        for frame, percent in summary["inclusive"]:
            print(f"  {percent:5.1f}  {frame}")
    if not (bt.identical and lt_result.identical):
        print("\nERROR: a download differs from the original", file=sys.stderr)
    return out


def main() -> int:
    args = parse_args()
    # A SIGTERM must still run the finally blocks that kill children and remove the data.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.leech:
        torrent, save, report, budget, seeder_pid = args.leech
        leech(Path(torrent), Path(save), Path(report), float(budget), int(seeder_pid))
        return 0
    if args.lt_seed:
        torrent, save, ready, budget = args.lt_seed
        lt_seed(Path(torrent), Path(save), Path(ready), float(budget))
        return 0
    results = bench(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0 if results["bt"]["identical"] and results["libtorrent"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
