"""BEP 15 UDP tracker packets: encode requests, validate and parse responses.

Pure, like :mod:`bt.tracker.announce`: whatever datagram a tracker (or anyone
spoofing it) sends, the only exception that comes out of a ``parse_*``
function is :class:`TrackerError`, whose message says what is wrong. Every
response is checked for its action, its transaction id and its length; an
error response (action 3) becomes a TrackerError carrying the tracker's text.

Peers in an announce response are 6 bytes (IPv4) or 18 bytes (IPv6) each:
BEP 15 lets the address family of the connection to the tracker decide, so
the caller says which one it used (``ipv6=``); the packet cannot tell.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from bt.errors import TrackerError
from bt.tracker.announce import (
    AnnounceRequest,
    AnnounceResponse,
    Peer,
    parse_compact_peers,
    parse_compact_peers6,
)
from bt.tracker.scrape import ScrapeResult
from bt.untrusted import shown

__all__ = [
    "ACTION_ANNOUNCE",
    "ACTION_CONNECT",
    "ACTION_ERROR",
    "ACTION_SCRAPE",
    "EVENT_CODES",
    "MAX_SCRAPE_HASHES",
    "PROTOCOL_ID",
    "ScrapeResult",
    "encode_announce_request",
    "encode_connect_request",
    "encode_scrape_request",
    "key_to_u32",
    "parse_announce_response",
    "parse_connect_response",
    "parse_error_response",
    "parse_scrape_response",
    "read_header",
]

#: The magic constant that opens every connect request.
PROTOCOL_ID = 0x41727101980

ACTION_CONNECT = 0
ACTION_ANNOUNCE = 1
ACTION_SCRAPE = 2
ACTION_ERROR = 3
_ACTION_NAMES = {0: "connect", 1: "announce", 2: "scrape", 3: "error"}

#: BEP 15's ``event`` numbers; a regular re-announce (``None``) is 0.
EVENT_CODES: dict[str | None, int] = {None: 0, "completed": 1, "started": 2, "stopped": 3}

#: Info hashes per scrape request: BEP 15 says "up to about 74", which keeps
#: the request (16 + 20n bytes) and the answer (8 + 12n) under a 1500 byte MTU.
MAX_SCRAPE_HASHES = 74

_HEADER = struct.Struct("!iI")  # action, transaction id
_CONNECT_REQUEST = struct.Struct("!QiI")
_CONNECT_RESPONSE = struct.Struct("!iIQ")
_ANNOUNCE_REQUEST = struct.Struct("!QiI20s20sqqqiIIiH")
_ANNOUNCE_RESPONSE = struct.Struct("!iIiii")
_SCRAPE_REQUEST = struct.Struct("!QiI")
_SCRAPE_ENTRY = struct.Struct("!iii")
_HASH_LENGTH = 20
_U32 = 1 << 32


def key_to_u32(key: str) -> int:
    """The announce ``key`` as BEP 15's unsigned 32-bit field.

    bt makes keys of eight hex digits, which are read as the number they
    spell. Any other string (a key from elsewhere) is folded with CRC-32 so
    it still identifies us consistently.
    """
    if 0 < len(key) <= 8 and all(c in "0123456789abcdefABCDEF" for c in key):
        return int(key, 16)
    return zlib.crc32(key.encode("utf-8"))


def _check_tid(transaction_id: int, connection_id: int = 0) -> None:
    if not 0 <= transaction_id < _U32:
        raise ValueError(f"transaction id {transaction_id} is not an unsigned 32-bit value")
    if not 0 <= connection_id < 1 << 64:
        raise ValueError(f"connection id {connection_id} is not an unsigned 64-bit value")


def encode_connect_request(transaction_id: int) -> bytes:
    """The 16-byte connect request that obtains a connection id."""
    _check_tid(transaction_id)
    return _CONNECT_REQUEST.pack(PROTOCOL_ID, ACTION_CONNECT, transaction_id)


def encode_announce_request(
    connection_id: int, transaction_id: int, request: AnnounceRequest
) -> bytes:
    """The 98-byte announce request.

    IP is 0 (the tracker uses the packet's source address). ``num_want`` is
    the request's ``numwant``: it is never negative, so the "tracker's default"
    value -1 is not sent. ``tracker_id`` and ``compact`` have no place in
    BEP 15 and are ignored.
    """
    _check_tid(transaction_id, connection_id)
    return _ANNOUNCE_REQUEST.pack(
        connection_id,
        ACTION_ANNOUNCE,
        transaction_id,
        request.info_hash,
        request.peer_id,
        request.downloaded,
        request.left,
        request.uploaded,
        EVENT_CODES[request.event],
        0,  # IP address: the sender's
        key_to_u32(request.key),
        min(request.numwant, 2**31 - 1),
        request.port,
    )


def encode_scrape_request(
    connection_id: int, transaction_id: int, info_hashes: Sequence[bytes]
) -> bytes:
    """A scrape request for 1..:data:`MAX_SCRAPE_HASHES` info hashes."""
    _check_tid(transaction_id, connection_id)
    if not info_hashes:
        raise ValueError("a scrape needs at least one info hash")
    if len(info_hashes) > MAX_SCRAPE_HASHES:
        raise ValueError(f"at most {MAX_SCRAPE_HASHES} info hashes fit in one scrape")
    for info_hash in info_hashes:
        if len(info_hash) != _HASH_LENGTH:
            raise ValueError(f"info_hash must be {_HASH_LENGTH} bytes")
    header = _SCRAPE_REQUEST.pack(connection_id, ACTION_SCRAPE, transaction_id)
    return header + b"".join(info_hashes)


def read_header(data: bytes) -> tuple[int, int]:
    """``(action, transaction_id)`` of any response, so a client can route it before parsing."""
    if len(data) < _HEADER.size:
        raise TrackerError(f"UDP response of {len(data)} bytes is shorter than its 8-byte header")
    action, transaction_id = _HEADER.unpack_from(data)
    return action, transaction_id


def parse_error_response(data: bytes, transaction_id: int) -> str:
    """The text of an error response (action 3), checked like any other response."""
    _expect(data, ACTION_ERROR, transaction_id)
    return shown(data[_HEADER.size :])


def parse_connect_response(data: bytes, transaction_id: int) -> int:
    """The connection id of a connect response (at least 16 bytes, BEP 15)."""
    _expect(data, ACTION_CONNECT, transaction_id)
    if len(data) < _CONNECT_RESPONSE.size:
        raise TrackerError(f"connect response is {len(data)} bytes, not at least 16")
    return _CONNECT_RESPONSE.unpack_from(data)[2]


def parse_announce_response(data: bytes, transaction_id: int, *, ipv6: bool) -> AnnounceResponse:
    """An announce response: interval, leechers, seeders, then compact peers.

    ``ipv6`` says whether we reached the tracker over IPv6 (18-byte peers) or
    IPv4 (6-byte peers). Peers with port 0 are skipped and counted in
    ``malformed_peers``; duplicates are removed, as for HTTP.
    """
    _expect(data, ACTION_ANNOUNCE, transaction_id)
    if len(data) < _ANNOUNCE_RESPONSE.size:
        raise TrackerError(f"announce response is {len(data)} bytes, not at least 20")
    _, _, interval, leechers, seeders = _ANNOUNCE_RESPONSE.unpack_from(data)
    for name, value in (("interval", interval), ("leechers", leechers), ("seeders", seeders)):
        if value < 0:
            raise TrackerError(f"announce response has a negative {name} ({value})")
    packed = data[_ANNOUNCE_RESPONSE.size :]
    entry = 18 if ipv6 else 6
    if len(packed) % entry:
        family = "IPv6" if ipv6 else "IPv4"
        raise TrackerError(
            f"announce response has {len(packed)} bytes of {family} peers,"
            f" not a multiple of {entry}"
        )
    found = parse_compact_peers6(packed) if ipv6 else parse_compact_peers(packed)
    unique: dict[Peer, None] = {}
    malformed = 0
    for peer in found:
        if peer[1] == 0:
            malformed += 1
        else:
            unique.setdefault(peer, None)
    return AnnounceResponse(
        interval=interval,
        min_interval=None,
        tracker_id=None,
        complete=seeders,
        incomplete=leechers,
        warning=None,
        peers=tuple(unique),
        malformed_peers=malformed,
    )


def parse_scrape_response(
    data: bytes, transaction_id: int, info_hashes: Sequence[bytes]
) -> dict[bytes, ScrapeResult]:
    """Counts for the hashes we asked about, matched by position (the answer names none).

    A tracker may answer for fewer hashes than asked (a truncated answer
    covers the first ones; the rest are absent), but never for more, and the
    triples must be whole.
    """
    _expect(data, ACTION_SCRAPE, transaction_id)
    body = len(data) - _HEADER.size
    if body % _SCRAPE_ENTRY.size:
        raise TrackerError(f"scrape response has {body} bytes of counts, not a multiple of 12")
    count = body // _SCRAPE_ENTRY.size
    if count > len(info_hashes):
        raise TrackerError(f"scrape response has {count} entries for {len(info_hashes)} hashes")
    results: dict[bytes, ScrapeResult] = {}
    for index, (seeders, completed, leechers) in enumerate(
        _SCRAPE_ENTRY.iter_unpack(data[_HEADER.size :])
    ):
        if min(seeders, completed, leechers) < 0:
            raise TrackerError(f"scrape response entry {index} has a negative count")
        results[info_hashes[index]] = ScrapeResult(
            complete=seeders, downloaded=completed, incomplete=leechers
        )
    return results


def _expect(data: bytes, action: int, transaction_id: int) -> None:
    """Check the header; an error response raises with the tracker's own message."""
    got_action, got_tid = read_header(data)
    if got_tid != transaction_id:
        raise TrackerError(
            f"UDP response has transaction id {got_tid:#010x}, expected {transaction_id:#010x}"
        )
    if got_action == action:
        return
    if got_action == ACTION_ERROR:
        message = shown(data[_HEADER.size :])
        raise TrackerError(f"tracker error: {message}" if message else "tracker error")
    got = _ACTION_NAMES.get(got_action, "unknown")
    raise TrackerError(
        f"UDP response has action {got} ({got_action}), expected {_ACTION_NAMES[action]} ({action})"
    )
