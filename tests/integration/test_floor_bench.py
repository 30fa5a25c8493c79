"""bench/floor.py's client downloads a real libtorrent seeder's torrent at every level.

The floor is a measuring instrument: a figure from a client that drops blocks,
skips pieces or writes the wrong bytes would be a false floor. So each level runs
here to the end against a real seeder, with pieces of one block and of several
and a last piece shorter than the rest; ``write`` must leave the original bytes.
No timing is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from benches import load_bench
from swarm import LibtorrentPeer
from torrents import libtorrent_torrent

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _floor() -> ModuleType:
    return load_bench("floor")


@pytest.mark.parametrize("piece_kib", [16, 64])
@pytest.mark.parametrize(
    ("level", "threads"), [("wire", 1), ("verify", 1), ("write", 1), ("write", 2)]
)
def test_the_floor_client_receives_every_piece_of_a_real_seeder(
    tmp_path: Path, level: str, threads: int, piece_kib: int
) -> None:
    floor = _floor()
    seed = tmp_path / "seed"
    seed.mkdir()
    content = seed / "data.bin"
    content.write_bytes(os.urandom(3 * 1024 * 1024 + 5000))  # a short last piece
    torrent = libtorrent_torrent(content, piece_kib * 1024)
    seeder = LibtorrentPeer(torrent, seed)
    try:
        seeder.wait_checked()
        out = tmp_path / f"floor-{level}"
        spec = floor.client_spec(torrent, seeder.port, level, 64, out, 60, threads)
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(json.dumps(spec))
        subprocess.run(floor.client_command(spec_path), check=True, timeout=90)
    finally:
        seeder.close()
    report = json.loads(Path(spec["report"]).read_text())
    assert "error" not in report, report
    assert "complete" in report
    assert report["bad_pieces"] == 0
    if level == "write":
        assert out.read_bytes() == content.read_bytes()
    else:
        assert not out.exists()
