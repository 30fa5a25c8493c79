"""bt's DHT with real libtorrent nodes on loopback (issue 15), and its KRPC on the wire.

A small DHT of libtorrent nodes, each on its own 127.B.0.1 (tests/integration/
dhtswarm.py says which libtorrent settings that needs). bt joins it with
``--dht-bootstrap`` naming those nodes only: nothing leaves this machine.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
from dhtswarm import LibtorrentNode, node_ip, small_dht
from swarm import BtDaemon, wait_for
from test_download import assert_same_tree, wait_for_same_tree
from test_seeding import stop_cleanly
from torrents import libtorrent_torrent, write_files

from bt import bencode
from bt.dht import krpc
from bt.dht.krpc import ErrorMessage, Query, Response
from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TIMEOUT = 90
FILES = {"dht/a.bin": 700_000, "dht/b/c.bin": 300_001}


def bootstrap_args(nodes: list[LibtorrentNode]) -> tuple[str, ...]:
    args: list[str] = []
    for node in nodes:
        args += ["--dht-bootstrap", f"{node.ip}:{node.port}"]
    return tuple(args)


def bt_daemon(tmp_path: Path, label: str, extra: tuple[str, ...], torrent: Path | None = None,
              download_dir: Path | None = None) -> BtDaemon:  # fmt: skip
    workdir = tmp_path / label
    workdir.mkdir()
    daemon = BtDaemon(workdir, torrent, download_dir or workdir / "downloads", extra_args=extra)
    daemon.start()
    return daemon


def dht_port(daemon: BtDaemon) -> int:
    daemon.wait_for_log("DHT node on UDP port", 30)
    match = re.search(r"DHT node on UDP port (\d+)", daemon.log())
    assert match
    return int(match.group(1))


def trackerless(tmp_path: Path) -> tuple[Path, bytes]:
    """A torrent without any tracker and its complete data in tmp_path/seed."""
    seed = tmp_path / "seed"
    write_files(seed, FILES)
    data = libtorrent_torrent(seed / "dht", 64 * 1024)
    assert b"announce" not in bencode.decode(data), "no tracker: peers come from the DHT"
    path = tmp_path / "dht.torrent"
    path.write_bytes(data)
    return path, data


def test_bt_downloads_a_trackerless_magnet_seeded_by_libtorrent_into_the_dht(
    tmp_path: Path, libtorrent: object
) -> None:
    _path, data = trackerless(tmp_path)
    meta = parse_metainfo(data)
    routers = small_dht(3)
    seeder = LibtorrentNode(node_ip(5), data, tmp_path / "seed")
    daemon = None
    try:
        for router in routers:
            seeder.add_node(router.address)
        wait_for(lambda: seeder.dht_nodes() >= 2, 30, "the seeder to join the DHT")
        seeder.handle.force_dht_announce()
        uri = f"magnet:?xt=urn:btih:{meta.info_hash.hex()}"  # no tr=, no x.pe=
        daemon = bt_daemon(tmp_path, "bt", (*bootstrap_args(routers), "--torrent", uri))
        target = daemon.download_dir / "dht"
        daemon.wait_for_api()
        wait_for(lambda: _complete(daemon), TIMEOUT, "bt to download through the DHT")
        assert_same_tree(tmp_path / "seed" / "dht", target)
        [torrent] = daemon.api("GET", "/api/v1/torrents")[1]["torrents"]
        assert torrent["dht_peers"] >= 1
        status = daemon.api("GET", "/api/v1/session")[1]
        assert status["dht_nodes"] >= 1 and status["dht_lookups"] >= 1
    finally:
        if daemon is not None:
            stop_cleanly(daemon)
        for node in [seeder, *routers]:
            node.close()


def test_libtorrent_finds_a_bt_seeder_through_the_dht(tmp_path: Path, libtorrent: object) -> None:
    path, data = trackerless(tmp_path)
    meta = parse_metainfo(data)
    routers = small_dht(3)
    daemon = bt_daemon(
        tmp_path, "bt", bootstrap_args(routers), torrent=path, download_dir=tmp_path / "seed"
    )
    leecher = None
    try:
        daemon.wait_for_log("pieces already on disk", TIMEOUT)
        daemon.wait_for_api()
        wait_for(lambda: "announced" in _dht_status(daemon), TIMEOUT, "bt to announce")
        uri = f"magnet:?xt=urn:btih:{meta.info_hash.hex()}"
        (tmp_path / "lt").mkdir()
        leecher = LibtorrentNode(node_ip(6), magnet=uri, save_path=tmp_path / "lt")
        for router in routers:
            leecher.add_node(router.address)
        wait_for(lambda: leecher.handle.status().is_seeding, TIMEOUT, "libtorrent to finish")
        wait_for_same_tree(tmp_path / "seed" / "dht", tmp_path / "lt" / "dht")
    finally:
        if leecher is not None:
            leecher.close()
        stop_cleanly(daemon)
        for node in routers:
            node.close()


def _dht_status(daemon: BtDaemon) -> str:
    status = daemon.api("GET", "/api/v1/session")[1]
    return "announced" if status.get("dht_announces", 0) > 0 else ""


def _complete(daemon: BtDaemon) -> bool:
    """bt has every piece verified and written (its files' sizes say nothing: sparse)."""
    torrents = daemon.api("GET", "/api/v1/torrents")[1]["torrents"]
    return len(torrents) == 1 and torrents[0]["progress"] == 1.0


# -- KRPC on the wire, from a raw UDP client ------------------------------------------


class RawClient:
    """A UDP socket on 127.0.0.1 that speaks KRPC by hand."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(5)
        self.id = os.urandom(20)

    def ask(self, method: str, **arguments: object) -> krpc.Message:
        tid = os.urandom(2)
        self.sock.sendto(krpc.encode(Query(tid, method, self.id, **arguments)), self.target)  # type: ignore[arg-type]
        while True:
            reply = krpc.parse(self.sock.recv(2048))
            if reply.tid == tid:
                return reply

    def close(self) -> None:
        self.sock.close()


def test_bt_answers_krpc_on_the_wire_refuses_a_bad_token_and_survives_garbage(
    tmp_path: Path,
) -> None:
    # A bootstrap node that is not there: bt's DHT runs, alone, on loopback.
    daemon = bt_daemon(tmp_path, "bt", ("--dht-bootstrap", "127.0.0.1:9"))
    client = RawClient(dht_port(daemon))
    try:
        pong = client.ask("ping")
        assert isinstance(pong, Response) and len(pong.sender) == 20
        found = client.ask("find_node", target=os.urandom(20))
        assert isinstance(found, Response) and found.sender == pong.sender
        # A node that only queried bt (never answered it) is not handed to others.
        me = krpc.NodeInfo(client.id, *client.sock.getsockname())
        assert me not in found.nodes and len(found.nodes) <= 8
        info_hash = os.urandom(20)
        peers = client.ask("get_peers", info_hash=info_hash)
        assert isinstance(peers, Response) and peers.token and peers.values == ()
        bad = client.ask("announce_peer", info_hash=info_hash, port=6000, token=b"forged")
        assert isinstance(bad, ErrorMessage) and bad.code == 203
        good = client.ask("announce_peer", info_hash=info_hash, port=6000, token=peers.token)
        assert isinstance(good, Response)
        again = client.ask("get_peers", info_hash=info_hash)
        assert isinstance(again, Response) and again.values == (("127.0.0.1", 6000),)
        # A burst of garbage: bt drops it all and still answers.
        junk = [b"", b"d", b"de", b"i1e", b"\xff" * 1400, b"d1:y1:qe", b"x" * 4000]
        junk += [os.urandom(n) for n in range(1, 300, 3)]
        for datagram in junk:
            client.sock.sendto(datagram, client.target)
        client.sock.settimeout(0.5)
        try:
            while True:  # error replies to what looked like queries, if any
                client.sock.recv(2048)
        except TimeoutError:
            pass
        client.sock.settimeout(5)
        later = RawClient(client.target[1])  # a fresh address: not rate-limited by the burst
        try:
            assert isinstance(later.ask("ping"), Response)
        finally:
            later.close()
    finally:
        client.close()
        stop_cleanly(daemon)


def test_on_ipv6_bt_answers_with_nodes6_and_ipv6_peers(tmp_path: Path) -> None:
    """BEP 32: listening on ::1, the node is an IPv6 node on the same port number."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not usable on this machine")
    extra = ("--listen", "tcp6:0:interface=\\:\\:1", "--dht-bootstrap", "[::1]:9")
    daemon = bt_daemon(tmp_path, "bt6", extra)
    client = RawClient(dht_port(daemon), "::1")
    try:
        assert isinstance(client.ask("ping"), Response)
        info_hash = os.urandom(20)
        peers = client.ask("get_peers", info_hash=info_hash, want=(b"n6",))
        assert isinstance(peers, Response) and peers.token and peers.nodes == ()
        good = client.ask("announce_peer", info_hash=info_hash, port=6000, token=peers.token)
        assert isinstance(good, Response)
        again = client.ask("get_peers", info_hash=info_hash)
        assert isinstance(again, Response) and again.values == (("::1", 6000),)
    finally:
        client.close()
        stop_cleanly(daemon)
