"""Choker: tit-for-tat while leeching, round robin while seeding, optimistic unchokes
rotated every 30 s with new peers favoured, anti-snubbing, and bounded, deterministic
decisions."""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock, LoopingCall

from bt.policy.choker import Choker, PeerSnapshot

ROUND = 10.0


def peer(
    key: str,
    *,
    interested: bool = True,
    down: float = 0.0,
    up: float = 0.0,
    snubbed: bool = False,
    connected_at: float = -1000.0,
    unchoked_since: float | None = None,
    choked_at: float | None = None,
) -> PeerSnapshot:
    """A snapshot with old-peer defaults: connected long ago, choked, interested, idle."""
    return PeerSnapshot(
        key=key,
        interested=interested,
        connected_at=connected_at,
        download_rate=down,
        upload_rate=up,
        snubbed=snubbed,
        unchoked_since=unchoked_since,
        choked_at=choked_at,
    )


@dataclass
class RemotePeer:
    """A peer of the simulated swarm; the swarm keeps its choke times like torrent.py would."""

    key: str
    interested: bool = True
    down: float = 0.0
    up: float = 0.0
    snubbed: bool = False
    connected_at: float = -1000.0
    unchoked_since: float | None = None
    choked_at: float | None = None

    def snapshot(self) -> PeerSnapshot:
        return peer(
            self.key,
            interested=self.interested,
            down=self.down,
            up=self.up if self.unchoked_since is not None else 0.0,
            snubbed=self.snubbed,
            connected_at=self.connected_at,
            unchoked_since=self.unchoked_since,
            choked_at=self.choked_at,
        )


@dataclass
class Swarm:
    """Runs choker rounds and applies each decision to the peers' choke state."""

    choker: Choker
    peers: dict[str, RemotePeer] = field(default_factory=dict)
    history: list[frozenset[Hashable]] = field(default_factory=list)

    def add(self, *peers: RemotePeer) -> None:
        for p in peers:
            self.peers[p.key] = p

    def round(self, now: float, *, seeding: bool = False) -> frozenset[Hashable]:
        snapshots = [p.snapshot() for p in self.peers.values()]
        unchoke = self.choker.decide(snapshots, seeding=seeding, now=now)
        for p in self.peers.values():
            if p.key in unchoke and p.unchoked_since is None:
                p.unchoked_since = now
            elif p.key not in unchoke and p.unchoked_since is not None:
                p.unchoked_since, p.choked_at = None, now
        self.history.append(unchoke)
        return unchoke


def leechers(n: int) -> list[RemotePeer]:
    """Old, idle, interested peers p0..p(n-1)."""
    return [RemotePeer(f"p{i}") for i in range(n)]


# -- leeching: tit-for-tat ----------------------------------------------------


def test_regular_slots_go_to_the_best_downloaders_while_leeching() -> None:
    choker = Choker(random.Random(1), regular_slots=4, optimistic_slots=0)
    peers = [peer(f"p{rate}", down=rate) for rate in (10, 60, 30, 50, 20, 40)]
    assert choker.decide(peers, seeding=False, now=0.0) == {"p60", "p50", "p40", "p30"}


def test_not_interested_peers_never_take_slots() -> None:
    choker = Choker(random.Random(1), regular_slots=2, optimistic_slots=1)
    peers = [
        peer("fast-but-uninterested", interested=False, down=1000, unchoked_since=0.0),
        peer("a", down=10),
        peer("b", down=5),
        peer("c", down=1),
    ]
    assert choker.decide(peers, seeding=False, now=0.0) == {"a", "b", "c"}
    assert choker.decide(peers, seeding=True, now=10.0) <= {"a", "b", "c"}


def test_snubbing_peer_loses_its_regular_slot_but_can_win_the_optimistic_one() -> None:
    choker = Choker(random.Random(1), regular_slots=2, optimistic_slots=1)
    peers = [
        peer("snubber", down=1000, snubbed=True, unchoked_since=0.0),
        peer("a", down=10, unchoked_since=0.0),
        peer("b", down=5, unchoked_since=0.0),
    ]
    unchoke = choker.decide(peers, seeding=False, now=10.0)
    assert unchoke == {"a", "b", "snubber"}
    assert choker.optimistic == {"snubber"}


