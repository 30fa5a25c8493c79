"""bench/pages.py writes and deletes its file in each of its four conditions (no timing)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from benches import load_bench


def _bench() -> ModuleType:
    return load_bench("pages")


def test_each_condition_is_written_in_full_and_nothing_is_left_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = _bench()
    written: list[int] = []
    real_write = bench.write

    def counting(path: Path, size_mib: int) -> tuple[float, float]:
        result = real_write(path, size_mib)
        written.append(path.stat().st_size)
        return result

    monkeypatch.setattr(bench, "write", counting)
    monkeypatch.setattr(
        bench.time, "sleep", lambda seconds: None
    )  # the pauses are the point, not the test's
    assert bench.main(["--size-mib", "2", "--tmp", str(tmp_path)]) == 0
    assert written == [2 * bench.MIB] * 4
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" 2 MiB")[0].strip() for line in lines] == [
        "fresh",
        "recycled",
        "1 s after",
        "5 s after",
    ]
    assert list(tmp_path.iterdir()) == []
