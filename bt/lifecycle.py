"""A torrent's lifecycle: its states, the events that move it, and one transition table.

Pure (layer 0), in the manner of h11: ``TABLE[state, event]`` says what becomes
of each event in each state, and :meth:`Lifecycle.handle` returns the actions
the torrent then carries out, in order. An event a state has no use for is
*ignored* (today's controls are no-ops there, and stay so); only starting a
started torrent is *refused*, as a bug. Two flags decide a few outcomes, named
in the table: the user's pause (it survives stops and checks) and a disk error
not yet cleared by a check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum

from bt.errors import LifecycleError

__all__ = [
    "IGNORED",
    "INTERRUPTED",
    "IN_SWARM",
    "PIECES_KNOWN",
    "TABLE",
    "WHY_CHECKING",
    "WHY_LEAVING",
    "Action",
    "Event",
    "Flag",
    "Guarded",
    "Ignored",
    "Lifecycle",
    "Outcome",
    "Refused",
    "TorrentState",
    "Transition",
    "Watcher",
    "describe_table",
]


class TorrentState(StrEnum):
    """Where a torrent is in its life; ``paused`` is the user's, ``error`` the disk's."""

    CHECKING = "checking"
    DOWNLOADING = "downloading"
    SEEDING = "seeding"
    #: Every wanted piece is here (some files skipped) or the seeding goal was met.
    FINISHED = "finished"
    PAUSED = "paused"
    ERROR = "error"
    STOPPED = "stopped"


class Event(Enum):
    """What happens to a torrent: the service, the user, the disk and the download."""

    START = "start"  # the service starts
    CHECKED = "checked"  # the data check (resume state or hashing) is done
    FILES_COMPARED = "files compared"  # a resume looked for files changed while paused
    COMPLETE = "complete"  # every wanted piece is verified and written
    GOAL_REACHED = "goal reached"  # the seeding ratio or time is met
    MORE_WANTED = "more wanted"  # files wanted again, or data lost: pieces are missing
    PAUSE = "pause"
    RESUME = "resume"
    RECHECK = "recheck"
    DISK_ERROR = "disk error"
    RETRY = "retry"  # the wait after a disk error is over
    STOP = "stop"  # the service stops


class Action(Enum):
    """What the torrent does when the lifecycle moves, in the order given."""

    LOAD_PIECES = "load pieces"  # start the disk; prepare files; resume state or hashing
    CHECK_PIECES = "check pieces"  # hash the data again
    COMPARE_FILES = "compare files"  # look for files changed while paused
    JOIN_SWARM = "join swarm"  # tick, announce, take peers (seeding at once if complete)
    START_SEEDING = "start seeding"  # seeding clock; drop peers that are seeds too
    FINISH_SEEDING = "finish seeding"  # drop every peer, tell trackers ``stopped``
    DOWNLOAD_AGAIN = "download again"  # seeding clock off; announce again
    CANCEL_RETRY = "cancel retry"
    LEAVE_SWARM = "leave swarm"  # untick, drop every peer now, tell trackers ``stopped``
    RESET_PICKER = "reset picker"  # forget every verified piece and block
    SAVE_RESUME = "save resume"
    SAVE_IF_DIRTY = "save if dirty"
    SCHEDULE_RETRY = "schedule retry"  # check the data again after a while


#: What peers are told when an event takes the torrent out of the swarm (LEAVE_SWARM).
WHY_LEAVING = {
    Event.PAUSE: "torrent paused",
    Event.RECHECK: "torrent rechecking",
    Event.DISK_ERROR: "torrent has a disk error",
}
#: Why the data is hashed again (CHECK_PIECES), for the log.
WHY_CHECKING = {
    Event.RECHECK: "recheck asked for",
    Event.RESUME: "resuming after a disk error",
    Event.RETRY: "retrying after a disk error",
}


class Flag(Enum):
    """The lifecycle's flags that some outcomes depend on."""

    PAUSED = "paused"
    FAILED = "failed"  # a disk error no check has cleared yet


@dataclass(frozen=True, slots=True)
class Transition:
    """Go to ``to`` (perhaps the same state) and carry out ``actions``."""

    to: TorrentState
    actions: tuple[Action, ...] = ()

    def __str__(self) -> str:
        actions = ", ".join(a.name for a in self.actions)
        return f"{self.to.name} ({actions})" if actions else self.to.name


