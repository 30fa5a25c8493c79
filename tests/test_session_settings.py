"""The global limits set at run time (``bt limit``) survive a restart: STATE_DIR/settings.json.

The sessions are not started: with the disk threads not running, writes happen
synchronously, so each step can be checked at once (as in test_session_registry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, capturedLogs, formatEvent

from bt.control.api import ControlResource
from bt.control.auth import BearerAuth
from bt.session import UNCHANGED, Session, SessionConfig

TOKEN = "settings-token"


def new_session(tmp_path: Path, **limits: Any) -> Session:
    config = SessionConfig(download_dir=tmp_path / "data", state_dir=tmp_path / "state", **limits)
    return Session(config, reactor=MemoryReactorClock())


def limits(session: Session) -> tuple[float | None, float | None]:
    return session.limits.upload.rate, session.limits.download.rate


def restarted(tmp_path: Path, **limits: Any) -> tuple[Session, list[LogEvent]]:
    session = new_session(tmp_path, **limits)
    with capturedLogs() as events:
        assert session.restore() == []
    return session, list(events)


def test_limits_set_at_run_time_come_back_after_a_restart(tmp_path: Path) -> None:
    first = new_session(tmp_path)
    first.set_limits(upload=2048, download=UNCHANGED)
    first.set_limits(download=1_000_000)
    second, events = restarted(tmp_path)
    assert limits(second) == (2048.0, 1_000_000.0)
    (line,) = [formatEvent(e) for e in events if "global limits" in formatEvent(e)]
    assert "upload 2.0 KiB/s, download 976.6 KiB/s" in line
    assert "settings.json" in line, "says where the limits in force come from"


def test_lifting_a_limit_is_remembered_too(tmp_path: Path) -> None:
    first = new_session(tmp_path)
    first.set_limits(upload=2048, download=4096)
    first.set_limits(upload=None)
    second, _ = restarted(tmp_path)
    assert limits(second) == (None, 4096.0)


def test_the_file_is_json_a_person_can_read(tmp_path: Path) -> None:
    new_session(tmp_path).set_limits(upload=2048, download=0)
    saved = json.loads((tmp_path / "state" / "settings.json").read_text())
    assert saved == {"version": 1, "upload_limit": 2048.0, "download_limit": None}


def test_a_limit_given_at_start_wins_over_the_saved_one_and_is_saved(tmp_path: Path) -> None:
    """Transmission's rule: the command line overrides settings.json, which then holds it."""
    new_session(tmp_path).set_limits(upload=2048, download=4096)
    second, events = restarted(tmp_path, upload_limit=None)  # --upload-limit 0
    assert limits(second) == (None, 4096.0), "the saved download limit still applies"
    (line,) = [formatEvent(e) for e in events if "global limits" in formatEvent(e)]
    assert "the command line replaces the saved upload 2.0 KiB/s" in line
    third, _ = restarted(tmp_path)
    assert limits(third) == (None, 4096.0), "the limit last in force is kept"


def test_without_saved_settings_the_configuration_applies(tmp_path: Path) -> None:
    session, events = restarted(tmp_path, download_limit=5000.0)
    assert limits(session) == (None, 5000.0)
    assert not [e for e in events if "global limits" in formatEvent(e)]


def test_a_broken_settings_file_is_reported_and_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "settings.json").write_text('{"version": 1, "upload_limit": -3}')
    session = new_session(tmp_path, download_limit=5000.0)
    with capturedLogs() as events:
        problems = session.restore()
    assert problems == [
        f"{tmp_path / 'state' / 'settings.json'}: upload_limit is -3, not a rate in bytes/s or null"
    ]
    assert limits(session) == (None, 5000.0)
    assert any("settings.json" in formatEvent(e) for e in events)


@pytest_twisted.ensureDeferred
async def test_limits_set_through_the_control_api_come_back_after_a_restart(
    tmp_path: Path,
) -> None:
    first = new_session(tmp_path)
    resource = ControlResource(first, run_blocking=defer.maybeDeferred)
    client = StubTreq(BearerAuth(resource, TOKEN))
    response = await client.patch(
        "http://localhost/api/v1/session",
        json={"upload_limit": 300_000, "download_limit": None},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.code == 200, await response.text()
    second, _ = restarted(tmp_path)
    assert limits(second) == (300_000.0, None)
    assert (await response.json())["upload_limit"] == 300_000.0


def test_the_largest_limit_the_api_accepts_is_read_back(tmp_path: Path) -> None:
    from bt.control.fields import MAX_RATE
    from bt.settings import SessionSettings, SettingsFile

    saved = SettingsFile(tmp_path)
    saved.save(SessionSettings(upload_limit=MAX_RATE, download_limit=None))
    assert saved.load() == SessionSettings(upload_limit=MAX_RATE, download_limit=None)
