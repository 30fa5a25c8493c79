"""10,000 torrents in one daemon: start-up, idle CPU, RSS and ``bt status`` time.

Run: python bench/manytorrents.py [--torrents 10000] [--active 100] [--profile]

The issue-18 target: 10,000 torrents in one ``twistd bittorrent`` (mostly idle,
100 active), start-up under 60 s without rehashing, idle CPU < 2% of a core,
RSS < 1 GiB, ``bt status`` under 1 s.

What it builds (in a temporary folder, small data so it takes seconds): N
single-file torrents of 1-8 KiB (one 16 KiB piece each), their data complete in
``data/``, and a state folder as bt leaves it: ``torrents/HASH.torrent`` and
``HASH.json`` (the registry) and ``resume/HASH.resume`` with every piece and the
files' stamps, so a start must not hash anything. The first ``--active``
torrents announce to an opentracker on loopback (the others have no tracker:
idle torrents of a seedbox are stopped or seeding without peers); with
``--lt-peers`` a libtorrent session also downloads those torrents from bt.

What it measures, from the daemon's launch (``twistd -n bittorrent --no-dht``):
the control API up, the API listing all N torrents, all N seeding; that no
torrent logged a check; CPU (/proc) over an idle window after ``--settle-s``;
RSS; the wall time of ``bt status`` (the CLI process, as a user runs it) and
of the raw ``GET /api/v1/torrents``. Then a second start (the state bt saved
itself) timed the same way. ``--profile`` records py-spy (GIL holder) over the
start-up and over an extra idle window.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    OUT_DIR,
    QUIET_ENV,
    ROOT,
    BtDaemon,
    OpenTracker,
    ProcSample,
    context_switches,
    cpu_percent,
    git_commit,
    libtorrent_settings,
    lt_params,
    print_hot_spots,
    profile_summary,
    sample_proc,
    start_profiler,
    stop_process,
    stop_profiler,
    uptime,
    wait_for,
)

from bt import bencode
from bt.bitfield import Bitfield
from bt.registry import TorrentRecord
from bt.storage.resume import ResumeState

PIECE = 16 * 1024
TARGET = {"startup_s": 60.0, "idle_cpu_percent": 2.0, "rss_mib": 1024.0, "status_s": 1.0}


def make_state(work: Path, count: int, active: int, announce: str | None) -> list[bytes]:
    """N torrents with data, registry entries and resume state; returns the active hashes."""
    rng = random.Random(10000)
    data, state = work / "data", work / "state"
    folders = [state / "torrents", state / "resume", data]
    for folder in folders:
        folder.mkdir(parents=True)
    active_hashes = []
    for number in range(count):
        name = f"t{number:05d}.bin"
        payload = rng.randbytes(rng.randint(1, 8) * 1024)
        path = data / name
        path.write_bytes(payload)
        info = {
            "name": name,
            "length": len(payload),
            "piece length": PIECE,
            "pieces": hashlib.sha1(payload).digest(),
        }
        info_hash = hashlib.sha1(bencode.encode(info)).digest()
        meta: dict[str, Any] = {"info": info}
        if number < active and announce is not None:
            meta["announce"] = announce
            active_hashes.append(info_hash)
        hex_hash = info_hash.hex()
        (state / "torrents" / f"{hex_hash}.torrent").write_bytes(bencode.encode(meta))
        record = TorrentRecord(added=1e9 + number)
        (state / "torrents" / f"{hex_hash}.json").write_text(json.dumps(record.to_json()))
        stat = path.stat()
        resume = ResumeState(info_hash, Bitfield.full(1), ((stat.st_size, stat.st_mtime_ns),))
        (state / "resume" / f"{hex_hash}.resume").write_bytes(resume.encode())
    return active_hashes


@dataclass
class Daemon(BtDaemon):
    """The integration tests' ``twistd -n bittorrent`` (``--no-dht``) on the prepared state
    folder, with no ``--torrent``: each start logs to its own ``bt-<label>.log``."""

    label: str = "first"

    @property
    def logfile(self) -> Path:
        return self.workdir / f"bt-{self.label}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"bt exited early; see {self.logfile}")
        return True

    def get(self, path: str, timeout: float = 60) -> Any:
        status, body = self.api("GET", path, timeout=timeout)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body}")
        return body

    def log(self) -> str:
        return read_log(self.logfile)


def wait_started(daemon: Daemon, begun: float, count: int, budget: float) -> dict[str, float]:
    """Seconds from launch to: the API up, N torrents listed, N torrents seeding."""
    marks: dict[str, float] = {}

    def api_up() -> bool:
        daemon.alive()
        if not (daemon.state_dir / "control.json").exists():
            return False
        try:
            daemon.get("/api/v1/session", timeout=5)
        except OSError:
            return False
        return True

    wait_for(api_up, budget, "the control API", 0.05)
    marks["api_s"] = time.monotonic() - begun

    def listed() -> bool:
        daemon.alive()
        return daemon.get("/api/v1/session")["torrents"] >= count

    wait_for(listed, budget, f"{count} torrents listed", 0.1)
    marks["listed_s"] = time.monotonic() - begun

    # Each torrent logs one line once its pieces are known, just before it seeds; the log
    # is followed (a full listing of 10,000 torrents every poll would load the daemon).
    follower = LogCount(daemon.logfile, ("verified pieces from saved state", "already on disk"))

    def loaded() -> bool:
        daemon.alive()
        return follower.count() >= count

    wait_for(loaded, budget, f"{count} torrents loaded", 0.2)
    marks["loaded_s"] = time.monotonic() - begun

    def seeding() -> bool:
        daemon.alive()
        states = [t["state"] for t in daemon.get("/api/v1/torrents")["torrents"]]
        return len(states) >= count and all(s == "seeding" for s in states)

    wait_for(seeding, budget, f"{count} torrents seeding", 1.0)
    marks["seeding_s"] = time.monotonic() - begun
    return marks


class LogCount:
    """Lines holding any of ``texts`` in a log that twistd rotates every 1 MB."""

    def __init__(self, path: Path, texts: tuple[str, ...]) -> None:
        self.path, self.texts = path, texts

    def count(self) -> int:
        text = read_log(self.path)
        return sum(text.count(t) for t in self.texts)


def read_log(path: Path) -> str:
    """The whole log: twistd's rotated parts (``.N`` oldest ... ``.1``), then the file."""
    parts = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    text = []
    for part in [*parts, path]:
        try:
            text.append(part.read_text(errors="replace"))
        except FileNotFoundError:
            pass
    return "".join(text)


