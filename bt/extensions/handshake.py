"""The BEP 10 extended handshake: which extension messages a peer speaks, and facts about it.

Sent once after the BitTorrent handshake as extended message 0 (and again
whenever a side adds or disables an extension, id 0 meaning "disabled").
Clients fill it differently, so parsing is strict where a value is used for
something that can hurt (message ids, sizes, ports) and forgiving where it is
only informative: a field of the wrong type is dropped, never a reason to close
the connection. A payload that is not a bencoded dictionary is a protocol error.
Pure: no Twisted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bt import bencode
from bt.errors import RemoteProtocolError
from bt.extensions.payload import decode_dict
from bt.untrusted import shown

__all__ = [
    "EXTENDED_HANDSHAKE_ID",
    "MAX_EXTENDED_MESSAGE",
    "ExtendedHandshake",
    "parse_extended_handshake",
]

#: The extended message id of the handshake itself (BEP 10).
EXTENDED_HANDSHAKE_ID = 0
#: No extended message may be longer: a metadata piece (16 KiB) and its header fit.
MAX_EXTENDED_MESSAGE = 64 * 1024
#: Client names are shown in status; longer ones are cut.
MAX_CLIENT_NAME = 100


@dataclass(frozen=True)
class ExtendedHandshake:
    """One side's extended handshake; ``messages`` maps extension names to ids (0 = off)."""

    messages: Mapping[str, int] = field(default_factory=dict)
    port: int | None = None
    client: str | None = None
    your_ip: str | None = None
    request_queue: int | None = None
    metadata_size: int | None = None
    upload_only: bool = False

    def encode(self) -> bytes:
        """The bencoded payload (without the extended message id byte)."""
        body: dict[bytes, Any] = {
            b"m": {name.encode(): ident for name, ident in self.messages.items()}
        }
        if self.port is not None:
            body[b"p"] = self.port
        if self.client is not None:
            body[b"v"] = self.client.encode()
        if self.your_ip is not None:
            body[b"yourip"] = ipaddress.ip_address(self.your_ip).packed
        if self.request_queue is not None:
            body[b"reqq"] = self.request_queue
        if self.metadata_size is not None:
            body[b"metadata_size"] = self.metadata_size
        if self.upload_only:
            body[b"upload_only"] = 1
        return bencode.encode(body)

    def updated(self, later: ExtendedHandshake) -> ExtendedHandshake:
        """This handshake after a later one from the same peer: ids merge, 0 removes one."""
        messages = {**self.messages, **later.messages}
        return replace(
            later,
            messages={name: ident for name, ident in messages.items() if ident},
            port=later.port if later.port is not None else self.port,
            client=later.client if later.client is not None else self.client,
            metadata_size=(
                later.metadata_size if later.metadata_size is not None else self.metadata_size
            ),
        )


def parse_extended_handshake(payload: bytes) -> ExtendedHandshake:
    """Read a peer's extended handshake; :class:`RemoteProtocolError` if it is not a dict."""
    if len(payload) > MAX_EXTENDED_MESSAGE:
        raise RemoteProtocolError(
            f"extended handshake of {len(payload)} bytes is over {MAX_EXTENDED_MESSAGE}"
        )
    body, _ = decode_dict(payload, "extended handshake")
    return ExtendedHandshake(
        messages=_messages(body.get(b"m")),
        port=_int_in(body.get(b"p"), 1, 65535),
        client=_text(body.get(b"v")),
        your_ip=_address(body.get(b"yourip")),
        request_queue=_int_in(body.get(b"reqq"), 1, 1 << 31),
        metadata_size=_int_in(body.get(b"metadata_size"), 1, 1 << 62),
        upload_only=_int_in(body.get(b"upload_only"), 0, 1 << 62) not in (None, 0),
    )


def _messages(value: object) -> dict[str, int]:
    """The ``m`` dict: names with ids a message byte can carry; other entries are dropped."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RemoteProtocolError("extended handshake 'm' is not a dictionary")
    found = {}
    for raw_name, ident in value.items():
        if isinstance(ident, int) and 0 <= ident <= 255:
            try:
                found[raw_name.decode("ascii")] = ident
            except UnicodeDecodeError:
                continue  # not a name we could have asked for
    return found


def _int_in(value: object, low: int, high: int) -> int | None:
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def _text(value: object) -> str | None:
    if not isinstance(value, bytes):
        return None
    return shown(value, MAX_CLIENT_NAME)


def _address(value: object) -> str | None:
    if isinstance(value, bytes) and len(value) in (4, 16):
        return str(ipaddress.ip_address(value))
    return None
