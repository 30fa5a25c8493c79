"""How much writing into fresh memory costs on this machine, against recycled memory.

Run: python bench/pages.py [--size-mib 512] [--tmp /tmp]

On a VM whose balloon (or DAMON reclaim) hands memory the guest freed back to the
host a few seconds later, the page cache a download fills costs several times as
much when its pages come fresh from the host as when they were freed a moment ago.
libtorrent's downloader is very sensitive to this, bt's much less: a benchmark that
lets one client write into recycled pages and the other into fresh ones measures
the machine, not the clients (docs/performance.rst, session 31). This writes
``--size-mib`` into a file four times: fresh, right after deleting the first, 1 s
after and 5 s after deleting the one before, and prints wall and sys time of each.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20


def write(path: Path, size_mib: int) -> tuple[float, float]:
    """Write ``size_mib`` MiB to ``path``; wall and sys seconds it took."""
    block = os.urandom(MIB)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with path.open("wb") as file:
        for _ in range(size_mib):
            file.write(block)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter() - started, after.ru_stime - before.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-pages-", dir=args.tmp))
    try:
        os.sync()
        for name, pause in (
            ("fresh", None),
            ("recycled", 0.0),
            ("1 s after", 1.0),
            ("5 s after", 5.0),
        ):
            if pause:
                time.sleep(pause)
            path = work / "pages.bin"
            wall, system = write(path, args.size_mib)
            path.unlink()  # its dirty pages are dropped, never written back
            print(
                f"{name:10} {args.size_mib} MiB: {wall:5.2f} s wall, {system:5.2f} s sys",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
