"""Fuzzing the v2 and hybrid metainfo parser: every bad input is one MetainfoError line.

The same campaigns as test_fuzz.py's for v1 (byte edits, replaced values), over
generated v2-only and hybrid torrents, with the v2 keys among the interesting ones.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import (
    bencodable,
    byte_edits,
    check_metainfo,
    components,
    edit_bytes,
    fuzz,
    interesting_keys,
    parses_or_refuses,
    replace_values,
)
from test_metainfo_v2 import torrent, v2_info

from bt import bencode
from bt.metainfo import parse_metainfo

v2_keys = st.sampled_from(
    [b"", b"meta version", b"file tree", b"pieces root", b"length", b"piece layers", b"attr"]
)


@st.composite
def valid_v2_torrents(draw: st.DrawFn) -> bytes:
    """Small v2-only or hybrid torrents bt must accept, single- or multi-file."""
    piece_length = draw(st.sampled_from([16384, 32768]))
    paths = draw(
        st.lists(
            st.lists(components, min_size=1, max_size=3).map(tuple),
            min_size=1,
            max_size=4,
            unique_by=lambda path: path[:1],  # no file where another needs a folder
        )
    )
    files = {
        path: bytes([number]) * draw(st.integers(0, 3 * piece_length))
        for number, path in enumerate(paths)
    }
    if not any(files.values()):
        files[paths[0]] = b"\x01"
    info, layers = v2_info(files, piece_length=piece_length, hybrid=draw(st.booleans()))
    return torrent(info, layers)


@fuzz
@given(valid_v2_torrents(), byte_edits)
def test_v2_metainfo_from_byte_mutated_torrents_raises_only_metainfo_error(
    original: bytes, edits: list[tuple[str, int, int]]
) -> None:
    check_metainfo(parse_metainfo(original))
    parses_or_refuses(edit_bytes(original, edits))


@fuzz
@given(valid_v2_torrents(), st.data())
def test_v2_metainfo_with_replaced_values_raises_only_metainfo_error(
    original: bytes, data: st.DataObject
) -> None:
    values = bencodable | st.binary(min_size=32, max_size=32)
    root = replace_values(bencode.decode(original), data, v2_keys | interesting_keys, values)
    parses_or_refuses(bencode.encode(root))
