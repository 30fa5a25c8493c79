"""The shape of bt (docs/architecture, DESIGN.md): layers, import direction, module size.

Read from the source with ``ast``, nothing imported: layer-0 modules (the pure
rules) import no Twisted or treq, not even through another bt module; bt's
modules import each other without cycles; no module grows into a god module.
Only module-level imports count: an import inside a function runs late and
one under ``if TYPE_CHECKING:`` never runs, so neither can make a cycle.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

BT = Path(__file__).resolve().parent.parent / "bt"

#: Modules of layer 0: pure rules, no I/O framework. A new pure module goes here.
LAYER_0 = [
    "bt.bencode",
    "bt.metainfo",
    "bt.merkle",
    "bt.metainfo_fields",
    "bt.metainfo_v2",
    "bt.bitfield",
    "bt.errors",
    "bt.peer.messages",
    "bt.peer.connection",
    "bt.peer.hash_messages",
    "bt.torrentindex",
    "bt.piecelayers",
    "bt.swarm.fast",
    "bt.untrusted",
    "bt.candidates",
    "bt.compact",
    "bt.magnet",
    "bt.extensions",
    "bt.extensions.handshake",
    "bt.extensions.payload",
    "bt.extensions.metadata_messages",
    "bt.extensions.metadata_assembly",
    "bt.extensions.pex_messages",
    "bt.extensions.pex_policy",
    "bt.peerid",
    "bt.units",
    "bt.priorities",
    "bt.torrentprefs",
    "bt.status",
    "bt.storage.changes",
    "bt.storage.layout",
    "bt.storage.resume",
    "bt.storage.verifier",
    "bt.geometry",  # when it exists (issue 13)
    "bt.lifecycle",  # when it exists (issue 13)
    "bt.events",
    "bt.dht",
    "bt.dht.krpc",
    "bt.dht.nodeid",
    "bt.dht.routing",
    "bt.dht.lookup",
    "bt.dht.tokens",
    "bt.dht.store",
    "bt.dht.ratelimit",
    "bt.dht.config",
    # every module of bt/policy/, found below
]
IMPURE = ("twisted", "treq")
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(BT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(BT.rglob("*.py"))}


def layer_0() -> list[str]:
    policy = [name for name in modules() if name.startswith("bt.policy")]
    return [name for name in LAYER_0 if name in modules()] + policy


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (not in functions, not type-only)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _module_level(node.body)
            found += _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                found += _module_level(block)
            for handler in node.handlers:
                found += _module_level(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            found += _module_level(node.body)
    return found


def _every_import(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def _absolute(node: ast.ImportFrom, importer: str) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    if modules()[importer].name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(nodes: list[ast.Import | ast.ImportFrom], importer: str) -> set[str]:
    """Every module named by these imports (``from bt.x import y`` names bt.x.y if a module)."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = _absolute(node, importer)
        names.add(base)
        names.update(
            f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules()
        )
    return names


@cache
def imports(name: str, *, everywhere: bool = False) -> frozenset[str]:
    """What module ``name`` imports: at module level, or ``everywhere`` in it."""
    tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
    nodes = _every_import(tree) if everywhere else _module_level(tree.body)
    return frozenset(_targets(nodes, name))


def bt_imports(name: str, *, everywhere: bool = False) -> set[str]:
    """The bt modules ``name`` imports; ``from bt import x`` (a name, not a module) is bt."""
    found = set()
    for target in imports(name, everywhere=everywhere):
        if target == "bt" or target.startswith("bt."):
            while target not in modules():  # bt.x.Name -> bt.x
                target = target.rsplit(".", 1)[0]
            if target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    return {name: bt_imports(name) for name in modules()}


def _parents(name: str) -> list[str]:
    """Importing bt.a.b runs bt/__init__.py and bt/a/__init__.py first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _impure_path(start: str) -> list[str] | None:
    """A chain of module-level imports from ``start`` to Twisted or treq, if there is one."""
    seen = {start}
    stack: list[list[str]] = [[start]]
    while stack:
        path = stack.pop()
        here = path[-1]
        impure = sorted(t for t in imports(here) if t.split(".")[0] in IMPURE)
        if impure:
            return [*path, impure[0]]
        for following in sorted(bt_imports(here) | set(_parents(here))):
            if following in modules() and following not in seen:
                seen.add(following)
                stack.append([*path, following])
    return None


@pytest.mark.parametrize("name", layer_0())
def test_layer_0_imports_no_twisted_even_through_other_modules(name: str) -> None:
    path = _impure_path(name)
    assert path is None, f"{name} is layer 0 but imports {' -> '.join(path or [])}"


def test_the_layer_0_list_names_real_modules() -> None:
    """A typo in LAYER_0 must not exempt a module silently (only issue 13's may be absent)."""
    pending = {"bt.geometry", "bt.lifecycle"}
    missing = [name for name in LAYER_0 if name not in modules() and name not in pending]
    assert missing == []
    assert {"bt.policy.picker", "bt.policy.choker", "bt.peer.connection"} <= set(layer_0())


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; bt's graph is small enough to recurse
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in sorted(graph.get(node, ())):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_among_bt_modules() -> None:
    cycles = _cycles(import_graph())
    assert cycles == [], f"import cycles: {cycles}"


def test_the_cycle_finder_finds_cycles() -> None:
    """The check above can fail: a cycle of three and a self-import are found, a chain is not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["d"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_module_level_imports_skip_functions_and_type_checking() -> None:
    tree = ast.parse(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import json\n"
        "try:\n    import zlib\nexcept ImportError:\n    import gzip\n"
        "def f():\n    import socket\n"
        "class C:\n    import re\n"
    )
    assert _targets(_module_level(tree.body), "bt.errors") == {"os", "typing", "zlib", "gzip", "re"}


def lines(name: str) -> int:
    return len(modules()[name].read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("name", list(modules()))
def test_no_module_exceeds_600_lines(name: str) -> None:
    assert lines(name) <= MAX_LINES, f"{modules()[name]} has {lines(name)} lines"


@pytest.mark.parametrize("name", ["bt.torrent", "bt.session"])
def test_torrent_and_session_stay_at_most_500_lines(name: str) -> None:
    assert lines(name) <= 500, f"{modules()[name]} has {lines(name)} lines"


def test_torrent_imports_at_most_15_bt_modules() -> None:
    """Counted everywhere in the file (in functions, type-only): coupling is coupling."""
    used = bt_imports("bt.torrent", everywhere=True)
    assert len(used) <= 15, f"bt/torrent.py imports {len(used)} bt modules: {sorted(used)}"
