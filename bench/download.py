"""bt against libtorrent downloading one large torrent on loopback: rate, CPU and memory.

Run: python bench/download.py [--size-mib 1024] [--piece-kib 1024] [--profile]
(needs libtorrent and opentracker, as the integration tests do).

One libtorrent seeder and one opentracker serve a single-file torrent. bt downloads
it first, as a user runs it (``twistd -n bittorrent`` in a subprocess); then a fresh
libtorrent session in a subprocess downloads it from the same seeder. Both outputs are
hash-checked against the original. A benchmark, not a test: it prints a table and
writes bench/out/download.json for docs/performance.rst.

Timing uses CLOCK_MONOTONIC, which is shared by all processes, so the children's
timestamps and the bench's are comparable. bt's milestones are the moments its log
lines appear (the log is polled every few milliseconds); CPU and memory are read
from /proc/<pid> at those moments, because bt keeps running after it completes.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration"), str(ROOT)]

from swarm import (  # noqa: E402
    BtDaemon,
    LibtorrentPeer,
    OpenTracker,
    libtorrent_settings,
    scrape_counts,
    wait_for,
)
from torrents import libtorrent_torrent  # noqa: E402

MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = 16 * MIB
LOG_POLL = 0.005  # seconds between reads of bt's log: bounds the timing error
OUT_DIR = ROOT / "bench" / "out"


class Deadline:
    """One budget for the whole run, so no single wait can make it unbounded."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the benchmark ran out of its overall time budget")
        return left if cap is None else min(left, cap)


@dataclass
class ProcSample:
    """CPU and memory of a process at one moment, read from /proc (threads included)."""

    at: float
    cpu_user: float
    cpu_sys: float
    vm_hwm_kib: int
    vm_rss_kib: int
    rss_anon_kib: int
    rss_file_kib: int

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys


def sample_proc(pid: int) -> ProcSample:
    """Read utime/stime and VmHWM/RssAnon now: a live child has no rusage to wait4 for."""
    at = time.monotonic()
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the parenthesised command name start at field 3 (state).
    fields = stat[stat.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    memory: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            memory[key] = int(value.split()[0])
    return ProcSample(
        at=at,
        cpu_user=int(fields[11]) / tick,
        cpu_sys=int(fields[12]) / tick,
        vm_hwm_kib=memory.get("VmHWM", 0),
        vm_rss_kib=memory.get("VmRSS", 0),
        rss_anon_kib=memory.get("RssAnon", 0),
        rss_file_kib=memory.get("RssFile", 0),
    )


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_content(path: Path, size: int) -> str:
    """Incompressible content written in large chunks (fast); returns its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            handle.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def tracked_torrent(
    content: Path, piece_length: int, tracker: OpenTracker, deadline: Deadline
) -> bytes:
    """Hash the content once, then add the tracker URL: the info-hash does not depend on it."""
    from bt import bencode
    from bt.metainfo import parse_metainfo

    bare = libtorrent_torrent(content, piece_length)
    info_hash = parse_metainfo(bare).info_hash
    deadline.left()
    tracker.start([info_hash])
    top = bencode.decode(bare)
    top[b"announce"] = tracker.announce_url.encode()
    torrent = bencode.encode(top)
    if parse_metainfo(torrent).info_hash != info_hash:
        raise RuntimeError("re-encoding the torrent changed its info-hash")
    return torrent


@dataclass
class Result:
    """One downloader's figures; times are seconds from its process start."""

    client: str
    size: int
    first_peer_s: float | None
    complete_s: float
    cpu_s: float
    cpu_sys_s: float
    cpu_transfer_s: float | None
    vm_hwm_kib: int
    rss_anon_kib: int
    rss_file_kib: int
    identical: bool = False
    exit_status: int | None = None

    @property
    def rate_from_start(self) -> float:
        return self.size / self.complete_s / 1e6

    @property
    def rate(self) -> float:
        """MB/s over the transfer itself: from the first peer connection when known."""
        elapsed = self.complete_s - (self.first_peer_s or 0.0)
        return self.size / elapsed / 1e6

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu_s / (self.size / GIB)

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rate_mb_s": round(self.rate, 2),
            "rate_from_start_mb_s": round(self.rate_from_start, 2),
            "cpu_s_per_gib": round(self.cpu_per_gib, 3),
        }