def test_ties_keep_currently_unchoked_peers_to_avoid_flapping() -> None:
    idle = [peer(f"c{i}") for i in range(6)] + [peer("u1", unchoked_since=0.0)]
    idle.append(peer("u2", unchoked_since=0.0))
    for seed in range(20):
        choker = Choker(random.Random(seed), regular_slots=2, optimistic_slots=0)
        assert choker.decide(idle, seeding=False, now=10.0) == {"u1", "u2"}


# -- optimistic unchoke ---------------------------------------------------------


def test_optimistic_unchoke_is_kept_three_rounds_then_rotates_to_a_choked_peer() -> None:
    swarm = Swarm(Choker(random.Random(7), regular_slots=2, optimistic_slots=1))
    swarm.add(RemotePeer("fast1", down=100), RemotePeer("fast2", down=90), *leechers(5))
    first = swarm.round(0.0)
    optimistic = swarm.choker.optimistic
    assert len(optimistic) == 1 and optimistic < first
    assert {"fast1", "fast2"} < first
    for now in (10.0, 20.0):
        assert swarm.round(now) == first
        assert swarm.choker.optimistic == optimistic
    rotated = swarm.round(30.0)
    (new,) = swarm.choker.optimistic
    assert new not in optimistic
    assert rotated == {"fast1", "fast2", new}
    assert swarm.history[-2] == first  # the newcomer was choked before its turn


def test_new_peers_are_three_times_as_likely_to_be_the_optimistic_unchoke() -> None:
    """One new peer among three old ones: expected share 3 / (3 + 3) = 1/2, not 1/4."""
    rng = random.Random(2024)
    trials = 4000
    peers = [peer("new", connected_at=95.0)] + [peer(f"old{i}") for i in range(3)]
    wins = 0
    for _ in range(trials):
        choker = Choker(rng, regular_slots=0, optimistic_slots=1)
        choker.decide(peers, seeding=False, now=100.0)
        wins += choker.optimistic == {"new"}
    assert 0.46 < wins / trials < 0.54


def test_peers_older_than_new_peer_age_get_no_bonus() -> None:
    rng = random.Random(99)
    trials = 4000
    peers = [peer("oldish", connected_at=30.0)] + [peer(f"old{i}") for i in range(3)]
    wins = 0
    for _ in range(trials):
        choker = Choker(rng, regular_slots=0, optimistic_slots=1, new_peer_age=60.0)
        choker.decide(peers, seeding=False, now=100.0)
        wins += choker.optimistic == {"oldish"}
    assert 0.21 < wins / trials < 0.29


def test_optimistic_peer_that_becomes_a_top_downloader_turns_regular_and_is_replaced() -> None:
    swarm = Swarm(Choker(random.Random(3), regular_slots=2, optimistic_slots=1))
    swarm.add(RemotePeer("fast1", down=100), RemotePeer("fast2", down=90), *leechers(4))
    swarm.round(0.0)
    (lucky,) = swarm.choker.optimistic
    swarm.peers[lucky].down = 500.0
    unchoke = swarm.round(10.0)
    assert lucky in unchoke and "fast1" in unchoke and "fast2" not in unchoke
    (replacement,) = swarm.choker.optimistic
    assert replacement not in {lucky, "fast1", "fast2"}
    assert len(unchoke) == 3


def test_optimistic_slot_is_refilled_when_its_peer_leaves_or_loses_interest() -> None:
    swarm = Swarm(Choker(random.Random(5), regular_slots=1, optimistic_slots=1))
    swarm.add(RemotePeer("fast", down=100), *leechers(4))
    swarm.round(0.0)
    (first,) = swarm.choker.optimistic
    swarm.peers[first].interested = False
    swarm.round(10.0)
    (second,) = swarm.choker.optimistic
    assert second != first
    del swarm.peers[second]
    swarm.choker.peer_gone(second)
    assert swarm.choker.optimistic == frozenset()
    swarm.round(20.0)
    (third,) = swarm.choker.optimistic
    assert third not in {first, second}


