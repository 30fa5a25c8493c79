"""Network safety of the DHT in tests: bt is never started able to reach the public DHT.

The DHT is on by default in ``twistd bittorrent``, and its default bootstrap
nodes are public routers. Every test helper that starts bt (or parses its
options) goes through :func:`dht_safe_args`, which adds ``--no-dht`` unless
the caller chose loopback ``--dht-bootstrap`` nodes, and :func:`check_dht_args`
refuses a command line that could reach off this machine.
tests/test_dht_safety.py checks that every such place in tests/ and bench/ does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["NO_DHT", "check_dht_args", "dht_safe_args", "is_loopback_node"]

#: The option that turns the DHT off.
NO_DHT = ("--no-dht",)


def is_loopback_node(address: str) -> bool:
    """True for ``127.x.y.z:PORT`` or ``[::1]:PORT``: a node on this machine."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name could resolve anywhere


def _bootstrap_values(argv: Sequence[str]) -> list[str]:
    values = []
    for index, arg in enumerate(argv):
        if arg == "--dht-bootstrap" and index + 1 < len(argv):
            values.append(argv[index + 1])
        elif arg.startswith("--dht-bootstrap="):
            values.append(arg.split("=", 1)[1])
    return values


def check_dht_args(argv: Sequence[str]) -> None:
    """AssertionError unless ``argv`` turns the DHT off or bootstraps from loopback only."""
    argv = [str(a) for a in argv]
    if "--no-dht" in argv:
        return
    nodes = _bootstrap_values(argv)
    assert nodes, f"bt started with the DHT on and the public routers: {argv}"
    bad = [node for node in nodes if not is_loopback_node(node)]
    assert not bad, f"bt started with non-loopback DHT nodes {bad}: {argv}"


def dht_safe_args(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--no-dht`` added unless it names its DHT choice; checked."""
    argv = [str(a) for a in argv]
    if "--no-dht" not in argv and not _bootstrap_values(argv):
        argv = [*argv, *NO_DHT]
    check_dht_args(argv)
    return argv
