"""--web-home: a folder the control service serves at /transmission/web/ (bt.tap)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dhtsafety import dht_safe_args

from bt.tap import Options


def parse(tmp_path: Path, *argv: str) -> Options:
    options = Options()
    base = ["--state-dir", str(tmp_path / "state"), "-d", str(tmp_path), "--control", "none"]
    options.parseOptions(dht_safe_args([*base, *argv]))
    return options


def test_web_home_is_a_folder_handed_to_the_control_service(tmp_path: Path) -> None:
    assert parse(tmp_path)["web-home"] is None
    assert parse(tmp_path, "--web-home", str(tmp_path))["web-home"] == tmp_path


@pytest.mark.parametrize("name", ["missing", "file.txt"])
def test_a_web_home_that_is_not_a_folder_fails_at_once(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SystemExit):
        parse(tmp_path, "--web-home", str(tmp_path / name))
    assert f"--web-home {tmp_path / name}: not a folder" in capsys.readouterr().err