class LogWatcher:
    """Follow bt's log file and note when each marker first shows up (and the process then)."""

    def __init__(self, logfile: Path, pid: int, markers: dict[str, str]) -> None:
        self.logfile = logfile
        self.pid = pid
        self.markers = markers
        self.seen: dict[str, ProcSample] = {}
        self._offset = 0
        self._tail = ""

    def poll(self) -> None:
        try:
            with open(self.logfile, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self._offset += len(data)
        text = self._tail + data.decode(errors="replace")
        self._tail = text[-200:]
        for name, marker in self.markers.items():
            if name not in self.seen and marker in text:
                self.seen[name] = sample_proc(self.pid)


def run_bt(
    work: Path, torrent: Path, content: Path, digest: str, deadline: Deadline, profile: Path | None
) -> Result:
    """Download with ``twistd -n bittorrent``; sample it the moment it logs completion."""
    name = content.name
    daemon = BtDaemon(work / "bt", torrent, work / "bt" / "downloads")
    daemon.workdir.mkdir()
    profiler: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        daemon.start()
        assert daemon.process is not None
        pid = daemon.process.pid
        if profile is not None:
            profiler = start_profiler(pid, profile)
        watcher = LogWatcher(
            daemon.logfile,
            pid,
            {"first_peer": " connected to ", "complete": f"{name}: download complete"},
        )
        limit = time.monotonic() + deadline.left()
        while "complete" not in watcher.seen:
            if daemon.process.poll() is not None:
                raise RuntimeError(
                    f"bt exited with {daemon.process.returncode}:\n{daemon.log()[-4000:]}"
                )
            if time.monotonic() > limit:
                raise TimeoutError(f"bt did not complete in time:\n{daemon.log()[-4000:]}")
            time.sleep(LOG_POLL)
            watcher.poll()
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
        done = watcher.seen["complete"]
        first = watcher.seen.get("first_peer")
        status = daemon.stop()
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        daemon.stop()
    log = daemon.log()
    if "Traceback" in log or "Unhandled" in log:
        print(f"warning: bt logged an error:\n{log[-3000:]}", file=sys.stderr)
    output = daemon.download_dir / name
    return Result(
        client="bt",
        size=content.stat().st_size,
        first_peer_s=first.at - started if first else None,
        complete_s=done.at - started,
        cpu_s=done.cpu,
        cpu_sys_s=done.cpu_sys,
        cpu_transfer_s=done.cpu - first.cpu if first else None,
        vm_hwm_kib=done.vm_hwm_kib,
        rss_anon_kib=done.rss_anon_kib,
        rss_file_kib=done.rss_file_kib,
        identical=file_digest(output) == digest,
        exit_status=status,
    )


def run_libtorrent(
    work: Path, torrent: Path, content: Path, digest: str, deadline: Deadline
) -> Result:
    """Download with a fresh libtorrent session in its own process, for clean CPU figures."""
    save = work / "lt"
    save.mkdir()
    report = work / "lt-result.json"
    budget = deadline.left()
    command = [
        sys.executable,
        __file__,
        "--leech",
        str(torrent),
        str(save),
        str(report),
        f"{budget:.0f}",
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        command, env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    )
    try:
        status = process.wait(deadline.left() + 5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    if status != 0 or not report.exists():
        raise RuntimeError(f"the libtorrent downloader failed with status {status}")
    figures = json.loads(report.read_text())
    done = ProcSample(**figures["complete"])
    first = ProcSample(**figures["first_peer"]) if figures["first_peer"] else None
    return Result(
        client="libtorrent",
        size=content.stat().st_size,
        first_peer_s=first.at - started if first else None,
        complete_s=done.at - started,
        cpu_s=done.cpu,
        cpu_sys_s=done.cpu_sys,
        cpu_transfer_s=done.cpu - first.cpu if first else None,
        vm_hwm_kib=done.vm_hwm_kib,
        rss_anon_kib=done.rss_anon_kib,
        rss_file_kib=done.rss_file_kib,
        identical=file_digest(save / content.name) == digest,
        exit_status=status,
    )


def leech(torrent: Path, save: Path, report: Path, budget: float) -> None:
    """The libtorrent downloader's process: download, sample itself at completion, report."""
    import libtorrent as lt

    pid = os.getpid()
    settings = libtorrent_settings()
    settings["alert_mask"] = int(
        lt.alert.category_t.connect_notification | lt.alert.category_t.status_notification
    )
    session = lt.session(settings)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent.read_bytes()))
    params.save_path = str(save)
    handle = session.add_torrent(params)
    first: ProcSample | None = None
    done: ProcSample | None = None
    limit = time.monotonic() + budget
    while done is None:
        if time.monotonic() > limit:
            raise TimeoutError("libtorrent did not complete in time")
        session.wait_for_alert(50)
        for alert in session.pop_alerts():
            if first is None and isinstance(alert, lt.peer_connect_alert):
                first = sample_proc(pid)
            elif isinstance(alert, lt.torrent_finished_alert):
                done = sample_proc(pid)
            elif isinstance(alert, lt.torrent_error_alert):
                raise RuntimeError(alert.message())
    session.remove_torrent(handle)
    del handle, session  # closes the files, so the bench reads what was written
    report.write_text(
        json.dumps({"first_peer": asdict(first) if first else None, "complete": asdict(done)})
    )


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling bt without pausing it (--nonblocking), as collapsed stacks."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--nonblocking", "--format", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # py-spy writes its output on interrupt
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def profile_summary(raw: Path, top: int = 20) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive share of samples per function, from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        # "function (path/file.py:123)": drop the line number so a function counts once.
        frames = [
            frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") else frame
            for frame in stack.split(";")
        ]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = 100.0 / max(total, 1)
    return {
        "self": [(f, round(n * share, 1)) for f, n in own.most_common(top)],
        "inclusive": [(f, round(n * share, 1)) for f, n in inclusive.most_common(top)],
    }


