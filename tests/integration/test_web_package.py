"""A non-editable install (a built wheel) carries the web page's files, found by importlib."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_wheel_install_serves_the_page_from_the_package(tmp_path: Path) -> None:
    wheels, target, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # Built from a copy: the build leaves nothing (build/, *.egg-info) in the work tree.
    for part in ("bt", "twisted"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.rst"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)], check=True, timeout=240
    )
    [wheel] = wheels.glob("bt-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, timeout=120
    )
    probe = (
        "import json, bt; from bt.control.webpage import load_assets; "
        "print(json.dumps([bt.__file__, sorted(load_assets())]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    where, names = json.loads(out)
    assert where.startswith(str(target))
    assert set(names) >= {"index.html", "login.html", "app.js", "api.js", "style.css"}
    shipped = {p.name for p in (ROOT / "bt" / "control" / "web").iterdir() if p.is_file()}
    assert set(names) == shipped
