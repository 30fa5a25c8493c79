"""twistd options of seeding goals, --exit-when-done and the global limits (bt.tap)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from dhtsafety import dht_safe_args

from bt.exitwhendone import ExitWhenDone
from bt.status import UNCHANGED
from bt.tap import Options, makeService


def parsed(tmp_path: Path, *argv: str, state: str = "state") -> Options:
    """Options on a free loopback port, without the control API (makeService binds both)."""
    options = Options()
    options.parseOptions(
        dht_safe_args(
            [
                "--state-dir",
                str(tmp_path / state),
                "-d",
                str(tmp_path),
                "--listen",
                "tcp:0:interface=127.0.0.1",
                "--control",
                "none",
                *argv,
            ]
        )
    )
    return options


@pytest.mark.parametrize(("option", "text"), [("seed-ratio", "0"), ("seed-time", "0")])
@pytest_twisted.ensureDeferred
async def test_a_seeding_goal_of_zero_is_accepted(tmp_path: Path, option: str, text: str) -> None:
    options = parsed(tmp_path, f"--{option}", text)
    assert options[option] == 0.0
    session = makeService(options)
    try:
        key = option.replace("-", "_")
        assert getattr(session.config.torrent, key) == 0.0  # type: ignore[attr-defined]
    finally:
        await session.stopService()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed-ratio", "-1"], "--seed-ratio: '-1' is not a ratio of 0 or more"),
        (["--seed-ratio", "nan"], "--seed-ratio: 'nan' is not a ratio of 0 or more"),
        (["--seed-time", "-5"], "--seed-time: '-5' is not a duration"),
    ],
)
def test_a_negative_goal_is_refused(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parsed(tmp_path, *argv)
    assert capsys.readouterr().err.startswith(f"twistd bittorrent: error: {message}")


@pytest_twisted.ensureDeferred
async def test_exit_when_done_adds_the_watcher(tmp_path: Path) -> None:
    session = makeService(parsed(tmp_path, "--exit-when-done"))
    try:
        (watcher,) = [s for s in session if isinstance(s, ExitWhenDone)]  # type: ignore[attr-defined]
        assert watcher.torrents is session.torrents  # type: ignore[attr-defined]
        assert not watcher.wait_for_first
    finally:
        await session.stopService()  # type: ignore[attr-defined]
    with_folder = parsed(tmp_path, "--exit-when-done", "-w", str(tmp_path), state="state2")
    session = makeService(with_folder)
    try:
        (watcher,) = [s for s in session if isinstance(s, ExitWhenDone)]  # type: ignore[attr-defined]
        assert watcher.wait_for_first, "a watch folder may bring the first torrent later"
    finally:
        await session.stopService()  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_no_watcher_without_the_option(tmp_path: Path) -> None:
    session = makeService(parsed(tmp_path))
    try:
        assert not [s for s in session if isinstance(s, ExitWhenDone)]  # type: ignore[attr-defined]
    finally:
        await session.stopService()  # type: ignore[attr-defined]


def test_global_limits_not_given_leave_the_saved_ones_in_force(tmp_path: Path) -> None:
    options = parsed(tmp_path)
    assert options["upload-limit"] is UNCHANGED and options["download-limit"] is UNCHANGED
    given = parsed(tmp_path, "--upload-limit", "0", "--download-limit", "2M")
    assert given["upload-limit"] is None and given["download-limit"] == 2 * 1024 * 1024


def test_every_limit_option_gives_its_unit() -> None:
    helps = {p[0]: p[3] for p in Options.optParameters}
    for name in (
        "upload-limit",
        "download-limit",
        "torrent-upload-limit",
        "torrent-download-limit",
    ):
        assert "bytes/s" in helps[name] and "2M" in helps[name], name


@pytest_twisted.ensureDeferred
async def test_the_command_line_names_the_settings_it_gives(tmp_path: Path) -> None:
    """What session-set saved applies only where the command line is silent (bt.sessionprefs)."""
    options = Options()
    options.parseOptions(
        dht_safe_args(
            [
                *("--state-dir", str(tmp_path / "other")),
                *("--listen", "tcp:0:interface=127.0.0.1", "--control", "none"),
                *("--seed-ratio", "1.5"),
            ]
        )
    )
    assert options["download-dir"] == Path(".")
    for given, expected in ((parsed(tmp_path), {"download_dir"}), (options, {"seed_ratio"})):
        session = makeService(given)
        try:
            assert session.config.given == expected  # type: ignore[attr-defined]
        finally:
            await session.stopService()  # type: ignore[attr-defined]
