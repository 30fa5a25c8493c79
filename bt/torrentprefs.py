"""A torrent's own preferences beyond its limits: labels and its seed-ratio goal.

Transmission's clients (Sonarr, Radarr and the like) sort torrents into
categories by label, and set a per-torrent seed ratio in one of three modes;
both are kept in the torrent's record, so they survive a restart. Pure: the
session applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_LABELS",
    "MAX_LABEL_LENGTH",
    "RatioMode",
    "TorrentPrefs",
    "check_labels",
    "check_mode",
    "check_ratio",
]

MAX_LABELS = 64
MAX_LABEL_LENGTH = 256
#: The largest seed ratio accepted (Transmission's clients offer far less).
MAX_RATIO = 1e6


class RatioMode:
    """Transmission's seedRatioMode values, which bt keeps as they are."""

    SESSION = 0  # the daemon's --seed-ratio (or what session-set made it)
    OWN = 1  # this torrent's ``seed_ratio``
    UNLIMITED = 2  # seed on, whatever the ratio

    ALL = (SESSION, OWN, UNLIMITED)


@dataclass(frozen=True)
class TorrentPrefs:
    labels: tuple[str, ...] = ()
    ratio_mode: int = RatioMode.SESSION
    #: The torrent's own ratio, used in mode OWN (kept while another mode applies).
    own_ratio: float | None = None

    def seed_ratio(self, session_ratio: float | None) -> float | None:
        """The ratio that stops seeding this torrent (None: none)."""
        if self.ratio_mode == RatioMode.UNLIMITED:
            return None
        if self.ratio_mode == RatioMode.OWN and self.own_ratio is not None:
            return self.own_ratio
        return session_ratio


def check_labels(labels: Any, where: str = "labels") -> tuple[str, ...]:
    """Labels as Transmission allows them; ValueError names the bad one.

    Transmission joins labels with commas in its own files, so a comma (or an
    empty label) is refused rather than silently split; duplicates collapse,
    the first spelling kept.
    """
    if not isinstance(labels, list | tuple):
        raise ValueError(f"{where}: expected a list of strings, not {type(labels).__name__}")
    if len(labels) > MAX_LABELS:
        raise ValueError(f"{where}: {len(labels)} labels, at most {MAX_LABELS}")
    kept: list[str] = []
    for n, label in enumerate(labels):
        if not isinstance(label, str):
            raise ValueError(f"{where}[{n}]: expected a string, not {type(label).__name__}")
        label = label.strip()
        if not label or len(label) > MAX_LABEL_LENGTH or "," in label:
            raise ValueError(
                f"{where}[{n}]: {label!r:.60} is not a label (1-{MAX_LABEL_LENGTH} characters, "
                "no commas)"
            )
        if any(ord(c) < 32 for c in label):
            raise ValueError(f"{where}[{n}]: {label!r:.60} has control characters")
        if label not in kept:
            kept.append(label)
    return tuple(kept)


def check_ratio(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_RATIO:
        raise ValueError(f"{where}: {value!r:.30} is not a seed ratio (0 to {MAX_RATIO:g})")
    return float(value)


def check_mode(value: Any, where: str) -> int:
    if isinstance(value, bool) or value not in RatioMode.ALL:
        raise ValueError(f"{where}: expected 0, 1 or 2, got {value!r:.30}")
    return int(value)
