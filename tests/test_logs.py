"""bt's log level filter and the JSON log for shippers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.logger import eventFromJSON, globalLogPublisher

from bt.logs import JSONLogService, Logger, set_log_level


@pytest.fixture
def seen() -> Iterator[list[dict]]:
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)
    set_log_level("info")


def test_debug_events_are_filtered_unless_asked_for(seen: list[dict]) -> None:
    log = Logger()
    log.debug("per-peer detail")
    log.info("progress")
    assert [e["log_format"] for e in seen] == ["progress"]
    set_log_level("debug")
    log.debug("per-peer detail")
    assert seen[-1]["log_format"] == "per-peer detail"
    set_log_level("error")
    log.warn("a warning")
    assert seen[-1]["log_format"] == "per-peer detail"


def test_loggers_are_named_after_their_module_and_class() -> None:
    class Example:
        log = Logger()

    assert Logger().namespace == __name__
    assert Example.log.namespace == f"{__name__}.Example"


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="'loud' is not a log level"):
        set_log_level("loud")


def test_json_log_writes_one_parseable_event_per_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "bt.json"
    service = JSONLogService(str(path))
    service.privilegedStartService()
    service.startService()  # idempotent: one observer, not two
    Logger().info("{name}: {count} pieces", name="album", count=3)
    service.stopService()
    Logger().info("after the stop: not written")
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    event = eventFromJSON(lines[0])
    assert event["name"] == "album" and event["count"] == 3
    assert json.loads(lines[0])["log_namespace"] == __name__
