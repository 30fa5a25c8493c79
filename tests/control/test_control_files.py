"""The token and endpoint files: private, never partial, kept across restarts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bt.control.files import (
    CONTROL_INFO,
    TOKEN_FILE,
    ensure_token,
    read_control_info,
    remove_control_info,
    write_control_info,
)
from bt.errors import BtError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_token_is_private_and_long(tmp_path: Path) -> None:
    state = tmp_path / "state"
    token = ensure_token(state)
    assert len(token) >= 40
    assert mode(state / TOKEN_FILE) == 0o600
    assert (state / TOKEN_FILE).read_text().strip() == token
    assert [p.name for p in state.iterdir()] == [TOKEN_FILE]


def test_the_token_survives_restarts(tmp_path: Path) -> None:
    assert ensure_token(tmp_path) == ensure_token(tmp_path)


def test_two_state_dirs_get_different_tokens(tmp_path: Path) -> None:
    assert ensure_token(tmp_path / "a") != ensure_token(tmp_path / "b")


def test_a_token_readable_by_others_is_made_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    path.write_text("old-token\n")
    path.chmod(0o644)
    assert ensure_token(tmp_path) == "old-token"
    assert mode(path) == 0o600


def test_an_empty_token_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    path.write_text("")
    path.chmod(0o600)
    token = ensure_token(tmp_path)
    assert token and path.read_text().strip() == token
    assert mode(path) == 0o600


def test_a_token_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("x")
    (tmp_path / TOKEN_FILE).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BtError, match=TOKEN_FILE):
        ensure_token(tmp_path)


def test_control_info_round_trips_for_the_cli(tmp_path: Path) -> None:
    token = ensure_token(tmp_path)
    write_control_info(tmp_path, "http://127.0.0.1:8123/")
    info = json.loads((tmp_path / CONTROL_INFO).read_text())
    assert info == {"url": "http://127.0.0.1:8123/", "pid": os.getpid()}
    assert read_control_info(tmp_path) == ("http://127.0.0.1:8123/", token)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONTROL_INFO, TOKEN_FILE]


def test_a_missing_control_info_asks_whether_the_daemon_runs(tmp_path: Path) -> None:
    with pytest.raises(BtError, match=r"control\.json.*is the daemon running\?"):
        read_control_info(tmp_path)


@pytest.mark.parametrize("content", ["{", "[]", '{"url": 5}'])
def test_a_bad_control_info_names_the_file(tmp_path: Path, content: str) -> None:
    (tmp_path / CONTROL_INFO).write_text(content)
    with pytest.raises(BtError, match=r"control\.json"):
        read_control_info(tmp_path)


def test_a_missing_token_names_its_file(tmp_path: Path) -> None:
    write_control_info(tmp_path, "http://127.0.0.1:1/")
    with pytest.raises(BtError, match=r"control\.token"):
        read_control_info(tmp_path)


def test_removing_control_info_leaves_another_daemons_file(tmp_path: Path) -> None:
    (tmp_path / CONTROL_INFO).write_text(json.dumps({"url": "x", "pid": os.getpid() + 1}))
    remove_control_info(tmp_path)
    assert (tmp_path / CONTROL_INFO).exists()
    write_control_info(tmp_path, "http://127.0.0.1:1/")
    remove_control_info(tmp_path)
    assert not (tmp_path / CONTROL_INFO).exists()
    remove_control_info(tmp_path)