def rehash_lines(log: str) -> int:
    """Log lines of a torrent checking its data (none when the resume state holds)."""
    return sum(1 for line in log.splitlines() if "checking" in line and "pieces" in line)


def time_status(daemon: Daemon, rounds: int) -> dict[str, Any]:
    """``bt status`` (the CLI process, output discarded) and the raw listing, wall time."""
    cli = [sys.executable, "-m", "bt.cli", "--state-dir", str(daemon.state_dir), "status"]
    runs, raw = [], []
    for _ in range(rounds):
        begun = time.monotonic()
        # cwd: ``-m`` puts the current folder first on sys.path, before --code's tree.
        subprocess.run(
            cli,
            check=True,
            stdout=subprocess.DEVNULL,
            env=daemon.env,
            cwd=daemon.workdir,
            timeout=120,
        )
        runs.append(time.monotonic() - begun)
        begun = time.monotonic()
        daemon.get("/api/v1/torrents")
        raw.append(time.monotonic() - begun)
    begun = time.monotonic()
    subprocess.run([sys.executable, "-c", "import bt.cli"], check=True, env=QUIET_ENV, timeout=60)
    imports = time.monotonic() - begun
    return {
        "status_s": round(statistics.median(runs), 3),
        "status_runs_s": [round(r, 3) for r in runs],
        "api_list_s": round(statistics.median(raw), 3),
        "cli_import_s": round(imports, 3),
    }


