"""Bans: two failed pieces from a lone sender, or one proven bad block in a shared piece."""

from __future__ import annotations

from bt.policy.blame import Blame, bad_blocks

GOOD = [b"a" * 16, b"b" * 16]


def test_lone_sender_is_banned_after_two_bad_pieces() -> None:
    blame = Blame(strikes_to_ban=2)
    assert blame.piece_failed(0, {0: "liar", 1: "liar"}, [b"x" * 16, b"y" * 16]) == []
    assert blame.strikes("liar") == 1
    assert blame.piece_failed(1, {0: "liar", 1: "liar"}, [b"x" * 16, b"y" * 16]) == ["liar"]


def test_shared_piece_names_the_liar_once_the_piece_verifies() -> None:
    blame = Blame()
    sent = [GOOD[0], b"z" * 16]  # block 1 from "liar" is wrong
    assert blame.piece_failed(3, {0: "honest", 1: "liar"}, sent) == []
    assert blame.strikes("honest") == 0
    assert blame.piece_verified(3, GOOD) == ["liar"]
    assert blame.piece_verified(3, GOOD) == [], "suspicion is settled once"


def test_verified_piece_without_history_blames_nobody() -> None:
    assert Blame().piece_verified(0, GOOD) == []


def test_bad_blocks_are_those_whose_leaf_differs_and_padding_must_be_zero() -> None:
    real = [b"A" * 32, b"B" * 32]
    assert bad_blocks([b"A" * 32, b"B" * 32], real) == []
    assert bad_blocks([b"A" * 32, b"X" * 32], real) == [1]
    # Past the reference (a small file's few leaves in a bigger piece): padding, zero leaves.
    assert bad_blocks([b"A" * 32, b"B" * 32, bytes(32), b""], real) == [3]


def test_senders_of_proven_bad_blocks_get_a_strike_each_and_only_they() -> None:
    blame = Blame(strikes_to_ban=2)
    assert blame.blocks_failed(["liar", "liar", "other"]) == []
    assert (blame.strikes("liar"), blame.strikes("other"), blame.strikes("honest")) == (1, 1, 0)
    assert blame.blocks_failed(["liar"]) == ["liar"]
