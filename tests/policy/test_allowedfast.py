"""BEP 6 allowed-fast sets against the specification's own test vectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.policy.allowedfast import allowed_fast_set

INFO_HASH = b"\xaa" * 20


#: BEP 6's example: 80.4.4.200, an info-hash of 0xAA bytes, 1313 pieces.
BEP_6_NINE = [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]


@pytest.mark.parametrize("count", [7, 9])
def test_bep_6_vectors(count):
    assert allowed_fast_set("80.4.4.200", INFO_HASH, 1313, count) == BEP_6_NINE[:count]


def test_the_last_octet_does_not_matter_and_mapped_ipv4_is_ipv4():
    expected = allowed_fast_set("80.4.4.200", INFO_HASH, 1313, 7)
    assert allowed_fast_set("80.4.4.1", INFO_HASH, 1313, 7) == expected
    assert allowed_fast_set("::ffff:80.4.4.9", INFO_HASH, 1313, 7) == expected


def test_a_small_torrent_gets_every_piece_once():
    assert sorted(allowed_fast_set("10.0.0.1", INFO_HASH, 3, 10)) == [0, 1, 2]
    assert allowed_fast_set("10.0.0.1", INFO_HASH, 0) == []


@given(st.ip_addresses().map(str), st.integers(1, 5000), st.integers(0, 20))
def test_sets_are_distinct_in_range_and_sized(ip, num_pieces, count):
    pieces = allowed_fast_set(ip, INFO_HASH, num_pieces, count)
    assert len(pieces) == min(count, num_pieces) == len(set(pieces))
    assert all(0 <= index < num_pieces for index in pieces)
