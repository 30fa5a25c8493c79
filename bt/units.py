"""Parsing the sizes, rates and durations users type on the command line."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_rate(text: str) -> float | None:
    """Bytes per second from ``500K``, ``2M``, ``1.5MiB`` or ``0`` (0 means unlimited).

    K/M/G are binary (KiB...), as in Transmission's and libtorrent's settings.
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a rate such as 500K, 2M or 0 (unlimited)")
    value = float(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()]
    return None if value == 0 else value


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``30m``, ``2h``, ``1d12h``."""
    compact = text.replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration such as 90, 30m, 2h or 1d12h")
    return sum(float(number) * _SECONDS[unit.lower()] for number, unit in parts)
