"""Reading what API clients send: info-hashes, flags, paths, .torrents, limits, priorities.

Each reader raises :class:`~bt.control.replies.ApiError` (400) naming the
field and what was expected, so every client mistake gets the same clear shape.
What the client sent is quoted through :func:`quoted`: bounded and escaped,
since error messages are also logged.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.web import server

from bt import metainfo
from bt.control.replies import ApiError
from bt.errors import MetainfoError
from bt.metainfo import Metainfo, load_metainfo, parse_metainfo
from bt.status import FilePriority
from bt.units import parse_rate
from bt.untrusted import shown

_INFO_HASH = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
#: A file index: nine digits are plenty, and ``int()`` of thousands of digits raises.
_INDEX = re.compile(r"[0-9]{1,9}")

#: Deepest JSON body accepted: the API's own bodies are three levels deep.
MAX_DEPTH = 16
#: Largest rate limit accepted, in bytes/s (1 PiB/s); 0 or null mean unlimited.
MAX_RATE = float(1 << 50)
#: POSIX limits on what the daemon's file system calls accept (PATH_MAX, NAME_MAX):
#: the same ones a torrent's file paths are held to.
MAX_PATH_BYTES = metainfo.MAX_PATH_BYTES
MAX_NAME_BYTES = metainfo.MAX_COMPONENT_BYTES


def quoted(value: Any) -> str:
    """A client's value in an error message: its repr, bounded and escaped."""
    return shown(repr(value))


def info_hash(text: str) -> bytes:
    """A torrent's 20-byte hash from the path: its info-hash, its other one (a hybrid's
    truncated v2 hash finds it too), or a full 64-digit v2 hash, truncated as peers do."""
    if not _INFO_HASH.fullmatch(text):
        raise ApiError(
            400,
            f"{quoted(text)} in the path is not an info-hash"
            " (40 hex characters, or a 64-digit v2 one)",
        )
    return bytes.fromhex(text)[:20]


def depth(value: Any) -> int:
    """How deeply a decoded JSON value nests (iteratively: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in item)
    return deepest


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def query_text(request: server.Request, name: str) -> str | None:
    values = request.args.get(name.encode("ascii"))
    return values[-1].decode("utf-8", "replace") if values else None


def query_bool(request: server.Request, name: str) -> bool:
    text = query_text(request, name)
    if text is None:
        return False
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter {name}: expected true or false, got {quoted(text)}")


def absolute_path(name: str, value: Any) -> Path:
    """An absolute path the daemon's file system calls can take (no NUL, within POSIX limits).

    Checked here so that a path no file can have is the client's 400, not an
    exception deep in ``os``.
    """
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name}: expected an absolute path, got {json_type(value)}")
    if "\0" in value:
        raise ApiError(400, f"{name}: {quoted(value)} contains a NUL character")
    try:
        encoded = os.fsencode(value)
    except UnicodeEncodeError:
        raise ApiError(
            400, f"{name}: {quoted(value)} cannot be a file name here (lone surrogate)"
        ) from None
    path = Path(value)
    if not path.is_absolute():
        raise ApiError(400, f"{name}: {quoted(value)} is not an absolute path")
    if len(encoded) > MAX_PATH_BYTES:
        raise ApiError(400, f"{name}: path of {len(encoded)} bytes is over {MAX_PATH_BYTES}")
    longest = max(len(part) for part in encoded.split(b"/"))
    if longest > MAX_NAME_BYTES:
        raise ApiError(
            400, f"{name}: a component of {longest} bytes is over {MAX_NAME_BYTES} bytes"
        )
    return path


def optional_path(name: str, value: Any) -> Path | None:
    return None if value is None else absolute_path(name, value)


def torrent_bytes(name: str, data: bytes) -> Metainfo:
    """A .torrent a client sent (or named): its metainfo, or a 400 naming ``name``."""
    try:
        return parse_metainfo(data)
    except MetainfoError as exc:
        raise ApiError(400, f"{name}: not a valid .torrent: {shown(str(exc), 400)}") from None


def torrent_base64(name: str, value: Any) -> Metainfo:
    """A .torrent sent in base64 in a JSON body (bt's ``torrent``, Transmission's ``metainfo``)."""
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: expected a base64 string, got {json_type(value)}")
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"{name}: not valid base64: {exc}") from None
    return torrent_bytes(name, data)


def torrent_file(name: str, path: Path, max_size: int) -> Metainfo:
    """A .torrent file a client named (blocking: run it in a thread); a 400 (413 when
    over ``max_size`` bytes) naming ``name`` and what is wrong."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ApiError(
            400, f"{name}: {shown(str(path))}: cannot read: {exc.strerror or exc}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ApiError(400, f"{name}: {shown(str(path))} is not a regular file")
    if info.st_size > max_size:
        raise ApiError(413, f"{name}: {shown(str(path))} is over the limit of {max_size} bytes")
    try:
        return load_metainfo(path)
    except MetainfoError as exc:
        raise ApiError(400, f"{name}: {shown(str(exc), 400)}") from None


