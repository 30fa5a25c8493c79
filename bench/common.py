"""What the benchmarks in bench/ share (download, seed, recheck, memory, scale, run_all).

Each benchmark runs bt and libtorrent in subprocesses and reads their CPU and memory
from /proc, so the helpers here are about exactly that: sampling /proc, following bt's
log, starting and stopping children, making the test data and printing the results.
Importing this module also puts tests/ and tests/integration/ on sys.path, where the
``swarm`` and ``torrents`` helpers of the integration tests live.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import libtorrent

MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = 16 * MIB
LOG_POLL = 0.005  # seconds between reads of bt's log: bounds the timing error
OUT_DIR = ROOT / "bench" / "out"
# libtorrent's Python bindings warn about deprecated names on import; keep the output clean.
QUIET_ENV = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}


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
    #: Bytes the process asked of read-like syscalls (``rchar``: files and sockets alike).
    read_chars: int = 0

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
    read_chars = 0
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                read_chars = int(line.split()[1])
    except OSError:
        pass  # not ours to read (another user's process): the figure stays 0
    return ProcSample(
        at=at,
        read_chars=read_chars,
        cpu_user=int(fields[11]) / tick,
        cpu_sys=int(fields[12]) / tick,
        vm_hwm_kib=memory.get("VmHWM", 0),
        vm_rss_kib=memory.get("VmRSS", 0),
        rss_anon_kib=memory.get("RssAnon", 0),
        rss_file_kib=memory.get("RssFile", 0),
    )


def file_digest(path: Path) -> str:
    """SHA-256 of a file read in large chunks: how a download is checked against the original."""
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


def require_free(tmp: Path, needed: int) -> None:
    """Stop before writing anything if ``tmp`` cannot hold every copy the run makes."""
    free = shutil.disk_usage(tmp).free
    if free < needed:
        raise SystemExit(f"{tmp} has {free / GIB:.1f} GiB free; this run needs {needed / GIB:.1f}")


def make_content(work: Path, folder: str, size_mib: int) -> tuple[Path, str]:
    """``work/folder/bench.bin`` of ``size_mib`` random MiB, timed; returns it and its SHA-256."""
    directory = work / folder
    directory.mkdir()
    content = directory / "bench.bin"
    begun = time.monotonic()
    digest = write_content(content, size_mib * MIB)
    print(f"wrote {size_mib} MiB in {time.monotonic() - begun:.1f} s", flush=True)
    return content, digest


def tree_files(total: int, count: int, seed: int = 8) -> list[tuple[str, int]]:
    """``count`` relative paths in nested folders with varied sizes adding up to ``total``.

    Sizes follow a log-uniform spread (a few bytes to tens of MiB, like a real release
    with its .nfo, subtitles and media files) so piece and file boundaries fall
    everywhere; folders are one to three levels deep. Reproducible for a given seed.
    """
    rng = random.Random(seed)
    weights = [2.0 ** rng.uniform(0, 16) for _ in range(count)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[sizes.index(max(sizes))] += total - sum(sizes)
    files = []
    for number, size in enumerate(sizes):
        depth = rng.randint(1, 3)
        folders = [f"d{rng.randint(0, 5)}" for _ in range(depth)]
        files.append(("/".join([*folders, f"f{number:03d}.bin"]), size))
    return files


def write_tree(root: Path, files: list[tuple[str, int]]) -> None:
    """Write each file of ``tree_files`` with incompressible bytes, in large chunks."""
    for relative, size in files:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_content(path, size)


def content_size(content: Path) -> int:
    """Bytes of a single file or of every file under a folder."""
    if content.is_file():
        return content.stat().st_size
    return sum(p.stat().st_size for p in content.rglob("*") if p.is_file())


def content_digest(content: Path) -> str:
    """SHA-256 of a file, or of a folder's relative paths and file digests (in order)."""
    if content.is_file():
        return file_digest(content)
    digest = hashlib.sha256()
    for path in sorted(p for p in content.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(content)}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()


def make_tree_content(work: Path, folder: str, size_mib: int, files: int) -> tuple[Path, str]:
    """``work/folder/bench-tree/`` of ``files`` files totalling ``size_mib`` MiB; its digest."""
    root = work / folder / "bench-tree"
    root.mkdir(parents=True)
    begun = time.monotonic()
    write_tree(root, tree_files(size_mib * MIB, files))
    print(f"wrote {size_mib} MiB in {files} files in {time.monotonic() - begun:.1f} s", flush=True)
    return root, content_digest(root)


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


