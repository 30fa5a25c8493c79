"""Decode/encode speed of bt.bencode against bencode.py and libtorrent on a 4 MiB metainfo.

Run: python bench/bencode_bench.py  (needs the bench extra: pip install -e '.[bench]')
A benchmark, not a test: it prints figures for docs/performance.rst.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bt import bencode


def make_metainfo(target_size: int = 4 * 1024 * 1024) -> bytes:
    """A multi-file torrent of about ``target_size`` bytes: many files, many pieces."""
    files = []
    number = 0
    listed = 0
    # Roughly half the size in the file list, half in piece hashes: both shapes matter.
    while listed < target_size // 2:
        entry = {
            "length": 1_000_000 + number * 7,
            "path": ["dataset", f"shard-{number // 100:04d}", f"part-{number:06d}.bin"],
        }
        files.append(entry)
        listed += len(bencode.encode(entry))
        number += 1
    total = sum(f["length"] for f in files)
    count = (target_size - listed) // 20
    piece_length = -(-total // count)
    pieces = b"".join(hashlib.sha1(i.to_bytes(8, "big")).digest() for i in range(count))
    info = {"files": files, "name": "dataset", "piece length": piece_length, "pieces": pieces}
    return bencode.encode(
        {"announce": "http://127.0.0.1:6969/announce", "creation date": 1, "info": info}
    )


def measure(function: Callable[[], Any], rounds: int = 15) -> dict[str, float]:
    function()  # warm up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return {"best_ms": min(times) * 1000, "median_ms": statistics.median(times) * 1000}


def main() -> None:
    data = make_metainfo()
    decoded = bencode.decode(data)
    results: dict[str, dict[str, float]] = {}
    results["bt.bencode decode"] = measure(lambda: bencode.decode(data))
    results["bt.bencode encode"] = measure(lambda: bencode.encode(decoded))
    try:
        import bencodepy

        results["bencode.py decode"] = measure(lambda: bencodepy.decode(data))
        results["bencode.py encode"] = measure(lambda: bencodepy.encode(decoded))
    except ImportError:
        print("bencode.py not installed; pip install bencode.py", file=sys.stderr)
    try:
        import libtorrent as lt

        results["libtorrent bdecode"] = measure(lambda: lt.bdecode(data))
        lt_value = lt.bdecode(data)
        results["libtorrent bencode"] = measure(lambda: lt.bencode(lt_value))
    except ImportError:
        print("libtorrent not installed; pip install libtorrent", file=sys.stderr)

    size_mib = len(data) / (1024 * 1024)
    print(f"input: {len(data)} bytes ({size_mib:.2f} MiB), {len(decoded[b'info'][b'files'])} files")
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"{'case':<22} {'best ms':>9} {'median ms':>10} {'MiB/s':>8} {'vs bt':>7}")
    for name, figures in results.items():
        kind = "decode" if "decode" in name else "encode"
        base = results[f"bt.bencode {kind}"]
        ratio = figures["best_ms"] / base["best_ms"]
        rate = size_mib / (figures["best_ms"] / 1000)
        print(
            f"{name:<22} {figures['best_ms']:9.1f} {figures['median_ms']:10.1f} "
            f"{rate:8.1f} {ratio:6.2f}x"
        )
    print(json.dumps({"input_bytes": len(data), "results": results}))


if __name__ == "__main__":
    main()
