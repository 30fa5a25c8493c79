"""BEP 11 rules for one peer: what to tell it next, and how much of what it tells us to believe.

:class:`PexOutbox` remembers which peers we told a peer about and turns the
swarm as it is now into the next added/dropped message, bounded and never
empty (uTorrent once disconnected on empty ones). :class:`PexInbox` is the
flood gate for what a peer sends: messages closer together than BEP 11's
once a minute (with slack) are dropped whole, and one peer can hand us at most
:data:`MAX_PEERS_FROM_ONE` addresses over its whole connection. Pure: the
caller passes the time.
"""

from __future__ import annotations

from collections.abc import Mapping

from bt.compact import Peer
from bt.extensions.pex_messages import MAX_PEX_PEERS, PexFlags, PexMessage

__all__ = ["MAX_PEERS_FROM_ONE", "PEX_INTERVAL", "PexInbox", "PexOutbox"]

#: We send at most one message a minute to each peer (BEP 11).
PEX_INTERVAL = 60.0
#: A peer's messages closer together than this are ignored (libtorrent sends every ~60 s).
MIN_RECEIVE_INTERVAL = 45.0
#: Addresses one peer may give us in all; the candidate pool has its own bounds too.
MAX_PEERS_FROM_ONE = 500


class PexOutbox:
    """What one peer knows of our swarm from us."""

    def __init__(self, limit: int = MAX_PEX_PEERS) -> None:
        self.limit = limit
        self._told: dict[Peer, PexFlags] = {}

    def next_message(self, swarm: Mapping[Peer, PexFlags], recipient: Peer) -> PexMessage | None:
        """The change since the last message (``recipient`` itself left out), or ``None``."""
        added = [
            (peer, flags)
            for peer, flags in swarm.items()
            if peer != recipient and peer not in self._told
        ][: self.limit]
        dropped = [peer for peer in self._told if peer not in swarm][: self.limit]
        for peer in dropped:
            del self._told[peer]
        self._told.update(added)
        if not added and not dropped:
            return None
        return PexMessage(tuple(added), tuple(dropped))


class PexInbox:
    """How much of one peer's PEX we take."""

    def __init__(self) -> None:
        self._last: float | None = None
        self.taken = 0

    def accept(self, message: PexMessage, now: float) -> list[tuple[Peer, PexFlags]]:
        """The added peers to offer the candidate pool; ``[]`` when the peer floods."""
        if self._last is not None and now - self._last < MIN_RECEIVE_INTERVAL:
            return []
        self._last = now
        room = MAX_PEERS_FROM_ONE - self.taken
        taken = list(message.added[: max(room, 0)])
        self.taken += len(taken)
        return taken
