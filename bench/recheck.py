"""bt against libtorrent checking data already on disk: rate and CPU, v1 and v2, warm and cold.

Run: python bench/recheck.py [--size-mib 1024] [--piece-kib 1024] [--rounds 3] [--no-cold]
[--formats v1 v2] (needs libtorrent; no tracker: the torrents have no announce URL).

One single-file torrent over complete data that both clients read in place, made
by libtorrent twice: v1 (SHA-1 pieces) and v2-only (BEP 52: SHA-256 merkle trees
of 16 KiB leaves), so both clients check the same bytes under both formats.

- bt runs as a user runs it (``twistd -n bittorrent ... --recheck``); the check is
  timed from its "checking N pieces of existing data" log line to its "N of N pieces
  already on disk" line (the log is polled every 5 ms), and its CPU is read from
  /proc/<pid>/stat at those two moments.
- libtorrent runs in its own process: it adds the torrent (not auto-managed, so the
  check starts at once instead of at the session's next once-a-second queue tick), lets
  the initial check finish, then calls ``force_recheck()`` and polls ``status()`` every
  5 ms until the torrent leaves the checking states; its CPU is its own
  /proc/self/stat delta. libtorrent's settings are its defaults apart from the loopback
  confinement (``--lt-hashing-threads`` overrides hashing_threads, 1 by default).

Page cache decides most of a recheck's speed, so each client is measured WARM (the
data in page cache: ``--rounds`` rounds of bt v1, libtorrent v1, bt v2, libtorrent v2
in turn, so load from elsewhere falls on all of them alike; the median is reported)
and COLD (caches dropped with
``sync; echo 3 > /proc/sys/vm/drop_caches`` right before the timed check; skipped
when that write is not allowed). Page-cache residency of the data at the start of each
timed check is recorded (fincore), and so is the CPU the rest of the machine used
(and the hypervisor stole) during it, from /proc/stat: a check that shared the CPUs
with other work shows it there.

The ceiling both are measured against is the machine's hashlib rate (bench/hashlimit.py:
SHA-1 and SHA-256 over 1 MiB buffers, and SHA-256 over 16 KiB leaves, on one thread
and on two), measured in the same run before the checks. A benchmark, not a test: it
prints a table and writes bench/out/recheck.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

# common also puts tests/ and tests/integration/ on sys.path, where swarm and torrents
# come from.
from common import (
    GIB,
    LOG_POLL,
    MIB,
    Deadline,
    LogWatcher,
    ProcSample,
    base_parser,
    bt_daemon,
    exit_on_sigterm,
    follow_bt,
    loadavg,
    lt_params,
    lt_session,
    machine_facts,
    make_content,
    require_free,
    run_reporter,
    sample_proc,
    warn_on_bt_errors,
    write_results,
)
from hashlimit import lines as hash_limit_lines
from hashlimit import measure as measure_hash_limits
from torrents import libtorrent_torrent

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_caches() -> bool:
    """Write back dirty pages, then drop the clean page cache; False if not allowed."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def resident_fraction(path: Path) -> float | None:
    """Share of ``path`` in page cache now (util-linux fincore); None if unavailable."""
    fincore = shutil.which("fincore")
    if fincore is None:
        return None
    try:
        out = subprocess.run(
            [fincore, "--bytes", "--noheadings", "--output", "RES", str(path)],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
        return int(out[0]) / max(path.stat().st_size, 1)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def machine_cpu() -> tuple[float, float]:
    """All CPUs' busy and steal seconds so far (/proc/stat): other load shows up in these."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


@dataclass
class Check:
    """One timed check of the whole torrent by one client."""

    client: str
    format: str  # "v1" or "v2"
    cache: str  # "warm" or "cold"
    run: int
    size: int
    seconds: float
    cpu_s: float
    cpu_sys_s: float
    valid_pieces: int
    total_pieces: int
    resident_at_start: float | None
    loadavg_before: str
    other_cpu_s: float  # CPU the rest of the machine used during the check
    steal_s: float  # CPU the hypervisor took from this VM during the check
    extra: dict[str, Any]

    @property
    def gib_s(self) -> float:
        return self.size / GIB / self.seconds

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu_s / (self.size / GIB)

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "gib_s": round(self.gib_s, 4),
            "cpu_s_per_gib": round(self.cpu_per_gib, 4),
        }

    def line(self) -> str:
        resident = "?" if self.resident_at_start is None else f"{100 * self.resident_at_start:.0f}%"
        return (
            f"{self.client} {self.format} {self.cache} run {self.run}: {self.seconds:.3f} s, "
            f"{self.gib_s:.3f} GiB/s, CPU {self.cpu_s:.2f} s ({self.cpu_per_gib:.2f} s/GiB), "
            f"{self.valid_pieces}/{self.total_pieces} pieces, cached at start {resident}, "
            f"load {self.loadavg_before}, other CPU {self.other_cpu_s:.2f} s, "
            f"steal {self.steal_s:.2f} s"
        )


class Subject(NamedTuple):
    """What is checked: one torrent of one format over the data, and where to work."""

    work: Path
    torrent: Path
    content: Path
    pieces: int
    format: str


def run_bt(subject: Subject, cache: str, run: int, deadline: Deadline) -> Check:
    """``twistd -n bittorrent --recheck`` on the complete data; timed from its log lines."""
    work, torrent, content, pieces, format = subject
    name = content.name
    workdir = work / f"bt-{format}-{cache}-{run}"
    workdir.mkdir()
    daemon = bt_daemon(workdir, torrent, content.parent, "--recheck")
    load = loadavg()
    dropped = cache == "cold" and drop_caches()
    if cache == "cold" and not dropped:
        raise RuntimeError("could not drop the page cache")
    resident = resident_fraction(content)
    begin_marker = f"{name}: checking {pieces} pieces of existing data"
    machine: dict[str, tuple[float, float]] = {}

    def note_machine(watcher: LogWatcher) -> None:
        for marker in watcher.seen.keys() - machine.keys():
            machine[marker] = machine_cpu()

    try:
        daemon.start()
        watcher = follow_bt(
            daemon,
            {"begin": begin_marker, "done": "pieces already on disk"},
            "done",
            deadline.left(600),
            "finish its check",
            note_machine,
        )
        daemon.stop()
    finally:
        daemon.stop()
    log = daemon.log()
    if "begin" not in watcher.seen:
        raise RuntimeError(f"bt never logged {begin_marker!r}:\n{log[-4000:]}")
    begin, done = watcher.seen["begin"], watcher.seen["done"]
    if done.at == begin.at:
        raise RuntimeError("bt's check began and ended within one log poll: too small to time")
    warn_on_bt_errors(log)
    valid = 0
    for line in log.splitlines():
        if f"{name}: " in line and "pieces already on disk" in line:
            valid = int(line.split(f"{name}: ", 1)[1].split()[0])
    return Check(
        client="bt",
        format=format,
        cache=cache,
        run=run,
        size=content.stat().st_size,
        seconds=done.at - begin.at,
        cpu_s=done.cpu - begin.cpu,
        cpu_sys_s=done.cpu_sys - begin.cpu_sys,
        valid_pieces=valid,
        total_pieces=pieces,
        resident_at_start=resident,
        loadavg_before=load,
        other_cpu_s=machine["done"][0] - machine["begin"][0] - (done.cpu - begin.cpu),
        steal_s=machine["done"][1] - machine["begin"][1],
        extra={"exit_status": daemon.process.returncode if daemon.process else None},
    )


def run_libtorrent(
    subject: Subject, cache: str, run: int, deadline: Deadline, hashing_threads: int | None
) -> Check:
    """A libtorrent session in its own process: initial check, then a timed force_recheck."""
    work, torrent, content, pieces, format = subject
    report = work / f"lt-{format}-{cache}-{run}.json"
    budget = deadline.left(600)
    command = [
        sys.executable,
        __file__,
        "--lt-check",
        str(torrent),
        str(content.parent),
        str(report),
        f"{budget:.0f}",
        cache,
        str(hashing_threads or 0),
    ]
    load = loadavg()
    figures = run_reporter(command, report, budget + 10, "the libtorrent checker")
    begin, done = ProcSample(**figures["begin"]), ProcSample(**figures["done"])
    return Check(
        client="libtorrent",
        format=format,
        cache=cache,
        run=run,
        size=content.stat().st_size,
        seconds=done.at - begin.at,
        cpu_s=done.cpu - begin.cpu,
        cpu_sys_s=done.cpu_sys - begin.cpu_sys,
        valid_pieces=figures["valid_pieces"],
        total_pieces=pieces,
        resident_at_start=figures["resident_at_start"],
        loadavg_before=load,
        other_cpu_s=figures["machine_done"][0]
        - figures["machine_begin"][0]
        - (done.cpu - begin.cpu),
        steal_s=figures["machine_done"][1] - figures["machine_begin"][1],
        extra={
            "initial_check_s": figures["initial_check_s"],
            "first_piece_s": figures["first_piece_s"],
            "saw_checked_alert": figures["saw_checked_alert"],
            "settings": figures["settings"],
        },
    )


def lt_check(
    torrent: Path, save: Path, report: Path, budget: float, cache: str, hashing_threads: int
) -> None:
    """The libtorrent process: add, wait for the initial check, then time force_recheck."""
    import libtorrent as lt

    limit = time.monotonic() + budget
    pid = os.getpid()
    checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
    extra = {"hashing_threads": hashing_threads} if hashing_threads else {}
    session = lt_session(int(lt.alert.category_t.status_notification), **extra)
    params = lt_params(torrent, save)
    # Not auto-managed (and so not added paused): an auto-managed torrent waits for the
    # session's next once-a-second queue tick before it starts checking, up to a second
    # of idling that would be timed as part of the check.
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    total = params.ti.num_pieces()
    content = save / params.ti.name()
    added = time.monotonic()
    handle = session.add_torrent(params)

    def wait_checked(handle: lt.torrent_handle, what: str) -> tuple[lt.torrent_status, float]:
        """Poll until the checking states are left; also when the first piece was seen."""
        first_piece = 0.0
        while True:
            status = handle.status()
            if not first_piece and status.num_pieces:
                first_piece = time.monotonic()
            if status.errc.value():
                raise RuntimeError(f"libtorrent: {status.errc.message()}")
            if status.state not in checking:
                return status, first_piece
            if time.monotonic() > limit:
                raise TimeoutError(f"libtorrent did not finish its {what} in time")
            time.sleep(LOG_POLL)

    status, _ = wait_checked(handle, "initial check")
    initial = time.monotonic() - added
    if status.num_pieces != total:
        raise RuntimeError(f"initial check found {status.num_pieces} of {total} pieces")
    session.pop_alerts()
    if cache == "cold" and not drop_caches():
        raise RuntimeError("could not drop the page cache")
    resident = resident_fraction(content)
    machine_begin = machine_cpu()
    begin = sample_proc(pid)
    handle.force_recheck()
    status, first_piece = wait_checked(handle, "recheck")
    done = sample_proc(pid)
    machine_done = machine_cpu()
    saw_checked = any(isinstance(a, lt.torrent_checked_alert) for a in session.pop_alerts())
    used = session.get_settings()
    session.remove_torrent(handle)
    del handle, session
    report.write_text(
        json.dumps(
            {
                "begin": asdict(begin),
                "done": asdict(done),
                "machine_begin": machine_begin,
                "machine_done": machine_done,
                "valid_pieces": status.num_pieces,
                "initial_check_s": initial,
                "first_piece_s": first_piece - begin.at if first_piece else None,
                "resident_at_start": resident,
                "saw_checked_alert": saw_checked,
                "settings": {
                    key: used[key]
                    for key in ("hashing_threads", "aio_threads", "checking_mem_usage")
                },
            }
        )
    )


def lt_v2_torrent(content: Path, piece_length: int) -> bytes:
    """A v2-only .torrent for ``content`` made by libtorrent's create_torrent."""
    import libtorrent as lt

    storage = lt.file_storage()
    lt.add_files(storage, str(content))
    creator = lt.create_torrent(storage, piece_length, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(creator, str(content.parent))
    return lt.bencode(creator.generate())


@dataclass
class Figure:
    """The median of one client's checks of one format and cache state."""

    gib_s: float
    cpu_per_gib: float
    other_cpu_s: float
    runs: int


def figure(checks: list[Check], client: str, format: str, cache: str) -> Figure | None:
    """Median rate and CPU per GiB of the matching runs (None if there were none)."""
    matching = [c for c in checks if (c.client, c.format, c.cache) == (client, format, cache)]
    if not matching:
        return None
    return Figure(
        gib_s=statistics.median(c.gib_s for c in matching),
        cpu_per_gib=statistics.median(c.cpu_per_gib for c in matching),
        other_cpu_s=statistics.median(c.other_cpu_s for c in matching),
        runs=len(matching),
    )


def pair(checks: list[Check], format: str, cache: str) -> tuple[Figure, Figure] | None:
    """bt's and libtorrent's figures for one case, or None unless both were measured."""
    bt, lt_figure = figure(checks, "bt", format, cache), figure(checks, "libtorrent", format, cache)
    return None if bt is None or lt_figure is None else (bt, lt_figure)


CASES = (("v1", "warm"), ("v1", "cold"), ("v2", "warm"), ("v2", "cold"))


def table(checks: list[Check]) -> str:
    rows = [("", "runs", "bt GiB/s", "lt GiB/s", "bt/lt", "bt CPU s/GiB", "lt CPU s/GiB")]
    for format, cache in CASES:
        found = pair(checks, format, cache)
        if found is None:
            continue
        bt, lt_figure = found
        rows.append(
            (
                f"{format} {cache}",
                str(bt.runs),
                f"{bt.gib_s:.3f}",
                f"{lt_figure.gib_s:.3f}",
                f"{bt.gib_s / lt_figure.gib_s:.3f}",
                f"{bt.cpu_per_gib:.3f}",
                f"{lt_figure.cpu_per_gib:.3f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__.split("\n")[0], "recheck.json")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache runs")
    parser.add_argument(
        "--rounds", type=int, default=3, help="warm runs of each client and format (median)"
    )
    parser.add_argument(
        "--formats",
        nargs="+",
        choices=("v1", "v2"),
        default=["v1", "v2"],
        help="torrent formats to check (default: both)",
    )
    parser.add_argument(
        "--hash-mib-per-thread",
        type=int,
        default=512,
        help="bytes each thread hashes to measure hashlib's limit (0: skip it)",
    )
    parser.add_argument(
        "--lt-hashing-threads",
        type=int,
        default=None,
        help="libtorrent's hashing_threads (default: libtorrent's own default)",
    )
    parser.add_argument("--lt-check", nargs=6, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    size = args.size_mib * MIB
    piece = args.piece_kib * 1024
    pieces = -(-size // piece)
    # One copy of the data (both clients read it in place), plus room for everything else.
    require_free(args.tmp, size + GIB)
    facts = machine_facts()
    cold = not args.no_cold
    if cold and not drop_caches():
        print("cannot write /proc/sys/vm/drop_caches: measuring warm only", flush=True)
        cold = False
    limits: dict[str, Any] = {}
    if args.hash_mib_per_thread:
        limits = measure_hash_limits(2, args.hash_mib_per_thread * MIB, 3)
        print("\n".join(hash_limit_lines(limits)), flush=True)
    checks: list[Check] = []
    work = Path(tempfile.mkdtemp(prefix="bt-bench-recheck-", dir=args.tmp))
    try:
        content, _ = make_content(work, "data", args.size_mib)
        torrents: dict[str, Path] = {}
        for format in args.formats:
            begun = time.monotonic()
            torrents[format] = work / f"bench-{format}.torrent"
            make = libtorrent_torrent if format == "v1" else lt_v2_torrent
            torrents[format].write_bytes(make(content, piece))
            print(f"made the {format} torrent in {time.monotonic() - begun:.1f} s", flush=True)
        os.sync()  # nothing dirty left to be written back during a timed check

        def record(check: Check) -> None:
            if check.valid_pieces != pieces:
                raise RuntimeError(f"{check.line()}: expected {pieces} valid pieces")
            checks.append(check)
            print(check.line(), flush=True)

        def both(format: str, cache: str, run: int) -> None:
            subject = Subject(work, torrents[format], content, pieces, format)
            record(run_bt(subject, cache, run, deadline))
            record(run_libtorrent(subject, cache, run, deadline, args.lt_hashing_threads))

        for run in range(1, args.rounds + 1):
            for format in args.formats:
                both(format, "warm", run)
        if cold:
            for format in args.formats:
                both(format, "cold", 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"{args.size_mib} MiB, {args.piece_kib} KiB pieces ({pieces}); "
        f"{facts['nproc']} x {facts['cpu_model']}; load average at start "
        f"{facts['loadavg_at_start']}; warm: median of {args.rounds} rounds"
    )
    if not cold:
        print("cold: not measured" + (" (--no-cold)" if args.no_cold else " (cannot drop caches)"))
    print(table(checks))
    summary: dict[str, Any] = {}
    for format, cache in CASES:
        found = pair(checks, format, cache)
        if found is None:
            continue
        bt, lt_result = found
        # "warm" / "cold" are v1 (what bench/run_all.py has always read); v2 is "v2 warm".
        summary[cache if format == "v1" else f"{format} {cache}"] = {
            "bt_gib_s": round(bt.gib_s, 4),
            "libtorrent_gib_s": round(lt_result.gib_s, 4),
            "ratio_bt_libtorrent": round(bt.gib_s / lt_result.gib_s, 4),
            "bt_cpu_s_per_gib": round(bt.cpu_per_gib, 4),
            "libtorrent_cpu_s_per_gib": round(lt_result.cpu_per_gib, 4),
            "bt_other_cpu_s": round(bt.other_cpu_s, 3),
            "libtorrent_other_cpu_s": round(lt_result.other_cpu_s, 3),
            "runs": bt.runs,
        }
    limit = limits.get("sha256 16 KiB, 2 threads")
    v2 = summary.get("v2 warm")
    if limit and v2:
        v2["bt_share_of_sha256_limit"] = round(v2["bt_gib_s"] / limit["gib_s"], 4)
        v2["libtorrent_share_of_sha256_limit"] = round(v2["libtorrent_gib_s"] / limit["gib_s"], 4)
        print(
            f"v2 warm against hashlib SHA-256 over 16 KiB leaves on 2 threads "
            f"({limit['gib_s']:.3f} GiB/s): bt {v2['bt_share_of_sha256_limit']:.2f}, "
            f"libtorrent {v2['libtorrent_share_of_sha256_limit']:.2f}"
        )
    return {
        "machine": facts,
        "size_bytes": size,
        "piece_bytes": piece,
        "pieces": pieces,
        "rounds": args.rounds,
        "formats": args.formats,
        "cold_measured": cold,
        "lt_hashing_threads": args.lt_hashing_threads,
        "hash_limits": limits,
        "summary": summary,
        "runs": [c.as_json() for c in checks],
    }


def main() -> int:
    args = parse_args()
    if args.lt_check:
        torrent, save, report, budget, cache, threads = args.lt_check
        lt_check(Path(torrent), Path(save), Path(report), float(budget), cache, int(threads))
        return 0
    exit_on_sigterm()
    results = bench(args)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
