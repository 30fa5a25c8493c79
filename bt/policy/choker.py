"""Who we upload to: the choker, a pure policy (layer 0) run once per round (every 10 s).

The caller passes a snapshot of every connected peer, whether we are seeding, and
``now``; the choker answers with the keys to have unchoked after the round. The
caller sends CHOKE/UNCHOKE for the differences and keeps the times in the
snapshot (``unchoked_since``, ``choked_at``) up to date. Only interested peers
are ever unchoked: unchoking the others costs nothing but serves nobody, and
libtorrent keeps them choked too.

Regular slots (``regular_slots``, default 4; negative means unlimited, 0 means
only optimistic unchokes) go to the first peers of a ranking:

- leeching, tit-for-tat (BEP 3): fastest download rate *from* the peer first.
  Snubbed peers (we asked, they sent nothing for a while) get no regular slot.
- seeding, round robin (libtorrent's ``round_robin`` seed choker): a peer whose
  turn is over (unchoked for ``seed_turn`` seconds or more) ranks after every
  other peer; before that, unchoked peers rank by our upload rate to them (a
  choked peer counts as 0, so residual transfer after a choke does not count);
  then currently unchoked before choked; then whoever has waited longest (since
  we last choked it, or since it connected). So fresh slots are kept for a full
  turn, then handed to the peers that waited longest. Snubbing means nothing
  here, since we ask for nothing.

Remaining ties keep the current state (unchoked first) and are then broken by
a per-round shuffle drawn from the injected ``rng``, so equal peers do not flap
and decisions are deterministic for the same inputs and seed.

Optimistic slots (``optimistic_slots``, default 1), in both modes: a peer held
for ``optimistic_period`` seconds (30 s: three rounds), then replaced. The new
one is drawn at random among interested peers outside the regular set that are
choked (failing those, any but the outgoing one), a peer connected less than
``new_peer_age`` seconds ago being ``new_peer_weight`` (3) times as likely, as
in the original client, so new peers get a first piece to trade. Snubbed peers
may win it. An optimistic peer that earns a regular slot is counted as regular
and its optimistic slot is refilled at once (libtorrent does the same).

Periods are compared with ``SLACK`` seconds of tolerance, so a timer firing a
little late does not buy a peer an extra round.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["SLACK", "Choker", "PeerSnapshot"]

#: Seconds of tolerance on period ends: timers fire late, never early.
SLACK: Final = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerSnapshot:
    """One connected peer as the choker needs to see it this round."""

    key: Hashable
    #: ``peer_interested``: it wants something we have.
    interested: bool
    connected_at: float
    #: Bytes/s we receive from it (the tit-for-tat measure while leeching).
    download_rate: float = 0.0
    #: Bytes/s we send to it (the measure while seeding).
    upload_rate: float = 0.0
    #: No block from it for a while although we have requests outstanding.
    snubbed: bool = False
    #: When its current unchoke began; ``None`` while we choke it.
    unchoked_since: float | None = None
    #: When we last choked it after an unchoke; ``None`` if never unchoked.
    choked_at: float | None = None

    @property
    def unchoked(self) -> bool:
        """Not ``am_choking``."""
        return self.unchoked_since is not None

    @property
    def waiting_since(self) -> float:
        """When it last stopped being served (a connection starts choked)."""
        return self.connected_at if self.choked_at is None else self.choked_at


class Choker:
    """Decides, each round, which peers we unchoke; remembers only the optimistic slots."""

    def __init__(
        self,
        rng: random.Random,
        *,
        regular_slots: int = 4,
        optimistic_slots: int = 1,
        optimistic_period: float = 30.0,
        seed_turn: float = 60.0,
        new_peer_age: float = 60.0,
        new_peer_weight: int = 3,
    ) -> None:
        if optimistic_slots < 0:
            raise ValueError(f"optimistic_slots must be >= 0, not {optimistic_slots}")
        if optimistic_period <= 0 or seed_turn <= 0:
            raise ValueError("optimistic_period and seed_turn must be positive")
        if new_peer_weight < 1:
            raise ValueError(f"new_peer_weight must be >= 1, not {new_peer_weight}")
        self._rng = rng
        #: Negative means unlimited, as libtorrent's ``unchoke_slots_limit``.
        self.regular_slots = regular_slots
        self.optimistic_slots = optimistic_slots
        self.optimistic_period = optimistic_period
        self.seed_turn = seed_turn
        self.new_peer_age = new_peer_age
        self.new_peer_weight = new_peer_weight
        self._optimistic: dict[Hashable, float] = {}  # key -> when its slot began

    @property
    def optimistic(self) -> frozenset[Hashable]:
        """Keys holding an optimistic slot after the last round."""
        return frozenset(self._optimistic)

    def peer_gone(self, key: Hashable) -> None:
        """Forget a disconnected peer, so a reconnection under the same key starts afresh."""
        self._optimistic.pop(key, None)

    def decide(
        self, peers: Sequence[PeerSnapshot], *, seeding: bool, now: float
    ) -> frozenset[Hashable]:
        """The keys to have unchoked after this round (see the module docstring)."""
        if len({p.key for p in peers}) != len(peers):
            raise ValueError("peer keys must be unique")
        interested = [p for p in peers if p.interested]
        self._rng.shuffle(interested)  # the last tie-break: stable sorts keep this order
        outgoing = self._expire_optimistic(interested, now)
        ranked = self._rank_seeding(interested, now) if seeding else self._rank_leeching(interested)
        regular = ranked if self.regular_slots < 0 else ranked[: self.regular_slots]
        regular_keys = {p.key for p in regular}
        for key in regular_keys:
            self._optimistic.pop(key, None)  # promoted: its optimistic slot is refilled
        while len(self._optimistic) < self.optimistic_slots:
            pick = self._draw_optimistic(interested, regular_keys, outgoing, now)
            if pick is None:
                break
            self._optimistic[pick.key] = now
        return frozenset(regular_keys | self._optimistic.keys())

    def _expire_optimistic(self, interested: list[PeerSnapshot], now: float) -> set[Hashable]:
        """Drop optimistic peers that left, lost interest or had their period; return the latter."""
        present = {p.key for p in interested}
        outgoing = set()
        for key, since in list(self._optimistic.items()):
            if key not in present:
                del self._optimistic[key]
            elif now - since >= self.optimistic_period - SLACK:
                del self._optimistic[key]
                outgoing.add(key)
        return outgoing

    def _rank_leeching(self, interested: list[PeerSnapshot]) -> list[PeerSnapshot]:
        """Tit-for-tat: best download rate first; snubbed peers are out."""
        return sorted(
            (p for p in interested if not p.snubbed),
            key=lambda p: (-p.download_rate, not p.unchoked),
        )

    def _rank_seeding(self, interested: list[PeerSnapshot], now: float) -> list[PeerSnapshot]:
        """Round robin: fresh slots by upload rate, then the longest waiting, then spent turns."""

        def rank(p: PeerSnapshot) -> tuple[bool, float, bool, float]:
            since = p.unchoked_since
            if since is None:
                return (False, 0.0, True, p.waiting_since)
            turn_over = now - since >= self.seed_turn - SLACK
            return (turn_over, -p.upload_rate, False, since)

        return sorted(interested, key=rank)

    def _draw_optimistic(
        self,
        interested: list[PeerSnapshot],
        regular_keys: set[Hashable],
        outgoing: set[Hashable],
        now: float,
    ) -> PeerSnapshot | None:
        """A random choked peer outside the taken slots, new peers weighted up."""
        rest = [
            p for p in interested if p.key not in regular_keys and p.key not in self._optimistic
        ]
        pool = (
            [p for p in rest if not p.unchoked]
            or [p for p in rest if p.key not in outgoing]
            or rest
        )
        if not pool:
            return None
        weights = [
            self.new_peer_weight if now - p.connected_at < self.new_peer_age else 1 for p in pool
        ]
        return self._rng.choices(pool, weights)[0]