def settle() -> None:
    """Write back dirty pages now, so the kernel's writeback of earlier data (after 30 s)
    does not land in the middle of the next download and slow only that client."""
    begun = time.monotonic()
    os.sync()
    print(f"sync took {time.monotonic() - begun:.1f} s", flush=True)


def loadavg() -> str:
    """Other work on the machine skews the figures: record how busy it was."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_facts() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": loadavg(),
    }


def table(bt: Result, lt_result: Result) -> str:
    def mib(kib: int) -> str:
        return f"{kib / 1024:.0f} MiB"

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    rows = [
        ("rate from first peer (MB/s)", f"{bt.rate:.1f}", f"{lt_result.rate:.1f}"),
        (
            "rate from process start (MB/s)",
            f"{bt.rate_from_start:.1f}",
            f"{lt_result.rate_from_start:.1f}",
        ),
        ("first peer connection", seconds(bt.first_peer_s), seconds(lt_result.first_peer_s)),
        ("download complete", seconds(bt.complete_s), seconds(lt_result.complete_s)),
        ("CPU user+sys, whole process", seconds(bt.cpu_s), seconds(lt_result.cpu_s)),
        ("  of which sys", seconds(bt.cpu_sys_s), seconds(lt_result.cpu_sys_s)),
        ("CPU after first peer", seconds(bt.cpu_transfer_s), seconds(lt_result.cpu_transfer_s)),
        ("CPU s/GiB", f"{bt.cpu_per_gib:.2f}", f"{lt_result.cpu_per_gib:.2f}"),
        ("peak RSS (VmHWM)", mib(bt.vm_hwm_kib), mib(lt_result.vm_hwm_kib)),
        ("RssAnon at completion", mib(bt.rss_anon_kib), mib(lt_result.rss_anon_kib)),
        ("RssFile at completion", mib(bt.rss_file_kib), mib(lt_result.rss_file_kib)),
        ("byte-identical", str(bt.identical), str(lt_result.identical)),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':{width}}  {'bt':>12}  {'libtorrent':>12}"]
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
    parser.add_argument("--out", type=Path, default=OUT_DIR / "download.json", help="JSON results")
    parser.add_argument("--profile", action="store_true", help="py-spy bt (perturbs its figures)")
    parser.add_argument("--leech", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    size = args.size_mib * MIB
    piece = args.piece_kib * 1024
    free = shutil.disk_usage(args.tmp).free
    # The original, bt's copy and libtorrent's copy, plus room for everything else.
    if free < 3 * size + GIB:
        raise SystemExit(
            f"{args.tmp} has {free / GIB:.1f} GiB free; this run needs {(3 * size + GIB) / GIB:.1f}"
        )
    facts = machine_facts()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-download-", dir=args.tmp))
    tracker = OpenTracker()
    seeder: LibtorrentPeer | None = None
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
        seeder = LibtorrentPeer(torrent_bytes, seed_dir)
        seeder.wait_checked(deadline.left(300))
        wait_for(
            lambda: scrape_counts(tracker, info_hash) >= 1,
            deadline.left(30),
            "the seeder at the tracker",
        )
        print(f"seeder ready after {time.monotonic() - begun:.1f} s; bt downloading", flush=True)

        settle()
        load_before_bt = loadavg()
        profile = OUT_DIR / "download-bt-profile.txt" if args.profile else None
        if profile is not None:
            profile.parent.mkdir(parents=True, exist_ok=True)
        bt = run_bt(work, torrent, content, digest, deadline, profile)
        print(f"bt: {bt.rate:.1f} MB/s; libtorrent downloading", flush=True)
        # bt's copy stays until the end. On a VM whose balloon hands freed memory back to
        # the host within seconds, writing into fresh page cache costs about 3 s of sys CPU
        # per GiB, but into memory freed a moment ago only 0.3 s: deleting bt's copy now
        # would hand libtorrent cheap pages that bt never had. The pause lets what bt's
        # exit freed go back too, so both clients write into the same kind of memory.
        time.sleep(deadline.left(5))
        # bt announced "stopped": once only the seeder is left, libtorrent meets the same swarm.
        wait_for(
            lambda: scrape_counts(tracker, info_hash) == 1,
            deadline.left(30),
            "bt to leave the tracker",
        )
        settle()
        load_before_lt = loadavg()
        lt_result = run_libtorrent(work, torrent, content, digest, deadline)
    finally:
        if seeder is not None:
            seeder.close()
        tracker.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"{args.size_mib} MiB, {args.piece_kib} KiB pieces, loopback; "
        f"{facts['nproc']} x {facts['cpu_model']}"
    )
    print(f"load average before bt: {load_before_bt}; before libtorrent: {load_before_lt}")
    print(table(bt, lt_result))
    results: dict[str, Any] = {
        "machine": facts,
        "size_bytes": size,
        "piece_bytes": piece,
        "profiled": args.profile,
        "loadavg_before_bt": load_before_bt,
        "loadavg_before_libtorrent": load_before_lt,
        "bt": bt.as_json(),
        "libtorrent": lt_result.as_json(),
        "ratio_bt_libtorrent": round(bt.rate / lt_result.rate, 4),
    }
    if profile is not None and profile.exists():
        summary = profile_summary(profile)
        results["bt_profile"] = summary
        print("\nbt hot spots, % of py-spy samples (self):")
        for frame, percent in summary["self"]:
            print(f"  {percent:5.1f}  {frame}")
        print("bt hot spots, % of py-spy samples (inclusive):")
        for frame, percent in summary["inclusive"]:
            print(f"  {percent:5.1f}  {frame}")
    if not (bt.identical and lt_result.identical):
        print("\nERROR: a download differs from the original", file=sys.stderr)
    return results


def main() -> int:
    args = parse_args()
    if args.leech:
        torrent, save, report, budget = args.leech
        leech(Path(torrent), Path(save), Path(report), float(budget))
        return 0
    # A SIGTERM must still run the finally blocks that kill children and remove the data.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = bench(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0 if results["bt"]["identical"] and results["libtorrent"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
