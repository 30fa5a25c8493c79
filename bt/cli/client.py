"""Talking to a running daemon's control API: where it is, its token, and requests.

The CLI makes a handful of short loopback calls, so this is the standard
library's blocking ``urllib``, not a reactor. Failures become :class:`CliError`
with the exit status the CLI reports: 1 for an error the daemon answered with,
2 when there is no daemon to ask.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bt.control.files import CONTROL_INFO, TOKEN_FILE  # the daemon writes them

__all__ = [
    "API",
    "CliError",
    "ControlClient",
    "locate_daemon",
    "parse_event_stream",
    "resolve_torrents",
]

API = "/api/v1"
#: Seconds to wait for one answer; every call is on loopback and quick.
TIMEOUT = 30.0
#: Seconds of silence after which an event stream is given up (keep-alives every 15 s).
STREAM_TIMEOUT = 60.0
#: ``bt move``: the daemon answers once every file is in place (copied, across disks).
MOVE_TIMEOUT = 6 * 3600.0
_HEX = frozenset("0123456789abcdef")
MIN_PREFIX = 4


class CliError(Exception):
    """Printed as ``bt: <message>``; ``status`` is the process exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class DaemonAddress:
    url: str
    token: str
    #: Where the token came from, for the message when the daemon refuses it.
    token_source: str
    pid: int | None = None


def default_state_dir() -> Path:
    # Imported here: bt.tap pulls in Twisted, which commands that need no daemon skip.
    from bt.tap import default_state_dir as tap_default

    return tap_default()


def locate_daemon(
    state_dir: str | None, url: str | None, token: str | None, env: Mapping[str, str]
) -> DaemonAddress:
    """Find the daemon from ``--url``/``--token``, env, or the files in the state folder."""
    if state_dir is None:
        state_dir = env.get("BT_STATE_DIR") or None
    folder = Path(state_dir) if state_dir is not None else default_state_dir()
    if token is None:
        token = env.get("BT_TOKEN") or None
    pid = None
    if url is None:
        info_file = folder / CONTROL_INFO
        try:
            info = json.loads(info_file.read_text())
        except FileNotFoundError:
            raise CliError(
                f"no daemon found: {info_file} missing "
                "(is twistd bittorrent running with this --state-dir?)",
                2,
            ) from None
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read {info_file}: {exc}", 2) from None
        if not isinstance(info, dict) or not isinstance(info.get("url"), str):
            raise CliError(f"{info_file} does not say where the daemon listens", 2)
        url = info["url"]
        pid = info.get("pid") if isinstance(info.get("pid"), int) else None
    if token is not None:
        return DaemonAddress(url, token, "--token or BT_TOKEN", pid)
    token_file = folder / TOKEN_FILE
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise CliError(
            f"cannot read the control token {token_file}: {exc.strerror or exc} "
            "(give --token or BT_TOKEN)",
            2,
        ) from None
    if not token:
        raise CliError(f"the control token {token_file} is empty (give --token or BT_TOKEN)", 2)
    return DaemonAddress(url, token, str(token_file), pid)


class ControlClient:
    """Blocking JSON calls to one daemon, each sending the bearer token."""

    def __init__(self, address: DaemonAddress, timeout: float = TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one); raises :class:`CliError`."""
        url = self.address.url.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {
            "Authorization": f"Bearer {self.address.token}",
            "Accept": "application/json",
        }
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        with self._failures():
            wait = timeout or self.timeout
            with urllib.request.urlopen(request, timeout=wait) as response:
                raw = response.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CliError(
                f"the daemon at {self.address.url} answered {url} with non-JSON"
            ) from None

    def events(self, last_event_id: int | None = None) -> Iterator[tuple[int | None, str, Any]]:
        """Follow ``GET /api/v1/events``: ``(id, kind, data)`` per event, until it ends."""
        headers = {"Authorization": f"Bearer {self.address.token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        url = self.address.url.rstrip("/") + f"{API}/events"
        request = urllib.request.Request(url, headers=headers)
        # Keep-alives come every 15 s: a minute of silence means the daemon is gone.
        with self._failures(), urllib.request.urlopen(request, timeout=STREAM_TIMEOUT) as response:
            for event_id, kind, data in _silence_checked(parse_event_stream(response)):
                try:
                    decoded = json.loads(data)
                except ValueError:
                    raise CliError(
                        f"the daemon sent an event that is not JSON: {data[:80]!r}"
                    ) from None
                yield event_id, kind, decoded

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """The daemon's error answers and unreachable daemons as CliError."""
        try:
            yield
        except urllib.error.HTTPError as exc:
            raise self._api_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise CliError(self._unreachable(reason), 2) from None

    def _api_error(self, exc: urllib.error.HTTPError) -> CliError:
        try:
            raw = exc.read()
        except OSError:
            raw = b""
        finally:
            exc.close()
        message = f"the daemon answered {exc.code} {exc.reason}"
        try:
            error = json.loads(raw)["error"]
            message = str(error["message"])
        except (ValueError, KeyError, TypeError):
            pass
        if exc.code == 401:
            message += f" (token from {self.address.token_source})"
        return CliError(message, 1)

    def _unreachable(self, reason: object) -> str:
        if isinstance(reason, socket.timeout | TimeoutError):
            reason = f"no answer within {self.timeout:g} s"
        message = f"cannot reach the daemon at {self.address.url}: {reason}"
        pid = self.address.pid
        if pid is not None and not _process_exists(pid):
            message += f" (process {pid} named in control.json is not running)"
        return message

    # The routes, one method each, so commands read as what they do.

    def torrents(self) -> dict[str, Any]:
        return self.request("GET", f"{API}/torrents")

    def torrent(self, info_hash: str) -> dict[str, Any]:
        return self.request("GET", f"{API}/torrents/{info_hash}")

    def action(self, info_hash: str, verb: str) -> Any:
        return self.request("POST", f"{API}/torrents/{info_hash}/{verb}")

    def move(self, info_hash: str, folder: str, *, move: bool) -> dict[str, Any]:
        """Answered once the data is moved: a copy to another disk may take a while."""
        body = {"download_dir": folder, "move": move}
        path = f"{API}/torrents/{info_hash}/move"
        return self.request("POST", path, json_body=body, timeout=MOVE_TIMEOUT)

    def remove(self, info_hash: str, delete_data: bool) -> Any:
        query = {"delete_data": "true"} if delete_data else None
        return self.request("DELETE", f"{API}/torrents/{info_hash}", query=query)

    def add(self, torrent: bytes, *, paused: bool, download_dir: str | None) -> dict[str, Any]:
        query = {}
        if paused:
            query["paused"] = "true"
        if download_dir is not None:
            query["download_dir"] = download_dir
        return self.request(
            "POST",
            f"{API}/torrents",
            body=torrent,
            content_type="application/x-bittorrent",
            query=query,
        )

    def add_magnet(self, uri: str, *, paused: bool, download_dir: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"magnet": uri, "paused": paused}
        if download_dir is not None:
            body["download_dir"] = download_dir
        return self.request("POST", f"{API}/torrents", json_body=body)

    def patch_torrent(self, info_hash: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"{API}/torrents/{info_hash}", json_body=changes)

    def session(self) -> dict[str, Any]:
        return self.request("GET", f"{API}/session")

    def patch_session(self, changes: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"{API}/session", json_body=changes)


