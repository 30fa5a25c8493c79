"""BEP 15 packets: exact request bytes, strict response parsing, garbage in -> TrackerError only.

Expected bytes are built here with ``struct`` from the BEP's tables, not with
the codec, so a mistake in the codec's layout cannot hide behind itself.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.errors import TrackerError
from bt.tracker.announce import (
    AnnounceRequest,
    AnnounceResponse,
    encode_compact_peers,
    encode_compact_peers6,
)
from bt.tracker.scrape import ScrapeResult
from bt.tracker.udpcodec import (
    MAX_SCRAPE_HASHES,
    PROTOCOL_ID,
    encode_announce_request,
    encode_connect_request,
    encode_scrape_request,
    key_to_u32,
    parse_announce_response,
    parse_connect_response,
    parse_error_response,
    parse_scrape_response,
    read_header,
)

TID = 0xDEADBEEF
CID = 0x0123456789ABCDEF
INFO_HASH = bytes(range(20))
PEER_ID = b"-BT0001-abcdefghijkl"


def request(**changes: object) -> AnnounceRequest:
    fields: dict[str, object] = {
        "info_hash": INFO_HASH,
        "peer_id": PEER_ID,
        "port": 6881,
        "uploaded": 10,
        "downloaded": 20,
        "left": 30,
        "event": "started",
        "key": "0badf00d",
    }
    fields.update(changes)
    return AnnounceRequest(**fields)  # type: ignore[arg-type]


def header(action: int, tid: int = TID) -> bytes:
    return struct.pack("!iI", action, tid)


def announce_body(interval: int = 1800, leechers: int = 3, seeders: int = 5) -> bytes:
    return header(1) + struct.pack("!iii", interval, leechers, seeders)


# --- requests -----------------------------------------------------------------------


def test_connect_request_is_magic_action_zero_and_transaction_id() -> None:
    assert encode_connect_request(TID) == struct.pack("!QiI", 0x41727101980, 0, TID)
    assert PROTOCOL_ID == 0x41727101980


def test_announce_request_has_every_field_in_bep15_order() -> None:
    packet = encode_announce_request(CID, TID, request(numwant=80))
    assert len(packet) == 98
    assert packet == struct.pack(
        "!QiI20s20sqqqiIIiH",
        CID,
        1,
        TID,
        INFO_HASH,
        PEER_ID,
        20,  # downloaded
        30,  # left
        10,  # uploaded
        2,  # started
        0,  # IP: the sender's
        0x0BADF00D,
        80,
        6881,
    )


@pytest.mark.parametrize(
    ("event", "code"), [(None, 0), ("completed", 1), ("started", 2), ("stopped", 3)]
)
def test_announce_event_codes(event: str | None, code: int) -> None:
    packet = encode_announce_request(CID, TID, request(event=event))
    assert struct.unpack_from("!i", packet, 80)[0] == code


def test_key_hex_is_read_as_its_number_and_other_keys_are_folded_stably() -> None:
    assert key_to_u32("0badf00d") == 0x0BADF00D
    assert key_to_u32("FFFFFFFF") == 0xFFFFFFFF
    assert key_to_u32("k3y") == key_to_u32("k3y")
    assert 0 <= key_to_u32("k3y") < 2**32
    assert 0 <= key_to_u32("0123456789") < 2**32  # too long for hex: folded, not overflowing


def test_scrape_request_is_header_then_hashes() -> None:
    hashes = [b"a" * 20, b"b" * 20]
    assert encode_scrape_request(CID, TID, hashes) == (
        struct.pack("!QiI", CID, 2, TID) + b"a" * 20 + b"b" * 20
    )


@pytest.mark.parametrize(
    "hashes", [[], [b"short"], [b"x" * 20] * (MAX_SCRAPE_HASHES + 1)], ids=["none", "bad", "many"]
)
def test_scrape_request_refuses_what_a_tracker_cannot_answer(hashes: list[bytes]) -> None:
    with pytest.raises(ValueError):
        encode_scrape_request(CID, TID, hashes)


@pytest.mark.parametrize(("cid", "tid"), [(0, -1), (0, 2**32), (-1, 0), (2**64, 0)])
def test_ids_out_of_range_are_bugs(cid: int, tid: int) -> None:
    with pytest.raises(ValueError):
        encode_announce_request(cid, tid, request())


# --- responses ----------------------------------------------------------------------


def test_read_header_routes_any_response() -> None:
    assert read_header(header(3, 7) + b"msg") == (3, 7)
    with pytest.raises(TrackerError, match="shorter than its 8-byte header"):
        read_header(b"\x00" * 7)


def test_connect_response_gives_connection_id_and_allows_trailing_bytes() -> None:
    assert parse_connect_response(header(0) + struct.pack("!Q", CID), TID) == CID
    assert parse_connect_response(header(0) + struct.pack("!Q", CID) + b"xx", TID) == CID


def test_announce_response_ipv4_round_trip() -> None:
    peers = [("10.0.0.1", 6881), ("192.168.1.2", 51413)]
    parsed = parse_announce_response(announce_body() + encode_compact_peers(peers), TID, ipv6=False)
    assert parsed == AnnounceResponse(
        interval=1800,
        min_interval=None,
        tracker_id=None,
        complete=5,
        incomplete=3,
        warning=None,
        peers=tuple(peers),
    )


def test_announce_response_ipv6_uses_18_byte_entries() -> None:
    peers = [("2001:db8::1", 6881), ("::1", 7000)]
    parsed = parse_announce_response(announce_body() + encode_compact_peers6(peers), TID, ipv6=True)
    assert parsed.peers == tuple(peers)


def test_announce_response_drops_port_zero_and_duplicates() -> None:
    peers = [("10.0.0.1", 1), ("10.0.0.2", 0), ("10.0.0.1", 1)]
    parsed = parse_announce_response(announce_body() + encode_compact_peers(peers), TID, ipv6=False)
    assert parsed.peers == (("10.0.0.1", 1),)
    assert parsed.malformed_peers == 1


def test_announce_response_without_peers() -> None:
    assert parse_announce_response(announce_body(), TID, ipv6=False).peers == ()


def test_scrape_response_matches_triples_to_hashes_by_position() -> None:
    hashes = [b"a" * 20, b"b" * 20, b"c" * 20]
    body = header(2) + struct.pack("!iiiiiiiii", 1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert parse_scrape_response(body, TID, hashes) == {
        b"a" * 20: ScrapeResult(complete=1, downloaded=2, incomplete=3),
        b"b" * 20: ScrapeResult(complete=4, downloaded=5, incomplete=6),
        b"c" * 20: ScrapeResult(complete=7, downloaded=8, incomplete=9),
    }


def test_truncated_scrape_response_leaves_later_hashes_absent() -> None:
    hashes = [b"a" * 20, b"b" * 20]
    body = header(2) + struct.pack("!iii", 1, 2, 3)
    assert list(parse_scrape_response(body, TID, hashes)) == [b"a" * 20]


def test_error_response_text() -> None:
    assert parse_error_response(header(3) + b"torrent not registered", TID) == (
        "torrent not registered"
    )
    assert parse_error_response(header(3) + b"\xff", TID) == "\\xff"


def test_a_huge_error_text_is_cut_and_escaped() -> None:
    text = parse_error_response(header(3) + b"\x1b[31m" + b"e" * 1_000_000, TID)
    assert len(text) <= 250 and text.isprintable() and text.startswith("\\x1b[31meee")
    with pytest.raises(TrackerError) as info:
        parse_connect_response(header(3) + b"\x1b[31m" + b"e" * 1_000_000, TID)
    assert len(str(info.value)) <= 250 and str(info.value).isprintable()


# --- rejections ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (
            lambda d: parse_connect_response(d, TID),
            header(0, TID + 1) + bytes(8),
            "transaction id 0xdeadbef0, expected 0xdeadbeef",
        ),
        (lambda d: parse_connect_response(d, TID), header(1) + bytes(8), "action announce"),
        (lambda d: parse_connect_response(d, TID), header(9) + bytes(8), r"unknown \(9\)"),
        (lambda d: parse_connect_response(d, TID), header(0) + bytes(7), "15 bytes"),
        (lambda d: parse_connect_response(d, TID), b"\x00\x00", "shorter than"),
        (
            lambda d: parse_connect_response(d, TID),
            header(3) + b"go away",
            "tracker error: go away",
        ),
        (lambda d: parse_connect_response(d, TID), header(3), "^tracker error$"),
        (lambda d: parse_announce_response(d, TID, ipv6=False), header(1) + bytes(11), "19"),
        (
            lambda d: parse_announce_response(d, TID, ipv6=False),
            announce_body() + bytes(5),
            "5 bytes of IPv4 peers",
        ),
        (
            lambda d: parse_announce_response(d, TID, ipv6=True),
            announce_body() + bytes(6),
            "6 bytes of IPv6 peers, not a multiple of 18",
        ),
        (
            lambda d: parse_announce_response(d, TID, ipv6=False),
            announce_body(interval=-1),
            "negative interval",
        ),
        (
            lambda d: parse_announce_response(d, TID, ipv6=False),
            announce_body(leechers=-1),
            "negative leechers",
        ),
        (
            lambda d: parse_announce_response(d, TID, ipv6=False),
            announce_body(seeders=-2),
            "negative seeders",
        ),
        (
            lambda d: parse_announce_response(d, TID, ipv6=False),
            header(2) + bytes(12),
            "action scrape",
        ),
        (
            lambda d: parse_scrape_response(d, TID, [b"a" * 20]),
            header(2) + bytes(13),
            "13 bytes of counts",
        ),
        (
            lambda d: parse_scrape_response(d, TID, [b"a" * 20]),
            header(2) + bytes(24),
            "2 entries for 1 hashes",
        ),
        (
            lambda d: parse_scrape_response(d, TID, [b"a" * 20]),
            header(2) + struct.pack("!iii", 1, -1, 1),
            "entry 0 has a negative count",
        ),
        (lambda d: parse_error_response(d, TID), header(0) + bytes(8), "action connect"),
    ],
)
def test_every_malformed_response_is_a_tracker_error_saying_what(
    parse: object, data: bytes, message: str
) -> None:
    with pytest.raises(TrackerError, match=message):
        parse(data)  # type: ignore[operator]


# --- garbage in ---------------------------------------------------------------------


@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda action, tid, rest: struct.pack("!iI", action, tid) + rest,
            st.integers(-1, 4),
            st.sampled_from([TID, 0]),
            st.binary(max_size=120),
        ),
    ),
    ipv6=st.booleans(),
)
def test_garbage_is_only_ever_a_tracker_error(data: bytes, ipv6: bool) -> None:
    hashes = [b"a" * 20, b"b" * 20]
    for parse in (
        read_header,
        lambda d: parse_connect_response(d, TID),
        lambda d: parse_announce_response(d, TID, ipv6=ipv6),
        lambda d: parse_scrape_response(d, TID, hashes),
        lambda d: parse_error_response(d, TID),
    ):
        try:
            parse(data)
        except TrackerError:
            pass


@given(
    peers=st.lists(
        st.tuples(st.ip_addresses(v=4).map(str), st.integers(1, 65535)), unique=True, max_size=30
    ),
    interval=st.integers(0, 2**31 - 1),
    leechers=st.integers(0, 2**31 - 1),
    seeders=st.integers(0, 2**31 - 1),
)
def test_announce_response_round_trip(
    peers: list[tuple[str, int]], interval: int, leechers: int, seeders: int
) -> None:
    data = announce_body(interval, leechers, seeders) + encode_compact_peers(peers)
    parsed = parse_announce_response(data, TID, ipv6=False)
    assert (parsed.interval, parsed.incomplete, parsed.complete) == (interval, leechers, seeders)
    assert parsed.peers == tuple(peers)


@given(tid=st.integers(0, 2**32 - 1), cid=st.integers(0, 2**64 - 1))
def test_ids_round_trip_through_requests_and_headers(tid: int, cid: int) -> None:
    assert read_header(encode_connect_request(tid)[8:]) == (0, tid)
    assert parse_connect_response(struct.pack("!iIQ", 0, tid, cid), tid) == cid
    assert struct.unpack_from("!Q", encode_announce_request(cid, tid, request()))[0] == cid
