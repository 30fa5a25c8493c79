"""The session's own settings changed at run time, kept in ``STATE_DIR/settings.json``.

These are the global rate limits (``bt limit``), and the download folder and
seed ratio that Transmission's session-set changes. The file always holds
the values last in force, so a restart keeps what ``bt limit`` set; an option
given on the command line overrides it at start (as Transmission's daemon lets
its command line override ``settings.json``), and is what the file then holds.

Reading and writing block: the session does both in its disk threads, except
at start-up, before the reactor runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bt.errors import BtError
from bt.status import UNCHANGED
from bt.storage.resume import save_resume

__all__ = ["SessionSettings", "SettingsFile"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SessionSettings:
    """Global limits in bytes/s (None: unlimited); the folder and seed ratio set at run time."""

    upload_limit: float | None = None
    download_limit: float | None = None
    #: Set by Transmission's session-set; None: never set (the command line's applies).
    download_dir: str | None = None
    #: Whether a session seed ratio was set (None: never), and which (None: unlimited).
    seed_ratio_limited: bool | None = None
    seed_ratio: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "upload_limit": self.upload_limit,
            "download_limit": self.download_limit,
        }
        if self.download_dir is not None:
            data["download_dir"] = self.download_dir
        if self.seed_ratio_limited is not None:  # the ratio means nothing without it
            data["seed_ratio_limited"] = self.seed_ratio_limited
            data["seed_ratio"] = self.seed_ratio
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> SessionSettings:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise BtError(f"{where}: not session settings of version {FORMAT_VERSION}")
        folder, limited, ratio = (
            data.get(key) for key in ("download_dir", "seed_ratio_limited", "seed_ratio")
        )
        if folder is not None and not (isinstance(folder, str) and folder.startswith("/")):
            raise BtError(f"{where}: download_dir is {folder!r:.60}, not an absolute folder")
        if limited is not None and not isinstance(limited, bool):
            raise BtError(f"{where}: seed_ratio_limited is {limited!r:.30}, not true/false/null")
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio < 0
        ):
            raise BtError(f"{where}: seed_ratio is {ratio!r:.30}, not a ratio or null")
        return cls(
            upload_limit=_rate(data, "upload_limit", where),
            download_limit=_rate(data, "download_limit", where),
            download_dir=folder,
            seed_ratio_limited=limited,
            seed_ratio=None if ratio is None else float(ratio),
        )


def _rate(data: dict[str, Any], key: str, where: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    largest = float(1 << 50)  # the control API's MAX_RATE: what it accepts must load again
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= largest:
        raise BtError(f"{where}: {key} is {value!r}, not a rate in bytes/s or null")
    return float(value)


class SettingsFile:
    """Reads and writes ``STATE_DIR/settings.json`` (atomically, like the registry)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "settings.json"

    def load(self) -> SessionSettings | None:
        """The saved settings; None when nothing was saved. BtError names a broken file."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BtError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise BtError(f"{self.path}: not JSON: {exc}") from None
        return SessionSettings.from_json(data, str(self.path))

    def save(self, settings: SessionSettings) -> None:
        data = json.dumps(settings.to_json(), indent=1).encode()
        save_resume(self.path, data, "session settings")


def configured_limit(limit: float | None) -> float | None:
    """A configured limit, with UNCHANGED (not given) as unlimited until restore()."""
    return None if limit is UNCHANGED else limit


def user_limit(name: str, value: Any) -> Any:
    """A rate limit as given by a user: bytes/s, with None or 0 meaning unlimited."""
    if value is UNCHANGED or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e15:
        raise ValueError(f"{name}: {value!r} is not a rate in bytes/s (or null for unlimited)")
    return None if value == 0 else float(value)