def parse_event_stream(lines: Iterable[bytes]) -> Iterator[tuple[int | None, str, str]]:
    """Server-sent events from a stream's lines: ``(id, event, data)`` at each blank line.

    As the SSE specification reads them: comments (``:``) skipped, ``data``
    lines joined by newlines, an event without ``event:`` is ``message``, and
    one without data is no event.
    """
    event_id: int | None = None
    kind, data = "", []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield event_id, kind or "message", "\n".join(data)
            kind, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id" and value.isdigit():
            event_id = int(value)


def _silence_checked(events: Iterator[tuple[int | None, str, str]]) -> Iterator[Any]:
    try:
        yield from events
    except TimeoutError:
        raise CliError(f"the daemon sent nothing for {STREAM_TIMEOUT:g} s", 2) from None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def resolve_torrents(listing: Sequence[Mapping[str, Any]], refs: Sequence[str]) -> list[Any]:
    """The torrents ``refs`` name: full hash, unique hash prefix (>= 4), or exact name.

    A hash is the id (``info_hash``) or, for v2 and hybrid torrents, ``info_hash_v2``.

    Every ref must match exactly one torrent; otherwise the error lists the
    candidates, so the user can retype with more of the hash.
    """
    return [_resolve_one(listing, ref) for ref in refs]


def _hashes(torrent: Mapping[str, Any]) -> tuple[str, ...]:
    """The hex hashes a torrent may be named by: its id, and its v2 info-hash if any."""
    v2 = torrent.get("info_hash_v2")
    return (str(torrent.get("info_hash", "")), *((str(v2),) if v2 else ()))


def _resolve_one(listing: Sequence[Mapping[str, Any]], ref: str) -> Mapping[str, Any]:
    lowered = ref.lower()
    is_hex = bool(lowered) and set(lowered) <= _HEX
    by_hash = []
    if is_hex and len(lowered) >= MIN_PREFIX:
        by_hash = [t for t in listing if any(h.startswith(lowered) for h in _hashes(t))]
    exact = [t for t in by_hash if lowered in _hashes(t)]
    if exact:
        return exact[0]
    by_name = [t for t in listing if t.get("name") == ref]
    matches = by_hash + [t for t in by_name if t not in by_hash]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CliError(
            f"{ref!r} matches {len(matches)} torrents; give more of the hash:\n"
            + _candidates(matches)
        )
    hint = ""
    if is_hex and len(lowered) < MIN_PREFIX:
        hint = f" (a hash prefix needs at least {MIN_PREFIX} characters)"
    if not listing:
        raise CliError(f"no torrent matches {ref!r}: the daemon has no torrents")
    raise CliError(f"no torrent matches {ref!r}{hint}; the daemon has:\n" + _candidates(listing))


def _candidates(torrents: Sequence[Mapping[str, Any]], limit: int = 20) -> str:
    lines = [f"  {t.get('info_hash')}  {t.get('name')}" for t in torrents[:limit]]
    if len(torrents) > limit:
        lines.append(f"  ... and {len(torrents) - limit} more")
    return "\n".join(lines)
