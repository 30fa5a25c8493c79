"""PiecePicker: rarest-first with random ties, random first pieces, partial pieces first,
endgame with cancels, requests returning to the pool, priorities, and pick cost at scale."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from bt.bitfield import Bitfield
from bt.geometry import Block, PieceGeometry
from bt.policy.availability import run_length
from bt.policy.picker import PiecePicker
from bt.policy.priority import Priority

BLOCK = 16384


def bits(length: int, indexes: Iterable[int]) -> Bitfield:
    bitfield = Bitfield(length)
    for index in indexes:
        bitfield.add(index)
    return bitfield


def make_picker(
    num_pieces: int = 8,
    *,
    blocks_per_piece: int = 2,
    seed: int = 0,
    random_first: int = 0,
    endgame_requests_per_block: int = 2,
) -> PiecePicker:
    """Equal pieces of whole blocks; rarest-first from the start unless told otherwise."""
    piece_length = blocks_per_piece * BLOCK
    return PiecePicker(
        PieceGeometry(num_pieces, piece_length, num_pieces * piece_length),
        random.Random(seed),
        random_first=random_first,
        endgame_requests_per_block=endgame_requests_per_block,
    )


def receive(picker: PiecePicker, peer: str, blocks: Iterable[Block]) -> list[int]:
    """Deliver blocks from ``peer``; return the pieces that became complete."""
    complete = []
    for block in blocks:
        result = picker.block_received(peer, block.index, block.begin, block.length)
        assert result.wanted
        if result.piece_complete:
            complete.append(block.index)
    return complete


def pieces_of(blocks: Iterable[Block]) -> list[int]:
    """Piece indexes in pick order, each once."""
    return list(dict.fromkeys(block.index for block in blocks))


# -- rarest-first -------------------------------------------------------------


def test_rarest_pieces_are_picked_first() -> None:
    picker = make_picker(4)
    picker.add_peer_bitfield("seed", Bitfield.full(4))
    picker.add_peer_bitfield("b", bits(4, {0, 1, 3}))
    picker.add_peer_bitfield("c", bits(4, {1, 3}))
    assert [picker.availability(i) for i in range(4)] == [2, 3, 1, 3]

    picked = picker.pick("seed", Bitfield.full(4), 8)

    order = pieces_of(picked)
    assert order[:2] == [2, 0]
    assert set(order[2:]) == {1, 3}
    picker.check_invariants()


def test_a_have_message_makes_a_piece_less_rare() -> None:
    picker = make_picker(3)
    picker.add_peer_bitfield("a", bits(3, {0, 1}))
    picker.add_peer_bitfield("b", bits(3, {1}))
    picker.add_peer_have("b", 0)
    picker.add_peer_have("b", 2)
    assert [picker.availability(i) for i in range(3)] == [2, 2, 1]
    assert pieces_of(picker.pick("b", bits(3, {0, 1, 2}), 1)) == [2]
    picker.check_invariants()


def first_piece_picked(seed: int, peer_pieces: Bitfield) -> int:
    picker = make_picker(8, seed=seed)
    picker.add_peer_bitfield("peer", peer_pieces)
    [block] = picker.pick("peer", peer_pieces, 1)
    return block.index


def test_ties_between_equally_rare_pieces_are_random_but_repeatable() -> None:
    seed_peer = Bitfield.full(8)
    firsts = {first_piece_picked(seed, seed_peer) for seed in range(40)}
    assert len(firsts) > 3, "different seeds break ties differently"
    assert first_piece_picked(7, seed_peer) == first_piece_picked(7, seed_peer)


def test_ties_stay_random_after_a_partial_bitfield_moves_pieces_between_buckets() -> None:
    """Applying a bitfield in index order would line its pieces up in index order."""
    partial = bits(8, range(1, 8))
    firsts = {first_piece_picked(seed, partial) for seed in range(40)}
    assert len(firsts) > 3


def test_a_replaced_bitfield_uncounts_the_old_pieces_and_counts_the_new() -> None:
    picker = make_picker(4)
    picker.add_peer_bitfield("a", bits(4, {0, 1}))
    picker.add_peer_have("a", 2)
    picker.replace_peer_bitfield("a", bits(4, {0, 1, 2}), bits(4, {1, 3}))
    assert [picker.availability(i) for i in range(4)] == [0, 1, 0, 1]
    picker.replace_peer_bitfield("a", bits(4, {1, 3}), Bitfield.full(4))  # now a seed
    assert [picker.availability(i) for i in range(4)] == [1, 1, 1, 1]
    picker.replace_peer_bitfield("a", Bitfield.full(4), bits(4, {2}))  # a seed no more
    assert [picker.availability(i) for i in range(4)] == [0, 0, 1, 0]
    picker.check_invariants()
    picker.peer_gone("a", bits(4, {2}))
    assert [picker.availability(i) for i in range(4)] == [0, 0, 0, 0]
    picker.check_invariants()


def test_a_replaced_bitfield_keeps_the_peers_requests() -> None:
    picker = make_picker(4)
    picker.add_peer_bitfield("a", bits(4, {0}))
    requested = picker.pick("a", bits(4, {0}), 2)
    assert requested
    picker.replace_peer_bitfield("a", bits(4, {0}), bits(4, {0, 1}))
    assert picker.outstanding_requests("a") == requested
    picker.check_invariants()


def test_losing_a_peer_makes_its_pieces_rarer_again() -> None:
    picker = make_picker(4)
    picker.add_peer_bitfield("a", bits(4, {0, 1, 2, 3}))  # a seed
    picker.add_peer_bitfield("b", bits(4, {0, 1, 3}))
    picker.add_peer_bitfield("c", bits(4, {0, 2}))
    assert picker.peer_gone("c", bits(4, {0, 2})) == []
    assert [picker.availability(i) for i in range(4)] == [2, 2, 1, 2]
    assert picker.peer_gone("a", Bitfield.full(4)) == []
    assert [picker.availability(i) for i in range(4)] == [1, 1, 0, 1]
    picker.check_invariants()


@settings(max_examples=150)
@given(
    seed=st.integers(0, 2**32),
    num_pieces=st.integers(1, 300),
    data=st.data(),
)
def test_first_new_piece_picked_is_one_of_the_rarest_the_peer_has(
    seed: int, num_pieces: int, data: st.DataObject
) -> None:
    """Holds on both paths: the scan of the sorted list and the walk of a sparse peer's pieces."""
    picker = make_picker(num_pieces, seed=seed)
    pieces = st.sets(st.integers(0, num_pieces - 1))
    for name in ("a", "b", "c"):
        picker.add_peer_bitfield(name, bits(num_pieces, data.draw(pieces)))
    for index in data.draw(pieces):
        picker.have(index)
    peer = bits(num_pieces, data.draw(pieces))
    picker.add_peer_bitfield("peer", peer)

    picked = picker.pick("peer", peer, 1)

    eligible = [i for i in peer if not picker.has(i)]
    if not eligible:
        assert picked == []
        return
    [block] = picked
    assert picker.availability(block.index) == min(picker.availability(i) for i in eligible)
    picker.check_invariants()


