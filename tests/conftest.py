"""Suite-wide fixtures: fail any test that leaves the reactor dirty."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


def _reactor_state() -> tuple[set[object], set[object], set[object]]:
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return set(), set(), set()
    return (
        {c for c in reactor.getDelayedCalls() if c.active()},
        {r for r in reactor.getReaders() if not _is_internal(r)},
        {w for w in reactor.getWriters() if not _is_internal(w)},
    )


def _is_internal(selectable: object) -> bool:
    """The reactor's own wakers come and go with its life, not with a test."""
    return "Waker" in type(selectable).__name__


@pytest.fixture(autouse=True)
def clean_reactor() -> Iterator[None]:
    """A test must cancel its timers and close its ports and connections."""
    before_calls, before_readers, before_writers = _reactor_state()
    yield
    after_calls, after_readers, after_writers = _reactor_state()
    leaked_calls = after_calls - before_calls
    leaked = [
        *(f"delayed call {c}" for c in leaked_calls),
        *(f"reader {r}" for r in after_readers - before_readers),
        *(f"writer {w}" for w in after_writers - before_writers),
    ]
    if leaked:
        for call in leaked_calls:
            call.cancel()
        pytest.fail("test left the reactor dirty:\n  " + "\n  ".join(leaked))
