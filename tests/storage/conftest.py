"""Fixtures shared by the disk queue tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import globalLogPublisher


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    """Fail a test that logged a failure it did not expect (e.g. an unhandled Deferred error).

    A test that expects some takes the list and clears what it checked.
    """
    logged: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if "log_failure" in event:
            logged.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield logged
        gc.collect()  # Deferreds report unhandled errors when collected
    finally:
        globalLogPublisher.removeObserver(observe)
    assert [event["log_failure"].getTraceback() for event in logged] == []