# -- random first pieces ------------------------------------------------------


def rare_piece_setup(seed: int, random_first: int) -> tuple[PiecePicker, Bitfield]:
    """64 pieces; piece 0 is the only one with availability 1."""
    picker = make_picker(64, seed=seed, random_first=random_first)
    picker.add_peer_bitfield("seed", Bitfield.full(64))
    picker.add_peer_bitfield("other", bits(64, range(1, 64)))
    return picker, Bitfield.full(64)


def test_random_first_mode_picks_random_pieces_not_the_rarest() -> None:
    firsts = set()
    for seed in range(20):
        picker, seed_pieces = rare_piece_setup(seed, random_first=4)
        firsts.add(picker.pick("seed", seed_pieces, 1)[0].index)
    assert len(firsts) > 5
    for seed in range(20):
        picker, seed_pieces = rare_piece_setup(seed, random_first=0)
        assert picker.pick("seed", seed_pieces, 1)[0].index == 0


def test_rarest_first_takes_over_once_random_first_pieces_are_had() -> None:
    picker, seed_pieces = rare_piece_setup(3, random_first=4)
    for _ in range(4):
        blocks = picker.pick("seed", seed_pieces, 2)
        [index] = receive(picker, "seed", blocks)
        if index == 0:  # the rare piece came up at random: make another piece the rarest
            picker.peer_gone("other", bits(64, range(1, 64)))
        picker.have(index)
    assert picker.have_count == 4
    [block] = picker.pick("seed", seed_pieces, 1)
    assert picker.availability(block.index) == 1


def test_random_first_mode_still_finishes_started_pieces_first() -> None:
    picker = make_picker(64, blocks_per_piece=4, seed=1, random_first=4)
    picker.add_peer_bitfield("seed", Bitfield.full(64))
    [first] = picker.pick("seed", Bitfield.full(64), 1)
    rest = picker.pick("seed", Bitfield.full(64), 3)
    assert {block.index for block in rest} == {first.index}


# -- partial pieces first -----------------------------------------------------


def test_started_pieces_are_finished_before_rarer_new_ones() -> None:
    picker = make_picker(4, blocks_per_piece=4)
    picker.add_peer_bitfield("a", bits(4, {1}))
    picker.add_peer_bitfield("seed", Bitfield.full(4))
    [started] = picker.pick("a", bits(4, {1}), 1)
    assert started == Block(1, 0, BLOCK)

    picked = picker.pick("seed", Bitfield.full(4), 3)

    assert picked == [Block(1, b * BLOCK, BLOCK) for b in (1, 2, 3)]
    assert picker.availability(1) > min(picker.availability(i) for i in (0, 2, 3))


def test_blocks_of_a_piece_come_in_order_and_several_pieces_fill_a_pick() -> None:
    picker = make_picker(3, blocks_per_piece=3)
    picker.add_peer_bitfield("seed", Bitfield.full(3))
    picked = picker.pick("seed", Bitfield.full(3), 7)
    assert len(picked) == 7
    first, _, third = pieces_of(picked)
    assert [b.begin for b in picked if b.index == first] == [0, BLOCK, 2 * BLOCK]
    assert [b.begin for b in picked if b.index == third] == [0]


# -- what is never picked -----------------------------------------------------


@given(
    seed=st.integers(0, 2**32),
    had=st.sets(st.integers(0, 19)),
    peer_pieces=st.sets(st.integers(0, 19)),
    count=st.integers(1, 50),
    random_first=st.integers(0, 5),
)
def test_never_picks_a_piece_the_peer_lacks_or_we_have(
    seed: int, had: set[int], peer_pieces: set[int], count: int, random_first: int
) -> None:
    picker = make_picker(20, seed=seed, random_first=random_first)
    peer = bits(20, peer_pieces)
    picker.add_peer_bitfield("peer", peer)
    for index in had:
        picker.have(index)
    picked = picker.pick("peer", peer, count)
    assert len(picked) == min(count, 2 * len(peer_pieces - had))
    assert all(b.index in peer_pieces and b.index not in had for b in picked)
    picker.check_invariants()