@dataclass(frozen=True, slots=True)
class Ignored:
    """Nothing happens: no state change, no action, no flag change."""

    def __str__(self) -> str:
        return "ignored"


@dataclass(frozen=True, slots=True)
class Refused:
    """The event is a bug in the caller: :meth:`Lifecycle.handle` raises LifecycleError."""

    why: str

    def __str__(self) -> str:
        return f"error: {self.why}"


@dataclass(frozen=True, slots=True)
class Guarded:
    """One of two outcomes, by a flag of the lifecycle."""

    flag: Flag
    then: Outcome
    otherwise: Outcome

    def __str__(self) -> str:
        then, otherwise = (
            f"({o})" if isinstance(o, Guarded) else str(o) for o in (self.then, self.otherwise)
        )
        return f"if {self.flag.value}: {then} else: {otherwise}"


Outcome = Transition | Ignored | Refused | Guarded
IGNORED = Ignored()
#: Told of every accepted event: the event and the state before it (the new state and
#: error are on the lifecycle). Called before the actions run, so nested moves are seen
#: in the order they happen.
Watcher = Callable[[Event, TorrentState], None]

S = TorrentState
_ALL = tuple(S)
#: In the swarm: peers are taken and dialed.
IN_SWARM = frozenset({S.DOWNLOADING, S.SEEDING})
#: Out of the swarm for a while (the user's pause, a disk error); pieces may still land.
INTERRUPTED = frozenset({S.PAUSED, S.ERROR})
#: The verified pieces are known (so the resume state may be saved).
PIECES_KNOWN = frozenset(_ALL) - {S.STOPPED, S.CHECKING}

A = Action
_JOIN = Transition(S.DOWNLOADING, (A.JOIN_SWARM,))
_LEAVE = (A.CANCEL_RETRY, A.LEAVE_SWARM)


def _every(
    outcome: Outcome, *, but: dict[TorrentState, Outcome] | None = None
) -> dict[TorrentState, Outcome]:
    """``outcome`` in every state, ``but`` in the states it names."""
    return {state: (but or {}).get(state, outcome) for state in _ALL}


def _stay(states: tuple[TorrentState, ...]) -> dict[TorrentState, Outcome]:
    """The state stays as it is (a flag may change)."""
    return {state: Transition(state) for state in states}


_PAUSE = _every(
    Transition(S.PAUSED, (*_LEAVE, A.SAVE_RESUME)), but=_stay((S.STOPPED, S.CHECKING, S.PAUSED))
)
_RESUME_PAUSED = Guarded(
    Flag.FAILED,
    Transition(S.CHECKING, (A.CHECK_PIECES,)),
    Transition(S.CHECKING, (A.COMPARE_FILES,)),
)
_RESUME = {**_stay(_ALL), S.PAUSED: _RESUME_PAUSED}

_BY_EVENT: dict[Event, dict[TorrentState, Outcome]] = {
    Event.START: _every(
        Refused("the torrent is started already"),
        but={S.STOPPED: Transition(S.CHECKING, (A.LOAD_PIECES,))},
    ),
    Event.CHECKED: _every(
        Guarded(Flag.PAUSED, Transition(S.PAUSED, (A.SAVE_IF_DIRTY,)), _JOIN),
        but={S.STOPPED: IGNORED},
    ),
    Event.FILES_COMPARED: _every(
        IGNORED, but={S.CHECKING: Guarded(Flag.PAUSED, Transition(S.PAUSED), _JOIN)}
    ),
    Event.COMPLETE: _every(IGNORED, but={S.DOWNLOADING: Transition(S.SEEDING, (A.START_SEEDING,))}),
    Event.GOAL_REACHED: _every(
        IGNORED, but={S.SEEDING: Transition(S.FINISHED, (A.FINISH_SEEDING,))}
    ),
    Event.MORE_WANTED: _every(
        IGNORED,
        but={s: Transition(S.DOWNLOADING, (A.DOWNLOAD_AGAIN,)) for s in (S.SEEDING, S.FINISHED)},
    ),
    Event.PAUSE: {s: Guarded(Flag.PAUSED, IGNORED, o) for s, o in _PAUSE.items()},
    Event.RESUME: {s: Guarded(Flag.PAUSED, o, IGNORED) for s, o in _RESUME.items()},
    Event.RECHECK: _every(
        Transition(S.CHECKING, (*_LEAVE, A.RESET_PICKER, A.CHECK_PIECES)),
        but={S.STOPPED: IGNORED, S.CHECKING: IGNORED},
    ),
    Event.DISK_ERROR: _every(
        Guarded(
            Flag.PAUSED,
            Transition(S.PAUSED, (A.LEAVE_SWARM,)),
            Transition(S.ERROR, (A.LEAVE_SWARM, A.SCHEDULE_RETRY)),
        ),
        but={S.STOPPED: IGNORED, S.ERROR: IGNORED},
    ),
    Event.RETRY: _every(IGNORED, but={S.ERROR: Transition(S.CHECKING, (A.CHECK_PIECES,))}),
    Event.STOP: _every(Transition(S.STOPPED)),
}

