"""Garbage in, for every extension codec: only RemoteProtocolError comes out, never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bt import bencode
from bt.errors import RemoteProtocolError
from bt.extensions.handshake import parse_extended_handshake
from bt.extensions.metadata_messages import parse_metadata_message
from bt.extensions.pex_messages import parse_pex

PARSERS = [parse_extended_handshake, parse_metadata_message, parse_pex]
KEYS = [
    b"m",
    b"p",
    b"v",
    b"yourip",
    b"reqq",
    b"metadata_size",
    b"msg_type",
    b"piece",
    b"total_size",
    b"added",
    b"added.f",
    b"added6",
    b"dropped",
    b"dropped6",
]
VALUES = st.recursive(
    st.integers(-(2**70), 2**70) | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.binary(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
#: Dicts with the keys the codecs read, holding values of any type.
SHAPED = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6).map(bencode.encode)


# One @given over the parsers: pytest-twisted breaks on @given under parametrize.
@settings(max_examples=300)
@given(st.sampled_from(PARSERS), st.binary(max_size=300) | SHAPED, st.binary(max_size=20))
def test_only_protocol_errors_come_out(parse, payload, tail):
    try:
        parse(payload + tail)
    except RemoteProtocolError:
        pass