def test_never_gives_one_peer_the_same_block_twice_even_in_endgame() -> None:
    picker = make_picker(5, blocks_per_piece=3, endgame_requests_per_block=3)
    picker.add_peer_bitfield("seed", Bitfield.full(5))
    picker.add_peer_bitfield("other", Bitfield.full(5))
    given_out: list[Block] = []
    for _ in range(20):
        given_out += picker.pick("seed", Bitfield.full(5), 2)
    assert len(given_out) == len(set(given_out)) == 15
    picker.pick("other", Bitfield.full(5), 4)  # endgame duplicates for "other"
    assert picker.in_endgame
    assert picker.pick("seed", Bitfield.full(5), 100) == []


def test_skipped_pieces_are_never_picked_until_wanted_again() -> None:
    picker = make_picker(4)
    picker.add_peer_bitfield("seed", Bitfield.full(4))
    picker.set_piece_priority(1, Priority.SKIP)
    picker.set_piece_priority(3, Priority.SKIP)
    assert picker.missing_count == 2
    picked = picker.pick("seed", Bitfield.full(4), 100)
    assert set(pieces_of(picked)) == {0, 2}
    for index in receive(picker, "seed", picked):
        picker.have(index)
    assert picker.is_finished and not picker.is_complete
    assert not picker.in_endgame
    assert picker.pick("seed", Bitfield.full(4), 100) == []

    picker.set_piece_priority(3, Priority.HIGH)
    assert picker.piece_priority(3) == Priority.HIGH
    assert set(pieces_of(picker.pick("seed", Bitfield.full(4), 100))) == {3}
    picker.check_invariants()


def test_priority_outside_the_range_is_refused() -> None:
    picker = make_picker(2)
    with pytest.raises(ValueError, match=r"priority 8 outside 0\.\.7"):
        picker.set_piece_priority(0, 8)
    with pytest.raises(IndexError):
        picker.set_piece_priority(2, Priority.NORMAL)


# -- received blocks ----------------------------------------------------------


def test_the_last_block_received_completes_the_piece() -> None:
    picker = make_picker(2)
    picker.add_peer_bitfield("seed", Bitfield.full(2))
    first, second = picker.pick("seed", Bitfield.full(2), 2)
    result = picker.block_received("seed", first.index, first.begin, first.length)
    assert result.wanted and not result.piece_complete and result.cancel == ()
    assert result.block == first
    result = picker.block_received("seed", second.index, second.begin, second.length)
    assert result.wanted and result.piece_complete
    assert picker.outstanding_requests("seed") == []


def test_unrequested_repeated_misaligned_or_wrong_length_blocks_are_not_wanted() -> None:
    picker = make_picker(2)
    picker.add_peer_bitfield("a", Bitfield.full(2))
    [block] = picker.pick("a", Bitfield.full(2), 1)
    other_index = 1 - block.index
    assert not picker.block_received("a", other_index, 0, BLOCK).wanted  # never started
    assert not picker.block_received("a", block.index, BLOCK, BLOCK).wanted  # not requested
    assert not picker.block_received("b", block.index, 0, BLOCK).wanted  # not from b
    assert not picker.block_received("a", block.index, 1, BLOCK).wanted  # misaligned
    assert not picker.block_received("a", block.index, 9 * BLOCK, BLOCK).wanted  # past the end
    assert not picker.block_received("a", block.index, 0, 100).wanted  # wrong length
    assert picker.block_received("a", block.index, 0, BLOCK).wanted
    assert not picker.block_received("a", block.index, 0, BLOCK).wanted  # again
    picker.check_invariants()


def test_last_piece_and_its_last_block_are_shorter() -> None:
    piece_length = 2 * BLOCK + 100
    total = 2 * piece_length + 5000
    picker = PiecePicker(PieceGeometry(3, piece_length, total), random.Random(0))
    picker.add_peer_bitfield("seed", Bitfield.full(3))
    picked = picker.pick("seed", Bitfield.full(3), 100)
    assert sorted(picked, key=lambda b: (b.index, b.begin)) == [
        Block(0, 0, BLOCK),
        Block(0, BLOCK, BLOCK),
        Block(0, 2 * BLOCK, 100),
        Block(1, 0, BLOCK),
        Block(1, BLOCK, BLOCK),
        Block(1, 2 * BLOCK, 100),
        Block(2, 0, 5000),
    ]
    assert [picker.piece_size(i) for i in range(3)] == [piece_length, piece_length, 5000]
    assert [picker.block_count(i) for i in range(3)] == [3, 3, 1]
    assert sorted(receive(picker, "seed", picked)) == [0, 1, 2]


def test_geometry_that_does_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="make 3 pieces, not 4"):
        PiecePicker(PieceGeometry(4, BLOCK, 3 * BLOCK), random.Random(0))
    with pytest.raises(ValueError, match="bitfield of 3 pieces for a torrent of 4"):
        make_picker(4).add_peer_bitfield("a", Bitfield(3))


# -- endgame ------------------------------------------------------------------


def endgame_setup(requests_per_block: int) -> PiecePicker:
    """One piece of two blocks, both requested from a."""
    picker = make_picker(1, endgame_requests_per_block=requests_per_block)
    for name in "abc":
        picker.add_peer_bitfield(name, Bitfield.full(1))
    assert not picker.in_endgame
    picker.pick("a", Bitfield.full(1), 2)
    return picker