#: The one transition table: every (state, event) pair has an outcome.
TABLE: dict[tuple[TorrentState, Event], Outcome] = {
    (state, event): outcome for event, row in _BY_EVENT.items() for state, outcome in row.items()
}


class Lifecycle:
    """A torrent's state and flags, moved only by :meth:`handle`.

    Besides the state: ``paused`` is set by an accepted PAUSE and cleared by an
    accepted RESUME; ``error`` is recorded by an accepted DISK_ERROR and
    cleared by an accepted CHECKED (the check found what is valid). ``watchers``
    are told of each accepted event (the session's event hub: bt.sessionevents).
    """

    def __init__(self, *, paused: bool = False) -> None:
        self.state = TorrentState.STOPPED
        self.paused = paused
        self.error: str | None = None
        self.watchers: list[Watcher] = []

    def outcome(self, event: Event) -> Transition | Ignored | Refused:
        """What ``event`` would do now, its flags resolved; changes nothing."""
        outcome = TABLE[self.state, event]
        while isinstance(outcome, Guarded):
            on = self.paused if outcome.flag is Flag.PAUSED else self.error is not None
            outcome = outcome.then if on else outcome.otherwise
        return outcome

    def accepts(self, event: Event) -> bool:
        """Would ``event`` do anything now (neither ignored nor refused)?"""
        return isinstance(self.outcome(event), Transition)

    def handle(self, event: Event, *, error: str | None = None) -> tuple[Action, ...]:
        """Move on by ``event``; the actions to carry out (none if it is ignored).

        ``error`` is what a DISK_ERROR records. Raises LifecycleError if refused.
        """
        outcome = self.outcome(event)
        if isinstance(outcome, Refused):
            raise LifecycleError(f"{event.value} in state {self.state}: {outcome.why}")
        if isinstance(outcome, Ignored):
            return ()
        if event is Event.PAUSE:
            self.paused = True
        elif event is Event.RESUME:
            self.paused = False
        elif event is Event.DISK_ERROR:
            self.error = error
        elif event is Event.CHECKED:
            self.error = None
        before, self.state = self.state, outcome.to
        for watcher in tuple(self.watchers):
            watcher(event, before)
        return outcome.actions

    @property
    def in_swarm(self) -> bool:
        """Peers are taken and dialed (downloading or seeding)."""
        return self.state in IN_SWARM

    @property
    def downloading(self) -> bool:
        return self.state is TorrentState.DOWNLOADING

    @property
    def interrupted(self) -> bool:
        """Out of the swarm for a while: paused, or waiting out a disk error."""
        return self.state in INTERRUPTED

    @property
    def pieces_known(self) -> bool:
        """The verified pieces are known: started and checked (the resume state may be saved)."""
        return self.state in PIECES_KNOWN

    @property
    def started(self) -> bool:
        return self.state is not TorrentState.STOPPED


def describe_table() -> str:
    """The table as text, one line per state and event (for docs and reviews)."""
    width = max(len(s.name) for s in TorrentState) + max(len(e.name) for e in Event) + 3
    return "\n".join(
        f"{f'{state.name} + {event.name}':<{width}} -> {TABLE[state, event]}"
        for event in Event
        for state in TorrentState
    )
