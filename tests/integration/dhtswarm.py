"""A small mainline DHT of libtorrent nodes on loopback, for bt's DHT integration tests.

libtorrent's DHT needs these settings to work on loopback (see INTEROP.md):

- ``enable_dht=True`` with ``dht_bootstrap_nodes=""``: the default names a public
  router. Nodes join each other with ``session.add_dht_node((ip, port))``; nodes
  named as bootstrap routers never enter libtorrent's routing table.
- Each node on its own address in its own /24 of 127.0.0.0/8 (127.B.0.1: all of it
  is loopback), set as both ``listen_interfaces`` and ``outgoing_interfaces``, so
  that libtorrent's ``dht_restrict_routing_ips`` (one node per /24) and bt's one
  node per IP keep every node; BEP 42 exempts local addresses on both sides.
  ``dht_restrict_routing_ips`` and ``dht_restrict_search_ips`` are turned off as
  well, so a test may also put several nodes in one /24.
- ``dht_block_ratelimit`` raised from 5 queries/s per IP: a test's bursts of
  queries from bt's one address would be blocked for a while.
- ``dht_announce_interval`` of 5 s instead of 15 minutes: a seeder re-announces
  while the test runs.
- ``force_dht_announce()`` once the nodes know each other, so a seeder does not
  wait for its next announce interval.

Everything here binds to 127.x.0.1 only; no node knows any address off this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarm import libtorrent_settings


def node_ip(index: int) -> str:
    """The loopback address of the index-th libtorrent node (127.{index+10}.0.1)."""
    return f"127.{index + 10}.0.1"


def dht_settings(ip: str) -> dict[str, object]:
    settings = libtorrent_settings()
    settings.update(
        {
            "listen_interfaces": f"{ip}:0",
            "outgoing_interfaces": ip,
            "enable_dht": True,
            "dht_bootstrap_nodes": "",
            "dht_block_ratelimit": 1000,
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_announce_interval": 5,
        }
    )
    return settings


class LibtorrentNode:
    """A libtorrent session with its DHT on at ``ip``; optionally holding one torrent."""

    def __init__(self, ip: str, torrent: bytes | None = None, save_path: Path | None = None,
                 magnet: str | None = None) -> None:  # fmt: skip
        import libtorrent as lt

        self.ip = ip
        self.session = lt.session(dht_settings(ip))
        self.handle: Any = None
        if torrent is not None or magnet is not None:
            params = lt.parse_magnet_uri(magnet) if magnet else lt.add_torrent_params()
            if torrent is not None:
                params.ti = lt.torrent_info(lt.bdecode(torrent))
            params.save_path = str(save_path)
            self.handle = self.session.add_torrent(params)

    @property
    def port(self) -> int:
        """Its UDP (DHT) port: libtorrent binds UDP on its listen port."""
        return self.session.listen_port()

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.port)

    def add_node(self, address: tuple[str, int]) -> None:
        self.session.add_dht_node(address)

    def dht_nodes(self) -> int:
        return self.session.status().dht_nodes

    def close(self) -> None:
        if self.handle is not None:
            self.session.remove_torrent(self.handle)
        self.handle = None
        del self.session


def small_dht(count: int) -> list[LibtorrentNode]:
    """``count`` libtorrent nodes that know each other (each added to every other)."""
    nodes = [LibtorrentNode(node_ip(i)) for i in range(count)]
    for node in nodes:
        for other in nodes:
            if other is not node:
                node.add_node(other.address)
    return nodes
