"""BEP 9: ut_metadata messages and assembling the info dictionary from several peers."""

from __future__ import annotations

import hashlib

import pytest

from bt.errors import RemoteProtocolError
from bt.extensions.metadata_assembly import MetadataAssembler, MetadataHashError
from bt.extensions.metadata_messages import (
    METADATA_PIECE,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    encode_metadata_message,
    parse_metadata_message,
)

INFO = bytes(range(256)) * 150  # 38,400 bytes: three pieces, the last 5,632 bytes
INFO_HASH = hashlib.sha1(INFO).digest()


def piece(index: int, info: bytes = INFO) -> MetadataData:
    return MetadataData(
        index, len(info), info[index * METADATA_PIECE : (index + 1) * METADATA_PIECE]
    )


@pytest.mark.parametrize(
    "message", [MetadataRequest(3), MetadataReject(0), piece(2), MetadataData(0, 5, b"abcde")]
)
def test_messages_round_trip(message):
    assert parse_metadata_message(encode_metadata_message(message)) == message


def test_the_bep_9_example_request():
    assert parse_metadata_message(b"d8:msg_typei0e5:piecei0ee") == MetadataRequest(0)


def test_unknown_message_types_are_ignored():
    assert parse_metadata_message(b"d8:msg_typei9e5:piecei0ee") is None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"le",
        b"d5:piecei0ee",
        b"d8:msg_typei0e5:piecei-1ee",
        b"d8:msg_typei1e5:piecei0ee",  # data without total_size
        b"d8:msg_typei0e5:piecei0eexx",  # stray bytes after a request
        b"d8:msg_typei1e5:piecei0e10:total_sizei1ee" + b"x" * (METADATA_PIECE + 1),
    ],
)
def test_bad_messages_close_the_peer(payload):
    with pytest.raises(RemoteProtocolError):
        parse_metadata_message(payload)


def test_three_peers_fill_the_pieces_and_the_hash_is_checked():
    assembler = MetadataAssembler(INFO_HASH, len(INFO))
    assert assembler.num_pieces == 3 and assembler.piece_length(2) == 5_632
    first = assembler.next_requests("a")
    for index in first:
        assembler.asked("a", index, now=0)
    assert first == [0, 1]
    assert assembler.next_requests("a") == []  # two in flight already
    assert assembler.next_requests("b") == [2]
    assembler.asked("b", 2, now=0)
    assert assembler.accept("b", piece(2)) is None
    assert assembler.accept("a", piece(0)) is None
    assert assembler.accept("a", piece(1)) == INFO


def test_a_hash_mismatch_drops_everything_and_names_the_senders():
    bad = bytes(len(INFO))
    assembler = MetadataAssembler(INFO_HASH, len(INFO))
    assembler.accept("a", piece(0, bad))
    assembler.accept("b", piece(1, bad))
    with pytest.raises(MetadataHashError) as caught:
        assembler.accept("a", piece(2, bad))
    assert caught.value.peers == {"a", "b"}
    assert assembler.received == 0 and assembler.next_requests("c") == [0, 1]


@pytest.mark.parametrize(
    ("message", "says"),
    [
        (MetadataData(0, len(INFO) + 1, INFO[:METADATA_PIECE]), "total_size"),
        (MetadataData(3, len(INFO), b"x"), "piece 3 of 3"),
        (MetadataData(2, len(INFO), b"short"), "not 5632"),
        (MetadataData(0, len(INFO), INFO[: METADATA_PIECE - 1]), "not 16384"),
    ],
)
def test_wrong_sizes_and_pieces_are_the_senders_error(message, says):
    with pytest.raises(RemoteProtocolError, match=says):
        MetadataAssembler(INFO_HASH, len(INFO)).accept("a", message)


@pytest.mark.parametrize("size", [0, -1, 33 * 1024 * 1024])
def test_an_impossible_size_is_refused_before_anything_is_kept(size):
    with pytest.raises(RemoteProtocolError, match="metadata_size"):
        MetadataAssembler(INFO_HASH, size)


def test_a_stalled_peer_loses_its_pieces_to_others():
    assembler = MetadataAssembler(INFO_HASH, len(INFO))
    for index in assembler.next_requests("slow"):
        assembler.asked("slow", index, now=0)
    assert assembler.stalled(now=10) == set()
    assert assembler.stalled(now=25) == {"slow"}
    assert assembler.next_requests("slow") == [2]  # not the pieces it sat on
    assert assembler.next_requests("fast") == [0, 1]


def test_rejects_and_lost_peers_free_their_pieces():
    assembler = MetadataAssembler(INFO_HASH, len(INFO))
    assembler.asked("a", 0, now=0)
    assembler.asked("b", 1, now=0)
    assembler.rejected("a", 0)
    assert assembler.next_requests("a") == [2]
    assembler.peer_lost("b")
    assert assembler.next_requests("c") == [0, 1]


def test_a_late_duplicate_piece_is_ignored():
    assembler = MetadataAssembler(INFO_HASH, len(INFO))
    assembler.accept("a", piece(0))
    assert assembler.accept("b", piece(0)) is None and assembler.received == 1
