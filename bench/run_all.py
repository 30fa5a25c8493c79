"""Run every benchmark of bench/ once, side by side with libtorrent, and tabulate them.

Run: python bench/run_all.py [--quick] [--only CASE ...] [--skip CASE ...]
(needs libtorrent and opentracker, as the integration tests do).

Each case is its own script run in a subprocess with a time budget (download.py,
download.py --multi-file, seed.py, recheck.py, memory.py, scale.py pieces|peers|torrents,
bencode_bench.py); its JSON lands in bench/out/<case>.json. This script then writes
bench/out/results.json (every case's figures, with the load average) and
bench/out/results.md, a Markdown table: case, bt, libtorrent, ratio, target, pass/fail.
``--quick`` uses small sizes and short windows as a smoke check of the benchmarks
themselves (about 5 minutes; its figures say little), writing bench/out/quick/ and
bench/out/results-quick.{json,md} so full results are never overwritten.
A case that fails or overruns is reported as such and the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT_DIR, exit_on_sigterm, machine_facts, uptime

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One benchmark run: its command (full and quick) and its time budget."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    budget: float
    quick_budget: float = 240


CASES = [
    Case("download", "download.py", (), ("--size-mib", "64"), 420),
    Case(
        "download-multi",
        "download.py",
        ("--multi-file", "--files", "200"),
        ("--multi-file", "--files", "50", "--size-mib", "64"),
        420,
    ),
    Case("seed", "seed.py", (), ("--size-mib", "64"), 420),
    Case("recheck", "recheck.py", (), ("--size-mib", "64", "--no-cold"), 420),
    Case("memory", "memory.py", (), ("--small-mib", "64", "--large-mib", "256"), 600),
    Case("scale-pieces", "scale.py", ("pieces",), ("pieces", "--quick"), 600),
    Case("scale-peers", "scale.py", ("peers",), ("peers", "--quick"), 420),
    Case("scale-torrents", "scale.py", ("torrents",), ("torrents", "--quick"), 420),
    Case("bencode", "bencode_bench.py", (), (), 300, 300),
]


def run_case(case: Case, quick: bool, out_dir: Path, extra: list[str]) -> dict[str, Any]:
    """Run one case's script; its JSON results, or why there are none."""
    out = out_dir / f"{case.name}.json"
    out.unlink(missing_ok=True)
    budget = case.quick_budget if quick else case.budget
    command = [sys.executable, str(BENCH / case.script), *(case.quick if quick else case.full)]
    if case.script != "bencode_bench.py":
        command += ["--out", str(out), "--timeout", f"{budget:.0f}", *extra]
    shown = " ".join(["python", f"bench/{case.script}", *command[2:]])
    print(f"\n=== {case.name}: {shown}", flush=True)
    begun = time.monotonic()
    load = uptime()
    capture = case.script == "bencode_bench.py"  # prints its JSON as its last line
    process = subprocess.Popen(command, stdout=subprocess.PIPE if capture else None, text=True)
    try:
        stdout, _ = process.communicate(timeout=budget + 60)
    except subprocess.TimeoutExpired:
        stdout = None
        process.terminate()  # the scripts clean up their children and data on SIGTERM
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    record: dict[str, Any] = {
        "command": shown,
        "uptime_before": load,
        "wall_s": round(time.monotonic() - begun, 1),
        "status": process.returncode,
    }
    if capture and stdout:
        print(stdout, end="")
        last = next((line for line in reversed(stdout.splitlines()) if line.startswith("{")), None)
        if last is not None:
            out.write_text(last)
    if out.exists():
        record["results"] = json.loads(out.read_text())
    else:
        record["error"] = f"no results (exit status {process.returncode})"
    return record


# -- rows of the table: case, bt, libtorrent, ratio, target, pass ----------------------


@dataclass
class Row:
    case: str
    bt: str
    libtorrent: str = "-"
    ratio: str = "-"
    target: str = "-"
    passed: bool | None = None

    def cells(self) -> list[str]:
        verdict = "-" if self.passed is None else ("pass" if self.passed else "**fail**")
        return [self.case, self.bt, self.libtorrent, self.ratio, self.target, verdict]


