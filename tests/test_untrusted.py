"""shown(): what remote parties say, bounded and escaped before bt logs or stores it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bt.untrusted import LIMIT, shown


def test_plain_text_is_kept_as_it_is() -> None:
    assert shown("torrent not registered") == "torrent not registered"
    assert shown(b"torrent not registered") == "torrent not registered"
    assert shown("Überwachung ✓ 東京") == "Überwachung ✓ 東京"


def test_control_characters_and_terminal_escapes_are_escaped() -> None:
    assert shown("a\x1b[31mred\x07\x00\r\n\t") == "a\\x1b[31mred\\x07\\x00\\r\\n\\t"
    assert shown("\u202edlrow") == "\\u202edlrow"  # a bidi override reorders the line
    assert shown("\x9b") == "\\x9b"  # the 8-bit CSI


def test_undecodable_bytes_are_shown_as_bytes() -> None:
    assert shown(b"slow \xff\xfe down") == "slow \\xff\\xfe down"


def test_long_text_is_cut_and_says_how_long_it_was() -> None:
    assert shown("x" * LIMIT) == "x" * LIMIT
    assert shown("x" * 1_000_000) == "x" * LIMIT + "… (1000000 characters)"
    assert shown(b"y" * 1_000_000) == "y" * LIMIT + "… (1000000 bytes)"
    assert shown("abcdef", limit=3) == "abc… (6 characters)"


def test_an_escape_is_never_cut_in_half() -> None:
    assert shown("ab\x1b", limit=4) == "ab… (3 characters)"
    assert shown(b"ab\xff", limit=5) == "ab… (3 bytes)"


@given(st.one_of(st.text(), st.binary()), st.integers(min_value=1, max_value=300))
def test_whatever_comes_in_the_result_is_one_bounded_printable_line(
    text: str | bytes, limit: int
) -> None:
    result = shown(text, limit)
    assert result.isprintable()
    assert len(result) <= limit + len("… (18446744073709551616 characters)")
