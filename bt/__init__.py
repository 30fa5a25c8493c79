"""bt: a BitTorrent engine and daemon on Twisted.

The public API for programs that embed bt::

    from bt import Session, SessionConfig, load_metainfo

    session = Session(SessionConfig(download_dir=..., state_dir=...))
    session.startService()
    torrent = session.add_torrent(load_metainfo("file.torrent"))
    torrent.when_finished().addCallback(...)

Names are imported on first use, so ``import bt`` stays cheap and never
touches the reactor (the twistd plugin imports it before choosing one).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Session": "bt.session",
    "SessionConfig": "bt.session",
    "UNCHANGED": "bt.status",
    "Torrent": "bt.torrent",
    "TorrentConfig": "bt.torrentconfig",
    "TorrentStatus": "bt.status",
    "SessionStatus": "bt.status",
    "TorrentState": "bt.status",
    "FilePriority": "bt.status",
    "FileStatus": "bt.status",
    "IStorage": "bt.interfaces",
    "FileStorage": "bt.storage.files",
    "MemoryStorage": "bt.storage.memory",
    "Metainfo": "bt.metainfo",
    "load_metainfo": "bt.metainfo",
    "parse_metainfo": "bt.metainfo",
    "BtError": "bt.errors",
    "MetainfoError": "bt.errors",
    "StorageError": "bt.errors",
    "UnknownTorrentError": "bt.errors",
    "DuplicateTorrentError": "bt.errors",
}

__all__ = [
    "UNCHANGED",
    "BtError",
    "DuplicateTorrentError",
    "FilePriority",
    "FileStatus",
    "FileStorage",
    "IStorage",
    "MemoryStorage",
    "Metainfo",
    "MetainfoError",
    "Session",
    "SessionConfig",
    "SessionStatus",
    "StorageError",
    "Torrent",
    "TorrentConfig",
    "TorrentState",
    "TorrentStatus",
    "UnknownTorrentError",
    "__version__",
    "load_metainfo",
    "parse_metainfo",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bt' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from bt.errors import (
        BtError,
        DuplicateTorrentError,
        MetainfoError,
        StorageError,
        UnknownTorrentError,
    )
    from bt.interfaces import IStorage
    from bt.metainfo import Metainfo, load_metainfo, parse_metainfo
    from bt.session import Session, SessionConfig
    from bt.status import (
        UNCHANGED,
        FilePriority,
        FileStatus,
        SessionStatus,
        TorrentState,
        TorrentStatus,
    )
    from bt.storage.files import FileStorage
    from bt.storage.memory import MemoryStorage
    from bt.torrent import Torrent
    from bt.torrentconfig import TorrentConfig
