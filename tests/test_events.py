"""The event hub: ids, the bounded backlog, Last-Event-ID replays, subscribers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.events import EventHub, Kind, Notice

ABOUT = {"info_hash": "ab" * 20, "name": "x", "state": "checking", "error": None}


def test_ids_increase_from_first_id_and_every_subscriber_hears_each_notice_in_order() -> None:
    hub = EventHub(first_id=100)
    heard: list[list[Notice]] = [[], []]
    hub.subscribe(heard[0].append)
    hub.subscribe(heard[1].append)
    assert hub.last_id == 99
    sent = [hub.publish(kind, ABOUT) for kind in (Kind.TORRENT_ADDED, Kind.STATE_CHANGED)]
    assert [n.id for n in sent] == [100, 101] and hub.last_id == 101
    assert heard[0] == heard[1] == sent
    hub.unsubscribe(heard[0].append)
    hub.unsubscribe(heard[0].append)  # twice: no error
    hub.publish(Kind.REMOVED, ABOUT)
    assert len(heard[0]) == 2 and len(heard[1]) == 3


def test_since_replays_what_followed_the_id_and_says_when_all_is_there() -> None:
    hub = EventHub(first_id=1)
    for _ in range(5):
        hub.publish(Kind.STATE_CHANGED, ABOUT)
    replay = hub.since(2)
    assert [n.id for n in replay.notices] == [3, 4, 5] and replay.complete
    assert hub.since(5).notices == () and hub.since(5).complete
    # Nothing yet (a client that connected before the first notice) is complete too.
    assert [n.id for n in hub.since(0).notices] == [1, 2, 3, 4, 5] and hub.since(0).complete


def test_progress_gets_an_id_but_is_not_kept() -> None:
    hub = EventHub()
    hub.publish(Kind.TORRENT_ADDED, ABOUT)
    progress = hub.publish(Kind.PROGRESS, {"torrents": []})
    hub.publish(Kind.FINISHED, ABOUT)
    assert progress.id == 2
    assert [n.kind for n in hub.since(0).notices] == [Kind.TORRENT_ADDED, Kind.FINISHED]
    replay = hub.since(progress.id)
    assert [n.id for n in replay.notices] == [3] and replay.complete


def test_the_backlog_is_bounded_and_an_older_id_gets_what_is_left_as_incomplete() -> None:
    hub = EventHub(backlog=3)
    for _ in range(10):
        hub.publish(Kind.STATE_CHANGED, ABOUT)
    replay = hub.since(2)
    assert [n.id for n in replay.notices] == [8, 9, 10] and not replay.complete
    assert hub.since(7).complete and [n.id for n in hub.since(7).notices] == [8, 9, 10]


def test_an_id_of_another_run_gets_the_whole_backlog_as_incomplete() -> None:
    hub = EventHub(first_id=5_000)
    hub.publish(Kind.TORRENT_ADDED, ABOUT)
    older, future = hub.since(12), hub.since(9_999)
    assert [n.id for n in older.notices] == [n.id for n in future.notices] == [5_000]
    assert not older.complete and not future.complete


def test_a_failing_subscriber_is_reported_and_the_others_still_hear() -> None:
    failures: list[Exception] = []
    hub = EventHub(on_error=lambda subscriber, error: failures.append(error))
    heard: list[Notice] = []

    def broken(notice: Notice) -> None:
        raise RuntimeError("bug")

    hub.subscribe(broken)
    hub.subscribe(heard.append)
    hub.publish(Kind.REMOVED, ABOUT)
    assert len(heard) == 1 and [str(e) for e in failures] == ["bug"]
    assert hub.subscribers == 2


def test_without_on_error_a_failing_subscriber_raises() -> None:
    hub = EventHub()
    hub.subscribe(lambda notice: 1 / 0)  # type: ignore[func-returns-value]
    with pytest.raises(ZeroDivisionError):
        hub.publish(Kind.REMOVED, ABOUT)


@pytest.mark.parametrize(("backlog", "first_id"), [(0, 1), (1, 0)])
def test_bad_settings_are_refused_by_name(backlog: int, first_id: int) -> None:
    with pytest.raises(ValueError, match="backlog" if backlog == 0 else "first_id"):
        EventHub(backlog=backlog, first_id=first_id)


@given(
    kinds=st.lists(st.sampled_from(list(Kind)), max_size=40),
    backlog=st.integers(1, 8),
    after=st.integers(0, 45),
)
def test_a_replay_is_what_the_backlog_holds_after_the_id(
    kinds: list[Kind], backlog: int, after: int
) -> None:
    hub = EventHub(backlog=backlog)
    sent = [hub.publish(kind, {}) for kind in kinds]
    kept = [n for n in sent if n.kind is not Kind.PROGRESS][-backlog:]
    replay = hub.since(after)
    if after > hub.last_id:
        assert replay.notices == tuple(kept) and not replay.complete
        return
    assert replay.notices == tuple(n for n in kept if n.id > after)
    missed = [n for n in sent if n.id > after and n.kind is not Kind.PROGRESS]
    assert replay.complete == (list(replay.notices) == missed)
