"""The DHT's memory across restarts: our node id and the good nodes, in the state folder.

A bencoded dictionary ``{id: 20 bytes, nodes: [[id, host, port], ...]}``,
written atomically. A missing or damaged file means a fresh start (a new id,
the bootstrap nodes), never a failure: it is only a cache.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bt import bencode
from bt.dht.krpc import NodeInfo
from bt.errors import BencodeError
from bt.storage.resume import save_resume

__all__ = ["FILENAME", "MAX_SAVED", "Saved", "dump", "load", "save", "undump"]

FILENAME = "dht.state"
#: Nodes kept at most (a full table of a large DHT holds a few hundred).
MAX_SAVED = 500


@dataclass(frozen=True)
class Saved:
    node_id: bytes | None = None
    nodes: list[NodeInfo] = field(default_factory=list)
    #: Our address as other nodes saw it (BEP 42 chooses our id from it).
    external_ip: str | None = None


def dump(node_id: bytes, nodes: Iterable[NodeInfo], external_ip: str | None = None) -> bytes:
    kept = [[n.id, n.host.encode(), n.port] for n in list(nodes)[:MAX_SAVED]]
    state: dict[bytes, object] = {b"id": node_id, b"nodes": kept}
    if external_ip is not None:
        state[b"ip"] = external_ip.encode()
    return bencode.encode(state)


def undump(data: bytes) -> Saved:
    """The saved state in ``data``; an empty Saved for anything damaged."""
    try:
        decoded = bencode.decode(data)
    except BencodeError:
        return Saved()
    if not isinstance(decoded, dict):
        return Saved()
    node_id = decoded.get(b"id")
    if not isinstance(node_id, bytes) or len(node_id) != 20:
        return Saved()
    nodes = []
    for entry in decoded.get(b"nodes", []) if isinstance(decoded.get(b"nodes"), list) else []:
        if (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], bytes)
            and len(entry[0]) == 20
            and isinstance(entry[1], bytes)
            and isinstance(entry[2], int)
            and 0 < entry[2] < 65536
        ):
            try:
                host = str(ipaddress.ip_address(entry[1].decode("ascii")))
            except (UnicodeDecodeError, ValueError):
                continue  # only addresses: a name could resolve anywhere
            nodes.append(NodeInfo(entry[0], host, entry[2]))
    return Saved(node_id, nodes[:MAX_SAVED], _address(decoded.get(b"ip")))


def _address(value: object) -> str | None:
    if not isinstance(value, bytes):
        return None
    try:
        return str(ipaddress.ip_address(value.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None


def load(path: Path) -> Saved:
    """What ``path`` holds (blocking, a few KB: read once at start)."""
    try:
        return undump(path.read_bytes())
    except OSError:
        return Saved()


def save(path: Path, data: bytes) -> None:
    """Write the state atomically (blocking: run it in the disk pool)."""
    save_resume(path, data, "DHT state")