def size(r: dict[str, Any]) -> str:
    """A case's data size as a label: "1 GiB", "64 MiB"."""
    value = r["size_bytes"]
    return f"{value // 2**30} GiB" if value % 2**30 == 0 else f"{value / 2**20:g} MiB"


def mb_s(value: float) -> str:
    return f"{value:.1f} MB/s"


def mib_kib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def download_rows(label: str, r: dict[str, Any]) -> list[Row]:
    bt, lt = r["bt"], r["libtorrent"]
    rate = bt["rate_mb_s"] / lt["rate_mb_s"]
    cpu = bt["cpu_s_per_gib"] / lt["cpu_s_per_gib"]
    same = bt["identical"] and lt["identical"]
    return [
        Row(
            f"{label}: rate",
            mb_s(bt["rate_mb_s"]),
            mb_s(lt["rate_mb_s"]),
            f"{rate:.2f}",
            "ratio >= 0.8",
            rate >= 0.8 and same,
        ),
        Row(
            f"{label}: CPU s/GiB",
            f"{bt['cpu_s_per_gib']:.2f}",
            f"{lt['cpu_s_per_gib']:.2f}",
            f"{cpu:.2f}",
            "ratio <= 3",
            cpu <= 3,
        ),
        Row(
            f"{label}: peak RSS (VmHWM)",
            mib_kib(bt["vm_hwm_kib"]),
            mib_kib(lt["vm_hwm_kib"]) + f" (anon {mib_kib(lt['rss_anon_kib'])})",
        ),
    ]


def seed_rows(r: dict[str, Any]) -> list[Row]:
    bt, lt = r["bt"], r["libtorrent"]
    rate = bt["rate_mb_s"] / lt["rate_mb_s"]
    label = f"seed {size(r)}"
    return [
        Row(
            f"{label}: downloader rate",
            mb_s(bt["rate_mb_s"]),
            mb_s(lt["rate_mb_s"]),
            f"{rate:.2f}",
            "ratio >= 0.8",
            rate >= 0.8,
        ),
        Row(
            f"{label}: seeder CPU s/GiB",
            f"{bt['seeder_cpu_s_per_gib']:.2f}",
            f"{lt['seeder_cpu_s_per_gib']:.2f}",
            f"{bt['seeder_cpu_s_per_gib'] / lt['seeder_cpu_s_per_gib']:.2f}",
        ),
        Row(
            f"{label}: seeder peak RSS",
            mib_kib(bt["seeder_vm_hwm_kib"]),
            mib_kib(lt["seeder_vm_hwm_kib"]),
        ),
    ]


def recheck_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for cache, s in r["summary"].items():
        ratio = s["ratio_bt_libtorrent"]
        rows.append(
            Row(
                f"recheck {size(r)}, {cache}",
                f"{s['bt_gib_s']:.2f} GiB/s",
                f"{s['libtorrent_gib_s']:.2f} GiB/s",
                f"{ratio:.2f}",
                "ratio >= 0.8",
                ratio >= 0.8,
            )
        )
    return rows


def memory_rows(r: dict[str, Any]) -> list[Row]:
    small, large = r["runs"]
    return [
        Row(
            f"memory: bt peak RSS, {large['size_mib']} MiB torrent",
            f"{r['bt_peak_large_mib']:.0f} MiB",
            target=f"< {r['target_peak_mib']} MiB",
            passed=r["passed"]["peak_under_target"],
        ),
        Row(
            f"memory: peak RSS {large['size_mib']} / {small['size_mib']} MiB",
            f"{r['bt_peak_large_mib']:.0f} / {r['bt_peak_small_mib']:.0f} MiB",
            ratio=f"{r['growth_ratio']:.2f}",
            target=f"<= {r['target_growth']}",
            passed=r["passed"]["growth_within_target"],
        ),
    ]


