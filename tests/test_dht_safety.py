"""Guard: no test or bench starts bt able to reach the public DHT (issue 15).

The DHT is on by default and bootstraps from public routers, so every place
in tests/ and bench/ that runs ``twistd bittorrent`` or parses bt's options
must say ``--no-dht`` or name loopback ``--dht-bootstrap`` nodes, directly or
through tests/dhtsafety.py; a session built in code runs a DHT only when given
a DHTConfig, which must name its bootstrap nodes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from dhtsafety import check_dht_args, dht_safe_args

ROOT = Path(__file__).resolve().parent.parent
#: What makes a function's bt start safe: the options themselves or the checked helpers.
SAFE_MARKS = {"--no-dht", "--dht-bootstrap", "dht_safe_args", "check_dht_args", "NO_DHT"}


def _sources() -> Iterator[Path]:
    for folder in ("tests", "bench"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def _marks(node: ast.AST) -> set[str]:
    found = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.add(child.value.split("=")[0])
        elif isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
    return found & SAFE_MARKS


def _safe_helpers(paths: list[Path]) -> set[str]:
    """Functions that pass every command line through the checked helpers (``twistd``...)."""
    safe = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and _marks(node) & {"dht_safe_args"}:
                safe.add(node.name)
    return safe


def _unsafe_starts(path: Path, safe: set[str] = frozenset()) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called(node) == "DHTConfig":
            if not any(k.arg == "bootstrap" for k in node.keywords):
                problems.append(f"{path.name}:{node.lineno}: DHTConfig without bootstrap=")
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        runs = [c for c in ast.walk(node) if _runs_bt(c, safe)]
        if runs and not _marks(node):
            where = f"{path.name}:{node.lineno}: {node.name}"
            problems.append(f"{where} starts bt without a DHT choice")
    return problems


def _called(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _runs_bt(node: ast.AST, safe: set[str]) -> bool:
    """A command line naming the ``bittorrent`` plugin, or a parse of bt's options."""
    if isinstance(node, ast.Call):
        if _called(node) in safe:
            return False
        if _called(node) == "parseOptions":
            return True
        return any(_is_plugin(arg) for arg in node.args)
    if isinstance(node, ast.List | ast.Tuple):
        return any(_is_plugin(element) for element in node.elts)
    return False


def _is_plugin(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == "bittorrent"


def test_no_test_or_bench_starts_bt_without_a_dht_choice() -> None:
    paths = list(_sources())
    safe = _safe_helpers(paths)
    assert "twistd" in safe  # tests/test_plugin.py's runner checks every bittorrent run
    problems = [problem for path in paths for problem in _unsafe_starts(path, safe)]
    assert problems == []


def test_the_guard_sees_an_unsafe_start(tmp_path: Path) -> None:
    """The scan is not vacuous: a twistd run and an options parse without a choice are found."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def run_it():\n"
        "    subprocess.run(['twistd', '-n', 'bittorrent', '--listen', 'tcp:0'])\n"
        "def parse_it():\n"
        "    Options().parseOptions(['--listen', 'tcp:0'])\n"
        "def configure():\n"
        "    return DHTConfig()\n"
    )
    assert len(_unsafe_starts(bad)) == 3
    good = tmp_path / "good.py"
    good.write_text(
        "def run_it():\n"
        "    subprocess.run(['twistd', 'bittorrent', '--dht-bootstrap', '127.0.0.2:6881'])\n"
        "def parse_it():\n"
        "    Options().parseOptions(dht_safe_args(['--listen', 'tcp:0']))\n"
    )
    assert _unsafe_starts(good) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["bittorrent"],
        ["bittorrent", "--dht-bootstrap", "router.bittorrent.com:6881"],
        ["bittorrent", "--dht-bootstrap", "127.0.0.1:1", "--dht-bootstrap", "10.0.0.1:6881"],
        ["bittorrent", "--dht-bootstrap=[2001:db8::1]:6881"],
    ],
)
def test_a_command_line_that_could_reach_off_this_machine_is_refused(argv: list[str]) -> None:
    with pytest.raises(AssertionError):
        check_dht_args(argv)


def test_the_helper_turns_the_dht_off_unless_loopback_nodes_are_named() -> None:
    assert dht_safe_args(["bittorrent"]) == ["bittorrent", "--no-dht"]
    loopback = ["bittorrent", "--dht-bootstrap", "127.0.3.1:6881", "--dht-bootstrap", "[::1]:7"]
    assert dht_safe_args(loopback) == loopback