def test_endgame_starts_when_every_missing_block_is_requested() -> None:
    picker = make_picker(2)
    picker.add_peer_bitfield("a", Bitfield.full(2))
    picker.pick("a", Bitfield.full(2), 3)
    assert not picker.in_endgame
    picker.pick("a", Bitfield.full(2), 1)
    assert picker.in_endgame


def test_endgame_hands_requested_blocks_to_other_peers_with_bounded_duplicates() -> None:
    picker = endgame_setup(requests_per_block=2)
    assert picker.in_endgame
    assert picker.pick("b", Bitfield.full(1), 5) == [
        Block(0, 0, BLOCK),
        Block(0, BLOCK, BLOCK),
    ]
    assert picker.pick("c", Bitfield.full(1), 5) == [], "each block is out to two peers already"

    picker = endgame_setup(requests_per_block=3)
    assert len(picker.pick("b", Bitfield.full(1), 5)) == 2
    assert len(picker.pick("c", Bitfield.full(1), 5)) == 2
    picker.check_invariants()


def test_endgame_prefers_the_least_requested_blocks() -> None:
    picker = endgame_setup(requests_per_block=3)
    assert picker.pick("b", Bitfield.full(1), 1) == [Block(0, 0, BLOCK)]
    assert picker.pick("c", Bitfield.full(1), 1) == [Block(0, BLOCK, BLOCK)]


def test_a_block_received_in_endgame_names_the_other_requesters_to_cancel() -> None:
    picker = endgame_setup(requests_per_block=3)
    picker.pick("b", Bitfield.full(1), 2)
    picker.pick("c", Bitfield.full(1), 1)

    result = picker.block_received("b", 0, 0, BLOCK)

    assert result.wanted and not result.piece_complete
    assert set(result.cancel) == {"a", "c"}
    assert picker.outstanding_requests("a") == [Block(0, BLOCK, BLOCK)]
    assert picker.outstanding_requests("c") == []
    assert not picker.block_received("a", 0, 0, BLOCK).wanted, "a's copy crossed the CANCEL"
    last = picker.block_received("a", 0, BLOCK, BLOCK)
    assert last.piece_complete and last.cancel == ("b",)
    picker.check_invariants()


def test_an_abandoned_request_in_endgame_is_handed_out_normally_again() -> None:
    picker = endgame_setup(requests_per_block=2)
    picker.request_abandoned("a", 0, BLOCK)
    assert not picker.in_endgame
    assert picker.pick("c", Bitfield.full(1), 1) == [Block(0, BLOCK, BLOCK)]


# -- requests returning to the pool ---------------------------------------------


def test_an_abandoned_request_returns_its_block_to_the_pool() -> None:
    picker = make_picker(1, blocks_per_piece=3)
    picker.add_peer_bitfield("a", Bitfield.full(1))
    picker.add_peer_bitfield("b", Bitfield.full(1))
    picker.pick("a", Bitfield.full(1), 3)
    assert picker.request_abandoned("a", 0, BLOCK)
    assert not picker.request_abandoned("a", 0, BLOCK), "only once"
    assert not picker.request_abandoned("b", 0, 0), "b never had it"
    assert picker.pick("b", Bitfield.full(1), 1) == [Block(0, BLOCK, BLOCK)]
    assert not picker.block_received("a", 0, BLOCK, BLOCK).wanted
    picker.check_invariants()


def test_a_choked_or_departed_peer_returns_all_its_requests() -> None:
    picker = make_picker(4)
    picker.add_peer_bitfield("a", Bitfield.full(4))
    picker.add_peer_bitfield("b", bits(4, {0, 1}))
    requested = picker.pick("a", Bitfield.full(4), 3)
    assert picker.outstanding_requests("a") == requested
    assert picker.outstanding_count("a") == 3
    assert picker.peer_requests_abandoned("a") == requested
    assert picker.outstanding_requests("a") == []

    requested = picker.pick("b", bits(4, {0, 1}), 3)
    assert picker.peer_gone("b", bits(4, {0, 1})) == requested
    assert [picker.availability(i) for i in range(4)] == [1, 1, 1, 1]
    again = picker.pick("a", Bitfield.full(4), 8)
    assert set(again) >= set(requested)
    picker.check_invariants()


def test_a_piece_returned_untouched_drops_its_block_state() -> None:
    """Only started pieces carry per-block state; an untouched one is a new piece again."""
    picker = make_picker(2, blocks_per_piece=4)
    picker.add_peer_bitfield("a", Bitfield.full(2))
    [block] = picker.pick("a", Bitfield.full(2), 1)
    picker.request_abandoned("a", block.index, block.begin)
    picker.check_invariants()  # asserts no state is kept for an untouched piece


# -- verification -------------------------------------------------------------


def test_a_failed_piece_is_missing_again_and_its_senders_are_named() -> None:
    picker = make_picker(1, blocks_per_piece=2)
    picker.add_peer_bitfield("a", Bitfield.full(1))
    picker.add_peer_bitfield("b", Bitfield.full(1))
    receive(picker, "a", picker.pick("a", Bitfield.full(1), 1))
    assert receive(picker, "b", picker.pick("b", Bitfield.full(1), 1)) == [0]

    assert picker.block_sources(0) == {0: "a", 1: "b"}
    assert picker.piece_failed(0) == {"a", "b"}
    assert picker.block_sources(0) == {}

    assert not picker.has(0) and picker.missing_count == 1
    assert picker.pick("a", Bitfield.full(1), 5) == [
        Block(0, 0, BLOCK),
        Block(0, BLOCK, BLOCK),
    ]
    picker.check_invariants()