def test_rotation_with_no_other_candidate_keeps_the_same_optimistic_peer() -> None:
    choker = Choker(random.Random(1), regular_slots=1, optimistic_slots=1)
    peers = [peer("fast", down=100), peer("only")]
    for now in (0.0, 30.0, 60.0):
        assert choker.decide(peers, seeding=False, now=now) == {"fast", "only"}


def test_optimistic_rotates_every_30_seconds_of_a_clock_driven_10_second_round() -> None:
    """torrent.py will drive the choker from a LoopingCall; a Clock stands in for the reactor."""
    clock = Clock()
    swarm = Swarm(Choker(random.Random(11), regular_slots=1, optimistic_slots=1))
    swarm.add(RemotePeer("fast", down=100), *leechers(6))
    optimistic: list[frozenset[Hashable]] = []

    def run_round() -> None:
        swarm.round(clock.seconds())
        optimistic.append(swarm.choker.optimistic)

    loop = LoopingCall(run_round)
    loop.clock = clock
    loop.start(ROUND, now=True)
    clock.pump([ROUND] * 11)  # rounds at 0, 10, ..., 110
    loop.stop()
    assert len(optimistic) == 12
    for start in range(0, 12, 3):
        assert optimistic[start] == optimistic[start + 1] == optimistic[start + 2]
    assert all(optimistic[i] != optimistic[i + 3] for i in range(0, 9, 3))


# -- seeding: round robin ---------------------------------------------------------


def test_seeding_rotation_serves_every_interested_peer() -> None:
    swarm = Swarm(Choker(random.Random(8), regular_slots=4, optimistic_slots=1))
    swarm.add(*[RemotePeer(f"p{i}", up=1000.0 * (i + 1)) for i in range(15)])
    served: set[Hashable] = set()
    for n in range(30):
        unchoke = swarm.round(n * ROUND, seeding=True)
        assert len(unchoke) <= 5
        served |= unchoke
    assert served == set(swarm.peers)


def test_seeding_rotation_without_optimistic_slot_still_serves_everyone() -> None:
    swarm = Swarm(Choker(random.Random(8), regular_slots=2, optimistic_slots=0, seed_turn=30.0))
    swarm.add(*[RemotePeer(f"p{i}", up=50.0) for i in range(8)])
    served: set[Hashable] = set()
    for n in range(20):
        served |= swarm.round(n * ROUND, seeding=True)
    assert served == set(swarm.peers)


def test_seeding_prefers_the_peers_we_upload_fastest_to_among_fresh_slots() -> None:
    choker = Choker(random.Random(1), regular_slots=2, optimistic_slots=0)
    peers = [peer(f"u{rate}", up=rate, unchoked_since=0.0) for rate in (10, 40, 30, 20)]
    peers.append(peer("waiting", choked_at=-500.0))
    assert choker.decide(peers, seeding=True, now=10.0) == {"u40", "u30"}


def test_seeding_spent_turns_yield_to_the_longest_waiting_peers() -> None:
    choker = Choker(random.Random(1), regular_slots=2, optimistic_slots=0, seed_turn=60.0)
    peers = [
        peer("spent-fast", up=9000, unchoked_since=0.0),
        peer("spent-slow", up=10, unchoked_since=0.0),
        peer("waited-since-connect", connected_at=5.0),
        peer("choked-recently", choked_at=50.0),
        peer("choked-long-ago", choked_at=1.0),
    ]
    assert choker.decide(peers, seeding=True, now=60.0) == {
        "choked-long-ago",
        "waited-since-connect",
    }


def test_seeding_spent_turns_keep_slots_when_nobody_waits() -> None:
    choker = Choker(random.Random(1), regular_slots=2, optimistic_slots=0)
    peers = [peer(f"u{rate}", up=rate, unchoked_since=0.0) for rate in (10, 40, 30)]
    assert choker.decide(peers, seeding=True, now=600.0) == {"u40", "u30"}


