"""announce_peer tokens (BEP 5): bound to the querier's IP, from a rotating secret.

A token is a truncated SHA-1 of the current secret and the IP. The secret
changes every :data:`ROTATE_EVERY` seconds and the previous one is still
accepted, so a token lives between 5 and 10 minutes. Time and the source of
secret bytes are passed in.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ROTATE_EVERY", "TOKEN_LEN", "Tokens"]

ROTATE_EVERY = 5 * 60.0
TOKEN_LEN = 8


class Tokens:
    """Issues and checks tokens; ``randbytes(n)`` makes each secret."""

    def __init__(
        self, randbytes: Callable[[int], bytes], now: float, rotate_every: float = ROTATE_EVERY
    ) -> None:
        raise NotImplementedError

    def issue(self, host: str, now: float) -> bytes:
        """The token for a querier at ``host``."""
        raise NotImplementedError

    def check(self, token: bytes, host: str, now: float) -> bool:
        """True when ``token`` was issued to ``host`` under the current or previous secret."""
        raise NotImplementedError
