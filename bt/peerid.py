"""Our peer id (BEP 20 style): what names this process to peers and trackers. Pure."""

from __future__ import annotations

import random

from bt import __version__

__all__ = ["make_peer_id"]


def make_peer_id(rng: random.Random) -> bytes:
    """Azureus-style peer id: ``-BTvvvv-`` and 12 random printable bytes."""
    digits = "".join(f"{int(p):x}" for p in __version__.split(".")[:3]).ljust(4, "0")[:4]
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return f"-BT{digits}-".encode() + bytes(rng.choice(alphabet) for _ in range(12))
