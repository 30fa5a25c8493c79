"""bench/receive.py drives a real Torrent and disk queue to the end (no timing checked)."""

from __future__ import annotations

from types import ModuleType

import pytest
from benches import load_bench


def _bench() -> ModuleType:
    return load_bench("receive")


@pytest.mark.parametrize(("piece_kib", "read_kib"), [(16, 64), (64, 7)])
def test_the_receive_bench_downloads_every_block_through_the_real_disk_queue(
    piece_kib: int, read_kib: int
) -> None:
    result = _bench().run(2, piece_kib, read_kib, 3, False)
    assert result["blocks"] == 2 * 1024 // 16
    assert result["reads"] >= result["blocks"] * 16 // read_kib
    assert result["us_per_block"] > 0