def pieces_rows(r: dict[str, Any]) -> list[Row]:
    p = r["picker"]
    n = p["pieces"]
    rows = [
        Row(f"picker, {n} pieces: pick of 16 blocks", f"{p['pick_us']:.1f} us"),
        Row(
            f"picker, {n} pieces: block received + have",
            f"{p['block_received_us'] + p['have_us']:.1f} us",
        ),
        Row(f"picker, {n} pieces: peer HAVE", f"{p['peer_have_us']:.2f} us"),
        Row(
            f"picker, {n} pieces: whole download",
            f"{p['picker_total_s']:.2f} s",
        ),
        Row(
            f"bitfield, {n} pieces: decode / encode",
            f"{p['bitfield_decode_us']:.1f} / {p['bitfield_encode_us']:.1f} us",
        ),
    ]
    if "download" in r:
        d = r["download"]
        pieces = d["size_bytes"] // d["piece_bytes"]
        rows += download_rows(f"download {size(d)}, {pieces} pieces of 16 KiB", d)
    return rows


def peers_rows(r: dict[str, Any]) -> list[Row]:
    bt, lt = r["bt"], r["libtorrent"]
    n = r["connections"]
    tput = bt["throughput_mb_s"] / lt["throughput_mb_s"]
    return [
        Row(
            f"{n} peers: handshakes completed",
            f"{bt['handshakes']} in {bt['connected_s']:.2f} s",
            f"{lt['handshakes']} in {lt['connected_s']:.2f} s",
            target=f"{n}",
            passed=bt["handshakes"] == n and bt["open_at_end"] == n,
        ),
        Row(
            f"{n} peers: seeder throughput",
            mb_s(bt["throughput_mb_s"]),
            mb_s(lt["throughput_mb_s"]),
            f"{tput:.2f}",
        ),
        Row(
            f"{n} peers: seeder CPU while uploading",
            f"{bt['seeder_transfer_cpu_percent']:.0f}% ({bt['seeder_cpu_s_per_gib']:.2f} s/GiB)",
            f"{lt['seeder_transfer_cpu_percent']:.0f}% ({lt['seeder_cpu_s_per_gib']:.2f} s/GiB)",
            f"{bt['seeder_cpu_s_per_gib'] / lt['seeder_cpu_s_per_gib']:.2f}",
        ),
        Row(
            f"{n} peers: seeder bytes read per byte sent",
            f"{bt.get('seeder_read_per_byte_sent', float('nan')):.2f}",
            f"{lt.get('seeder_read_per_byte_sent', float('nan')):.2f}",
        ),
        Row(
            f"{n} peers: seeder CPU, connected and idle",
            f"{bt['seeder_idle_cpu_percent']:.2f}%",
            f"{lt['seeder_idle_cpu_percent']:.2f}%",
        ),
        Row(
            f"{n} peers: seeder RSS idle / peak",
            f"{mib_kib(bt['seeder_rss_idle_kib'])} / {mib_kib(bt['seeder_vm_hwm_kib'])}",
            f"{mib_kib(lt['seeder_rss_idle_kib'])} / {mib_kib(lt['seeder_vm_hwm_kib'])}",
        ),
    ]


def torrents_rows(r: dict[str, Any]) -> list[Row]:
    bt, lt = r["bt"], r["libtorrent"]
    n = r["torrents"]
    return [
        Row(
            f"{n} torrents: RSS",
            mib_kib(bt["rss_kib"]),
            mib_kib(lt["rss_kib"]),
            f"{bt['rss_kib'] / lt['rss_kib']:.2f}",
            f"< {r['target_rss_mib']} MiB",
            r["passed"]["rss"],
        ),
        Row(
            f"{n} torrents: RSS per torrent",
            f"{bt['rss_per_torrent_kib']:.1f} KiB",
            f"{lt['rss_per_torrent_kib']:.1f} KiB",
        ),
        Row(
            f"{n} torrents: idle CPU, {bt['idle_window_s']:.0f} s",
            f"{bt['idle_cpu_percent']:.2f}%",
            f"{lt['idle_cpu_percent']:.2f}%",
            target=f"< {r['target_idle_cpu_percent']:g}% of a core",
            passed=r["passed"]["idle_cpu"],
        ),
        Row(
            f"{n} torrents: start-up to all seeding",
            f"{bt['startup_s']:.1f} s",
            f"{lt['startup_s']:.1f} s",
        ),
    ]


