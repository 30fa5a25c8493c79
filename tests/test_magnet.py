"""Magnet links: every parameter bt uses, both hash spellings, and garbage that must be refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.errors import MagnetError
from bt.magnet import MAX_MAGNET_LENGTH, MagnetLink, is_magnet, parse_magnet

HASH = bytes(range(20))
HEX = HASH.hex()
BASE32 = base64.b32encode(HASH).decode()


def test_hex_info_hash():
    link = parse_magnet(f"magnet:?xt=urn:btih:{HEX}")
    assert link == MagnetLink(info_hash=HASH)
    assert link.display_name == HEX


def test_upper_case_hex_and_scheme():
    assert parse_magnet(f"MAGNET:?xt=URN:BTIH:{HEX.upper()}").info_hash == HASH


def test_base32_info_hash_in_either_case():
    assert parse_magnet(f"magnet:?xt=urn:btih:{BASE32}").info_hash == HASH
    assert parse_magnet(f"magnet:?xt=urn:btih:{BASE32.lower()}").info_hash == HASH


def test_every_parameter():
    link = parse_magnet(
        f"magnet:?xt=urn:btih:{HEX}&dn=My%20Album&tr=http%3A%2F%2Ft.example%2Fannounce"
        "&tr=udp://t2.example:6969&x.pe=127.0.0.1:6881&x.pe=%5B%3A%3A1%5D%3A6882"
        "&ws=http://web.example/seed&so=0-3"
    )
    assert link.name == "My Album"
    assert link.display_name == "My Album"
    assert link.trackers == ("http://t.example/announce", "udp://t2.example:6969")
    assert link.tiers == (("http://t.example/announce",), ("udp://t2.example:6969",))
    assert link.peers == (("127.0.0.1", 6881), ("::1", 6882))


def test_numbered_parameters_count_and_duplicates_are_kept_once():
    link = parse_magnet(
        f"magnet:?xt.1=urn:btih:{HEX}&tr.1=http://a/ann&tr.2=http://a/ann&x.pe=1.2.3.4:5"
        "&x.pe=1.2.3.4:5"
    )
    assert link.info_hash == HASH
    assert link.trackers == ("http://a/ann",)
    assert link.peers == (("1.2.3.4", 5),)


def test_v2_and_hybrid_links():
    digest = bytes(range(32))
    v2_only = parse_magnet(f"magnet:?xt=urn:btmh:1220{digest.hex()}")
    assert v2_only.info_hash is None and v2_only.info_hash_v2 == digest
    hybrid = parse_magnet(f"magnet:?xt=urn:btih:{HEX}&xt=urn:btmh:1220{digest.hex()}")
    assert (hybrid.info_hash, hybrid.info_hash_v2) == (HASH, digest)


def test_other_urns_are_ignored_beside_btih():
    link = parse_magnet(f"magnet:?xt=urn:sha1:ABCDEF&xt=urn:btih:{HEX}")
    assert link.info_hash == HASH


def test_uri_round_trips():
    link = MagnetLink(HASH, bytes(32), "a & b", ("http://t/a?x=1",), (("::1", 1), ("1.2.3.4", 9)))
    assert parse_magnet(link.uri()) == link


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("http://example.com/a.torrent", "must start with 'magnet:?'"),
        ("magnet:?dn=x", "no 'xt=urn:btih:'"),
        ("magnet:?xt=urn:btih:" + "z" * 40, "not hex"),
        ("magnet:?xt=urn:btih:" + "1" * 32, "not base32"),
        ("magnet:?xt=urn:btih:abc", "not 3"),
        (f"magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{'00' * 20}", "two different urn:btih"),
        ("magnet:?xt=urn:btmh:1120" + "00" * 32, "SHA-256 multihash"),
        ("magnet:?xt=urn:btmh:zz", "not hex"),
        (f"magnet:?xt=urn:btih:{HEX}&tr=ftp://x", "tr=ftp://x"),
        (f"magnet:?xt=urn:btih:{HEX}&tr=http://a%20b", "spaces or control"),
        (f"magnet:?xt=urn:btih:{HEX}&x.pe=1.2.3.4", "has no port"),
        (f"magnet:?xt=urn:btih:{HEX}&x.pe=host.example:80", "not an IP address"),
        (f"magnet:?xt=urn:btih:{HEX}&x.pe=1.2.3.4:0", "port must be 1-65535"),
        (f"magnet:?xt=urn:btih:{HEX}&x.pe=1.2.3.4:99999", "port must be 1-65535"),
        (f"magnet:?xt=urn:btih:{HEX}&x.pe=[::1", "not [IPv6]:port"),
    ],
)
def test_bad_links_name_what_is_wrong(text, says):
    with pytest.raises(MagnetError, match=None) as caught:
        parse_magnet(text)
    assert says in str(caught.value)


def test_a_huge_link_is_refused_before_parsing():
    with pytest.raises(MagnetError, match="over"):
        parse_magnet("magnet:?xt=urn:btih:" + HEX + "&dn=" + "a" * MAX_MAGNET_LENGTH)


def test_remote_text_in_errors_is_escaped_and_bounded():
    with pytest.raises(MagnetError) as caught:
        parse_magnet(f"magnet:?xt=urn:btih:{HEX}&tr=\x1b[31m" + "x" * 5000)
    message = str(caught.value)
    assert "\x1b" not in message and len(message) < 300


def test_is_magnet():
    assert is_magnet("magnet:?xt=1") and is_magnet("Magnet:?") and not is_magnet("file.torrent")


@given(st.text(max_size=300))
def test_garbage_after_the_scheme_parses_or_raises_magnet_error(tail):
    try:
        link = parse_magnet("magnet:?" + tail)
    except MagnetError:
        return
    assert link.info_hash is not None or link.info_hash_v2 is not None


@given(
    st.binary(min_size=20, max_size=20),
    st.one_of(st.none(), st.text(min_size=1, max_size=40).filter(str.strip)),
    st.lists(st.tuples(st.ip_addresses().map(str), st.integers(1, 65535)), max_size=5),
)
def test_written_links_parse_back(digest, name, peers):
    link = MagnetLink(digest, None, name and name.strip(), (), tuple(dict.fromkeys(peers)))
    assert parse_magnet(link.uri()) == link
