"""bt.lifecycle: the transition table driven directly, and random walks through it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt import status
from bt.errors import LifecycleError
from bt.lifecycle import (
    IN_SWARM,
    TABLE,
    WHY_CHECKING,
    WHY_LEAVING,
    Action,
    Event,
    Flag,
    Guarded,
    Ignored,
    Lifecycle,
    Refused,
    TorrentState,
    Transition,
    describe_table,
)

S = TorrentState


def at(state: TorrentState, *, paused: bool = False, error: str | None = None) -> Lifecycle:
    life = Lifecycle(paused=paused)
    life.state, life.error = state, error
    return life


def test_every_state_and_event_has_an_outcome_for_every_flag() -> None:
    assert set(TABLE) == set(itertools.product(TorrentState, Event))
    for (state, event), _ in TABLE.items():
        for paused, error in itertools.product((False, True), (None, "disk full")):
            outcome = at(state, paused=paused, error=error).outcome(event)
            assert isinstance(outcome, Transition | Ignored | Refused), (state, event)


def test_the_table_prints_one_line_per_state_and_event() -> None:
    lines = describe_table().splitlines()
    assert len(lines) == len(TorrentState) * len(Event)
    assert "STOPPED + START" in lines[len(TorrentState) - 1]
    assert any(
        "if paused: PAUSED (SAVE_IF_DIRTY) else: DOWNLOADING (JOIN_SWARM)" in line for line in lines
    )


def test_the_states_are_the_strings_status_and_the_api_show() -> None:
    assert status.TorrentState is TorrentState
    assert [str(s) for s in TorrentState] == [
        "checking", "downloading", "seeding", "finished", "paused", "error", "stopped",
    ]  # fmt: skip
    assert (
        TorrentState.PAUSED == "paused" and f"torrent is {TorrentState.ERROR}" == "torrent is error"
    )


def test_a_start_checks_the_data_and_a_second_start_is_a_bug() -> None:
    life = Lifecycle()
    assert life.handle(Event.START) == (Action.LOAD_PIECES,)
    assert life.state is S.CHECKING
    with pytest.raises(LifecycleError, match="started already"):
        life.handle(Event.START)
    assert life.state is S.CHECKING


def test_a_check_runs_the_torrent_or_leaves_it_paused_and_clears_the_disk_error() -> None:
    life = at(S.CHECKING, error="disk full")
    assert life.handle(Event.CHECKED) == (Action.JOIN_SWARM,)
    assert (life.state, life.error) == (S.DOWNLOADING, None)
    life = at(S.CHECKING, paused=True)
    assert life.handle(Event.CHECKED) == (Action.SAVE_IF_DIRTY,)
    assert life.state is S.PAUSED
    stopped = at(S.STOPPED, error="disk full")
    assert stopped.handle(Event.CHECKED) == () and stopped.error == "disk full"


def test_a_download_completes_into_seeding_then_finishes_at_its_goal() -> None:
    life = at(S.DOWNLOADING)
    assert life.handle(Event.COMPLETE) == (Action.START_SEEDING,)
    assert not life.accepts(Event.COMPLETE)
    assert life.handle(Event.GOAL_REACHED) == (Action.FINISH_SEEDING,)
    assert life.state is S.FINISHED and not life.in_swarm
    assert life.handle(Event.MORE_WANTED) == (Action.DOWNLOAD_AGAIN,)
    assert life.state is S.DOWNLOADING


def test_pause_leaves_the_swarm_and_saves_only_where_the_torrent_runs() -> None:
    for state in (S.DOWNLOADING, S.SEEDING, S.FINISHED, S.ERROR):
        life = at(state)
        assert life.handle(Event.PAUSE) == (
            Action.CANCEL_RETRY,
            Action.LEAVE_SWARM,
            Action.SAVE_RESUME,
        )
        assert life.state is S.PAUSED and life.paused
    for state in (S.STOPPED, S.CHECKING):
        life = at(state)
        assert life.handle(Event.PAUSE) == () and life.state is state and life.paused
    paused = at(S.PAUSED, paused=True)
    assert not paused.accepts(Event.PAUSE)


def test_resume_compares_the_files_or_checks_them_after_a_disk_error() -> None:
    life = at(S.PAUSED, paused=True)
    assert life.handle(Event.RESUME) == (Action.COMPARE_FILES,)
    assert life.state is S.CHECKING and not life.paused
    assert life.handle(Event.FILES_COMPARED) == (Action.JOIN_SWARM,)
    life = at(S.PAUSED, paused=True, error="disk full")
    assert life.handle(Event.RESUME) == (Action.CHECK_PIECES,)
    assert not at(S.DOWNLOADING).accepts(Event.RESUME)
    checking = at(S.CHECKING, paused=True)
    assert checking.handle(Event.RESUME) == () and not checking.paused  # the check will run it


def test_a_disk_error_waits_to_retry_unless_paused_and_only_the_first_counts() -> None:
    life = at(S.SEEDING)
    assert life.handle(Event.DISK_ERROR, error="disk full") == (
        Action.LEAVE_SWARM,
        Action.SCHEDULE_RETRY,
    )
    assert (life.state, life.error) == (S.ERROR, "disk full")
    assert life.handle(Event.DISK_ERROR, error="later") == () and life.error == "disk full"
    assert life.handle(Event.RETRY) == (Action.CHECK_PIECES,) and life.state is S.CHECKING
    paused = at(S.CHECKING, paused=True)
    assert paused.handle(Event.DISK_ERROR, error="EIO") == (Action.LEAVE_SWARM,)
    assert (paused.state, paused.error) == (S.PAUSED, "EIO")


def test_every_event_that_leaves_or_checks_names_why() -> None:
    for (_, event), outcome in TABLE.items():
        for paused, error in itertools.product((False, True), (None, "x")):
            actions = _actions(outcome, paused, error)
            if Action.LEAVE_SWARM in actions:
                assert event in WHY_LEAVING
            if Action.CHECK_PIECES in actions:
                assert event in WHY_CHECKING


def _actions(outcome: object, paused: bool, error: str | None) -> tuple[Action, ...]:
    while isinstance(outcome, Guarded):
        on = paused if outcome.flag is Flag.PAUSED else error is not None
        outcome = outcome.then if on else outcome.otherwise
    return outcome.actions if isinstance(outcome, Transition) else ()


@given(st.booleans(), st.lists(st.sampled_from(Event), max_size=60))
def test_random_walks_keep_the_lifecycles_invariants(paused: bool, events: list[Event]) -> None:
    life = Lifecycle(paused=paused)
    for event in events:
        before = (life.state, life.paused, life.error)
        accepted = life.accepts(event)
        try:
            actions = life.handle(event, error="disk full")
        except LifecycleError:
            assert event is Event.START and before[0] is not S.STOPPED
            assert (life.state, life.paused, life.error) == before
            continue
        state, was = life.state, before[0]
        if not accepted:
            assert actions == () and (state, life.paused, life.error) == before
        if was is S.STOPPED and state is not S.STOPPED:
            assert event is Event.START  # nothing but a start leaves STOPPED
        if event is Event.STOP:
            assert state is S.STOPPED and actions == ()
        if state is S.PAUSED:
            assert life.paused
        if life.paused:
            assert state in (S.STOPPED, S.CHECKING, S.PAUSED)
        if state is S.ERROR:
            assert life.error is not None and not life.paused
        if was in (*IN_SWARM, S.FINISHED) and state in (S.PAUSED, S.ERROR, S.CHECKING):
            assert Action.LEAVE_SWARM in actions  # out of the swarm, peers dropped
        if state is S.DOWNLOADING and was not in (S.DOWNLOADING, S.SEEDING, S.FINISHED):
            assert Action.JOIN_SWARM in actions
        if state in (S.SEEDING, S.FINISHED) and was is not state:
            assert was in IN_SWARM  # only a torrent in the swarm completes or meets its goal
        if Action.SCHEDULE_RETRY in actions:
            assert state is S.ERROR


@given(st.lists(st.sampled_from(list(Event)), max_size=30))
def test_watchers_hear_every_accepted_event_with_the_state_before_and_nothing_else(
    events: list[Event],
) -> None:
    lifecycle = Lifecycle()
    heard: list[tuple[Event, TorrentState, TorrentState, str | None]] = []
    lifecycle.watchers.append(
        lambda event, before: heard.append((event, before, lifecycle.state, lifecycle.error))
    )
    expected = []
    for event in events:
        before, accepted = lifecycle.state, lifecycle.accepts(event)
        try:
            lifecycle.handle(event, error="disk full")
        except LifecycleError:
            assert not accepted
            continue
        if accepted:
            expected.append((event, before, lifecycle.state, lifecycle.error))
    assert heard == expected
