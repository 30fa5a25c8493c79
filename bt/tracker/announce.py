"""Announce request and response codec for HTTP(S) trackers (BEP 3, 23, 7).

Pure: builds the announce URL and turns a tracker's body into a frozen
:class:`AnnounceResponse`. Whatever bytes a tracker sends, the only exception
that comes out of :func:`parse_announce_response` is :class:`TrackerError`, so
a hostile or broken tracker can fail an announce but never crash the caller.

Peer lists: a compact ``peers``/``peers6`` string whose length is not a
multiple of its entry size is an error (the whole string is suspect). In a
dictionary peer list, one bad entry (not a dict, an ``ip`` that is not an IP
literal, a port outside 1..65535) is skipped and counted in
:attr:`AnnounceResponse.malformed_peers`: the other entries are still good.
Host names in ``ip`` are skipped too: bt does not resolve names a tracker
hands out. Wrong top-level types (``peers`` neither a string nor a list) are
errors.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bt import bencode
from bt.compact import IPV4, IPV6, pack_peers, unpack_peers
from bt.errors import BencodeError, TrackerError
from bt.untrusted import shown

__all__ = [
    "EVENTS",
    "AnnounceRequest",
    "AnnounceResponse",
    "Peer",
    "announce_url",
    "encode_compact_peers",
    "encode_compact_peers6",
    "parse_announce_response",
    "parse_compact_peers",
    "parse_compact_peers6",
]

#: A candidate's address: an IP literal (IPv4 dotted quad or compressed IPv6) and a port.
Peer = tuple[str, int]

#: The ``event`` values of BEP 3; ``None`` is a regular re-announce.
EVENTS = frozenset({"started", "completed", "stopped"})

_HASH_LENGTH = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnounceRequest:
    """What we tell a tracker in one announce (keyword-only: eleven fields read better named).

    Checked on construction: a bad value here is a bug in bt, not in the tracker,
    so it raises ``ValueError`` rather than :class:`TrackerError`.
    """

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int
    downloaded: int
    left: int
    event: str | None
    numwant: int = 50
    key: str
    """Lets the tracker recognise us across IP changes; constant for a session."""
    compact: bool = True
    tracker_id: bytes | None = None
    ipv6: str | None = None
    """BEP 7: our IPv6 address, when we listen on one the tracker cannot see us come from."""

    def __post_init__(self) -> None:
        if len(self.info_hash) != _HASH_LENGTH:
            raise ValueError(f"info_hash must be {_HASH_LENGTH} bytes")
        if len(self.peer_id) != _HASH_LENGTH:
            raise ValueError(f"peer_id must be {_HASH_LENGTH} bytes")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is outside 1..65535")
        for name in ("uploaded", "downloaded", "left", "numwant"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.event is not None and self.event not in EVENTS:
            raise ValueError(f"unknown event {self.event!r}")


@dataclass(frozen=True, slots=True)
class AnnounceResponse:
    """A tracker's successful answer, validated."""

    interval: int
    """Seconds the tracker wants between regular announces."""
    min_interval: int | None
    """Seconds the tracker wants at least between any two announces."""
    tracker_id: bytes | None
    """To send back as ``trackerid`` in later announces."""
    complete: int | None
    """Seeders, as the tracker counts them."""
    incomplete: int | None
    """Leechers, as the tracker counts them."""
    warning: str | None
    peers: tuple[Peer, ...]
    """IPv4 then IPv6 candidates, in the tracker's order, duplicates removed."""
    malformed_peers: int = 0
    """Entries of a dictionary peer list (or compact entries with port 0) skipped as unusable."""


def announce_url(base_url: str, request: AnnounceRequest) -> str:
    """The full announce URL for ``request``.

    The query is built here byte for byte: binary values are percent-encoded
    with nothing left safe (a 0x20 byte is ``%20``, never ``+``), because strict
    trackers decode ``+`` as itself. A ``base_url`` that already has a query
    (a private tracker's passkey) keeps it, and ours follows with ``&``. A
    fragment is dropped: it is never sent over HTTP.
    """
    base = base_url.split("#", 1)[0]
    fields: list[tuple[str, str]] = [
        ("info_hash", _quote(request.info_hash)),
        ("peer_id", _quote(request.peer_id)),
        ("port", str(request.port)),
        ("uploaded", str(request.uploaded)),
        ("downloaded", str(request.downloaded)),
        ("left", str(request.left)),
        ("compact", "1" if request.compact else "0"),
    ]
    if request.event is not None:
        fields.append(("event", request.event))
    fields.append(("numwant", str(request.numwant)))
    fields.append(("key", _quote(request.key.encode("utf-8"))))
    if request.tracker_id is not None:
        fields.append(("trackerid", _quote(request.tracker_id)))
    if request.ipv6 is not None:
        fields.append(("ipv6", _quote(request.ipv6.encode("ascii"))))
    return append_query(base, "&".join(f"{name}={value}" for name, value in fields))


def append_query(base: str, query: str) -> str:
    """``base`` (which may hold a passkey query) followed by ``query``."""
    if base.endswith(("?", "&")):
        separator = ""
    elif "?" in base:
        separator = "&"
    else:
        separator = "?"
    return f"{base}{separator}{query}"


