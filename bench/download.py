"""bt against libtorrent downloading one large torrent on loopback: rate, CPU and memory.

Run: python bench/download.py [--size-mib 1024] [--piece-kib 1024] [--profile]
     python bench/download.py --multi-file [--files 200]
(needs libtorrent and opentracker, as the integration tests do).

One libtorrent seeder and one opentracker serve a single-file torrent (or, with
``--multi-file``, a folder of ``--files`` files of varied sizes in nested folders, the
same total size; bench/out/download-multi.json unless ``--out`` says). bt downloads
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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# common also puts tests/ and tests/integration/ on sys.path, where swarm comes from.
from common import (
    GIB,
    MIB,
    OUT_DIR,
    Deadline,
    LogWatcher,
    Pages,
    ProcSample,
    SeededSwarm,
    add_fresh_pages_option,
    base_parser,
    bt_daemon,
    connected_to,
    content_digest,
    content_size,
    exit_on_sigterm,
    follow_bt,
    gil_profiler,
    loadavg,
    lt_download,
    lt_params,
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
    stop_profiler,
    wall_profiler,
    warn_on_bt_errors,
    write_results,
)


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
    #: Bytes the process read from sockets and files by completion (``rchar``): above
    #: ``size``, the peers sent blocks twice (endgame duplicates) or data was re-read.
    read_chars: int = 0

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

    @classmethod
    def measured(
        cls,
        client: str,
        size: int,
        started: float,
        first: ProcSample | None,
        done: ProcSample,
        identical: bool,
        exit_status: int | None,
    ) -> Result:
        """Both clients are sampled at the same moments: turn the samples into figures."""
        return cls(
            client=client,
            size=size,
            first_peer_s=first.at - started if first else None,
            complete_s=done.at - started,
            cpu_s=done.cpu,
            cpu_sys_s=done.cpu_sys,
            cpu_transfer_s=done.cpu - first.cpu if first else None,
            vm_hwm_kib=done.vm_hwm_kib,
            rss_anon_kib=done.rss_anon_kib,
            rss_file_kib=done.rss_file_kib,
            identical=identical,
            exit_status=exit_status,
            read_chars=done.read_chars,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rate_mb_s": round(self.rate, 2),
            "rate_from_start_mb_s": round(self.rate_from_start, 2),
            "cpu_s_per_gib": round(self.cpu_per_gib, 3),
            # Without the process's start-up (imports, reading the torrent).
            "cpu_transfer_s_per_gib": (
                round(self.cpu_transfer_s / (self.size / GIB), 3)
                if self.cpu_transfer_s is not None
                else None
            ),
        }


def run_bt(
    work: Path,
    torrent: Path,
    content: Path,
    digest: str,
    deadline: Deadline,
    profile: Path | None,
    on_poll: Callable[[LogWatcher], None] | None = None,
    seeder_port: int | Collection[int] | None = None,
    extra: tuple[str, ...] = (),
    profiler_factory: Callable[[int, Path], subprocess.Popen[bytes]] | None = None,
) -> Result:
    """Download with ``twistd -n bittorrent``; sample it the moment it logs completion.

    ``on_poll`` is called at every poll of bt's log (every few ms) while it downloads.
    With ``seeder_port``, bt's first peer is the moment its connection to that port
    shows up (bt logs connections at debug level only). ``extra``: more bt options.
    ``profiler_factory(pid, path)`` replaces the default py-spy when ``profile`` is given.
    """
    if seeder_port is not None:
        chained = on_poll

        def on_poll(watcher: LogWatcher) -> None:
            if "first_peer" not in watcher.seen and connected_to(seeder_port):
                watcher.seen["first_peer"] = sample_proc(watcher.pid)
            if chained is not None:
                chained(watcher)

    name = content.name
    daemon = bt_daemon(work / "bt", torrent, work / "bt" / "downloads", *extra)
    daemon.workdir.mkdir()
    profiler: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        daemon.start()
        assert daemon.process is not None
        if profile is not None:
            profiler = (profiler_factory or start_profiler)(daemon.process.pid, profile)
        watcher = follow_bt(
            daemon,
            {"first_peer": " connected to ", "complete": f"{name}: download complete"},
            "complete",
            deadline.left(),
            "complete",
            on_poll,
        )
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
    warn_on_bt_errors(daemon.log())
    output = daemon.download_dir / name
    identical = content_digest(output) == digest
    return Result.measured("bt", content_size(content), started, first, done, identical, status)


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
    figures = run_reporter(command, report, deadline.left() + 5, "the libtorrent downloader")
    done = ProcSample(**figures["complete"])
    first = ProcSample(**figures["first_peer"]) if figures["first_peer"] else None
    identical = content_digest(save / content.name) == digest
    size = content_size(content)
    return Result.measured("libtorrent", size, started, first, done, identical, 0)


def leech(torrent: Path, save: Path, report: Path, budget: float) -> None:
    """The libtorrent downloader's process: download, sample itself at completion, report."""
    import libtorrent as lt

    pid = os.getpid()
    session = lt_session(
        int(lt.alert.category_t.connect_notification | lt.alert.category_t.status_notification)
    )
    handle = session.add_torrent(lt_params(torrent, save))
    samples: dict[str, ProcSample] = {}

    def sample(name: str) -> Callable[[], None]:
        def take() -> None:
            samples[name] = sample_proc(pid)

        return take

    lt_download(session, time.monotonic() + budget, sample("first"), sample("done"))
    first, done = samples.get("first"), samples["done"]
    session.remove_torrent(handle)
    del handle, session  # closes the files, so the bench reads what was written
    report.write_text(
        json.dumps({"first_peer": asdict(first) if first else None, "complete": asdict(done)})
    )


