"""Reading what API clients send: info-hashes, query flags, paths, limits, priorities.

Each reader raises :class:`~bt.control.replies.ApiError` (400) naming the
field and what was expected, so every client mistake gets the same clear shape.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.web import server

from bt.control.replies import ApiError
from bt.status import FilePriority
from bt.units import parse_rate

_INFO_HASH = re.compile(r"[0-9a-fA-F]{40}")
_INDEX = re.compile(r"[0-9]+")


def info_hash(text: str) -> bytes:
    if not _INFO_HASH.fullmatch(text):
        raise ApiError(400, f"{text!r} in the path is not an info-hash (40 hex characters)")
    return bytes.fromhex(text)


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
    raise ApiError(400, f"query parameter {name}: expected true or false, got {text!r}")


def absolute_path(name: str, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name}: expected an absolute path, got {json_type(value)}")
    path = Path(value)
    if not path.is_absolute():
        raise ApiError(400, f"{name}: {value!r} is not an absolute path")
    return path


def optional_path(name: str, value: Any) -> Path | None:
    return None if value is None else absolute_path(name, value)


def limit(name: str, value: Any) -> float | None:
    """A rate limit from JSON: bytes/s, a rate such as "2M", or null; 0 means unlimited."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_rate(value)
        except ValueError as exc:
            raise ApiError(400, f"{name}: {exc}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value) or None
    raise ApiError(
        400, f'{name}: expected bytes/s >= 0, a rate such as "2M", or null; got {value!r}'
    )


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
                raise ApiError(400, f"file_priorities: {key!r} is not a file index")
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
                400, f"file_priorities[{index}]: {priority!r} is not one of {choices}"
            ) from None
    return result