def measure(args: argparse.Namespace, work: Path, label: str, full: bool) -> dict[str, Any]:
    env = {**QUIET_ENV, **({"PYTHONPATH": str(args.code)} if args.code else {})}
    daemon = Daemon(work, None, work / "data", env=env, label=label)
    profile = OUT_DIR / f"manytorrents-{label}-startup.txt" if args.profile else None
    (daemon.state_dir / "control.json").unlink(missing_ok=True)
    begun = time.monotonic()
    daemon.start()
    profiler = None
    result: dict[str, Any] = {"uptime_before": uptime()}
    try:
        if profile is not None:
            profiler = start_profiler(daemon.pid, profile, threads=True, gil=True)
        marks = wait_started(daemon, begun, args.torrents, args.budget)
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
        at_ready = sample_proc(daemon.pid)
        result.update({k: round(v, 2) for k, v in marks.items()})
        result["startup_cpu_s"] = round(at_ready.cpu, 2)
        result["rss_ready_mib"] = round(at_ready.vm_rss_kib / 1024, 1)
        result["rehash_lines"] = rehash_lines(daemon.log())
        print(
            f"[{label}] API up {marks['api_s']:.1f} s, {args.torrents} listed "
            f"{marks['listed_s']:.1f} s, loaded {marks['loaded_s']:.1f} s, "
            f"all seeding {marks['seeding_s']:.1f} s "
            f"({at_ready.cpu:.1f} CPU s); {result['rehash_lines']} check lines; "
            f"RSS {result['rss_ready_mib']:.0f} MiB",
            flush=True,
        )
        if full:
            time.sleep(args.settle_s)
            first = sample_proc(daemon.pid)
            switches = context_switches(daemon.pid)
            time.sleep(args.idle_s)
            last = sample_proc(daemon.pid)
            wakeups = (context_switches(daemon.pid) - switches) / (last.at - first.at)
            result.update(idle(first, last, wakeups))
            result.update(time_status(daemon, args.status_rounds))
            result["threads"] = len(os.listdir(f"/proc/{daemon.pid}/task"))
            print(
                f"[{label}] idle CPU {result['idle_cpu_percent']:.2f}% over "
                f"{args.idle_s:.0f} s, {result['wakeups_per_s']:.0f} wake-ups/s, RSS "
                f"{result['rss_mib']:.0f} MiB (peak {result['vm_hwm_mib']:.0f}); bt status "
                f"{result['status_s']:.2f} s (API listing {result['api_list_s']:.2f} s, "
                f"CLI imports {result['cli_import_s']:.2f} s)",
                flush=True,
            )
            if args.profile:
                idle_profile = OUT_DIR / f"manytorrents-{label}-idle.txt"
                profiler = start_profiler(daemon.pid, idle_profile, threads=True, gil=True)
                time.sleep(args.idle_s)
                stop_profiler(profiler)
                profiler = None
                result["idle_profile"] = str(idle_profile)
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        stopping = time.monotonic()
        daemon.stop(120)
        result["stop_s"] = round(time.monotonic() - stopping, 2)
    errors = [line for line in daemon.log().splitlines() if "error" in line.lower()]
    result["error_lines"] = len(errors)
    if errors:
        result["first_errors"] = errors[:5]
        print(f"[{label}] {len(errors)} error lines, first: {errors[0]}", flush=True)
    if profile is not None and profile.exists():
        result["startup_profile"] = str(profile)
    return result


def idle(first: ProcSample, last: ProcSample, wakeups: float) -> dict[str, Any]:
    return {
        "idle_cpu_percent": round(cpu_percent(first, last), 2),
        "idle_window_s": round(last.at - first.at, 1),
        "wakeups_per_s": round(wakeups, 1),
        "rss_mib": round(last.vm_rss_kib / 1024, 1),
        "rss_anon_mib": round(last.rss_anon_kib / 1024, 1),
        "vm_hwm_mib": round(last.vm_hwm_kib / 1024, 1),
    }


