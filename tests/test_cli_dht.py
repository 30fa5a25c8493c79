"""'bt status' and the DHT: peers found through it per torrent, and its summary line."""

from __future__ import annotations

from bt.cli.render import _peers, dht_line


def test_the_dht_line_is_shown_only_when_the_daemon_runs_a_dht() -> None:
    assert dht_line({"dht_nodes": None}) is None
    assert dht_line({}) is None
    line = dht_line({"dht_nodes": 120, "dht_lookups": 9, "dht_announces": 16})
    assert line == "DHT: 120 nodes, 9 lookups, 16 announces"


def test_a_torrents_peers_say_how_many_the_dht_found() -> None:
    assert _peers({"peers": 3, "seeds": 1, "dht_peers": 4}, "downloading") == "3 (1), 4 DHT"
    assert _peers({"peers": 3, "seeds": 1, "dht_peers": 0}, "downloading") == "3 (1)"
    fetching = {"peers": 1, "peers_tried": 2, "dht_peers": 5}
    assert _peers(fetching, "fetching metadata") == "1, 2 tried, 5 DHT"