def limit(name: str, value: Any) -> float | None:
    """A rate limit from JSON: bytes/s, a rate such as "2M", or null; 0 means unlimited."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            rate = parse_rate(value)
        except ValueError:
            raise ApiError(
                400, f"{name}: {quoted(value)} is not a rate such as 500K, 2M or 0 (unlimited)"
            ) from None
        return _within(name, value, rate)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            rate = float(value)
        except OverflowError:  # an integer of hundreds of digits
            rate = math.inf
        if not math.isnan(rate) and rate >= 0:
            return _within(name, value, rate or None)
    raise ApiError(
        400, f'{name}: expected bytes/s >= 0, a rate such as "2M", or null; got {quoted(value)}'
    )


def _within(name: str, value: Any, rate: float | None) -> float | None:
    if rate is not None and not rate <= MAX_RATE:
        raise ApiError(
            400,
            f"{name}: {quoted(value)} is over the largest limit, {MAX_RATE:.0f} bytes/s; "
            "0 or null mean unlimited",
        )
    return rate


def limits(body: Mapping[str, Any]) -> dict[str, float | None]:
    """The session's keyword arguments for the limits the client sent, and only those."""
    keywords = {"upload_limit": "upload", "download_limit": "download"}
    return {keywords[k]: limit(k, v) for k, v in body.items() if k in keywords}


def limit_fields(limits: Mapping[str, Any]) -> str:
    return ", ".join(f"{keyword}_limit" for keyword in limits)


def priorities(value: Any, indexes: Sequence[int]) -> dict[int, FilePriority]:
    """``{"0": "skip"}`` or ``["skip", "normal", ...]`` (one per listed file) as a priority map.

    ``indexes`` are the torrent's file indexes as the API lists them: BEP 47
    padding files are not listed, so an index may be missing from the range.
    """
    known = set(indexes)
    if isinstance(value, list):
        if len(value) != len(indexes):
            raise ApiError(
                400,
                f"file_priorities: {len(value)} priorities for {len(indexes)} files; give one "
                'per file, or an object such as {"0": "skip"}',
            )
        items: list[tuple[int, Any]] = list(zip(indexes, value, strict=True))
    elif isinstance(value, dict):
        items = []
        for key, priority in value.items():
            if not _INDEX.fullmatch(key):
                raise ApiError(400, f"file_priorities: {quoted(key)} is not a file index")
            if int(key) not in known:
                raise ApiError(
                    400, f"file_priorities: no file {key}; GET the torrent for its files' indexes"
                )
            items.append((int(key), priority))
    else:
        raise ApiError(
            400, f"file_priorities: expected an object or an array, got {json_type(value)}"
        )
    result: dict[int, FilePriority] = {}
    choices = ", ".join(p.value for p in FilePriority)
    for index, priority in items:
        try:
            result[index] = FilePriority(priority)
        except ValueError:
            raise ApiError(
                400, f"file_priorities[{index}]: {quoted(priority)} is not one of {choices}"
            ) from None
    return result
