"""DHT options of twistd bittorrent: on by default, --no-dht, --dht-bootstrap (bt.tap)."""

from __future__ import annotations

import pytest
from twisted.python import usage

from bt.dht.config import DEFAULT_ROUTERS, DHTConfig, parse_node_address
from bt.tap import Options, dht_config


def options(*argv: str) -> Options:
    parsed = Options()
    # Only parsed, never started: the defaults are what is under test here.
    parsed.parseOptions(["--control", "none", "--no-dht", *argv])
    parsed["no-dht"] = "--no-dht" in argv
    return parsed


def test_the_dht_is_on_by_default_with_the_public_routers() -> None:
    config = dht_config(options())
    assert config == DHTConfig(bootstrap=DEFAULT_ROUTERS, one_node_per_ip=True)
    assert DEFAULT_ROUTERS == (
        ("router.bittorrent.com", 6881),
        ("dht.transmissionbt.com", 6881),
        ("router.utorrent.com", 6881),
    )


def test_no_dht_turns_it_off() -> None:
    assert dht_config(options("--no-dht")) is None


def test_dht_bootstrap_replaces_the_routers_and_repeats() -> None:
    config = dht_config(
        options("--dht-bootstrap", "127.0.0.2:6881", "--dht-bootstrap", "[::1]:7000")
    )
    assert config is not None and config.bootstrap == (("127.0.0.2", 6881), ("::1", 7000))


def test_same_ip_nodes_relaxes_the_one_node_per_ip_rule() -> None:
    config = dht_config(options("--dht-same-ip-nodes"))
    assert config is not None and not config.one_node_per_ip


@pytest.mark.parametrize("value", ["nohost", ":6881", "host:0", "host:99999", "::1:80", "h:x"])
def test_a_bad_bootstrap_node_is_an_option_error(value: str) -> None:
    with pytest.raises(ValueError):
        parse_node_address(value)
    with pytest.raises((usage.UsageError, SystemExit)):
        options("--dht-bootstrap", value)