def read_ratio(result: Result) -> str:
    return f"{result.read_chars / result.size:.3f}" if result.read_chars else "-"


def table(bt: Result, lt_result: Result) -> str:
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
        ("bytes read (rchar) / size", read_ratio(bt), read_ratio(lt_result)),
        ("byte-identical", str(bt.identical), str(lt_result.identical)),
    ]
    return side_by_side("", rows, bt.rate, lt_result.rate)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__.split("\n")[0], "download.json")
    add_fresh_pages_option(parser)
    parser.add_argument("--profile", action="store_true", help="py-spy bt (perturbs its figures)")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="--profile sampling only the GIL holder, every thread, 250 times a second",
    )
    parser.add_argument(
        "--profile-idle",
        action="store_true",
        help="--profile sampling every thread, waiting too (wall clock), 250 times a second",
    )
    parser.add_argument(
        "--multi-file", action="store_true", help="a folder of --files files instead of one"
    )
    parser.add_argument("--files", type=int, default=200, help="files of --multi-file")
    parser.add_argument("--leech", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.multi_file and args.out == OUT_DIR / "download.json":
        args.out = OUT_DIR / "download-multi.json"
    return args


def bench(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    size = args.size_mib * MIB
    piece = args.piece_kib * 1024
    # The original, bt's copy and libtorrent's copy, plus room for everything else.
    pages = Pages.of(args)
    require_free(args.tmp, 3 * size + pages.scratch_bytes(size) + GIB)
    facts = machine_facts()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-download-", dir=args.tmp))
    try:
        if args.multi_file:
            content, digest = make_tree_content(work, "seed", args.size_mib, args.files)
        else:
            content, digest = make_content(work, "seed", args.size_mib)
        with SeededSwarm(work, content, piece, deadline) as swarm:
            settle()
            load_before_bt = loadavg()
            pages.before_client(work, size)
            profiled = args.profile or args.profile_gil or args.profile_idle
            profile = OUT_DIR / "download-bt-profile.txt" if profiled else None
            if profile is not None:
                profile.parent.mkdir(parents=True, exist_ok=True)
            factory = gil_profiler if args.profile_gil else None
            factory = wall_profiler if args.profile_idle else factory
            print("bt downloading", flush=True)
            bt = run_bt(
                work,
                swarm.torrent,
                content,
                digest,
                deadline,
                profile,
                None,
                swarm.port,
                profiler_factory=factory,
            )
            print(f"bt: {bt.rate:.1f} MB/s; libtorrent downloading", flush=True)
            # bt's copy stays until the end. On a VM whose balloon hands freed memory back
            # to the host within seconds, writing into fresh page cache costs several
            # times what writing into memory freed a moment ago does: deleting bt's copy
            # now would hand libtorrent cheap pages that bt never had. So each client gets
            # the same: recycled pages (common.recycle_pages), or with --fresh-pages fresh
            # ones, after a pause that lets what bt's exit freed go back too.
            time.sleep(deadline.left(5))
            # bt announced "stopped": once only the seeder is left, libtorrent meets the
            # same swarm.
            swarm.wait_seeder_alone()
            settle()
            load_before_lt = loadavg()
            pages.before_client(work, size)
            lt_result = run_libtorrent(work, swarm.torrent, content, digest, deadline)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    files = args.files if args.multi_file else 1
    print()
    print(
        f"{args.size_mib} MiB in {files} file(s), {args.piece_kib} KiB pieces, loopback; "
        f"{facts['nproc']} x {facts['cpu_model']}"
    )
    print(f"load average before bt: {load_before_bt}; before libtorrent: {load_before_lt}")
    print(table(bt, lt_result))
    results: dict[str, Any] = {
        "machine": facts,
        "size_bytes": size,
        "piece_bytes": piece,
        "files": files,
        "profiled": "gil" if args.profile_gil else "idle" if args.profile_idle else args.profile,
        "pages": pages.label,
        "loadavg_before_bt": load_before_bt,
        "loadavg_before_libtorrent": load_before_lt,
        "bt": bt.as_json(),
        "libtorrent": lt_result.as_json(),
        "ratio_bt_libtorrent": round(bt.rate / lt_result.rate, 4),
        "ratio_cpu_bt_libtorrent": round(bt.cpu_per_gib / lt_result.cpu_per_gib, 4),
        "ratio_cpu_transfer_bt_libtorrent": (
            round(bt.cpu_transfer_s / lt_result.cpu_transfer_s, 4)
            if bt.cpu_transfer_s and lt_result.cpu_transfer_s
            else None
        ),
    }
    if profile is not None and profile.exists():
        summary = profile_summary(profile)
        results["bt_profile"] = summary
        print_hot_spots("bt", summary)
    if not (bt.identical and lt_result.identical):
        print("\nERROR: a download differs from the original", file=sys.stderr)
    return results


def main() -> int:
    args = parse_args()
    if args.leech:
        torrent, save, report, budget = args.leech
        leech(Path(torrent), Path(save), Path(report), float(budget))
        return 0
    exit_on_sigterm()
    results = bench(args)
    write_results(args.out, results)
    return 0 if results["bt"]["identical"] and results["libtorrent"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
