"""The BEP 10 extended handshake: what real clients send, what is dropped, what closes a peer."""

from __future__ import annotations

import pytest

from bt import bencode
from bt.errors import RemoteProtocolError
from bt.extensions.handshake import (
    MAX_EXTENDED_MESSAGE,
    ExtendedHandshake,
    parse_extended_handshake,
)

#: What libtorrent 2.x sends, field for field (its metadata_size included).
LIBTORRENT = bencode.encode(
    {
        b"m": {b"ut_metadata": 2, b"ut_pex": 1, b"upload_only": 3, b"lt_donthave": 7},
        b"metadata_size": 5_000,
        b"p": 6881,
        b"reqq": 500,
        b"v": b"libtorrent 2.0.11.0",
        b"yourip": b"\x7f\x00\x00\x01",
        b"upload_only": 1,
    }
)


def test_a_libtorrent_handshake():
    shake = parse_extended_handshake(LIBTORRENT)
    assert shake.messages == {"ut_metadata": 2, "ut_pex": 1, "upload_only": 3, "lt_donthave": 7}
    assert (shake.port, shake.client, shake.your_ip) == (6881, "libtorrent 2.0.11.0", "127.0.0.1")
    assert (shake.request_queue, shake.metadata_size, shake.upload_only) == (500, 5_000, True)


def test_round_trip_of_our_own():
    ours = ExtendedHandshake({"ut_metadata": 1, "ut_pex": 2}, 6881, "bt 0.1.0", "::1", 250, 77)
    assert parse_extended_handshake(ours.encode()) == ours


def test_wrong_typed_fields_are_dropped_not_fatal():
    shake = parse_extended_handshake(
        bencode.encode(
            {
                b"m": {b"ut_pex": b"one", b"big": 300, b"\xff": 3, b"ok": 4},
                b"p": 0,
                b"v": 7,
                b"yourip": b"abc",
                b"reqq": -1,
                b"metadata_size": 0,
            }
        )
    )
    assert shake == ExtendedHandshake({"ok": 4})


def test_client_names_are_shown_safely():
    shake = parse_extended_handshake(bencode.encode({b"v": b"\x1b[2J" + b"x" * 500}))
    assert shake.client is not None and "\x1b" not in shake.client and len(shake.client) < 130


@pytest.mark.parametrize(
    "payload", [b"", b"i1e", b"le", b"d1:mi1ee", b"d1:m" + b"x" * 10, b"d" * MAX_EXTENDED_MESSAGE]
)
def test_what_closes_the_peer(payload):
    with pytest.raises(RemoteProtocolError):
        parse_extended_handshake(payload)


def test_a_later_handshake_adds_and_disables_extensions():
    first = ExtendedHandshake({"ut_pex": 1, "ut_metadata": 2}, port=6881, metadata_size=9)
    later = first.updated(ExtendedHandshake({"ut_pex": 0, "lt_donthave": 7}))
    assert later.messages == {"ut_metadata": 2, "lt_donthave": 7}
    assert (later.port, later.metadata_size) == (6881, 9)
