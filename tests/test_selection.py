"""FileSelection: the user's file priorities carried to the picker and the storage."""

from __future__ import annotations

import random

import pytest
from twisted.internet import defer

from bt.geometry import PieceGeometry
from bt.policy.picker import PiecePicker
from bt.policy.priority import Priority
from bt.selection import FileSelection
from bt.status import FilePriority
from bt.storage.layout import Layout

SKIP, NORMAL, HIGH = FilePriority.SKIP, FilePriority.NORMAL, FilePriority.HIGH

# Pieces of 10 bytes: file 0 = 0..14, file 1 = 15..29, file 2 = 30..34 (4 pieces).
LAYOUT = Layout([15, 15, 5], 10)


class Storage:
    """set_skipped jobs that finish when the test says so."""

    def __init__(self) -> None:
        self.asked: list[frozenset[int]] = []
        self.jobs: list[defer.Deferred[None]] = []

    def set_skipped(self, files: frozenset[int]) -> defer.Deferred[None]:
        self.asked.append(files)
        self.jobs.append(defer.Deferred())
        return self.jobs[-1]


def picker() -> PiecePicker:
    return PiecePicker(PieceGeometry.of(10, 35), random.Random(1))


def test_a_new_picker_gets_the_piece_priorities_of_the_files() -> None:
    selection = FileSelection(LAYOUT, [False] * 3, [SKIP, HIGH, SKIP], Storage().set_skipped)
    fresh = picker()
    selection.prioritise(fresh)
    assert [fresh.piece_priority(i) for i in range(4)] == [
        Priority.SKIP, Priority.HIGH, Priority.HIGH, Priority.SKIP,
    ]  # fmt: skip
    assert selection.skipped() == {0, 2}


def test_no_priorities_given_means_every_file_normal_and_padding_is_never_skipped() -> None:
    ask = Storage().set_skipped
    assert FileSelection(LAYOUT, [False] * 3, None, ask).priorities == [NORMAL] * 3
    padded = FileSelection(LAYOUT, [False, True, False], [NORMAL, SKIP, NORMAL], ask)
    assert padded.skipped() == frozenset()


def test_a_change_reaches_the_picker_and_only_a_new_skipped_set_the_storage() -> None:
    storage = Storage()
    selection = FileSelection(LAYOUT, [False] * 3, None, storage.set_skipped)
    target = picker()
    assert selection.change({2: HIGH}, target, running=True) is None
    assert target.piece_priority(3) == Priority.HIGH and storage.asked == []
    moved = selection.change({0: SKIP}, target, running=True)
    assert moved is not None and storage.asked == [{0}]
    assert target.piece_priority(0) == Priority.SKIP
    assert not moved.called
    storage.jobs[0].callback(None)
    assert moved.called
    assert selection.change({1: SKIP}, target, running=False) is None  # startService tells it
    assert storage.asked == [{0}]


def test_a_bad_change_changes_nothing() -> None:
    storage = Storage()
    selection = FileSelection(LAYOUT, [False] * 3, None, storage.set_skipped)
    with pytest.raises(ValueError, match="file index 3"):
        selection.change({0: SKIP, 3: SKIP}, picker(), running=True)
    assert selection.priorities == [NORMAL] * 3 and storage.asked == []


def test_storage_jobs_run_one_at_a_time_each_reading_the_set_when_it_runs() -> None:
    storage = Storage()
    selection = FileSelection(LAYOUT, [False] * 3, None, storage.set_skipped)
    target = picker()
    first = selection.change({0: SKIP}, target, running=True)
    second = selection.change({1: SKIP}, target, running=True)
    third = selection.change({0: NORMAL}, target, running=True)
    assert storage.asked == [{0}], "one job in flight; the others wait for it"
    storage.jobs[0].errback(RuntimeError("disk full"))
    assert first is not None and second is not None and third is not None
    first.addErrback(lambda f: f.trap(RuntimeError))  # the queue goes on after a failure
    assert storage.asked == [{0}, {1}]
    storage.jobs[1].callback(None)
    assert storage.asked[-1] == {1} and second.called and third.called is False
    storage.jobs[2].callback(None)
    assert third.called
