"""Strict bencode: canonical round trips, and every malformed input rejected with its offset."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt import bencode
from bt.errors import BencodeError

values = st.recursive(
    st.integers() | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.binary(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)


@given(values)
def test_decode_of_encode_is_identity(value: object) -> None:
    assert bencode.decode(bencode.encode(value)) == value


@given(values)
def test_encoding_is_canonical(value: object) -> None:
    encoded = bencode.encode(value)
    assert bencode.encode(bencode.decode(encoded)) == encoded


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_garbage_raises_only_bencode_error(data: bytes) -> None:
    try:
        bencode.decode(data)
    except BencodeError as exc:
        assert 0 <= exc.offset <= len(data)


@given(values, st.binary(max_size=40))
def test_mutated_valid_input_raises_only_bencode_error(value: object, noise: bytes) -> None:
    encoded = bencode.encode(value)
    cut = len(noise) % (len(encoded) + 1)
    for candidate in (encoded[:cut] + noise, noise + encoded, encoded[cut:]):
        try:
            bencode.decode(candidate)
        except BencodeError:
            pass


@pytest.mark.parametrize(
    ("data", "reason", "offset"),
    [
        (b"i42ejunk", "trailing data (4 bytes) after the value", 4),
        (b"4:spam4:eggs", "trailing data (6 bytes) after the value", 6),
        (b"i03e", "leading zero in integer", 0),
        (b"i-0e", "negative zero in integer", 0),
        (b"i-03e", "leading zero in integer", 0),
        (b"ie", "invalid integer b''", 0),
        (b"i-e", "invalid integer b'-'", 0),
        (b"i1.5e", "invalid integer b'1.5'", 0),
        (b"i" + b"9" * 100 + b"e", "integer too long", 0),
        (b"i12", "unterminated integer", 0),
        (b"-3:abc", "negative string length", 0),
        (b"l-3:abce", "negative string length", 1),
        (b"03:abc", "leading zero in string length", 0),
        (b"5:abc", "string length 5 runs past the end of data", 0),
        (b"99999999999999999999999:a", "string length too long", 0),
        (b"12", "unterminated string length", 0),
        (b"1x:a", "invalid string length", 0),
        (b"l", "unterminated list", 1),
        (b"li1e", "unterminated list", 4),
        (b"d", "unterminated dict", 1),
        (b"d1:a", "unexpected end of data, expected a value", 4),
        (b"di1ei2ee", "dict key is not a string", 1),
        (b"dli1eei2ee", "dict key is not a string", 1),
        (b"d1:bi1e1:ai2ee", "dict key b'a' out of sorted order", 7),
        (b"d1:ai1e1:ai2ee", "duplicate dict key b'a'", 7),
        (b"x", "invalid value type byte b'x'", 0),
        (b"", "empty input", 0),
        (b"l" * 65 + b"e" * 65, "nesting deeper than 64", 64),
    ],
)
def test_rejection_names_cause_and_offset(data: bytes, reason: str, offset: int) -> None:
    with pytest.raises(BencodeError) as info:
        bencode.decode(data)
    assert info.value.reason == reason
    assert info.value.offset == offset
    assert str(info.value) == f"{reason} at offset {offset}"


def test_nesting_at_the_bound_is_accepted() -> None:
    depth = bencode.MAX_DEPTH
    assert bencode.decode(b"l" * depth + b"e" * depth) is not None


def test_decodes_the_example_from_bep3() -> None:
    assert bencode.decode(b"d3:cow3:moo4:spaml1:a1:bee") == {
        b"cow": b"moo",
        b"spam": [b"a", b"b"],
    }


def test_spans_locate_top_level_values_exactly() -> None:
    data = b"d4:infod6:lengthi3ee4:name1:xe"
    value, spans = bencode.decode_with_spans(data)
    start, end = spans[b"info"]
    assert data[start:end] == b"d6:lengthi3ee"
    assert value[b"name"] == b"x"


def test_encode_sorts_keys_and_encodes_text_as_utf8() -> None:
    assert bencode.encode({"b": 1, b"a": "é"}) == b"d1:a2:\xc3\xa91:bi1ee"


@pytest.mark.parametrize("value", [1.5, None, True, object(), {1: 2}])
def test_encode_refuses_what_bencode_cannot_express(value: object) -> None:
    with pytest.raises(TypeError):
        bencode.encode(value)


def test_encode_refuses_a_key_given_as_both_str_and_bytes() -> None:
    with pytest.raises(ValueError, match="given twice"):
        bencode.encode({"a": 1, b"a": 2})


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(BencodeError, match="expected bytes, got str"):
        bencode.decode("i1e")  # type: ignore[arg-type]


def test_decode_prefix_returns_the_leading_value_and_its_end():
    assert bencode.decode_prefix(b"d1:ai1ee" + b"\x00raw") == ({b"a": 1}, 8)


def test_decode_prefix_is_as_strict_as_decode():
    with pytest.raises(BencodeError):
        bencode.decode_prefix(b"d1:bi1e1:ai2ee")
    with pytest.raises(BencodeError):
        bencode.decode_prefix(b"")