def lt_peers_main(folder: Path, torrents: list[Path], budget: float) -> None:
    """A libtorrent session downloading the active torrents from bt (found via the tracker)."""
    import libtorrent as lt

    session = lt.session(libtorrent_settings())
    for path in torrents:
        session.add_torrent(lt_params(path, folder))
    parent = os.getppid()
    limit = time.monotonic() + budget
    while time.monotonic() < limit and os.getppid() == parent:
        time.sleep(0.5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torrents", type=int, default=10000)
    parser.add_argument("--active", type=int, default=100, help="torrents with a tracker")
    parser.add_argument("--lt-peers", action="store_true", help="libtorrent downloads the active")
    parser.add_argument("--settle-s", type=float, default=20.0, help="after all seed, before idle")
    parser.add_argument("--idle-s", type=float, default=30.0, help="the idle CPU window")
    parser.add_argument("--status-rounds", type=int, default=3)
    parser.add_argument("--no-second", action="store_true", help="skip the second start")
    parser.add_argument("--budget", type=float, default=600.0, help="per wait, seconds")
    parser.add_argument("--profile", action="store_true", help="py-spy start-up and idle")
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"))
    parser.add_argument(
        "--code", type=Path, default=None, help="run bt from this tree (before/after)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    parser.add_argument("--lt-peers-child", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.lt_peers_child:
        folder, budget, *paths = args.lt_peers_child
        lt_peers_main(Path(folder), [Path(p) for p in paths], float(budget))
        return
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-many-", dir=args.tmp))
    tracker = OpenTracker() if args.active else None
    peers = None
    results: dict[str, Any] = {
        "torrents": args.torrents,
        "active": args.active,
        "code": str(args.code or ROOT),
        "commit": git_commit(args.code or ROOT),
    }
    try:
        begun = time.monotonic()
        active = _prepare(work, args, tracker)
        announce = tracker.announce_url if tracker is not None else None
        results["make_s"] = round(time.monotonic() - begun, 1)
        print(
            f"made {args.torrents} torrents ({len(active)} announcing to {announce}) "
            f"in {results['make_s']:.1f} s",
            flush=True,
        )
        if args.lt_peers and active:
            paths = [work / "state" / "torrents" / f"{h.hex()}.torrent" for h in active]
            lt_dir = work / "lt"
            lt_dir.mkdir()
            command = [sys.executable, __file__, "--lt-peers-child", str(lt_dir), "3600"]
            peers = subprocess.Popen(command + [str(p) for p in paths], env=QUIET_ENV)
        os.sync()
        results["first"] = measure(args, work, "first", full=True)
        if not args.no_second:
            results["second"] = measure(args, work, "second", full=False)
    finally:
        if peers is not None:
            stop_process(peers, 15, 20)
        if tracker is not None:
            tracker.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    first = results["first"]
    results["passed"] = {
        "startup": first["seeding_s"] < TARGET["startup_s"] and first["rehash_lines"] == 0,
        "idle_cpu": first["idle_cpu_percent"] < TARGET["idle_cpu_percent"],
        "rss": first["rss_mib"] < TARGET["rss_mib"],
        "status": first["status_s"] < TARGET["status_s"],
    }
    print(json.dumps(results["passed"]), flush=True)
    if args.profile:
        for key in ("startup_profile", "idle_profile"):
            if key in first:
                print_hot_spots(f"bt {key}", profile_summary(Path(first[key]), top=25))
    out = args.out or OUT_DIR / "manytorrents.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"results in {out}")


def _prepare(work: Path, args: argparse.Namespace, tracker: OpenTracker | None) -> list[bytes]:
    """The state folder; the tracker is started on the active torrents' hashes."""
    if tracker is None:
        return make_state(work, args.torrents, 0, None)
    # The announce URL needs the tracker's port, the tracker the hashes: info-hashes do not
    # depend on the announce URL, so start it on hashes computed first with a placeholder.
    probe = work / "probe"
    hashes = make_state(probe, args.active, args.active, "http://placeholder/announce")
    shutil.rmtree(probe)
    tracker.start(hashes)
    return make_state(work, args.torrents, args.active, tracker.announce_url)


if __name__ == "__main__":
    main()
