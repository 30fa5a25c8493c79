"""Connection slots: a count with a ceiling, shared by every torrent of a session."""

from __future__ import annotations


class ConnectionSlots:
    """At most ``limit`` peer connections (``None``: no limit), counting attempts in flight."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"connection limit must be at least 1, not {limit}")
        self.limit = limit
        self.used = 0

    @property
    def free(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    def acquire(self) -> bool:
        """Take a slot if one is free."""
        if self.limit is not None and self.used >= self.limit:
            return False
        self.used += 1
        return True

    def release(self) -> None:
        if self.used <= 0:
            raise ValueError("released more connection slots than were taken")
        self.used -= 1
