"""Announce codec: byte-exact URLs, every response shape of BEP 3/23/7, only TrackerError out."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt import bencode
from bt.errors import TrackerError
from bt.tracker.announce import (
    AnnounceRequest,
    AnnounceResponse,
    announce_url,
    encode_compact_peers,
    encode_compact_peers6,
    parse_announce_response,
    parse_compact_peers,
    parse_compact_peers6,
)

#: Every byte a naive encoder gets wrong: space, '+', '/', '%', '&', '=', '~' and non-ASCII.
NASTY_HASH = b" +/%&=~\x00\x7f\x80\xff" + bytes(range(0xE0, 0xE9))
NASTY_HASH_QUOTED = "%20%2B%2F%25%26%3D~%00%7F%80%FF%E0%E1%E2%E3%E4%E5%E6%E7%E8"
PEER_ID = b"-BT0001-abcdefghijkl"


def make_request(**changes: object) -> AnnounceRequest:
    request = AnnounceRequest(
        info_hash=NASTY_HASH,
        peer_id=PEER_ID,
        port=6881,
        uploaded=1,
        downloaded=2,
        left=3,
        event="started",
        key="k3y",
    )
    return replace(request, **changes)


def body(**fields: object) -> bytes:
    return bencode.encode({key.replace("_", " "): value for key, value in fields.items()})


# --- announce_url -----------------------------------------------------------------


def test_url_percent_encodes_every_binary_byte_and_never_uses_plus() -> None:
    url = announce_url("http://tracker.example/announce", make_request())
    assert url == (
        "http://tracker.example/announce?info_hash="
        + NASTY_HASH_QUOTED
        + "&peer_id=-BT0001-abcdefghijkl"
        "&port=6881&uploaded=1&downloaded=2&left=3&compact=1&event=started&numwant=50&key=k3y"
    )


def test_url_keeps_a_passkey_query_and_appends_with_ampersand() -> None:
    url = announce_url("https://t.example/a?passkey=s3cr3t", make_request())
    assert url.startswith("https://t.example/a?passkey=s3cr3t&info_hash=%20%2B")
    assert url.count("?") == 1


@pytest.mark.parametrize("base", ["http://t/a?", "http://t/a?passkey=x&"])
def test_url_does_not_double_a_trailing_separator(base: str) -> None:
    assert announce_url(base, make_request()).startswith(base + "info_hash=")


def test_url_drops_a_fragment() -> None:
    assert announce_url("http://t/a?pk=1#frag", make_request()).startswith("http://t/a?pk=1&info")


def test_url_omits_event_for_a_regular_announce() -> None:
    assert "event" not in announce_url("http://t/a", make_request(event=None))


def test_url_sends_tracker_id_encoded_and_non_compact() -> None:
    url = announce_url("http://t/a", make_request(tracker_id=b"a b+", compact=False, numwant=0))
    assert url.endswith("&compact=0&event=started&numwant=0&key=k3y&trackerid=a%20b%2B")


@given(st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20))
def test_url_query_decodes_back_to_the_exact_bytes(info_hash: bytes, peer_id: bytes) -> None:
    url = announce_url("http://t/a", make_request(info_hash=info_hash, peer_id=peer_id))
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    assert unquote_to_bytes(query["info_hash"]) == info_hash
    assert unquote_to_bytes(query["peer_id"]) == peer_id
    assert "+" not in query["info_hash"] and " " not in url


@pytest.mark.parametrize(
    "changes",
    [
        {"info_hash": b"short"},
        {"peer_id": b"x" * 21},
        {"port": 0},
        {"port": 65536},
        {"left": -1},
        {"numwant": -1},
        {"event": "paused"},
    ],
)
def test_request_refuses_values_bt_should_never_build(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_request(**changes)


# --- parse_announce_response: good answers ----------------------------------------


def test_compact_response_with_every_optional_field() -> None:
    peers = [("10.0.0.1", 6881), ("192.168.1.2", 51413)]
    response = parse_announce_response(
        body(
            interval=1800,
            min_interval=300,
            tracker_id=b"tid",
            complete=5,
            incomplete=7,
            warning_message=b"be nice",
            peers=encode_compact_peers(peers),
        )
    )
    assert response == AnnounceResponse(
        interval=1800,
        min_interval=300,
        tracker_id=b"tid",
        complete=5,
        incomplete=7,
        warning="be nice",
        peers=tuple(peers),
    )


def test_minimal_response_has_no_peers_and_no_optionals() -> None:
    response = parse_announce_response(body(interval=60))
    assert response.peers == ()
    assert response.min_interval is response.tracker_id is response.warning is None


def test_peers6_follow_ipv4_peers() -> None:
    response = parse_announce_response(
        body(
            interval=60,
            peers=encode_compact_peers([("1.2.3.4", 1)]),
            peers6=encode_compact_peers6([("2001:db8::1", 2), ("::ffff:1.2.3.4", 3)]),
        )
    )
    mapped = str(ipaddress.IPv6Address("::ffff:1.2.3.4"))  # its text differs across Pythons
    assert response.peers == (("1.2.3.4", 1), ("2001:db8::1", 2), (mapped, 3))


def test_dictionary_peer_list_skips_and_counts_bad_entries() -> None:
    entries = [
        {"ip": b"10.0.0.1", "port": 6881, "peer id": b"x" * 20},
        {"ip": b"2001:db8::2", "port": 1},
        {"ip": b"tracker.example", "port": 6881},  # host names are not resolved
        {"ip": b"10.0.0.3", "port": 0},
        {"ip": b"10.0.0.4", "port": 65536},
        {"ip": b"10.0.0.5", "port": b"6881"},
        {"ip": 5, "port": 6881},
        {"port": 6881},
        {"ip": b"fe80::1%eth0", "port": 6881},
        {"ip": b"\xff\xfe", "port": 6881},
        b"not a dict",
        {"ip": b"10.0.0.1", "port": 6881},  # a duplicate is dropped, not counted
    ]
    response = parse_announce_response(body(interval=60, peers=entries))
    assert response.peers == (("10.0.0.1", 6881), ("2001:db8::2", 1))
    assert response.malformed_peers == 9


def test_compact_entries_with_port_zero_are_skipped() -> None:
    data = encode_compact_peers([("1.1.1.1", 0), ("2.2.2.2", 2)])
    response = parse_announce_response(body(interval=60, peers=data))
    assert response.peers == (("2.2.2.2", 2),)
    assert response.malformed_peers == 1


def test_undecodable_warning_text_is_kept_with_its_bytes_escaped() -> None:
    response = parse_announce_response(body(interval=60, warning_message=b"slow \xff down"))
    assert response.warning == "slow \\xff down"


def test_a_huge_warning_with_terminal_escapes_is_cut_and_escaped() -> None:
    warning = b"\x1b[2J\x1b[31mowned\n" + b"w" * 1_000_000
    response = parse_announce_response(body(interval=60, warning_message=warning))
    assert response.warning is not None
    assert len(response.warning) <= 250
    assert response.warning.startswith("\\x1b[2J\\x1b[31mowned\\n")
    assert response.warning.endswith(f"({len(warning)} bytes)")
    assert response.warning.isprintable()


def test_a_huge_failure_reason_is_cut_and_escaped() -> None:
    with pytest.raises(TrackerError) as info:
        parse_announce_response(body(failure_reason=b"\x07\x1b]0;title\x07" + b"f" * 1_000_000))
    message = str(info.value)
    assert len(message) <= 250 and message.isprintable()
    assert message.startswith("\\x07\\x1b]0;title\\x07fff")


# --- parse_announce_response: refusals ---------------------------------------------


def test_failure_reason_becomes_the_error_message_even_without_interval() -> None:
    with pytest.raises(TrackerError) as info:
        parse_announce_response(body(failure_reason=b"torrent not registered"))
    assert str(info.value) == "torrent not registered"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"<html>502 Bad Gateway</html>", "not bencode"),
        (b"", "not bencode"),
        (b"d8:intervali60ee-trailing", "not bencode"),
        (b"li60ee", "not a dictionary"),
        (body(peers=b""), "'interval'"),
        (body(interval=-1), "'interval'"),
        (body(interval=b"60"), "'interval'"),
        (body(interval=60, min_interval=-5), "'min interval'"),
        (body(interval=60, complete=b"x"), "'complete'"),
        (body(interval=60, incomplete=-1), "'incomplete'"),
        (body(interval=60, tracker_id=7), "'tracker id'"),
        (body(interval=60, warning_message=[]), "'warning message'"),
        (body(interval=60, peers=7), "'peers'"),
        (body(interval=60, peers={"ip": b"1.2.3.4"}), "'peers'"),
        (body(interval=60, peers=b"12345"), "'peers'"),
        (body(interval=60, peers6=b"x" * 17), "'peers6'"),
        (body(interval=60, peers6=[]), "'peers6'"),
        (body(failure_reason=3), "'failure reason'"),
    ],
)
def test_bad_responses_are_tracker_errors_naming_the_problem(data: bytes, named: str) -> None:
    with pytest.raises(TrackerError, match=named):
        parse_announce_response(data)


# --- properties ---------------------------------------------------------------------

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)


@given(st.lists(st.tuples(ipv4, ports)))
def test_compact_ipv4_round_trip(peers: list[tuple[str, int]]) -> None:
    assert parse_compact_peers(encode_compact_peers(peers)) == tuple(peers)


@given(st.lists(st.tuples(ipv6, ports)))
def test_compact_ipv6_round_trip(peers: list[tuple[str, int]]) -> None:
    assert parse_compact_peers6(encode_compact_peers6(peers)) == tuple(peers)


def _outcome_is_a_response_or_tracker_error(data: bytes) -> None:
    try:
        result = parse_announce_response(data)
    except TrackerError:
        return
    assert isinstance(result, AnnounceResponse)


@given(st.binary(max_size=300))
def test_garbage_bytes_only_ever_raise_tracker_error(data: bytes) -> None:
    _outcome_is_a_response_or_tracker_error(data)


bencode_values = st.recursive(
    st.integers(-(2**70), 2**70) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from([b"ip", b"port", b"peer id", b"x"]) | st.binary(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        b"interval",
        b"min interval",
        b"tracker id",
        b"complete",
        b"incomplete",
        b"warning message",
        b"failure reason",
        b"peers",
        b"peers6",
    ]
)


@given(st.dictionaries(field_names, bencode_values, max_size=9))
def test_well_formed_bencode_with_wrong_field_values_only_raises_tracker_error(
    fields: dict[bytes, object],
) -> None:
    _outcome_is_a_response_or_tracker_error(bencode.encode(fields))


def test_ipv6_address_is_sent_when_given() -> None:
    with_v6 = AnnounceRequest(
        info_hash=b"\x01" * 20,
        peer_id=b"-BT0100-000000000000",
        port=6881,
        uploaded=0,
        downloaded=0,
        left=0,
        event=None,
        key="1",
        ipv6="2001:db8::1",
    )
    assert announce_url("http://t/announce", with_v6).endswith("&ipv6=2001%3Adb8%3A%3A1")
    without = AnnounceRequest(
        info_hash=b"\x01" * 20,
        peer_id=b"-BT0100-000000000000",
        port=6881,
        uploaded=0,
        downloaded=0,
        left=0,
        event=None,
        key="1",
    )
    assert "ipv6=" not in announce_url("http://t/announce", without)
