"""The control token and endpoint files the daemon leaves in its state folder.

The daemon writes them; the CLI reads them. The token is the API's only
credential, so it is created readable by its owner alone, never half-written,
and kept across restarts (scripts and the CLI keep working after a restart).
``control.json`` says where the API listens, which with ``tcp:0`` is only known
once the port is bound.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
from pathlib import Path

from bt.errors import BtError
from bt.logs import Logger

__all__ = [
    "CONTROL_INFO",
    "TOKEN_FILE",
    "ensure_token",
    "read_control_info",
    "remove_control_info",
    "write_control_info",
]

TOKEN_FILE = "control.token"
CONTROL_INFO = "control.json"

log = Logger()


def ensure_token(state_dir: Path) -> str:
    """The API token from ``state_dir/control.token``, created on first use.

    A new token is written to a private temporary file and hard-linked into
    place, so a reader never sees an empty or partial token and two daemons
    starting at once agree on one token (the second link fails, it reads the
    first). A token file others can read is repaired to 0600 with a warning.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / TOKEN_FILE
    token = _read_token(path)
    if token is not None:
        return token
    token = secrets.token_urlsafe(32)
    temporary = _write_private(state_dir, token + "\n")
    try:
        try:
            os.link(temporary, path)
        except FileExistsError:
            # Another process won the race, or the file was empty: the
            # existing non-empty token wins; an empty one is replaced.
            existing = _read_token(path)
            if existing is not None:
                return existing
            os.replace(temporary, path)
            return token
    finally:
        temporary.unlink(missing_ok=True)
    log.info("created control API token {path}", path=str(path))
    return token


def _read_token(path: Path) -> str | None:
    """An existing token, after making sure only its owner can read it; None if absent/empty."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BtError(f"{path}: cannot read the control token: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as file:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            log.warn(
                "{path} was readable by others (mode {mode:o}): made it 0600; "
                "delete it and restart the daemon for a new token if others may have read it",
                path=str(path),
                mode=mode,
            )
            os.fchmod(fd, 0o600)
        token = file.read().strip()
    return token or None


def _write_private(folder: Path, text: str) -> Path:
    """A new 0600 file in ``folder`` holding ``text``, flushed to disk."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=".control-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def write_control_info(state_dir: Path, url: str) -> None:
    """Atomically publish where this daemon's API listens, for the CLI."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = json.dumps({"url": url, "pid": os.getpid()}) + "\n"
    temporary = _write_private(state_dir, document)
    os.replace(temporary, state_dir / CONTROL_INFO)


def read_control_info(state_dir: Path) -> tuple[str, str]:
    """The API's URL and token, or a BtError naming the file that is missing or bad."""
    info_path = state_dir / CONTROL_INFO
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BtError(f"{info_path} does not exist: is the daemon running?") from None
    except OSError as exc:
        raise BtError(f"{info_path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise BtError(f"{info_path}: not valid JSON: {exc}") from exc
    url = info.get("url") if isinstance(info, dict) else None
    if not isinstance(url, str) or not url:
        raise BtError(f'{info_path}: has no "url"')
    token_path = state_dir / TOKEN_FILE
    try:
        token = token_path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise BtError(f"{token_path} does not exist: is the daemon running?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BtError(f"{token_path}: cannot read the control token: {exc}") from exc
    if not token:
        raise BtError(f"{token_path} is empty")
    return url, token


def remove_control_info(state_dir: Path) -> None:
    """Withdraw ``control.json`` at shutdown, unless another daemon has replaced it since."""
    path = state_dir / CONTROL_INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        info = None
    if isinstance(info, dict) and info.get("pid") not in (None, os.getpid()):
        return
    path.unlink(missing_ok=True)
