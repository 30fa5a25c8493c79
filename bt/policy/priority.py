"""The one priority scale of files and pieces: libtorrent's 0..7 (layer 0).

A file's priority (``bt.status.FilePriority``, what users and the API name) and
a piece's priority in the picker are levels of this one scale, so no code maps
between two. 0 means never download; the picker accepts any level up to 7 and,
for now, treats every level above 0 alike.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Priority"]


class Priority(IntEnum):
    """Download priority levels, as libtorrent numbers them (dont_download, default, top)."""

    SKIP = 0
    NORMAL = 4
    HIGH = 7
