"""bt at scale, against libtorrent where it compares: many pieces, many peers, many torrents.

Run: python bench/scale.py pieces|peers|torrents|all [--quick] [--profile]
(needs libtorrent; ``pieces`` also needs opentracker for its real download).

- ``pieces``: ``PiecePicker`` and ``Bitfield`` driven directly for a torrent of
  102,400 pieces of 16 KiB (1.6 GiB): construction, peer bitfields, every pick of a
  whole simulated download, HAVEs, bitfield encode/decode. libtorrent's picker is not
  reachable from Python, so the comparison is a real download of a 102,400-piece
  torrent from a libtorrent seeder, bt then libtorrent, through bench/download.py
  (``--download-mib 0`` skips it).
- ``peers``: one seeder, 200 peer connections from a light peer-wire client written
  here (asyncio, its own process). Every connection handshakes and says interested;
  after an idle phase each requests whole random pieces, 16 blocks in flight, for a
  fixed time. The seeder is bt (``twistd -n bittorrent``, all peers unchoked) and then a
  libtorrent session (unchoke and connection limits lifted) on the same data: handshakes
  completed, seeder CPU % of one core idle and transferring, RSS, throughput.
- ``torrents``: one process holding 1,000 tiny torrents (one 16-48 KiB file each,
  complete on disk, no trackers, no peers), built with ``bt.session.Session``; RSS per
  torrent, idle CPU and wake-ups per second over a window after every torrent seeds. The same 1,000
  torrents in one libtorrent session (not auto-managed, so all are active) for reference.

``--profile`` runs py-spy on bt during the 200-connection run (all threads) and during
an extra idle window of the 1,000 torrents after the measured one (GIL holder only, so
the samples are bt's Python CPU, not time asleep in epoll_wait); raw collapsed stacks go
to bench/out/scale-*-profile.txt and a summary into the JSON. ``--tracemalloc`` traces
the 1,000-torrent process's Python allocations and prints the largest sites (it inflates
that run's RSS and CPU: take those figures from a run without it).
Writes bench/out/scale-<case>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    MIB,
    OUT_DIR,
    QUIET_ENV,
    Deadline,
    ProcSample,
    bt_seeder,
    context_switches,
    cpu_percent,
    cpu_window,
    exit_on_sigterm,
    lt_session,
    machine_facts,
    make_content,
    print_hot_spots,
    profile_summary,
    require_free,
    sample_proc,
    start_profiler,
    start_seeding,
    stop_process,
    stop_profiler,
    warn_on_bt_errors,
    write_results,
)
from swarm import wait_for
from torrents import libtorrent_torrent

#: Targets of issue 8 for the 1,000-torrent process.
TARGET_TORRENTS_RSS_MIB = 300
TARGET_TORRENTS_IDLE_CPU = 2.0
BLOCK = 16 * 1024


# -- pieces: the picker and bitfields of a 100k-piece torrent ---------------------------


def timed(function: Any, *args: Any) -> tuple[float, Any]:
    begun = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - begun, value


def picker_bench(pieces: int, piece_length: int, partial_peers: int, seeds: int) -> dict[str, Any]:
    """Drive a PiecePicker through a whole download of ``pieces`` pieces, timing each call."""
    from bt.bitfield import Bitfield
    from bt.geometry import PieceGeometry
    from bt.policy.picker import PiecePicker

    rng = random.Random(8)
    total = pieces * piece_length
    out: dict[str, Any] = {"pieces": pieces, "piece_length": piece_length}
    geometry = PieceGeometry(pieces, piece_length, total)
    construct_s, picker = timed(PiecePicker, geometry, random.Random(1))
    out["construct_ms"] = construct_s * 1e3

    # Peer bitfields: seeds, and partial peers holding a random half of the pieces.
    raw: list[bytes] = []
    for _ in range(partial_peers):
        data = bytearray(rng.randbytes((pieces + 7) // 8))
        spare = len(data) * 8 - pieces
        if spare:
            data[-1] &= (0xFF << spare) & 0xFF
        raw.append(bytes(data))
    decode_s, fields = timed(lambda: [Bitfield.from_bytes(d, pieces) for d in raw])
    encode_s, _ = timed(lambda: [f.to_bytes() for f in fields])
    iterate_s, _ = timed(lambda: [sum(1 for _ in f) for f in fields])
    out["bitfield_decode_us"] = decode_s / partial_peers * 1e6
    out["bitfield_encode_us"] = encode_s / partial_peers * 1e6
    out["bitfield_iterate_ms"] = iterate_s / partial_peers * 1e3
    peers: list[tuple[str, Bitfield]] = [(f"seed{n}", Bitfield.full(pieces)) for n in range(seeds)]
    peers += [(f"peer{n}", f) for n, f in enumerate(fields)]
    add_s = 0.0
    for key, field in peers:
        took, _ = timed(picker.add_peer_bitfield, key, field)
        add_s += took
    out["add_partial_bitfield_ms"] = add_s / max(partial_peers, 1) * 1e3

    # HAVEs from the partial peers for pieces they lack (as the swarm progresses).
    haves = 0
    have_s = 0.0
    for key, field in peers[seeds:]:
        for index in rng.sample(range(pieces), 2000):
            if index not in field:
                field.add(index)
                begun = time.perf_counter()
                picker.add_peer_have(key, index)
                have_s += time.perf_counter() - begun
                haves += 1
    out["peer_have_us"] = have_s / max(haves, 1) * 1e6

    # The download: round-robin over the peers, 16 blocks per pick, each block arrives,
    # each completed piece becomes ours.
    picks = blocks = 0
    pick_s = received_s = ours_s = 0.0
    copy_s = 0.0
    done = 0
    while not picker.is_finished:
        progressed = False
        for key, field in peers:
            begun = time.perf_counter()
            requests = picker.pick(key, field, 16)
            pick_s += time.perf_counter() - begun
            picks += 1
            for request in requests:
                begun = time.perf_counter()
                result = picker.block_received(key, request.index, request.begin, request.length)
                received_s += time.perf_counter() - begun
                blocks += 1
                progressed = True
                if result.piece_complete:
                    begun = time.perf_counter()
                    picker.have(request.index)
                    ours_s += time.perf_counter() - begun
                    done += 1
                    if done % 1024 == 0:
                        took, _ = timed(picker.have_bitfield)
                        copy_s += took
            if picker.is_finished:
                break
        if not progressed:
            raise RuntimeError("the simulated download stalled")
    out["picks"] = picks
    out["blocks"] = blocks
    out["pick_us"] = pick_s / picks * 1e6
    out["pieces_examined_per_pick"] = picker.pieces_examined / picks
    out["block_received_us"] = received_s / blocks * 1e6
    out["have_us"] = ours_s / pieces * 1e6
    out["have_bitfield_copy_us"] = copy_s / max(pieces // 1024, 1) * 1e6
    out["picker_total_s"] = pick_s + received_s + ours_s
    key, field = peers[-1]
    gone_s, _ = timed(picker.peer_gone, key, field)
    out["peer_gone_ms"] = gone_s * 1e3
    return out


def case_pieces(args: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    pieces = 12_800 if args.quick else 102_400
    micro = picker_bench(pieces, BLOCK, partial_peers=20, seeds=10)
    print(f"picker, {pieces} pieces of 16 KiB, 30 peers (10 seeds):")
    for name, value in micro.items():
        print(f"  {name:28} {value:12.3f}" if isinstance(value, float) else f"  {name:28} {value}")
    results: dict[str, Any] = {"picker": micro}
    download_mib = (
        args.download_mib if args.download_mib is not None else (200 if args.quick else 1600)
    )
    if download_mib:
        import download

        dl_args = download.parse_args(
            [
                "--size-mib",
                str(download_mib),
                "--piece-kib",
                "16",
                "--tmp",
                str(args.tmp),
                "--timeout",
                f"{deadline.left():.0f}",
            ]
        )
        results["download"] = download.bench(dl_args)
    return results


# -- peers: 200 connections to one seeder --------------------------------------------


class WireClient(asyncio.Protocol):
    """One light peer: handshake, INTERESTED, then (when told) whole random pieces."""

    def __init__(self, swarm: ClientSwarm, number: int) -> None:
        self.swarm = swarm
        self.peer_id = b"-BC0001-" + f"{number:012d}".encode()
        self.buffer = bytearray()
        self.handshaken = False
        self.unchoked = False
        self.outstanding = 0
        self.piece = -1
        self.next_block = 0
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"\x13BitTorrent protocol" + bytes(8) + self.swarm.info_hash + self.peer_id)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.swarm.lost += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        position = 0
        if not self.handshaken:
            if len(buffer) < 68:
                return
            if buffer[28:48] != self.swarm.info_hash:
                assert self.transport is not None
                self.transport.close()
                return
            self.handshaken = True
            self.swarm.handshakes += 1
            assert self.transport is not None
            self.transport.write(b"\x00\x00\x00\x01\x02")  # INTERESTED
            position = 68
        end = len(buffer)
        requests = False
        while end - position >= 4:
            length = int.from_bytes(buffer[position : position + 4], "big")
            if end - position - 4 < length:
                break
            if length:
                kind = buffer[position + 4]
                if kind == 7:
                    self.swarm.received += length - 9
                    self.outstanding -= 1
                    requests = True
                elif kind == 1:
                    if not self.unchoked:
                        self.unchoked = True
                        self.swarm.unchoked += 1
                    requests = True
                elif kind == 0:
                    if self.unchoked:
                        self.unchoked = False
                        self.swarm.unchoked -= 1
                    self.outstanding = 0  # BEP 3: a choke drops our requests
                    self.piece = -1
            position += 4 + length
        del buffer[:position]
        if requests:
            self.request_more()

    def request_more(self) -> None:
        swarm = self.swarm
        if not (swarm.transferring and self.unchoked) or self.closed:
            return
        depth = swarm.depth
        if self.outstanding > depth // 2:
            return
        parts = []
        while self.outstanding < depth:
            if self.piece < 0 or self.next_block >= swarm.blocks_in(self.piece):
                self.piece = swarm.rng.randrange(swarm.num_pieces)
                self.next_block = 0
            begin = self.next_block * BLOCK
            length = min(BLOCK, swarm.piece_size(self.piece) - begin)
            parts.append(struct.pack(">IBIII", 13, 6, self.piece, begin, length))
            self.next_block += 1
            self.outstanding += 1
        assert self.transport is not None
        self.transport.write(b"".join(parts))


class ClientSwarm:
    """The light client's connections and their shared counters."""

    def __init__(self, info_hash: bytes, piece_length: int, total: int, depth: int) -> None:
        self.info_hash = info_hash
        self.piece_length = piece_length
        self.total = total
        self.num_pieces = -(-total // piece_length)
        self.depth = depth
        self.rng = random.Random(200)
        self.handshakes = 0
        self.unchoked = 0
        self.lost = 0
        self.received = 0
        self.transferring = False
        self.clients: list[WireClient] = []

    def piece_size(self, index: int) -> int:
        if index == self.num_pieces - 1:
            return self.total - self.piece_length * index
        return self.piece_length

    def blocks_in(self, index: int) -> int:
        return -(-self.piece_size(index) // BLOCK)


async def client_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Connect, idle, transfer, each phase timed and the seeder sampled at its edges."""
    loop = asyncio.get_running_loop()
    seeder = spec["seeder_pid"]
    swarm = ClientSwarm(
        bytes.fromhex(spec["info_hash"]), spec["piece_length"], spec["total"], spec["depth"]
    )
    samples: dict[str, dict[str, Any]] = {}
    io: dict[str, int] = {}

    def sample(name: str) -> None:
        samples[name] = asdict(sample_proc(seeder))
        samples[f"client_{name}"] = asdict(sample_proc(os.getpid()))
        io[name] = read_chars(seeder)

    sample("start")
    began = time.monotonic()

    async def connect(number: int) -> None:
        client = WireClient(swarm, number)
        swarm.clients.append(client)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: client, "127.0.0.1", spec["port"]), 20
            )
        except (TimeoutError, OSError):
            swarm.lost += 1

    await asyncio.gather(*(connect(n) for n in range(spec["connections"])))
    limit = time.monotonic() + spec["connect_s"]
    while swarm.handshakes + swarm.lost < spec["connections"] and time.monotonic() < limit:
        await asyncio.sleep(0.01)
    connected_at = time.monotonic()
    # The seeder unchokes on its own schedule (bt: at its next choke round, within 10 s).
    limit = time.monotonic() + spec["unchoke_s"]
    while swarm.unchoked < swarm.handshakes and time.monotonic() < limit:
        await asyncio.sleep(0.05)
    unchoked_at = time.monotonic()
    sample("idle_start")
    await asyncio.sleep(spec["idle_s"])
    sample("idle_end")
    handshakes_idle = swarm.handshakes - swarm.lost
    swarm.transferring = True
    before = swarm.received
    sample("transfer_start")
    for client in swarm.clients:
        client.request_more()
    await asyncio.sleep(spec["transfer_s"])
    sample("transfer_end")
    received = swarm.received - before
    swarm.transferring = False
    still_open = sum(1 for c in swarm.clients if c.handshaken and not c.closed)
    for client in swarm.clients:
        if client.transport is not None:
            client.transport.close()
    await asyncio.sleep(0.2)
    return {
        "connections": spec["connections"],
        "handshakes": swarm.handshakes,
        "connected_s": connected_at - began,
        "unchoked": swarm.unchoked,
        "unchoke_wait_s": unchoked_at - connected_at,
        "open_after_idle": handshakes_idle,
        "open_at_end": still_open,
        "received_bytes": received,
        "seeder_read_bytes": io["transfer_end"] - io["transfer_start"],
        "samples": samples,
    }


def read_chars(pid: int) -> int:
    """Bytes the process has read with read/pread so far (/proc/<pid>/io ``rchar``)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def client_main(spec_path: Path, report: Path) -> None:
    spec = json.loads(spec_path.read_text())
    result = asyncio.run(asyncio.wait_for(client_run(spec), spec["budget"]))
    report.write_text(json.dumps(result))


def lt_seed_main(torrent: Path, save: Path, ready: Path, budget: float, connections: int) -> None:
    """A libtorrent seeder with its connection and unchoke limits lifted, until SIGTERM."""
    import libtorrent as lt

    session = lt_session(
        0, connections_limit=connections * 2, unchoke_slots_limit=-1, listen_queue_size=connections
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent.read_bytes()))
    params.save_path = str(save)
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = session.add_torrent(params)
    parent = os.getppid()
    limit = time.monotonic() + budget
    wait_for(lambda: handle.status().is_seeding, budget, "libtorrent to check its data", 0.02)
    partial = ready.with_suffix(".tmp")
    partial.write_text(json.dumps({"port": session.listen_port()}))
    partial.rename(ready)
    while time.monotonic() < limit and os.getppid() == parent:
        time.sleep(0.2)


def client_meta(torrent: Path) -> dict[str, Any]:
    """What the peer-wire client needs to know of the torrent it requests pieces of."""
    from bt.metainfo import load_metainfo

    metainfo = load_metainfo(torrent)
    return {
        "info_hash": metainfo.info_hash.hex(),
        "piece_length": metainfo.piece_length,
        "total": metainfo.total_length,
    }


def run_client(
    work: Path, label: str, port: int, seeder: int, meta: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    spec = {
        **meta,
        "port": port,
        "seeder_pid": seeder,
        "connections": args.connections,
        "depth": 16,
        "connect_s": 30,
        "unchoke_s": 15,
        "idle_s": args.idle_s,
        "transfer_s": args.transfer_s,
    }
    spec["budget"] = spec["connect_s"] + spec["unchoke_s"] + args.idle_s + args.transfer_s + 30
    spec_path = work / f"client-{label}.json"
    spec_path.write_text(json.dumps(spec))
    report = work / f"client-{label}-report.json"
    command = [sys.executable, __file__, "--client", str(spec_path), str(report)]
    process = subprocess.Popen(command, env=QUIET_ENV)
    try:
        status = process.wait(spec["budget"] + 10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    if status != 0 or not report.exists():
        raise RuntimeError(f"the peer-wire client ({label}) failed with status {status}")
    return summarise_client(json.loads(report.read_text()))


def summarise_client(report: dict[str, Any]) -> dict[str, Any]:
    s = {name: ProcSample(**value) for name, value in report.pop("samples").items()}
    transfer_s = s["transfer_end"].at - s["transfer_start"].at
    return {
        **report,
        "throughput_mb_s": round(report["received_bytes"] / transfer_s / 1e6, 2),
        # Bytes the seeder read (files, and its sockets' few requests) per byte it sent.
        "seeder_read_per_byte_sent": round(
            report["seeder_read_bytes"] / max(report["received_bytes"], 1), 3
        ),
        "seeder_idle_cpu_percent": round(cpu_percent(s["idle_start"], s["idle_end"]), 2),
        "seeder_transfer_cpu_percent": round(
            cpu_percent(s["transfer_start"], s["transfer_end"]), 1
        ),
        "seeder_cpu_s_per_gib": round(
            (s["transfer_end"].cpu - s["transfer_start"].cpu)
            / max(report["received_bytes"] / 2**30, 1e-9),
            3,
        ),
        "client_transfer_cpu_percent": round(
            cpu_percent(s["client_transfer_start"], s["client_transfer_end"]), 1
        ),
        "seeder_rss_idle_kib": s["idle_end"].vm_rss_kib,
        "seeder_rss_before_kib": s["start"].vm_rss_kib,
        "seeder_vm_hwm_kib": s["transfer_end"].vm_hwm_kib,
        "seeder_rss_anon_end_kib": s["transfer_end"].rss_anon_kib,
    }


def case_peers(args: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    size_mib = 32 if args.quick else 256
    require_free(args.tmp, size_mib * MIB + 2**30)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-peers-", dir=args.tmp))
    results: dict[str, Any] = {"size_mib": size_mib, "connections": args.connections}
    try:
        content, _ = make_content(work, "data", size_mib)
        torrent = work / "bare.torrent"
        torrent.write_bytes(libtorrent_torrent(content, MIB))
        meta = client_meta(torrent)
        os.sync()
        # bt: as a user runs it, all peers unchoked, room for every connection.
        daemon = bt_seeder(work / "bt", torrent, content.parent, args.connections)
        profile = OUT_DIR / "scale-peers-bt-profile.txt" if args.profile else None
        profiler = None
        try:
            port = start_seeding(daemon, deadline.left(120))
            assert daemon.process is not None
            if profile is not None:
                # Sampled throughout (idle and transfer): the transfer dominates the samples.
                profiler = start_profiler(daemon.process.pid, profile, threads=True)
                time.sleep(1)
            print(f"bt seeding on port {port}; {args.connections} peers", flush=True)
            results["bt"] = run_client(work, "bt", port, daemon.process.pid, meta, args)
        finally:
            if profiler is not None:
                stop_profiler(profiler)
            daemon.stop()
        warn_on_bt_errors(daemon.log())
        print_peers("bt", results["bt"])
        time.sleep(deadline.left(3))
        ready = work / "lt-ready.json"
        command = [
            sys.executable,
            __file__,
            "--lt-seed",
            str(torrent),
            str(content.parent),
            str(ready),
            f"{deadline.left():.0f}",
            str(args.connections),
        ]
        process = subprocess.Popen(command, env=QUIET_ENV)
        try:

            def is_ready() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"the libtorrent seeder exited with {process.returncode}")
                return ready.exists()

            wait_for(is_ready, deadline.left(120), "the libtorrent seeder", 0.05)
            port = json.loads(ready.read_text())["port"]
            print(f"libtorrent seeding on port {port}; {args.connections} peers", flush=True)
            results["libtorrent"] = run_client(work, "lt", port, process.pid, meta, args)
        finally:
            stop_process(process, signal.SIGTERM, 20)
        print_peers("libtorrent", results["libtorrent"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bt, lt_result = results["bt"], results["libtorrent"]
    results["ratio_throughput_bt_libtorrent"] = round(
        bt["throughput_mb_s"] / max(lt_result["throughput_mb_s"], 1e-9), 4
    )
    if profile is not None and profile.exists():
        summary = profile_summary(profile, top=25)
        results["bt_profile"] = {**summary, "raw": str(profile)}
        print_hot_spots("bt seeder, 200 peers", summary)
    return results


def print_peers(who: str, figures: dict[str, Any]) -> None:
    print(
        f"{who}: {figures['handshakes']}/{figures['connections']} handshakes in "
        f"{figures['connected_s']:.2f} s, {figures['unchoked']} unchoked, "
        f"{figures['open_at_end']} open at the end; idle CPU "
        f"{figures['seeder_idle_cpu_percent']:.1f}%, transfer "
        f"{figures['throughput_mb_s']:.1f} MB/s at {figures['seeder_transfer_cpu_percent']:.0f}% "
        f"CPU ({figures['seeder_cpu_s_per_gib']:.2f} s/GiB; client "
        f"{figures['client_transfer_cpu_percent']:.0f}%), RSS "
        f"{figures['seeder_rss_idle_kib'] / 1024:.0f} MiB idle, peak "
        f"{figures['seeder_vm_hwm_kib'] / 1024:.0f} MiB; read "
        f"{figures['seeder_read_per_byte_sent']:.2f} bytes per byte sent",
        flush=True,
    )


# -- torrents: 1,000 idle torrents in one process --------------------------------------


def make_torrents(folder: Path, count: int) -> list[Path]:
    """``count`` single-file torrents of 16-48 KiB each, their data complete in ``folder``."""
    from bt import bencode

    rng = random.Random(1000)
    data_dir = folder / "data"
    meta_dir = folder / "torrents"
    data_dir.mkdir(parents=True)
    meta_dir.mkdir()
    paths = []
    for number in range(count):
        name = f"t{number:04d}.bin"
        payload = rng.randbytes(rng.randint(16, 48) * 1024)
        (data_dir / name).write_bytes(payload)
        pieces = b"".join(
            hashlib.sha1(payload[i : i + BLOCK]).digest() for i in range(0, len(payload), BLOCK)
        )
        info = {"name": name, "length": len(payload), "piece length": BLOCK, "pieces": pieces}
        path = meta_dir / f"{name}.torrent"
        path.write_bytes(bencode.encode({"info": info}))
        paths.append(path)
    return paths


def bt_torrents_main(folder: Path, ready: Path, budget: float) -> None:
    """bt's process: a Session holding every torrent in ``folder/torrents``, seeding.

    With BT_BENCH_TRACEMALLOC=1 (``--profile``), Python's allocations are traced from
    before bt is imported, and the largest allocation sites at readiness are reported.
    """
    import tracemalloc

    tracing = os.environ.get("BT_BENCH_TRACEMALLOC") == "1"
    if tracing:
        tracemalloc.start(1)
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from bt.metainfo import load_metainfo
    from bt.session import Session, SessionConfig

    log = open(folder / "bt.log", "w")  # open for the process's life
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log)], redirectStandardIO=False)
    baseline = sample_proc(os.getpid())
    config = SessionConfig(
        download_dir=folder / "data",
        state_dir=folder / "bt-state",
        listen="tcp:0:interface=127.0.0.1",
    )
    session = Session(config, reactor=reactor)
    begun = time.monotonic()
    for path in sorted((folder / "torrents").iterdir()):
        session.add_torrent(load_metainfo(path))
    added = sample_proc(os.getpid())

    def traced() -> dict[str, Any]:
        snapshot = tracemalloc.take_snapshot()
        size = sum(stat.size for stat in snapshot.statistics("filename"))
        return {
            "traced_kib": size // 1024,
            "by_file": [
                (str(stat.traceback), stat.size // 1024, stat.count)
                for stat in snapshot.statistics("filename")[:15]
            ],
            "by_line": [
                (str(stat.traceback), stat.size // 1024, stat.count)
                for stat in snapshot.statistics("lineno")[:25]
            ],
        }

    def poll() -> None:
        states = [t.state for t in session.torrents.values()]
        if all(state == "seeding" for state in states):
            partial = ready.with_suffix(".tmp")
            partial.write_text(
                json.dumps(
                    {
                        "baseline": asdict(baseline),
                        "added": asdict(added),
                        "ready": asdict(sample_proc(os.getpid())),
                        "startup_s": time.monotonic() - begun,
                        "torrents": len(states),
                        "tracemalloc": traced() if tracing else None,
                    }
                )
            )
            partial.rename(ready)
        else:
            reactor.callLater(0.1, poll)

    def start() -> None:
        session.privilegedStartService()
        session.startService()
        poll()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", session.stopService)
    reactor.callLater(budget, reactor.stop)
    reactor.run()


def lt_torrents_main(folder: Path, ready: Path, budget: float) -> None:
    """libtorrent's process: the same torrents in one session, all active, seeding."""
    import libtorrent as lt

    pid = os.getpid()
    baseline = sample_proc(pid)
    session = lt_session(0)
    begun = time.monotonic()
    handles = []
    for path in sorted((folder / "torrents").iterdir()):
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(path.read_bytes()))
        params.save_path = str(folder / "data")
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        handles.append(session.add_torrent(params))
    added = sample_proc(pid)
    wait_for(
        lambda: all(h.status().is_seeding for h in handles), budget, "libtorrent to check", 0.1
    )
    partial = ready.with_suffix(".tmp")
    partial.write_text(
        json.dumps(
            {
                "baseline": asdict(baseline),
                "added": asdict(added),
                "ready": asdict(sample_proc(pid)),
                "startup_s": time.monotonic() - begun,
                "torrents": len(handles),
            }
        )
    )
    partial.rename(ready)
    parent = os.getppid()
    limit = time.monotonic() + budget
    while time.monotonic() < limit and os.getppid() == parent:
        time.sleep(0.2)


def measure_torrents(
    folder: Path,
    who: str,
    args: argparse.Namespace,
    deadline: Deadline,
    profile: Path | None,
) -> dict[str, Any]:
    ready = folder / f"{who}-ready.json"
    flag = "--bt-torrents" if who == "bt" else "--lt-torrents"
    command = [sys.executable, __file__, flag, str(folder), str(ready), f"{deadline.left():.0f}"]
    env = {**QUIET_ENV, "BT_BENCH_TRACEMALLOC": "1" if args.tracemalloc else "0"}
    process = subprocess.Popen(command, env=env)
    try:

        def is_ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{who} with {args.torrents} torrents exited early")
            return ready.exists()

        wait_for(is_ready, deadline.left(240), f"{who} to seed every torrent", 0.1)
        figures = json.loads(ready.read_text())
        baseline, at_ready = ProcSample(**figures["baseline"]), ProcSample(**figures["ready"])
        print(
            f"{who}: {figures['torrents']} torrents seeding after {figures['startup_s']:.1f} s; "
            f"settling {args.settle_s:.0f} s, then idle for {args.window_s:.0f} s",
            flush=True,
        )
        # Start-up work (bt saves each torrent's record and first resume state a few
        # seconds after its check) is not idle time: measure the steady state.
        time.sleep(deadline.left(args.settle_s))
        switches = context_switches(process.pid)
        first, last = cpu_window(process.pid, deadline.left(args.window_s))
        wakeups = (context_switches(process.pid) - switches) / (last.at - first.at)
        result = {
            "torrents": figures["torrents"],
            "startup_s": round(figures["startup_s"], 2),
            "baseline_rss_kib": baseline.vm_rss_kib,
            "ready_rss_kib": at_ready.vm_rss_kib,
            "rss_kib": last.vm_rss_kib,
            "rss_anon_kib": last.rss_anon_kib,
            "vm_hwm_kib": last.vm_hwm_kib,
            "rss_per_torrent_kib": round(
                (last.vm_rss_kib - baseline.vm_rss_kib) / figures["torrents"], 1
            ),
            "idle_window_s": round(last.at - first.at, 1),
            "idle_cpu_percent": round(cpu_percent(first, last), 2),
            "idle_cpu_sys_percent": round(
                100 * (last.cpu_sys - first.cpu_sys) / (last.at - first.at), 2
            ),
            "threads": len(os.listdir(f"/proc/{process.pid}/task")),
            # Voluntary context switches of every thread: how often the process sleeps
            # and wakes (timers, epoll) while idle.
            "wakeups_per_s": round(wakeups, 1),
        }
        if figures.get("tracemalloc"):
            result["tracemalloc"] = figures["tracemalloc"]
        if profile is not None:
            # Only the GIL holder: epoll_wait releases it, so this is bt's Python CPU alone.
            profiler = start_profiler(
                process.pid, profile, threads=True, gil=True, rate=args.profile_rate
            )
            try:
                time.sleep(deadline.left(args.profile_s))
            finally:
                stop_profiler(profiler)
    finally:
        stop_process(process, signal.SIGTERM, 30)
    print(
        f"{who}: RSS {result['rss_kib'] / 1024:.0f} MiB "
        f"({result['rss_per_torrent_kib']:.1f} KiB per torrent over a "
        f"{result['baseline_rss_kib'] / 1024:.0f} MiB baseline), idle CPU "
        f"{result['idle_cpu_percent']:.2f}% of one core, {result['wakeups_per_s']:.0f} "
        f"wake-ups/s, {result['threads']} threads",
        flush=True,
    )
    return result


def case_torrents(args: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bt-bench-torrents-", dir=args.tmp))
    profile = OUT_DIR / "scale-torrents-bt-profile.txt" if args.profile else None
    try:
        begun = time.monotonic()
        make_torrents(work, args.torrents)
        print(f"made {args.torrents} torrents in {time.monotonic() - begun:.1f} s", flush=True)
        os.sync()
        results: dict[str, Any] = {"torrents": args.torrents}
        results["bt"] = measure_torrents(work, "bt", args, deadline, profile)
        log = (work / "bt.log").read_text(errors="replace")
        warn_on_bt_errors(log)
        results["bt"]["log_lines"] = log.count("\n")
        results["libtorrent"] = measure_torrents(work, "libtorrent", args, deadline, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bt = results["bt"]
    results["target_rss_mib"] = TARGET_TORRENTS_RSS_MIB
    results["target_idle_cpu_percent"] = TARGET_TORRENTS_IDLE_CPU
    results["passed"] = {
        "rss": bt["rss_kib"] / 1024 < TARGET_TORRENTS_RSS_MIB,
        "idle_cpu": bt["idle_cpu_percent"] < TARGET_TORRENTS_IDLE_CPU,
    }
    if profile is not None and profile.exists():
        summary = profile_summary(profile, top=25)
        results["bt_profile"] = {**summary, "raw": str(profile)}
        print_hot_spots(f"bt, {args.torrents} idle torrents", summary)
    traced = results["bt"].get("tracemalloc")
    if traced:
        print(f"\nbt, Python allocations at readiness: {traced['traced_kib'] / 1024:.1f} MiB")
        for where, kib, count in traced["by_line"]:
            print(f"  {kib:7d} KiB  {count:7d}  {where}")
    return results


# -- command line ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", nargs="?", choices=["pieces", "peers", "torrents", "all"])
    parser.add_argument("--quick", action="store_true", help="small sizes, short windows")
    parser.add_argument("--profile", action="store_true", help="py-spy bt (peers, torrents)")
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where data is written")
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    parser.add_argument("--timeout", type=float, default=600, help="budget per case, seconds")
    parser.add_argument(
        "--download-mib", type=int, default=None, help="pieces: real download size (1600; 0: none)"
    )
    parser.add_argument("--connections", type=int, default=200, help="peers: connections")
    parser.add_argument("--idle-s", type=float, default=None, help="peers: idle phase (15)")
    parser.add_argument("--transfer-s", type=float, default=None, help="peers: transfer (20)")
    parser.add_argument("--torrents", type=int, default=1000, help="torrents: how many")
    parser.add_argument("--window-s", type=float, default=None, help="torrents: idle window (60)")
    parser.add_argument("--profile-s", type=float, default=30, help="torrents: profiled window")
    parser.add_argument(
        "--profile-rate", type=int, default=None, help="torrents: py-spy samples/s (100)"
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="torrents: report bt's largest Python allocation sites (inflates its figures)",
    )
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--lt-seed", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--bt-torrents", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--settle-s", type=float, default=None, help="torrents: wait after start-up (15)"
    )
    parser.add_argument("--lt-torrents", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    if args.idle_s is None:
        args.idle_s = 5.0 if quick else 15.0
    if args.transfer_s is None:
        args.transfer_s = 5.0 if quick else 20.0
    if args.window_s is None:
        args.window_s = 10.0 if quick else 60.0
    if args.settle_s is None:
        args.settle_s = 5.0 if quick else 15.0
    if quick and args.torrents == 1000:
        args.torrents = 100
    return args


CASES = {"pieces": case_pieces, "peers": case_peers, "torrents": case_torrents}


def main() -> int:
    args = parse_args()
    if args.client:
        client_main(Path(args.client[0]), Path(args.client[1]))
        return 0
    if args.lt_seed:
        torrent, save, ready, budget, connections = args.lt_seed
        lt_seed_main(Path(torrent), Path(save), Path(ready), float(budget), int(connections))
        return 0
    if args.bt_torrents:
        folder, ready, budget = args.bt_torrents
        bt_torrents_main(Path(folder), Path(ready), float(budget))
        return 0
    if args.lt_torrents:
        folder, ready, budget = args.lt_torrents
        lt_torrents_main(Path(folder), Path(ready), float(budget))
        return 0
    if args.case is None:
        raise SystemExit("name a case: pieces, peers, torrents or all")
    exit_on_sigterm()
    names = list(CASES) if args.case == "all" else [args.case]
    for name in names:
        deadline = Deadline(args.timeout)
        facts = machine_facts()
        results = {"machine": facts, "quick": args.quick, **CASES[name](args, deadline)}
        out = args.out if args.out is not None and len(names) == 1 else None
        write_results(out or OUT_DIR / f"scale-{name}.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