def write_tracked_torrent(
    work: Path, content: Path, piece_length: int, tracker: OpenTracker, deadline: Deadline
) -> tuple[Path, bytes, bytes]:
    """The tracked torrent written to ``work/bench.torrent`` (for bt's command line).

    Returns its path, its bytes (for libtorrent peers) and its info-hash (for scrapes).
    """
    from bt.metainfo import parse_metainfo

    torrent_bytes = tracked_torrent(content, piece_length, tracker, deadline)
    torrent = work / "bench.torrent"
    torrent.write_bytes(torrent_bytes)
    return torrent, torrent_bytes, parse_metainfo(torrent_bytes).info_hash


class SeededSwarm:
    """An opentracker and a libtorrent seeder of ``content``: what downloads fetch from.

    A context manager: on entry the torrent is made (``work/bench.torrent``), the seeder
    has checked its data and the tracker lists it; on exit both are stopped.
    """

    def __init__(self, work: Path, content: Path, piece_length: int, deadline: Deadline) -> None:
        self.work = work
        self.content = content
        self.piece_length = piece_length
        self.deadline = deadline
        self.tracker = OpenTracker()
        self.seeder: LibtorrentPeer | None = None
        self.torrent = Path()
        self.torrent_bytes = b""
        self.info_hash = b""

    def __enter__(self) -> SeededSwarm:
        try:
            begun = time.monotonic()
            self.torrent, self.torrent_bytes, self.info_hash = write_tracked_torrent(
                self.work, self.content, self.piece_length, self.tracker, self.deadline
            )
            print(f"made the torrent in {time.monotonic() - begun:.1f} s", flush=True)
            self.seeder = lt_reference_peer(self.torrent_bytes, self.content.parent)
            self.seeder.wait_checked(self.deadline.left(300))
            wait_for(lambda: self.peers() >= 1, self.deadline.left(30), "the seeder at the tracker")
            print(f"seeder ready after {time.monotonic() - begun:.1f} s", flush=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def port(self) -> int:
        """Where the seeder listens."""
        assert self.seeder is not None
        return self.seeder.port

    def peers(self) -> int:
        """Seeders plus leechers the tracker lists now."""
        return scrape_counts(self.tracker, self.info_hash)

    def wait_seeder_alone(self) -> None:
        """Until a finished downloader's "stopped" announce has left only the seeder."""
        wait_for(lambda: self.peers() == 1, self.deadline.left(30), "bt to leave the tracker")

    def __exit__(self, *exc: object) -> None:
        if self.seeder is not None:
            self.seeder.close()
            self.seeder = None
        self.tracker.stop()


def bt_daemon(workdir: Path, torrent: Path, download_dir: Path, *extra: str) -> BtDaemon:
    """``twistd -n bittorrent`` as the benchmarks run it: without the control API, whose
    fixed default port two daemons (or a developer's own bt) would fight over."""
    from bt.tap import Options

    off = ("--control", "none") if any(p[0] == "control" for p in Options.optParameters) else ()
    return BtDaemon(workdir, torrent, download_dir, (*off, *extra))


def bt_seeder(
    workdir: Path, torrent: Path, data: Path, peers: int, env: dict[str, str] | None = None
) -> BtDaemon:
    """bt as the seeding benches run it: every peer unchoked, room for ``peers`` and more."""
    daemon = bt_daemon(
        workdir,
        torrent,
        data,
        "--max-peers",
        str(peers + 50),
        "--max-connections",
        str(peers * 2 + 50),
        "--upload-slots",
        "-1",
    )
    daemon.env.update(env or {})
    return daemon


def start_seeding(daemon: BtDaemon, budget: float) -> int:
    """Start bt on complete data, wait until it has checked it; returns its listening port."""
    daemon.workdir.mkdir()
    daemon.start()
    follow_bt(daemon, {"checked": "pieces already on disk"}, "checked", budget, "check its data")
    found = re.search(r"listening for peers on port (\d+)", daemon.log())
    if found is None:
        raise RuntimeError(f"bt did not log its port:\n{daemon.log()[-3000:]}")
    return int(found.group(1))


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


def follow_bt(
    daemon: BtDaemon,
    markers: dict[str, str],
    until: str,
    budget: float,
    what: str,
    on_poll: Callable[[LogWatcher], None] | None = None,
) -> LogWatcher:
    """Poll a started bt's log every LOG_POLL until marker ``until`` shows up.

    Fails fast, with the log's tail, if bt exits or ``budget`` seconds pass first:
    ``what`` completes the message "bt did not ... in time".
    """
    assert daemon.process is not None
    watcher = LogWatcher(daemon.logfile, daemon.process.pid, markers)
    limit = time.monotonic() + budget
    while until not in watcher.seen:
        if daemon.process.poll() is not None:
            raise RuntimeError(
                f"bt exited with {daemon.process.returncode}:\n{daemon.log()[-4000:]}"
            )
        if time.monotonic() > limit:
            raise TimeoutError(f"bt did not {what} in time:\n{daemon.log()[-4000:]}")
        time.sleep(LOG_POLL)
        watcher.poll()
        if on_poll is not None:
            on_poll(watcher)
    return watcher


def connected_to(port: int | Collection[int]) -> bool:
    """Whether some loopback TCP connection to ``port`` (or any of several) is established
    now (/proc/net/tcp).

    bt logs its peer connections at debug level only, so a bench that must not slow bt
    down with debug logging notes bt's first peer as the moment a connection to the
    seeder's port (whose only client is bt at that time) shows up in the kernel's table.
    """
    wanted = {f"{p:04X}" for p in ([port] if isinstance(port, int) else port)}
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split(None, 4)
            # fields: slot, local address, remote address, state (01: ESTABLISHED)
            if fields[3] == "01" and fields[2].rsplit(":", 1)[1] in wanted:
                return True
    return False


def warn_on_bt_errors(log: str) -> None:
    """bt keeps running past a logged traceback: surface it rather than trust the figures."""
    if "Traceback" in log or "Unhandled" in log:
        print(f"warning: bt logged an error:\n{log[-3000:]}", file=sys.stderr)


def run_reporter(command: list[str], report: Path, timeout: float, what: str) -> dict[str, Any]:
    """Run a child that writes its figures as JSON to ``report``; kill it if it overruns.

    The libtorrent sides run in their own processes so their /proc figures are clean.
    """
    process = subprocess.Popen(command, env=QUIET_ENV)
    try:
        status = process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    if status != 0 or not report.exists():
        raise RuntimeError(f"{what} failed with status {status}")
    return json.loads(report.read_text())


def stop_process(process: subprocess.Popen[bytes], sig: int, grace: float) -> None:
    """Ask a child to stop with ``sig`` (it may have output to write), then kill it."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


#: libtorrent at its best on loopback: the throughput settings of its own
#: ``high_performance_seed()`` pack (deep send buffers and request queues, every peer
#: unchoked, room for many connections and files), without the ones that would slow it
#: here (its 7 MiB disk queue is smaller than the default 100 MiB) or do not apply
#: (timeouts, uTP, queueing limits of auto-managed torrents, which the benches never use).
LT_BEST: dict[str, Any] = {
    "unchoke_slots_limit": -1,
    "connections_limit": 8000,
    "listen_queue_size": 3000,
    "connection_speed": 500,
    "max_out_request_queue": 1500,
    "max_peer_recv_buffer_size": 5 * MIB,
    "send_buffer_low_watermark": MIB,
    "send_buffer_watermark": 3 * MIB,
    "send_buffer_watermark_factor": 150,
    "send_not_sent_low_watermark": 512 * 1024,
    "file_pool_size": 500,
    "alert_queue_size": 10000,
}


def lt_best() -> dict[str, Any]:
    """LT_BEST, or nothing with BT_BENCH_LT_DEFAULTS=1 (to measure what LT_BEST buys)."""
    return {} if os.environ.get("BT_BENCH_LT_DEFAULTS") == "1" else LT_BEST


def lt_session(alerts: int, **settings: Any) -> libtorrent.session:
    """A libtorrent session confined to loopback like the integration tests' peers,
    with LT_BEST applied (``settings`` override both)."""
    import libtorrent as lt

    config = libtorrent_settings()
    config.update(lt_best())
    config["alert_mask"] = alerts
    config.update(settings)
    return lt.session(config)


def lt_params(torrent: Path, save: Path) -> libtorrent.add_torrent_params:
    """Parameters adding ``torrent`` with its data in ``save``, started at once.

    Not auto-managed and not paused: an auto-managed torrent waits for libtorrent's
    queue to start it on its next tick, up to a second late, which slowed the reference
    of a 2-4 s transfer (issue 18).
    """
    import libtorrent as lt

    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent.read_bytes()))
    params.save_path = str(save)
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    return params


def lt_reference_peer(torrent: bytes, save: Path, **settings: Any) -> LibtorrentPeer:
    """The integration tests' LibtorrentPeer (a seeder of ``save``) as a benchmark's
    reference: LT_BEST applied, its torrent taken off libtorrent's queue and started."""
    import libtorrent as lt

    peer = LibtorrentPeer(torrent, save)
    peer.session.apply_settings({**lt_best(), **settings})
    peer.handle.unset_flags(lt.torrent_flags.auto_managed)
    peer.handle.resume()
    return peer


def lt_download(
    session: libtorrent.session,
    limit: float,
    on_first_peer: Callable[[], None],
    on_finished: Callable[[], None],
) -> None:
    """Pump alerts until the torrent finishes: hooks for the first peer and the finish,
    so the caller samples /proc at the moment libtorrent reports them."""
    import libtorrent as lt

    first = False
    while True:
        if time.monotonic() > limit:
            raise TimeoutError("libtorrent did not complete in time")
        session.wait_for_alert(50)
        for alert in session.pop_alerts():
            if not first and isinstance(alert, lt.peer_connect_alert):
                first = True
                on_first_peer()
            elif isinstance(alert, lt.torrent_finished_alert):
                on_finished()
                return
            elif isinstance(alert, lt.torrent_error_alert):
                raise RuntimeError(alert.message())


def start_profiler(
    pid: int,
    out: Path,
    threads: bool = False,
    gil: bool = False,
    idle: bool = False,
    fmt: str = "raw",
    rate: int | None = None,
) -> subprocess.Popen[bytes]:
    """py-spy sampling bt without pausing it (--nonblocking), as collapsed stacks.

    ``threads`` roots each stack at its thread; ``gil`` samples only the GIL holder;
    ``idle`` keeps samples of threads waiting (epoll_wait, locks), for wall-clock shares;
    ``fmt`` is py-spy's output format (raw collapsed stacks, flamegraph or speedscope);
    ``rate`` is samples per second (py-spy's default: 100).
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--nonblocking"]
    command += ["--threads"] if threads else []
    command += ["--gil"] if gil else []
    command += ["--idle"] if idle else []
    command += ["--rate", str(rate)] if rate else []
    command += ["--format", fmt, "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def gil_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on bt's process: who holds the GIL, per thread, 250 samples a second."""
    return start_profiler(pid, out, threads=True, gil=True, rate=250)


def wall_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on bt's process: every thread, waiting or not (wall-clock shares)."""
    return start_profiler(pid, out, threads=True, idle=True, rate=250)


def stop_profiler(process: subprocess.Popen[bytes]) -> None:
    """py-spy writes its output on interrupt, so SIGINT it rather than kill it."""
    stop_process(process, signal.SIGINT, 30)


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


def print_hot_spots(who: str, summary: dict[str, list[tuple[str, float]]]) -> None:
    """The profile summary as two ranked lists, self then inclusive."""
    print(f"\n{who} hot spots, % of py-spy samples (self):")
    for frame, percent in summary["self"]:
        print(f"  {percent:5.1f}  {frame}")
    print(f"{who} hot spots, % of py-spy samples (inclusive):")
    for frame, percent in summary["inclusive"]:
        print(f"  {percent:5.1f}  {frame}")


def recycle_pages(work: Path, size: int) -> None:
    """Write scratch bytes and delete them just before a client starts, so the page
    cache it fills comes from memory this VM already holds.

    On a VM whose balloon reports freed memory back to the host within seconds,
    writing into pages fresh from the host costs several times as much as into pages
    freed a moment ago (session 31, ``bench/pages.py``: 512 MiB in 0.65 s of sys CPU
    fresh, 0.09 s recycled, 0.62 s again 5 s later). The host takes freed memory back
    progressively, so a client that starts and finishes later would get fewer cheap
    pages: ``RECYCLE_FACTOR`` times the torrent's size is freed (capped at a quarter
    of the memory available), which kept a 1 GiB write cheap 3 s after (0.49 s of sys
    CPU, against 1.37 s when only 1 GiB was freed)."""
    scratch = work / "recycled-pages.tmp"
    block = bytes(MIB)
    room = _mem_available() // 4
    with scratch.open("wb") as file:
        for _ in range(max(1, min(RECYCLE_FACTOR * size, room) // MIB)):
            file.write(block)
    scratch.unlink()  # dirty pages of a deleted file are dropped, never written back


#: How many times the torrent's size ``recycle_pages`` frees.
RECYCLE_FACTOR = 3


def _mem_available() -> int:
    """MemAvailable from /proc/meminfo, in bytes (a generous guess where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * GIB


def settle() -> None:
    """Write back dirty pages now, so the kernel's writeback of earlier data (after 30 s)
    does not land in the middle of the next download and slow only that client."""
    begun = time.monotonic()
    os.sync()
    print(f"sync took {time.monotonic() - begun:.1f} s", flush=True)


def cpu_window(pid: int, seconds: float) -> tuple[ProcSample, ProcSample]:
    """/proc samples of ``pid`` ``seconds`` apart: CPU share and memory over an idle window."""
    first = sample_proc(pid)
    time.sleep(seconds)
    return first, sample_proc(pid)


def context_switches(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid`` so far (its wake-ups)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            status = Path(f"/proc/{pid}/task/{task}/status").read_text()
        except FileNotFoundError:
            continue  # a thread that just ended
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def cpu_percent(first: ProcSample, last: ProcSample) -> float:
    """CPU used between two samples, in % of one core."""
    return 100.0 * (last.cpu - first.cpu) / max(last.at - first.at, 1e-9)


def uptime() -> str:
    """``uptime``'s line (load averages over 1, 5 and 15 minutes), kept with the figures."""
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return f"load average: {loadavg()}"


def loadavg() -> str:
    """Other work on the machine skews the figures: record how busy it was."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def git_commit(tree: Path = ROOT) -> str:
    """The commit ``tree`` is at, with "+dirty" when its tracked files have changes."""

    def git(*command: str) -> str:
        found = subprocess.run(
            ["git", "-C", str(tree), *command], capture_output=True, text=True, check=False
        )
        return found.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def machine_facts() -> dict[str, Any]:
    """What the figures depend on, kept with them in the JSON."""
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
        "uptime_at_start": uptime(),
    }


def mib(kib: int) -> str:
    """A /proc memory figure (KiB) as a table cell."""
    return f"{kib / 1024:.0f} MiB"


def seconds(value: float | None) -> str:
    """A duration as a table cell; "-" when it was not measured."""
    return "-" if value is None else f"{value:.2f} s"


def side_by_side(
    corner: str, rows: Iterable[tuple[str, str, str]], bt_rate: float, lt_rate: float
) -> str:
    """bt and libtorrent in two right-aligned columns, ending with their rate ratio."""
    rows = list(rows)
    width = max(len(r[0]) for r in rows)
    lines = [f"{corner:{width}}  {'bt':>12}  {'libtorrent':>12}"]
    lines += [f"{label:{width}}  {a:>12}  {b:>12}" for label, a, b in rows]
    lines.append(f"{'ratio bt/libtorrent (rate)':{width}}  {bt_rate / lt_rate:>12.3f}")
    return "\n".join(lines)


def base_parser(description: str, out_name: str) -> argparse.ArgumentParser:
    """The options every benchmark takes; each adds its own after these."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size-mib", type=int, default=1024, help="torrent size (default 1024)")
    parser.add_argument("--piece-kib", type=int, default=1024, help="piece length (default 1024)")
    parser.add_argument(
        "--timeout", type=float, default=900, help="budget for the whole run, seconds"
    )
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where the data is written")
    parser.add_argument("--out", type=Path, default=OUT_DIR / out_name, help="JSON results")
    return parser


def add_fresh_pages_option(parser: argparse.ArgumentParser) -> None:
    """For benchmarks that give each downloading client its memory through ``Pages``."""
    parser.add_argument(
        "--fresh-pages",
        action="store_true",
        help="skip recycle_pages: every client writes into memory fresh from the host",
    )


@dataclass(frozen=True)
class Pages:
    """The memory every downloading client of a run writes into, the same for each:
    recycled (``recycle_pages`` just before it starts) or, with ``--fresh-pages``,
    fresh from the host."""

    fresh: bool

    @classmethod
    def of(cls, args: argparse.Namespace) -> Pages:
        return cls(args.fresh_pages)

    @property
    def label(self) -> str:
        """What the results record."""
        return "fresh" if self.fresh else "recycled"

    def scratch_bytes(self, size: int) -> int:
        """Disk room ``before_client`` may take for a torrent of ``size`` bytes."""
        return 0 if self.fresh else RECYCLE_FACTOR * size

    def before_client(self, work: Path, size: int) -> None:
        if not self.fresh:
            recycle_pages(work, size)


def exit_on_sigterm() -> None:
    """A SIGTERM must still run the finally blocks that kill children and remove the data."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def write_results(out: Path, results: dict[str, Any]) -> None:
    """The JSON that docs/performance.rst is written from."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")
