"""BEP 11 ut_pex messages: both families, flags, and the bounds a flooding peer meets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt import bencode
from bt.errors import RemoteProtocolError
from bt.extensions.pex_messages import (
    MAX_RECEIVED_PEX_PEERS,
    PexFlags,
    PexMessage,
    encode_pex,
    parse_pex,
)


def test_round_trip_of_both_families_with_flags():
    message = PexMessage(
        added=(
            (("127.0.0.1", 6881), PexFlags.SEED | PexFlags.REACHABLE),
            (("127.0.0.1", 6882), PexFlags.NONE),
            (("::1", 7000), PexFlags.ENCRYPTION),
        ),
        dropped=(("10.0.0.1", 1), ("fe80::1", 2)),
    )
    assert parse_pex(encode_pex(message)) == message


def test_missing_flags_and_zero_ports():
    payload = bencode.encode(
        {b"added": b"\x7f\x00\x00\x01\x1a\xe1" + b"\x7f\x00\x00\x02\x00\x00", b"added.f": b""}
    )
    assert parse_pex(payload) == PexMessage(added=((("127.0.0.1", 6881), PexFlags.NONE),))


def test_an_empty_message_is_empty():
    assert parse_pex(b"de").is_empty


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"le", "not a dictionary"),
        (bencode.encode({b"added": 5}), "not a string"),
        (bencode.encode({b"added": b"12345"}), "not a multiple of 6"),
        (bencode.encode({b"dropped6": b"x" * 17}), "not a multiple of 18"),
        (bencode.encode({b"added": b"\x01" * 6 * (MAX_RECEIVED_PEX_PEERS + 1)}), "over 100"),
    ],
)
def test_malformed_and_flooding_messages_close_the_peer(payload, says):
    with pytest.raises(RemoteProtocolError, match=says):
        parse_pex(payload)


@given(
    st.lists(st.tuples(st.ip_addresses(v=4).map(str), st.integers(1, 65535)), max_size=50),
    st.lists(st.ip_addresses(v=6).map(str), max_size=20),
)
def test_encoded_peers_parse_back(v4, v6):
    added = tuple(((host, port), PexFlags.SEED) for host, port in v4)
    dropped = tuple((host, 80) for host in v6)
    assert parse_pex(encode_pex(PexMessage(added, dropped))) == PexMessage(added, dropped)