def decode_tracker_dict(body: bytes, what: str) -> dict[bytes, Any]:
    """A tracker's bencoded dictionary; ``failure reason`` becomes the TrackerError's text."""
    try:
        decoded = bencode.decode(body)
    except BencodeError as exc:
        raise TrackerError(f"{what} is not bencode: {exc}") from exc
    if not isinstance(decoded, dict):
        raise TrackerError(f"{what} is a {kind_of(decoded)}, not a dictionary")
    failure = decoded.get(b"failure reason")
    if failure is not None:
        if not isinstance(failure, bytes):
            raise TrackerError(f"'failure reason' is a {kind_of(failure)}, not a string")
        raise TrackerError(_text(failure))
    return decoded


def _quote(value: bytes) -> str:
    return quote(value, safe="")


def parse_announce_response(body: bytes) -> AnnounceResponse:
    """Validate a tracker's announce body; every problem is a :class:`TrackerError`.

    A ``failure reason`` wins over everything else: its text is the error's message.
    """
    decoded = decode_tracker_dict(body, "tracker response")
    interval = _count(decoded, b"interval")
    if interval is None:
        raise TrackerError("tracker response has no 'interval'")
    peers, malformed = _peers(decoded)
    return AnnounceResponse(
        interval=interval,
        min_interval=_count(decoded, b"min interval"),
        tracker_id=_string(decoded, b"tracker id"),
        complete=_count(decoded, b"complete"),
        incomplete=_count(decoded, b"incomplete"),
        warning=_optional_text(decoded, b"warning message"),
        peers=peers,
        malformed_peers=malformed,
    )


def _count(response: dict[bytes, Any], key: bytes) -> int | None:
    """An optional non-negative integer field."""
    value = response.get(key)
    if value is None:
        return None
    if not isinstance(value, int):
        raise TrackerError(f"{key.decode()!r} is a {kind_of(value)}, not an integer")
    if value < 0:
        raise TrackerError(f"{key.decode()!r} is negative ({value})")
    return value


def _string(response: dict[bytes, Any], key: bytes) -> bytes | None:
    value = response.get(key)
    if value is None:
        return None
    if not isinstance(value, bytes):
        raise TrackerError(f"{key.decode()!r} is a {kind_of(value)}, not a string")
    return value


def _optional_text(response: dict[bytes, Any], key: bytes) -> str | None:
    value = _string(response, key)
    return None if value is None else _text(value)


def _text(value: bytes) -> str:
    """A tracker's message for humans, bounded and escaped: it goes to logs and status.

    Undecodable bytes must not lose the rest; a megabyte of text or an ANSI
    escape must not reach the log whole (see :mod:`bt.untrusted`).
    """
    return shown(value)


def kind_of(value: object) -> str:
    """A decoded bencode value's type as error messages name it."""
    return {bytes: "string", int: "integer", list: "list", dict: "dictionary"}.get(
        type(value), type(value).__name__
    )


def _peers(response: dict[bytes, Any]) -> tuple[tuple[Peer, ...], int]:
    """All candidates from ``peers`` and ``peers6``, and how many entries were skipped."""
    found: list[Peer] = []
    malformed = 0
    value = response.get(b"peers")
    if isinstance(value, bytes):
        found.extend(parse_compact_peers(value))
    elif isinstance(value, list):
        for entry in value:
            peer = _dict_peer(entry)
            if peer is None:
                malformed += 1
            else:
                found.append(peer)
    elif value is not None:
        raise TrackerError(f"'peers' is a {kind_of(value)}, not a string or a list")
    value6 = response.get(b"peers6")
    if isinstance(value6, bytes):
        found.extend(parse_compact_peers6(value6))
    elif value6 is not None:
        raise TrackerError(f"'peers6' is a {kind_of(value6)}, not a string")

    unique: dict[Peer, None] = {}
    for peer in found:
        if peer[1] == 0:
            malformed += 1
        else:
            unique.setdefault(peer, None)
    return tuple(unique), malformed


def _dict_peer(entry: object) -> Peer | None:
    """One entry of a dictionary peer list, or None when it cannot be used."""
    if not isinstance(entry, dict):
        return None
    ip = entry.get(b"ip")
    port = entry.get(b"port")
    if not isinstance(ip, bytes) or not isinstance(port, int) or not 0 < port < 65536:
        return None
    try:
        address = ipaddress.ip_address(ip.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None  # a host name, or garbage
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return None  # a link-local scope names the tracker's interface, not ours
    return str(address), port


def parse_compact_peers(data: bytes) -> tuple[Peer, ...]:
    """BEP 23 compact IPv4 peers: 4 address bytes and a big-endian port per entry."""
    try:
        return unpack_peers(data, IPV4)
    except ValueError as error:
        raise TrackerError(f"compact 'peers' is {error}") from None


def parse_compact_peers6(data: bytes) -> tuple[Peer, ...]:
    """BEP 7 compact IPv6 peers: 16 address bytes and a big-endian port per entry."""
    try:
        return unpack_peers(data, IPV6)
    except ValueError as error:
        raise TrackerError(f"compact 'peers6' is {error}") from None


def encode_compact_peers(peers: Iterable[Peer]) -> bytes:
    """The BEP 23 ``peers`` string for IPv4 ``peers`` (for tests and a tracker of our own)."""
    return pack_peers(peers, IPV4)


def encode_compact_peers6(peers: Iterable[Peer]) -> bytes:
    """The BEP 7 ``peers6`` string for IPv6 ``peers``."""
    return pack_peers(peers, IPV6)
