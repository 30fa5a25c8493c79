"""The DHT's settings: which routers to bootstrap from, and how strict the table is.

A value made by ``bt.tap`` from ``--no-dht`` / ``--dht-bootstrap`` and carried
in :class:`bt.session.SessionConfig`; a session without one runs no DHT
(embedders and tests opt in). Pure: no Twisted.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_ROUTERS", "DHTConfig", "parse_node_address"]

#: The well-known public routers, used when no ``--dht-bootstrap`` is given.
DEFAULT_ROUTERS: tuple[tuple[str, int], ...] = (
    ("router.bittorrent.com", 6881),
    ("dht.transmissionbt.com", 6881),
    ("router.utorrent.com", 6881),
)


@dataclass(frozen=True)
class DHTConfig:
    """How the session's DHT node runs (it listens on the ``--listen`` address and port)."""

    #: Nodes to join through (host, port): the routers unless the user names others.
    bootstrap: tuple[tuple[str, int], ...] = DEFAULT_ROUTERS
    #: At most one node per IP address in the routing table (BEP 5 practice, an
    #: anti-Sybil rule); a DHT of several nodes on one host needs it off.
    one_node_per_ip: bool = True


def parse_node_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for IPv6) -> (host, port); ValueError says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address as [ADDRESS]:PORT")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: {port!r} is not a port number (1-65535)")
    return host, int(port)
