"""Node ids: XOR distance and BEP 42, against the BEP's own test vectors."""

from __future__ import annotations

import random

import pytest

from bt.dht.nodeid import (
    bep42_prefix,
    common_prefix_bits,
    crc32c,
    distance,
    generate_id,
    is_exempt,
    is_valid_id,
    random_id,
)

#: BEP 42's table: IP, rand, node id.
VECTORS = [
    ("124.31.75.21", 1, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
    ("21.75.31.124", 86, "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
    ("65.23.51.170", 22, "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
    ("84.124.73.14", 65, "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
    ("43.213.53.83", 90, "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
]


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize(("ip", "rand", "hex_id"), VECTORS)
def test_bep42_vectors(ip: str, rand: int, hex_id: str) -> None:
    node_id = bytes.fromhex(hex_id)
    assert node_id[19] == rand
    assert bep42_prefix(ip, rand) >> 11 == int(hex_id[:6], 16) >> 3
    assert is_valid_id(node_id, ip)
    assert not is_valid_id(node_id, "1.2.3.4")


def test_bep42_prefix_of_the_worked_example() -> None:
    """BEP 42's example: crc32c((ip & 0x030f3fff) | (r << 29)) for 124.31.75.21, r = 1."""
    assert bep42_prefix("124.31.75.21", 1) == crc32c(bytes.fromhex("200f0b15"))


def test_generated_ids_are_valid_for_their_ip() -> None:
    rng = random.Random(3)
    for ip in ("8.8.8.8", "93.184.216.34", "2001:4860::8888"):
        node_id = generate_id(ip, rng)
        assert len(node_id) == 20
        assert is_valid_id(node_id, ip)
        assert not is_valid_id(bytes(a ^ 0x80 if i == 0 else a for i, a in enumerate(node_id)), ip)


@pytest.mark.parametrize(
    "ip", ["127.0.0.1", "127.4.5.6", "10.1.2.3", "192.168.0.5", "172.16.9.9", "169.254.1.1", "::1"]
)
def test_local_and_private_addresses_are_exempt(ip: str) -> None:
    assert is_exempt(ip)
    assert is_valid_id(b"\x00" * 20, ip)


def test_public_addresses_are_not_exempt() -> None:
    assert not is_exempt("8.8.8.8")
    assert not is_exempt("2001:4860::8888")


def test_a_host_that_is_no_address_is_never_valid() -> None:
    assert not is_exempt("router.bittorrent.com")
    assert not is_valid_id(b"\x00" * 20, "router.bittorrent.com")


def test_distance_and_prefix() -> None:
    a, b = b"\x00" * 20, b"\x00" * 19 + b"\x01"
    assert distance(a, a) == 0
    assert distance(a, b) == 1 == distance(b, a)
    assert common_prefix_bits(a, b) == 159
    assert common_prefix_bits(a, a) == 160
    assert common_prefix_bits(a, b"\x80" + b"\x00" * 19) == 0
    rng = random.Random(1)
    assert random_id(rng) != random_id(rng)
