"""torrent-add: a .torrent by path, URL or base64, or a magnet link, with its options.

``filename`` is a path on the daemon's machine, an ``http(s)://`` URL (fetched
with a bounded size and time), or a ``magnet:`` link; ``metainfo`` is the
.torrent in base64. A torrent the session already has is not an error:
Transmission answers ``torrent-duplicate`` with its id.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from bt.control import fields as read
from bt.control.transmission.arguments import flag, indexes, prefs_change
from bt.control.transmission.errors import RpcError
from bt.errors import DuplicateTorrentError, MagnetError
from bt.magnet import is_magnet, parse_magnet
from bt.metainfo import Metainfo
from bt.status import FilePriority
from bt.untrusted import shown

if TYPE_CHECKING:
    from bt.control.transmission.rpc import Rpc

__all__ = ["MAX_TORRENT", "METHODS", "file_priorities"]

#: Largest .torrent read from a path or a URL (the control API's body cap).
MAX_TORRENT = 64 * 1024 * 1024


def file_priorities(metainfo: Metainfo, arguments: dict[str, Any]) -> list[FilePriority] | None:
    """One priority per file of the metainfo (padding files included) from the add's lists.

    Transmission's file indexes count the files bt lists: BEP 47 padding files
    are left out, as in torrent-get's ``files``.
    """
    listed = [n for n, entry in enumerate(metainfo.files) if not entry.padding]
    keys = ("files-wanted", "files-unwanted", "priority-high", "priority-normal", "priority-low")
    if not any(arguments.get(key) for key in keys):
        return None
    lists = {key: indexes(arguments, key, len(listed), empty_is_all=False) for key in keys}
    chosen = [FilePriority.NORMAL] * len(metainfo.files)
    for n in lists["priority-high"]:
        chosen[listed[n]] = FilePriority.HIGH
    for n in set(lists["files-unwanted"]) - set(lists["files-wanted"]):
        chosen[listed[n]] = FilePriority.SKIP
    return chosen


def _download_dir(arguments: dict[str, Any]) -> Path | None:
    value = arguments.get("download-dir")
    return None if value in (None, "") else read.absolute_path("download-dir", value)


def _identity(rpc: Rpc, info_hash: bytes) -> dict[str, Any]:
    status = rpc.session.torrent_status(info_hash)
    return {"id": rpc.id_of(info_hash), "name": status.name, "hashString": status.info_hash}


_REMOVING = "torrent-add: this torrent is still being removed; add it again later"


def _duplicate(rpc: Rpc, info_hash: bytes) -> dict[str, Any]:
    """Transmission's answer for a torrent it has; one being removed has no status any more."""
    if info_hash not in {bytes.fromhex(s.info_hash) for s in rpc.statuses()}:
        raise RpcError(_REMOVING)
    return {"torrent-duplicate": _identity(rpc, info_hash)}


def _labels(arguments: dict[str, Any]) -> dict[str, Any]:
    """torrent-add's labels, checked before anything is added."""
    return prefs_change({k: v for k, v in arguments.items() if k == "labels"})


def _added(rpc: Rpc, info_hash: bytes, prefs: dict[str, Any]) -> dict[str, Any]:
    if prefs:
        rpc.live.set_prefs(info_hash, **prefs)
    return {"torrent-added": _identity(rpc, info_hash)}


def _add_metainfo(rpc: Rpc, metainfo: Metainfo, arguments: dict[str, Any]) -> dict[str, Any]:
    prefs = _labels(arguments)
    paused = flag(arguments, "paused", not rpc.start_added)
    folder = _download_dir(arguments)
    priorities = file_priorities(metainfo, arguments)
    options: dict[str, Any] = {"paused": paused, "download_dir": folder}
    if priorities is not None:
        options["file_priorities"] = priorities
    try:
        rpc.session.add_torrent(metainfo, **options)
    except DuplicateTorrentError:
        return _duplicate(rpc, metainfo.info_hash)
    return _added(rpc, metainfo.info_hash, prefs)


def _add_magnet(rpc: Rpc, uri: str, arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        magnet = parse_magnet(uri)
    except MagnetError as exc:
        raise RpcError(f"filename: not a valid magnet link: {shown(str(exc), 300)}") from None
    prefs = _labels(arguments)
    try:
        rpc.session.add_magnet(
            magnet,
            paused=flag(arguments, "paused", not rpc.start_added),
            download_dir=_download_dir(arguments),
        )
    except DuplicateTorrentError:
        assert magnet.info_hash is not None
        return _duplicate(rpc, magnet.info_hash)
    except MagnetError as exc:
        raise RpcError(f"filename: {shown(str(exc), 300)}") from None
    assert magnet.info_hash is not None  # add_magnet refuses the others
    return _added(rpc, magnet.info_hash, prefs)


def torrent_add(rpc: Rpc, arguments: dict[str, Any]) -> defer.Deferred[dict[str, Any]] | Any:
    if arguments.get("metainfo"):
        metainfo = read.torrent_base64("metainfo", arguments["metainfo"])
        return _add_metainfo(rpc, metainfo, arguments)
    name = arguments.get("filename")
    if not isinstance(name, str) or not name.strip():
        raise RpcError('torrent-add: give "filename" (a path, URL or magnet) or "metainfo"')
    name = name.strip()
    if is_magnet(name):
        return _add_magnet(rpc, name, arguments)
    if name.lower().startswith(("http://", "https://")):
        if rpc.fetch is None:
            raise RpcError("filename: this bt cannot fetch .torrent files by URL")
        loading = rpc.fetch(name)
        loading.addCallback(lambda data: read.torrent_bytes("filename", data))
    else:
        path = read.absolute_path("filename", name)
        loading = rpc.run_blocking(read.torrent_file, "filename", path, MAX_TORRENT)
    return loading.addCallback(lambda metainfo: _add_metainfo(rpc, metainfo, arguments))


METHODS = {"torrent-add": torrent_add}