def test_only_the_bad_blocks_of_a_failed_piece_are_missing_again() -> None:
    picker = make_picker(2, blocks_per_piece=4)
    picker.add_peer_bitfield("a", Bitfield.full(2))
    picker.add_peer_bitfield("b", Bitfield.full(2))
    picked = picker.pick("a", Bitfield.full(2), 4)
    index = picked[0].index
    receive(picker, "a", picked[:3])
    picker.peer_requests_abandoned("a")
    assert receive(picker, "b", picker.pick("b", bits(2, {index}), 1)) == [index]
    assert picker.pick("a", bits(2, {index}), 4) == [], "a complete piece is not picked"

    assert picker.blocks_failed(index, [1, 3]) == {"a", "b"}
    assert picker.block_sources(index) == {0: "a", 2: "a"}
    picker.check_invariants()
    assert picker.pick("b", bits(2, {index}), 10) == [
        Block(index, BLOCK, BLOCK),
        Block(index, 3 * BLOCK, BLOCK),
    ]
    picker.check_invariants()


def test_when_every_block_was_bad_the_piece_is_unstarted_again() -> None:
    picker = make_picker(1, blocks_per_piece=2)
    picker.add_peer_bitfield("a", Bitfield.full(1))
    receive(picker, "a", picker.pick("a", Bitfield.full(1), 2))
    assert picker.blocks_failed(0, [0, 1]) == {"a"}
    assert picker.block_sources(0) == {}
    picker.check_invariants()
    assert len(picker.pick("a", Bitfield.full(1), 5)) == 2
    assert picker.blocks_failed(0, [0]) == frozenset(), "nothing received: nothing to fail"
    assert picker.outstanding_count("a") == 2
    picker.have(0)
    assert picker.blocks_failed(0, [0]) == frozenset()
    picker.check_invariants()


def test_a_had_piece_is_never_picked_again_and_counts_toward_completion() -> None:
    picker = make_picker(2)
    picker.add_peer_bitfield("a", Bitfield.full(2))
    picked = picker.pick("a", Bitfield.full(2), 1)
    picker.have(picked[0].index)  # e.g. found on disk by a recheck
    assert picker.outstanding_requests("a") == []
    assert picker.has(picked[0].index) and picker.have_count == 1
    assert picker.have_bitfield() == bits(2, {picked[0].index})
    assert {b.index for b in picker.pick("a", Bitfield.full(2), 10)} == {1 - picked[0].index}
    with pytest.raises(ValueError, match="failed but we have it"):
        picker.piece_failed(picked[0].index)
    picker.check_invariants()


# -- random operations keep the invariants --------------------------------------

PEERS = ("p0", "p1", "p2", "p3")


