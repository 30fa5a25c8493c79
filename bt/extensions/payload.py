"""The one way an extension message body is read: a bencoded dict, or the peer is closed."""

from __future__ import annotations

from typing import Any

from bt import bencode
from bt.errors import BencodeError, RemoteProtocolError

__all__ = ["decode_dict"]


def decode_dict(payload: bytes, what: str, *, prefix: bool = False) -> tuple[dict[bytes, Any], int]:
    """The dict ``payload`` holds (``prefix``: starts with) and where it ends.

    Anything else is a :class:`RemoteProtocolError` naming ``what``.
    """
    try:
        body, end = (
            bencode.decode_prefix(payload) if prefix else (bencode.decode(payload), len(payload))
        )
    except BencodeError as error:
        raise RemoteProtocolError(f"{what} is not bencode: {error}") from None
    if not isinstance(body, dict):
        raise RemoteProtocolError(f"{what} is not a dictionary")
    return body, end