def bencode_rows(r: dict[str, Any]) -> list[Row]:
    res = r["results"]
    rows = []
    for kind, lt_name in (("decode", "libtorrent bdecode"), ("encode", "libtorrent bencode")):
        bt = res[f"bt.bencode {kind}"]["best_ms"]
        lt = res.get(lt_name, {}).get("best_ms")
        rows.append(
            Row(
                f"bencode 4 MiB metainfo: {kind}",
                f"{bt:.1f} ms",
                f"{lt:.1f} ms" if lt else "-",
                f"{lt / bt:.2f}" if lt else "-",
            )
        )
    return rows


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "download": lambda r: download_rows(f"download {size(r)}, 1 file", r),
    "download-multi": lambda r: download_rows(f"download {size(r)}, {r['files']} files", r),
    "seed": seed_rows,
    "recheck": recheck_rows,
    "memory": memory_rows,
    "scale-pieces": pieces_rows,
    "scale-peers": peers_rows,
    "scale-torrents": torrents_rows,
    "bencode": bencode_rows,
}


def table(records: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    for name, record in records.items():
        if "results" not in record:
            rows.append(Row(name, record.get("error", "no results"), passed=False))
            continue
        try:
            rows += ROWS[name](record["results"])
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            rows.append(Row(name, f"unreadable results: {exc!r}", passed=False))
    return rows


COLUMNS = ["case", "bt", "libtorrent", "ratio bt/lt", "target", "pass/fail"]


def markdown(
    rows: list[Row], facts: dict[str, Any], quick: bool, records: dict[str, dict[str, Any]]
) -> str:
    header = COLUMNS
    lines = [
        f"# bt benchmarks{' (quick smoke run: sizes too small to mean much)' if quick else ''}",
        "",
        f"{facts['nproc']} x {facts['cpu_model']}, Python {facts['python']}. Ratios are "
        "bt / libtorrent (for rates, higher is better for bt; for CPU and memory, lower). "
        "Loopback, one run each, on a machine that may have been busy: provisional.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    lines += ["", "Load before each case (`uptime`):", ""]
    lines += [
        f"- {name}: {record.get('uptime_before', '?')} ({record.get('wall_s', '?')} s)"
        for name, record in records.items()
    ]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    names = [c.name for c in CASES]
    parser.add_argument("--only", nargs="+", choices=names, help="run only these cases")
    parser.add_argument("--skip", nargs="+", choices=names, default=[], help="skip these cases")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy bt in the scale cases (peers, torrents)"
    )
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where data is written")
    parser.add_argument(
        "--table-only", action="store_true", help="rewrite the table from the last results"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    exit_on_sigterm()
    out_dir = OUT_DIR / "quick" if args.quick else OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    facts = machine_facts()
    chosen = [c for c in CASES if (args.only is None or c.name in args.only)]
    chosen = [c for c in chosen if c.name not in args.skip]
    records: dict[str, dict[str, Any]] = {}
    previous = OUT_DIR / f"results{suffix}.json"
    if (args.only or args.skip or args.table_only) and previous.exists():
        # A partial run updates the cases it ran and keeps the others' last results.
        records = json.loads(previous.read_text()).get("cases", {})
    if args.table_only:
        last = json.loads(previous.read_text())
        records, facts = last["cases"], last["machine"]
        chosen = []
    for case in chosen:
        extra = ["--tmp", str(args.tmp)] if case.script != "bencode_bench.py" else []
        if args.profile and case.script == "scale.py" and case.name != "scale-pieces":
            extra.append("--profile")
        records[case.name] = run_case(case, args.quick, out_dir, extra)
    records = {c.name: records[c.name] for c in CASES if c.name in records}
    rows = table(records)
    if not args.table_only:
        facts["uptime_at_end"] = uptime()
    summary = {
        "machine": facts,
        "quick": args.quick,
        "cases": records,
        "table": [dict(zip(COLUMNS, row.cells(), strict=True)) for row in rows],
    }
    (OUT_DIR / f"results{suffix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = markdown(rows, facts, args.quick, records)
    (OUT_DIR / f"results{suffix}.md").write_text(text)
    print("\n" + text)
    print(f"wrote {OUT_DIR / f'results{suffix}.json'} and results{suffix}.md")
    failed = [c.name for c in chosen if "results" not in records[c.name]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