class PickerMachine(RuleBasedStateMachine):
    """Random peers, picks, arrivals, give-ups, verifications and priorities.

    A model of outstanding requests and received blocks is checked against the
    picker after every step; at the end a seed must be able to finish the torrent.
    """

    @initialize(
        seed=st.integers(0, 2**32),
        num_pieces=st.integers(1, 10),
        blocks_per_piece=st.integers(1, 3),
        last_piece_fraction=st.floats(0.01, 1.0),
        random_first=st.integers(0, 3),
        requests_per_block=st.integers(1, 3),
    )
    def start(
        self,
        seed: int,
        num_pieces: int,
        blocks_per_piece: int,
        last_piece_fraction: float,
        random_first: int,
        requests_per_block: int,
    ) -> None:
        piece_length = blocks_per_piece * BLOCK
        last = max(1, int(piece_length * last_piece_fraction))
        self.n = num_pieces
        self.picker = PiecePicker(
            PieceGeometry(num_pieces, piece_length, (num_pieces - 1) * piece_length + last),
            random.Random(seed),
            random_first=random_first,
            endgame_requests_per_block=requests_per_block,
        )
        self.bitfields: dict[str, Bitfield] = {}
        self.outstanding: dict[str, set[Block]] = {p: set() for p in PEERS}
        self.received: dict[int, dict[Block, str]] = {}
        self.verifying: set[int] = set()

    def _drop_piece(self, index: int) -> None:
        self.received.pop(index, None)
        for blocks in self.outstanding.values():
            blocks -= {b for b in blocks if b.index == index}

    @rule(peer=st.sampled_from(PEERS), data=st.data())
    def connect(self, peer: str, data: st.DataObject) -> None:
        if peer in self.bitfields:
            return
        pieces = data.draw(st.sets(st.integers(0, self.n - 1)) | st.just(set(range(self.n))))
        self.bitfields[peer] = bits(self.n, pieces)
        self.picker.add_peer_bitfield(peer, self.bitfields[peer].copy())

    @rule(peer=st.sampled_from(PEERS), data=st.data())
    def announce_have(self, peer: str, data: st.DataObject) -> None:
        bitfield = self.bitfields.setdefault(peer, Bitfield(self.n))
        index = data.draw(st.integers(0, self.n - 1))
        if index not in bitfield:
            bitfield.add(index)
            self.picker.add_peer_have(peer, index)

    @rule(peer=st.sampled_from(PEERS), data=st.data())
    def late_bitfield(self, peer: str, data: st.DataObject) -> None:
        """A BITFIELD again (aria2 sends one after HAVEs): availability follows it."""
        pieces = data.draw(st.sets(st.integers(0, self.n - 1)) | st.just(set(range(self.n))))
        new = bits(self.n, pieces)
        old = self.bitfields.get(peer)
        if old is None:
            self.picker.add_peer_bitfield(peer, new.copy())
        else:
            self.picker.replace_peer_bitfield(peer, old, new)
        self.bitfields[peer] = new
        for index in range(self.n):
            expected = sum(index in b for b in self.bitfields.values())
            assert self.picker.availability(index) == expected

    @rule(peer=st.sampled_from(PEERS))
    def disconnect(self, peer: str) -> None:
        bitfield = self.bitfields.pop(peer, Bitfield(self.n))
        returned = self.picker.peer_gone(peer, bitfield)
        assert set(returned) == self.outstanding[peer]
        self.outstanding[peer] = set()

    @rule(peer=st.sampled_from(PEERS), count=st.integers(1, 8))
    def pick(self, peer: str, count: int) -> None:
        bitfield = self.bitfields.get(peer, Bitfield(self.n))
        picked = self.picker.pick(peer, bitfield, count)
        assert len(picked) <= count
        assert len(set(picked)) == len(picked)
        for block in picked:
            assert block not in self.outstanding[peer]
            assert block.index in bitfield
            assert not self.picker.has(block.index)
            assert self.picker.piece_priority(block.index) != Priority.SKIP
            assert block not in self.received.get(block.index, {})
        self.outstanding[peer] |= set(picked)

    @precondition(lambda self: any(self.outstanding.values()))
    @rule(data=st.data())
    def block_arrives(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from([p for p in PEERS if self.outstanding[p]]))
        block = data.draw(st.sampled_from(sorted(self.outstanding[peer], key=repr)))
        result = self.picker.block_received(peer, block.index, block.begin, block.length)
        assert result.wanted and result.block == block
        self.outstanding[peer].discard(block)
        expected_cancel = {p for p in PEERS if block in self.outstanding[p]}
        assert set(result.cancel) == expected_cancel
        for other in expected_cancel:
            self.outstanding[other].discard(block)
        received = self.received.setdefault(block.index, {})
        received[block] = peer
        assert result.piece_complete == (len(received) == self.picker.block_count(block.index))
        if result.piece_complete:
            self.verifying.add(block.index)

    @rule(peer=st.sampled_from(PEERS), index=st.integers(0, 9), block=st.integers(0, 3))
    def unexpected_block_arrives(self, peer: str, index: int, block: int) -> None:
        request = Block(index % self.n, block * BLOCK, BLOCK)
        if request not in self.outstanding[peer]:
            result = self.picker.block_received(peer, request.index, request.begin, request.length)
            assert not result.wanted

    @precondition(lambda self: any(self.outstanding.values()))
    @rule(data=st.data())
    def request_times_out(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from([p for p in PEERS if self.outstanding[p]]))
        block = data.draw(st.sampled_from(sorted(self.outstanding[peer], key=repr)))
        assert self.picker.request_abandoned(peer, block.index, block.begin)
        self.outstanding[peer].discard(block)

    @rule(peer=st.sampled_from(PEERS))
    def peer_chokes_us(self, peer: str) -> None:
        assert set(self.picker.peer_requests_abandoned(peer)) == self.outstanding[peer]
        self.outstanding[peer] = set()

    @precondition(lambda self: self.verifying)
    @rule(data=st.data(), passes=st.booleans())
    def piece_verified(self, data: st.DataObject, passes: bool) -> None:
        index = data.draw(st.sampled_from(sorted(self.verifying)))
        self.verifying.discard(index)
        if passes:
            self.picker.have(index)
        else:
            senders = set(self.received[index].values())
            assert self.picker.piece_failed(index) == senders
        self._drop_piece(index)

    @precondition(lambda self: self.verifying)
    @rule(data=st.data())
    def some_blocks_were_bad(self, data: st.DataObject) -> None:
        """A v2 piece failed and its leaf hashes named the bad blocks."""
        index = data.draw(st.sampled_from(sorted(self.verifying)))
        self.verifying.discard(index)
        received = self.received[index]
        bad = data.draw(st.sets(st.sampled_from(sorted(received, key=repr)), min_size=1))
        numbers = [block.begin // BLOCK for block in bad]
        assert self.picker.blocks_failed(index, numbers) == {received[b] for b in bad}
        for block in bad:
            del received[block]
        if not received:
            self._drop_piece(index)

    @rule(index=st.integers(0, 9), priority=st.sampled_from([Priority.SKIP, Priority.NORMAL]))
    def set_priority(self, index: int, priority: int) -> None:
        self.picker.set_piece_priority(index % self.n, priority)

    @rule(data=st.data())
    def recheck_finds_piece(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, self.n - 1))
        if index not in self.verifying:
            self.picker.have(index)
            self._drop_piece(index)

    @rule(data=st.data())
    def data_of_a_piece_is_lost(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, self.n - 1))
        self.picker.lose(index)
        assert not self.picker.has(index)

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "picker"):
            return
        self.picker.check_invariants()
        for peer in PEERS:
            assert set(self.picker.outstanding_requests(peer)) == self.outstanding[peer]
            assert self.picker.outstanding_count(peer) == len(self.outstanding[peer])
        for index, received in self.received.items():
            expected_sources = {block.begin // BLOCK: peer for block, peer in received.items()}
            assert self.picker.block_sources(index) == expected_sources
        for index in range(self.n):
            expected = sum(index in bitfield for bitfield in self.bitfields.values())
            assert self.picker.availability(index) == expected

    def teardown(self) -> None:
        """Every block received exactly once, and every piece verified, completes the torrent."""
        if not hasattr(self, "picker"):
            return
        picker = self.picker
        for peer in PEERS:
            picker.peer_gone(peer, self.bitfields.pop(peer, Bitfield(self.n)))
        for index in range(self.n):
            picker.set_piece_priority(index, Priority.NORMAL)
        for index in self.verifying:
            picker.have(index)
        seed = Bitfield.full(self.n)
        picker.add_peer_bitfield("seed", seed)
        for _ in range(4 * self.n + 4):
            for index in receive(picker, "seed", picker.pick("seed", seed, 5)):
                picker.have(index)
        assert picker.is_complete and picker.is_finished and picker.missing_count == 0
        assert not picker.in_endgame
        picker.check_invariants()


PickerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40)
test_random_operations_keep_invariants_and_a_seed_completes = PickerMachine.TestCase


