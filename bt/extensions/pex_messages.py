"""BEP 11 ``ut_pex`` messages: peers added and dropped since the last message, with flags.

IPv4 and IPv6 peers travel in compact form (``added``/``added6`` with one flag
byte each in ``added.f``/``added6.f``, ``dropped``/``dropped6``). A message
may carry at most :data:`MAX_PEX_PEERS` peers in each list; a longer one, or
one that is not a whole number of entries, is a protocol error. Missing or
short flag strings are tolerated (older clients omit them). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from bt import bencode
from bt.compact import IPV4, IPV6, Peer, pack_peers, unpack_peers
from bt.errors import RemoteProtocolError
from bt.extensions.payload import decode_dict

__all__ = ["MAX_PEX_PEERS", "PexFlags", "PexMessage", "encode_pex", "parse_pex"]

#: Peers in each of a message's lists; BEP 11 asks senders for at most 50.
MAX_PEX_PEERS = 50
#: What we accept in one list: other clients have sent up to 100 (libtorrent's limit).
MAX_RECEIVED_PEX_PEERS = 100


class PexFlags(IntFlag):
    """The flag byte BEP 11 gives each added peer."""

    NONE = 0
    ENCRYPTION = 0x01
    SEED = 0x02  # a seed or partial seed: upload only
    UTP = 0x04
    HOLEPUNCH = 0x08
    REACHABLE = 0x10  # we reached it with an outgoing connection


@dataclass(frozen=True)
class PexMessage:
    added: tuple[tuple[Peer, PexFlags], ...] = ()
    dropped: tuple[Peer, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.added and not self.dropped


def encode_pex(message: PexMessage) -> bytes:
    """The bencoded payload; callers keep each list within :data:`MAX_PEX_PEERS`."""
    body: dict[bytes, Any] = {}
    for entry, suffix in ((IPV4, b""), (IPV6, b"6")):
        family = [(peer, flags) for peer, flags in message.added if _fits(peer, entry)]
        body[b"added" + suffix] = pack_peers((peer for peer, _ in family), entry)
        body[b"added" + suffix + b".f"] = bytes(int(flags) for _, flags in family)
        dropped = [peer for peer in message.dropped if _fits(peer, entry)]
        body[b"dropped" + suffix] = pack_peers(dropped, entry)
    return bencode.encode(body)


def parse_pex(payload: bytes) -> PexMessage:
    body, _ = decode_dict(payload, "ut_pex message")
    added: list[tuple[Peer, PexFlags]] = []
    dropped: list[Peer] = []
    for entry, suffix in ((IPV4, b""), (IPV6, b"6")):
        peers = _peers(body, b"added" + suffix, entry)
        flags = body.get(b"added" + suffix + b".f")
        flags = flags if isinstance(flags, bytes) else b""
        added += [
            (peer, PexFlags(flags[i] & 0x1F) if i < len(flags) else PexFlags.NONE)
            for i, peer in enumerate(peers)
        ]
        dropped += _peers(body, b"dropped" + suffix, entry)
    return PexMessage(tuple(added), tuple(dropped))


def _peers(body: dict[bytes, Any], key: bytes, entry: Any) -> tuple[Peer, ...]:
    value = body.get(key, b"")
    if not isinstance(value, bytes):
        raise RemoteProtocolError(f"ut_pex {key.decode()!r} is not a string")
    if len(value) > MAX_RECEIVED_PEX_PEERS * entry.size:
        raise RemoteProtocolError(
            f"ut_pex {key.decode()!r} holds {len(value) // entry.size} peers,"
            f" over {MAX_RECEIVED_PEX_PEERS}"
        )
    try:
        peers = unpack_peers(value, entry)
    except ValueError as error:
        raise RemoteProtocolError(f"ut_pex {key.decode()!r} is {error}") from None
    return tuple(peer for peer in peers if peer[1] != 0)


def _fits(peer: Peer, entry: Any) -> bool:
    return (":" in peer[0]) == (entry is IPV6)
