"""The torrents' methods: torrent-get, the actions, torrent-set and torrent-set-location."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from bt.control.transmission.arguments import each, flag, indexes, limits_change, prefs_change
from bt.control.transmission.errors import RpcError
from bt.control.transmission.torrentfields import (
    FIELDS,
    NEEDS_FILES,
    NEEDS_PEERS,
    TorrentView,
    get_fields,
)
from bt.status import FilePriority, TorrentStatus

if TYPE_CHECKING:
    from bt.control.transmission.rpc import Rpc

__all__ = ["METHODS", "views"]

_MAGNET = "fetching metadata"


def views(rpc: Rpc, statuses: list[TorrentStatus], names: set[str]) -> list[TorrentView]:
    """One view per torrent, with its files and peers only when asked for."""
    facts, now = rpc.facts, rpc.now()
    result = []
    for status in statuses:
        info_hash = bytes.fromhex(status.info_hash)
        if names & NEEDS_FILES and str(status.state) != _MAGNET:
            status = rpc.session.torrent_status(info_hash)
        result.append(
            TorrentView(
                id=rpc.ids.id_for(info_hash),
                status=status,
                details=rpc.live.details(
                    info_hash, peers=bool(names & NEEDS_PEERS), pieces="pieces" in names
                ),
                now=now,
                session_seed_ratio=facts.seed_ratio,
                max_peers=facts.max_peers,
                queue_position=rpc.order.get(info_hash, 0),
            )
        )
    return result


def torrent_get(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    names = arguments.get("fields")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RpcError("fields: expected a list of field names (torrent-get needs fields)")
    form = arguments.get("format", "objects")
    if form not in ("objects", "table"):
        raise RpcError(f'format: expected "objects" or "table", got {form!r:.40}')
    statuses, recent = rpc.select(arguments)
    chosen = views(rpc, statuses, set(names))
    reply: dict[str, Any]
    if form == "table":
        known = [n for n in dict.fromkeys(names) if n in FIELDS]
        rows = [[FIELDS[n](view) for n in known] for view in chosen]
        reply = {"torrents": [known, *rows]}
    else:
        reply = {"torrents": [get_fields(view, names) for view in chosen]}
    if recent:
        reply["removed"] = rpc.ids.recently_removed(rpc.now())
    return reply


def _unless_magnet(rpc: Rpc, action: Any) -> Any:
    """Magnets still fetching metadata cannot be paused or checked yet: left alone."""

    def act(info_hash: bytes) -> Any:
        if str(rpc.session.torrent_status(info_hash).state) == _MAGNET:
            return None
        return action(info_hash)

    return act


def torrent_start(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    def start(info_hash: bytes) -> None:
        if str(rpc.session.torrent_status(info_hash).state) in ("paused", "stopped"):
            rpc.session.resume_torrent(info_hash)

    return each(rpc.hashes(arguments), _unless_magnet(rpc, start))


def torrent_stop(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    def stop(info_hash: bytes) -> Any:
        if str(rpc.session.torrent_status(info_hash).state) in ("paused", "stopped"):
            return None
        return rpc.session.pause_torrent(info_hash)

    return each(rpc.hashes(arguments), _unless_magnet(rpc, stop))


def torrent_verify(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    return each(rpc.hashes(arguments), _unless_magnet(rpc, rpc.session.recheck_torrent))


def torrent_reannounce(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    return each(rpc.hashes(arguments), rpc.live.reannounce)


def torrent_remove(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    delete = flag(arguments, "delete-local-data")

    def remove(info_hash: bytes) -> defer.Deferred[None]:
        removed = defer.maybeDeferred(rpc.session.remove_torrent, info_hash, delete_data=delete)
        return removed.addCallback(lambda _: rpc.forget(info_hash))

    return each(rpc.hashes(arguments), remove)


#: torrent-set keys bt accepts without keeping (it has no such setting), when harmless.
_ACCEPTED = {"bandwidthPriority", "honorsSessionLimits", "queuePosition", "group"}
#: torrent-set keys bt has no setting for; refused (named) when asked.
_REFUSED = {
    "location",
    "peer-limit",
    "seedIdleLimit",
    "seedIdleMode",
    "trackerAdd",
    "trackerRemove",
    "trackerReplace",
    "trackerList",
    "sequentialDownload",
}


def _priorities(status: TorrentStatus, arguments: dict[str, Any]) -> dict[int, FilePriority]:
    """bt's file priorities (skip, normal, high) for Transmission's wanted and priority lists.

    bt's skip is Transmission's unwanted; Transmission's low is bt's normal. A
    priority given for a skipped file leaves it skipped unless files-wanted
    names it in the same call.
    """
    files = status.files
    count = len(files)
    current = {n: f.priority for n, f in enumerate(files)}
    wanted = dict.fromkeys(indexes(arguments, "files-wanted", count), True)
    wanted.update(dict.fromkeys(indexes(arguments, "files-unwanted", count), False))
    levels: dict[int, FilePriority] = {}
    for key, level in (
        ("priority-low", FilePriority.NORMAL),
        ("priority-normal", FilePriority.NORMAL),
        ("priority-high", FilePriority.HIGH),
    ):
        levels.update(dict.fromkeys(indexes(arguments, key, count), level))
    changed: dict[int, FilePriority] = {}
    for n in set(wanted) | set(levels):
        is_wanted = wanted.get(n, current[n] is not FilePriority.SKIP)
        if not is_wanted:
            new = FilePriority.SKIP
        else:
            old = current[n] if current[n] is not FilePriority.SKIP else FilePriority.NORMAL
            new = levels.get(n, old)
        if new is not current[n]:
            changed[files[n].index] = new
    return changed


_TORRENT_LIMITS = {
    "download": ("downloadLimit", "downloadLimited"),
    "upload": ("uploadLimit", "uploadLimited"),
}


def torrent_set(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    refused = sorted(set(arguments) & _REFUSED)
    if refused:
        raise RpcError(f"torrent-set: bt cannot set {', '.join(refused)}")
    prefs = prefs_change(arguments)
    plans = []
    for info_hash in rpc.hashes(arguments):  # everything is checked before anything changes
        status = rpc.session.torrent_status(info_hash)
        if str(status.state) == _MAGNET:
            if any(key in arguments for keys in _TORRENT_LIMITS.values() for key in keys):
                raise RpcError(f"torrent-set: {status.name} is still fetching its metadata")
            plans.append((info_hash, {}, {}, {}))  # nor has it files yet
            continue
        current = {"download": status.download_limit, "upload": status.upload_limit}
        limits, keeps = limits_change(
            arguments, _TORRENT_LIMITS, current, rpc.kept_limits, info_hash
        )
        plans.append((info_hash, limits, keeps, _priorities(status, arguments)))
    for info_hash, limits, keeps, priorities in plans:
        rpc.kept_limits.update(keeps)
        if limits:
            rpc.session.set_torrent_limits(info_hash, **limits)
        if priorities:
            rpc.session.set_file_priorities(info_hash, priorities)
        if prefs:
            rpc.live.set_prefs(info_hash, **prefs)
    return defer.succeed({})


def torrent_set_location(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    """Move the torrents' data to ``location`` (``move`` false, Transmission's default:
    look for it there); the reply once every one runs in its new folder."""
    location = arguments.get("location")
    if not isinstance(location, str) or not location:
        raise RpcError("location: expected the folder to move the torrents to")
    if not os.path.isabs(location):
        raise RpcError(f"location: {location!r:.200} is not an absolute path")
    move = flag(arguments, "move")
    hashes = rpc.hashes(arguments)
    return each(hashes, lambda h: rpc.session.move_torrent(h, Path(location), move=move))


def torrent_rename_path(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    raise RpcError("torrent-rename-path: bt cannot rename a torrent's files")


def queue_move(rpc: Rpc, arguments: dict[str, Any]) -> dict[str, Any]:
    raise RpcError("bt has no download queue: every torrent runs unless paused")


METHODS = {
    "torrent-get": torrent_get,
    "torrent-start": torrent_start,
    "torrent-start-now": torrent_start,
    "torrent-stop": torrent_stop,
    "torrent-verify": torrent_verify,
    "torrent-reannounce": torrent_reannounce,
    "torrent-remove": torrent_remove,
    "torrent-set": torrent_set,
    "torrent-set-location": torrent_set_location,
    "torrent-rename-path": torrent_rename_path,
    "queue-move-top": queue_move,
    "queue-move-up": queue_move,
    "queue-move-down": queue_move,
    "queue-move-bottom": queue_move,
}