# -- cost at scale --------------------------------------------------------------


def big_picker(num_pieces: int = 100_000) -> PiecePicker:
    return make_picker(num_pieces, blocks_per_piece=16, seed=5, random_first=4)


def test_picking_from_a_seed_of_100000_pieces_examines_a_few_pieces_per_pick() -> None:
    picker = big_picker()
    seed = Bitfield.full(100_000)
    picker.add_peer_bitfield("seed", seed)
    for _ in range(1000):
        picked = picker.pick("seed", seed, 16)
        assert len(picked) == 16
        if picker.have_count < 8:
            for index in receive(picker, "seed", picked):
                picker.have(index)
    assert picker.pieces_examined <= 3 * 1000


def test_picking_from_half_seeds_of_100000_pieces_examines_a_few_pieces_per_pick() -> None:
    picker = big_picker()
    evens, odds = bits(100_000, range(0, 100_000, 2)), bits(100_000, range(1, 100_000, 2))
    picker.add_peer_bitfield("evens", evens)
    picker.add_peer_bitfield("odds", odds)
    for _ in range(500):
        assert len(picker.pick("evens", evens, 16)) == 16
        assert len(picker.pick("odds", odds, 16)) == 16
    assert picker.pieces_examined <= 10 * 1000


def test_a_peer_with_few_pieces_among_many_rarer_ones_walks_its_own_pieces() -> None:
    """The scan of the sorted list is cut short; the peer's 10 pieces are looked at instead."""
    picker = big_picker()
    mostly = bits(100_000, range(99_990))
    few = bits(100_000, range(99_990, 100_000))
    picker.add_peer_bitfield("mostly", mostly)
    picker.add_peer_bitfield("few", few)
    picker.add_peer_bitfield("few-too", few)  # the 10 pieces are commoner than all the rest

    [block] = picker.pick("few", few, 1)

    assert block.index >= 99_990
    assert picker.pieces_examined <= 100_000 // 10


def test_endgame_cost_follows_other_peers_requests_not_pieces_waiting_for_the_disk() -> None:
    """Thousands of small pieces fully received but not yet written must not be
    rescanned by every endgame pick (it took 24 ms a pick at 32k pieces)."""
    count = 4096
    picker = PiecePicker(PieceGeometry(count, BLOCK, count * BLOCK), random.Random(1))
    full = Bitfield.full(count)
    picker.add_peer_bitfield("a", full)
    picker.add_peer_bitfield("b", full)
    outstanding = []
    while blocks := picker.pick("a", full, 64):
        outstanding.extend(blocks)
        while len(outstanding) > 16:  # received, waiting for the disk: not yet `have`
            block = outstanding.pop(0)
            picker.block_received("a", block.index, block.begin, block.length)
    assert picker.in_endgame
    before = picker.pieces_examined
    duplicates = picker.pick("b", full, 8)
    assert len(duplicates) == 8
    assert picker.pieces_examined - before <= 16, "only a's 16 outstanding blocks are looked at"


def endgame_crowd(peers: int, depth: int, *, strict: bool = False) -> tuple[PiecePicker, Bitfield]:
    """``peers`` seeds, each owed ``depth`` one-block pieces: every block requested once.

    Not ``strict`` by default: the walks below are those of a peer with requests of its
    own outstanding, which a strict endgame does not make."""
    count = peers * depth
    geometry = PieceGeometry(count, BLOCK, count * BLOCK)
    picker = PiecePicker(geometry, random.Random(1), strict_endgame=strict)
    full = Bitfield.full(count)
    for peer in range(peers):
        picker.add_peer_bitfield(peer, full)
        assert len(picker.pick(peer, full, depth)) == depth
    assert picker.in_endgame
    return picker, full


def test_an_endgame_refill_with_many_peers_stops_at_enough_once_requested_blocks() -> None:
    """50 seeders each owed 32 blocks: one refill walked all 1,600 outstanding
    requests (58% of the reactor's time from 50 seeders); it needs one peer's worth."""
    depth = 32
    picker, full = endgame_crowd(50, depth)
    before = picker.pieces_examined
    duplicates = picker.pick(0, full, 1)
    assert len(duplicates) == 1
    assert picker.pieces_examined - before <= depth + 1, "its own requests, then one more"
    requesters = picker.block_received(0, duplicates[0].index, duplicates[0].begin, BLOCK)
    assert len(requesters.cancel) == 1, "the duplicate was requested once before"
    picker.check_invariants()