def test_seeding_ignores_snubbing() -> None:
    choker = Choker(random.Random(1), regular_slots=1, optimistic_slots=0)
    peers = [peer("snubbed", up=100, snubbed=True, unchoked_since=0.0), peer("other")]
    assert choker.decide(peers, seeding=True, now=10.0) == {"snubbed"}


# -- slot counts and arguments --------------------------------------------------


def test_zero_regular_slots_unchoke_only_the_optimistic_peer() -> None:
    choker = Choker(random.Random(1), regular_slots=0, optimistic_slots=1)
    peers = [peer("a", down=100), peer("b", down=50), peer("c")]
    unchoke = choker.decide(peers, seeding=False, now=0.0)
    assert unchoke == choker.optimistic and len(unchoke) == 1


@pytest.mark.parametrize("slots", [-1, 10**9])
def test_negative_or_huge_regular_slots_unchoke_every_eligible_peer(slots: int) -> None:
    choker = Choker(random.Random(1), regular_slots=slots, optimistic_slots=1)
    peers = [peer(f"p{i}", down=i) for i in range(20)]
    peers += [peer("bored", interested=False), peer("snubber", snubbed=True)]
    unchoke = choker.decide(peers, seeding=False, now=0.0)
    assert unchoke == {f"p{i}" for i in range(20)} | {"snubber"}
    assert choker.optimistic == {"snubber"}


def test_invalid_arguments_are_rejected() -> None:
    for kwargs in (
        {"optimistic_slots": -1},
        {"optimistic_period": 0.0},
        {"seed_turn": -5.0},
        {"new_peer_weight": 0},
    ):
        with pytest.raises(ValueError):
            Choker(random.Random(1), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unique"):
        Choker(random.Random(1)).decide([peer("a"), peer("a")], seeding=False, now=0.0)


# -- properties -----------------------------------------------------------------

snapshots = st.builds(
    lambda key, interested, down, up, snubbed, age, unchoked, since: peer(
        key,
        interested=interested,
        down=down,
        up=up,
        snubbed=snubbed,
        connected_at=-age,
        unchoked_since=-since if unchoked else None,
        choked_at=None if unchoked else -since,
    ),
    st.integers(0, 30).map(str),
    st.booleans(),
    st.floats(0, 1e6),
    st.floats(0, 1e6),
    st.booleans(),
    st.floats(0, 500),
    st.booleans(),
    st.floats(0, 500),
)
rounds = st.lists(
    st.lists(snapshots, max_size=25, unique_by=lambda p: p.key),
    min_size=1,
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(
    rounds=rounds,
    seeding=st.booleans(),
    regular=st.integers(-1, 6),
    optimistic=st.integers(0, 3),
    seed=st.integers(0, 2**32),
)
def test_decisions_are_bounded_and_only_unchoke_interested_peers(
    rounds: list[list[PeerSnapshot]], seeding: bool, regular: int, optimistic: int, seed: int
) -> None:
    choker = Choker(random.Random(seed), regular_slots=regular, optimistic_slots=optimistic)
    for n, peers in enumerate(rounds):
        unchoke = choker.decide(peers, seeding=seeding, now=n * ROUND)
        assert unchoke <= {p.key for p in peers if p.interested}
        if regular >= 0:
            assert len(unchoke) <= regular + optimistic
        assert len(choker.optimistic) <= optimistic
        assert choker.optimistic <= unchoke


@settings(max_examples=50, deadline=None)
@given(rounds=rounds, seeding=st.booleans(), seed=st.integers(0, 2**32))
def test_decisions_are_deterministic_for_the_same_seed(
    rounds: list[list[PeerSnapshot]], seeding: bool, seed: int
) -> None:
    def run() -> list[frozenset[Hashable]]:
        choker = Choker(random.Random(seed), regular_slots=2)
        return [choker.decide(p, seeding=seeding, now=n * ROUND) for n, p in enumerate(rounds)]

    assert run() == run()
