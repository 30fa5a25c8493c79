"""Reading a Transmission request's arguments, and acting on several torrents at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer

from bt.control.transmission.errors import RpcError
from bt.torrentprefs import check_labels, check_mode, check_ratio

__all__ = ["each", "flag", "indexes", "limit_change", "limits_change", "number", "prefs_change"]


def each(hashes: Iterable[bytes], action: Callable[[bytes], Any]) -> defer.Deferred[dict[str, Any]]:
    """Run ``action`` on every torrent; the reply once all are done (the first error wins)."""
    waits = [defer.maybeDeferred(action, info_hash) for info_hash in hashes]
    done = defer.gatherResults(waits, consumeErrors=True)
    done.addErrback(lambda failure: failure.value.subFailure)
    return done.addCallback(lambda _: {})


def flag(arguments: dict[str, Any], name: str, default: bool = False) -> bool:
    value = arguments.get(name, default)
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)  # some clients send 0/1
    if not isinstance(value, bool):
        raise RpcError(f"{name}: expected true or false, got {value!r:.60}")
    return value


def number(arguments: dict[str, Any], name: str) -> float:
    value = arguments[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise RpcError(f"{name}: expected a number >= 0, got {value!r:.60}")
    return float(value)


def indexes(
    arguments: dict[str, Any], name: str, count: int, *, empty_is_all: bool = True
) -> list[int]:
    """A list of file indexes (``[]`` means every file, as in Transmission's torrent-set;
    with ``empty_is_all`` False, none, as in its torrent-add)."""
    value = arguments.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RpcError(f"{name}: expected a list of file indexes, got {value!r:.60}")
    if not value and empty_is_all:
        return list(range(count))
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < count:
            raise RpcError(f"{name}: {item!r:.30} is not a file index (the torrent has {count})")
    return list(value)


def limit_change(
    arguments: dict[str, Any],
    rate_key: str,
    flag_key: str,
    current: float | None,
    kept_kb: float | None,
) -> tuple[float | None, float] | None:
    """A limit (bytes/s, None: unlimited) and the kB/s to keep, from a limit and its flag.

    Transmission keeps a limit's value while it is disabled; bt has no limit
    then, so the RPC keeps the value (``kept_kb``) and applies it when the
    flag turns on. None: the request touches neither key. A limit of 0 kB/s
    is no limit in bt (Transmission would stop the transfer).
    """
    if rate_key not in arguments and flag_key not in arguments:
        return None
    enabled = flag(arguments, flag_key) if flag_key in arguments else current is not None
    if rate_key in arguments:
        kb = number(arguments, rate_key)
    elif current is not None:
        kb = current / 1000
    else:
        kb = kept_kb or 0.0
    return (kb * 1000 if enabled and kb > 0 else None), kb


def limits_change(
    arguments: dict[str, Any],
    keys: dict[str, tuple[str, str]],
    current: dict[str, float | None],
    kept: dict[Any, float],
    owner: bytes | None,
) -> tuple[dict[str, float | None], dict[Any, float]]:
    """:func:`limit_change` for each direction: the keywords of a set_limits call
    (``download``/``upload``), and the kB/s to keep, keyed ``(owner, direction)``.

    ``keys`` names each direction's limit and flag keys in the request.
    """
    limits: dict[str, float | None] = {}
    keeps: dict[Any, float] = {}
    for direction, (rate_key, flag_key) in keys.items():
        change = limit_change(
            arguments, rate_key, flag_key, current[direction], kept.get((owner, direction))
        )
        if change is not None:
            limits[direction], keeps[(owner, direction)] = change
    return limits, keeps


def prefs_change(arguments: dict[str, Any]) -> dict[str, Any]:
    """bt.sessionprefs changes for Transmission's labels and seedRatio keys, checked."""
    changes: dict[str, Any] = {}
    try:
        if "labels" in arguments:
            changes["labels"] = check_labels(arguments["labels"])
        if "seedRatioMode" in arguments:
            changes["ratio_mode"] = check_mode(arguments["seedRatioMode"], "seedRatioMode")
        if "seedRatioLimit" in arguments:
            changes["own_ratio"] = check_ratio(arguments["seedRatioLimit"], "seedRatioLimit")
    except ValueError as exc:
        raise RpcError(str(exc)) from None
    return changes