def test_an_endgame_with_every_block_at_the_limit_walks_nothing_until_one_is_given_up() -> None:
    """Once every block is out to the limit, refills found nothing and still walked
    every outstanding request; a request given up makes a block duplicable again."""
    picker, full = endgame_crowd(4, 8)
    count = 4 * 8
    picker.add_peer_bitfield("late", full)
    assert len(picker.pick("late", full, count)) == count, "one duplicate of every block"
    assert picker.pick("late", full, 1) == []
    before = picker.pieces_examined
    assert picker.pick("late", full, 1) == []
    assert picker.pieces_examined == before, "no block has room: nothing is walked"
    assert picker.request_abandoned("late", 5, 0)
    assert picker.pick("late", full, 1) == [Block(5, 0, BLOCK)]
    picker.check_invariants()


def test_a_lost_piece_is_missing_again_and_picked_like_any_other() -> None:
    """A piece whose data went away (its file shortened) leaves ``have`` and is wanted again."""
    picker = make_picker(4)
    for index in range(4):
        picker.have(index)
    assert picker.is_finished
    picker.add_peer_bitfield("seed", Bitfield.full(4))
    picker.lose(2)
    picker.lose(2)  # twice is once
    picker.check_invariants()
    assert not picker.has(2) and 2 not in picker.have_bitfield()
    assert picker.missing_count == 1 and not picker.is_finished
    assert {b.index for b in picker.pick("seed", Bitfield.full(4), 10)} == {2}
    assert receive(picker, "seed", [Block(2, 0, BLOCK), Block(2, BLOCK, BLOCK)]) == [2]
    picker.have(2)
    picker.check_invariants()
    assert picker.is_finished


def test_losing_a_skipped_piece_does_not_make_it_wanted() -> None:
    picker = make_picker(4)
    picker.have(1)
    picker.set_piece_priority(1, Priority.SKIP)
    picker.lose(1)
    picker.lose(3)  # never had: nothing to lose
    picker.check_invariants()
    assert not picker.has(1) and picker.missing_count == 3


def test_bytes_missing_counts_wanted_pieces_with_a_short_last_one() -> None:
    """A tracker's ``left``: skipped pieces and pieces we have do not count."""
    picker = PiecePicker(PieceGeometry(3, 100, 250), random.Random(0))
    assert picker.bytes_missing == 250
    picker.have(2)
    assert picker.bytes_missing == 200
    picker.set_piece_priority(0, Priority.SKIP)
    assert picker.bytes_missing == 100
    picker.lose(2)
    assert picker.bytes_missing == 150


def test_a_strict_endgame_duplicates_only_for_a_peer_with_nothing_outstanding() -> None:
    """libtorrent's strict_end_game_mode: 50 fast seeders each still owed a deep
    pipeline when the endgame starts must not be asked for those blocks again."""
    picker, full = endgame_crowd(3, 4, strict=True)
    assert picker.pick(0, full, 4) == [], "peer 0 is still owed 4 blocks"
    for block in picker.outstanding_requests(0):
        assert picker.block_received(0, block.index, block.begin, BLOCK).cancel == ()
    duplicates = picker.pick(0, full, 4)
    assert len(duplicates) == 4, "idle now: it may help with the others' blocks"
    assert {d.index for d in duplicates} <= {
        b.index for p in (1, 2) for b in (picker.outstanding_requests(p))
    }
    assert picker.pick(0, full, 4) == [], "owed blocks again: no more duplicates"
    result = picker.block_received(0, duplicates[0].index, duplicates[0].begin, BLOCK)
    assert len(result.cancel) == 1, "the other requester hears a CANCEL"
    picker.check_invariants()


# -- runs of small pieces ----------------------------------------------------------


def test_run_length_is_4_mib_of_pieces_but_leaves_a_small_torrent_64_runs() -> None:
    assert run_length(BLOCK, 32768) == 256  # 512 MiB of 16 KiB pieces
    assert run_length(1 << 20, 1024) == 4
    assert run_length(8 << 20, 1024) == 1  # pieces above 4 MiB
    assert run_length(BLOCK, 640) == 10  # 10 MiB: 64 runs of 10
    assert run_length(BLOCK, 50) == 1


def test_equally_rare_small_pieces_are_picked_as_runs_of_adjacent_pieces() -> None:
    """A seed's pieces all tie: each pick is adjacent pieces (both ways of the order)."""
    num_pieces = 64 * 64
    picker = make_picker(num_pieces, blocks_per_piece=1, seed=2)
    seed = Bitfield.full(num_pieces)
    picker.add_peer_bitfield("seed", seed)
    starts = set()
    for _ in range(20):
        pieces = sorted(pieces_of(picker.pick("seed", seed, 32)))
        assert pieces == list(range(pieces[0], pieces[0] + 32)), "one run per pick"
        starts.add(pieces[0] // 64)
        receive(picker, "seed", picker.outstanding_requests("seed"))
    assert len(starts) > 1
    picker.check_invariants()


def test_runs_do_not_override_rarity() -> None:
    num_pieces = 64 * 64
    picker = make_picker(num_pieces, blocks_per_piece=1, seed=3)
    seed = Bitfield.full(num_pieces)
    picker.add_peer_bitfield("seed", seed)
    picker.add_peer_bitfield("other", bits(num_pieces, set(range(num_pieces)) - {7, 3000}))
    assert sorted(pieces_of(picker.pick("seed", seed, 2))) == [7, 3000]
    picker.check_invariants()
