"""The session's methods: session-get/-set/-stats/-close, free-space, port-test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from bt.control.transmission.arguments import flag, limits_change
from bt.control.transmission.errors import RpcError
from bt.control.transmission.sessionfields import refused_keys, session_fields, stats
from bt.torrentprefs import check_ratio

if TYPE_CHECKING:
    from bt.control.transmission.rpc import Rpc

__all__ = ["METHODS"]

#: States Transmission counts as paused in session-stats.
_PAUSED = {"paused", "stopped", "finished", "error"}


def _free_bytes(path: str) -> tuple[int, int] | None:
    """Free and total bytes of the file system holding ``path`` (blocking: a thread runs it)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.free, usage.total


def _kept(rpc: Rpc) -> dict[str, float]:
    return {direction: kb for (owner, direction), kb in rpc.kept_limits.items() if owner is None}


def _fields(rpc: Rpc, free: int | None) -> dict[str, Any]:
    status = rpc.session.status()
    return session_fields(
        status, rpc.facts, rpc.session_id, free, _kept(rpc), start_added=rpc.start_added
    )


def session_get(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    wanted = arguments.get("fields")
    if wanted is not None and (
        not isinstance(wanted, list) or not all(isinstance(f, str) for f in wanted)
    ):
        raise RpcError("fields: expected a list of session-get key names")
    folder = rpc.facts.download_dir
    checking = rpc.run_blocking(_free_bytes, folder) if folder else defer.succeed(None)

    def answer(free: tuple[int, int] | None) -> dict[str, Any]:
        fields = _fields(rpc, free[0] if free else None)
        return fields if not wanted else {k: v for k, v in fields.items() if k in wanted}

    return checking.addCallback(answer)


_SESSION_LIMITS = {
    "download": ("speed-limit-down", "speed-limit-down-enabled"),
    "upload": ("speed-limit-up", "speed-limit-up-enabled"),
}


def session_set(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    status = rpc.session.status()
    refused_keys(arguments, _fields(rpc, None))
    current = {"download": status.download_limit, "upload": status.upload_limit}
    limits, keeps = limits_change(arguments, _SESSION_LIMITS, current, rpc.kept_limits, None)
    start_added = flag(arguments, "start-added-torrents", rpc.start_added)
    prefs = _session_prefs(rpc, arguments)
    # Everything is checked (but whether the folder can be used: that takes a thread).
    saved: defer.Deferred[Any] = defer.succeed(None)
    if prefs:
        saved = rpc.live.set_session_prefs(**prefs)
        saved.addErrback(_refused_prefs)

    def the_rest(_: object) -> defer.Deferred[Any] | None:
        rpc.start_added = start_added
        rpc.kept_limits.update(keeps)
        return defer.maybeDeferred(rpc.session.set_limits, **limits) if limits else None

    return saved.addCallback(the_rest).addCallback(lambda _: {})


def _session_prefs(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    """session-set's download-dir and seed ratio keys, where they change something."""
    facts = rpc.facts
    prefs: dict[str, Any] = {}
    folder = arguments.get("download-dir")
    if folder is not None and folder != facts.download_dir:
        if not isinstance(folder, str) or not folder.startswith("/"):
            raise RpcError(f"download-dir: {folder!r:.200} is not an absolute folder")
        prefs["download_dir"] = folder
    shown = session_fields(rpc.session.status(), facts, rpc.session_id, None)
    if "seedRatioLimit" in arguments:
        try:
            ratio = check_ratio(arguments["seedRatioLimit"], "seedRatioLimit")
        except ValueError as exc:
            raise RpcError(str(exc)) from None
        if ratio != shown["seedRatioLimit"]:
            prefs["seed_ratio"] = ratio
    if "seedRatioLimited" in arguments:
        limited = flag(arguments, "seedRatioLimited")
        if limited != shown["seedRatioLimited"]:
            prefs["seed_ratio_limited"] = limited
    return prefs


def _refused_prefs(failure: Failure) -> None:
    failure.trap(ValueError)
    raise RpcError(str(failure.value))


def session_stats(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    statuses = rpc.statuses()
    paused = sum(1 for s in statuses if str(s.state) in _PAUSED)
    lifetime = (sum(s.downloaded for s in statuses), sum(s.uploaded for s in statuses))
    return stats(
        rpc.session.status(),
        torrents=len(statuses),
        active=len(statuses) - paused,
        paused=paused,
        seconds_active=int(rpc.now() - rpc.started),
        lifetime=lifetime,
    )


def session_close(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    """Stops the daemon, as transmission-daemon does, once this reply is on its way."""
    if rpc.close is None:
        raise RpcError("session-close: this bt cannot be stopped through the RPC")
    rpc.clock.callLater(0.1, rpc.close)
    return {}


def free_space(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    path = arguments.get("path")
    if not isinstance(path, str) or not os.path.isabs(path) or "\0" in path:
        raise RpcError(f"free-space: path must be an absolute path, got {path!r:.80}")

    def answer(free: tuple[int, int] | None) -> dict[str, Any]:
        if free is None:
            raise RpcError(f"free-space: {path!r:.200}: no such folder or not readable")
        return {"path": path, "size-bytes": free[0], "total_size": free[1]}

    return rpc.run_blocking(_free_bytes, str(Path(path))).addCallback(answer)


def port_test(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    """bt asks no outside service whether its port is reachable: it says so, and false."""
    raise RpcError(
        "port-test: bt cannot test whether its peer port is reachable from outside "
        "(it asks no outside service); check it from another machine",
        {"port-is-open": False},
    )


def blocklist_update(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    raise RpcError("blocklist-update: bt has no blocklist")


def group_get(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"group": []}


METHODS = {
    "session-get": session_get,
    "session-set": session_set,
    "session-stats": session_stats,
    "session-close": session_close,
    "free-space": free_space,
    "port-test": port_test,
    "blocklist-update": blocklist_update,
    "group-get": group_get,
}
