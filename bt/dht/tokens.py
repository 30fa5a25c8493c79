"""announce_peer tokens (BEP 5): bound to the querier's IP, from a rotating secret.

A token is a truncated SHA-1 of the current secret and the IP. The secret
changes every :data:`ROTATE_EVERY` seconds and the previous one is still
accepted, so a token lives between 5 and 10 minutes. Time and the source of
secret bytes are passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

__all__ = ["ROTATE_EVERY", "TOKEN_LEN", "Tokens"]

ROTATE_EVERY = 5 * 60.0
TOKEN_LEN = 8


class Tokens:
    """Issues and checks tokens; ``randbytes(n)`` makes each secret."""

    def __init__(
        self, randbytes: Callable[[int], bytes], now: float, rotate_every: float = ROTATE_EVERY
    ) -> None:
        self._randbytes = randbytes
        self._every = rotate_every
        self._secret = randbytes(16)
        self._previous = self._secret
        self._rotated = now

    def _rotate(self, now: float) -> None:
        elapsed = now - self._rotated
        if elapsed < self._every:
            return
        if elapsed >= 2 * self._every:
            # Nothing issued since the previous rotation is alive any more: replace both.
            self._previous = self._randbytes(16)
        else:
            self._previous = self._secret
        self._secret = self._randbytes(16)
        self._rotated = now - elapsed % self._every

    def issue(self, host: str, now: float) -> bytes:
        """The token for a querier at ``host``."""
        self._rotate(now)
        return _token(self._secret, host)

    def check(self, token: bytes, host: str, now: float) -> bool:
        """True when ``token`` was issued to ``host`` under the current or previous secret."""
        self._rotate(now)
        return any(
            hmac.compare_digest(token, _token(secret, host))
            for secret in (self._secret, self._previous)
        )


def _token(secret: bytes, host: str) -> bytes:
    return hashlib.sha1(secret + host.encode()).digest()[:TOKEN_LEN]
