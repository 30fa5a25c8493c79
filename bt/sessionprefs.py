"""Preferences changed at run time, applied to a live session and kept in its state folder.

Per torrent (labels, seed-ratio goal: :mod:`bt.torrentprefs`) they go into the
torrent's record; for the session (the download folder of new torrents, the
seed ratio of torrents that follow the session's) into ``settings.json``.
As with the global limits, what the command line gives at start wins over a
saved value, and is what the file then holds: ``SessionConfig.given`` names the
settings the command line gave.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from bt.status import UNCHANGED
from bt.torrentprefs import RatioMode, TorrentPrefs, check_labels, check_mode, check_ratio

if TYPE_CHECKING:
    from bt.session import Session

#: Transmission's seed ratio when one is turned on without a value.
DEFAULT_SEED_RATIO = 2.0

__all__ = [
    "DEFAULT_SEED_RATIO",
    "restore_session_prefs",
    "session_seed_ratio",
    "set_session_prefs",
    "set_torrent_prefs",
    "torrent_prefs",
]


def torrent_prefs(session: Session, info_hash: bytes) -> TorrentPrefs:
    """A torrent's (or a magnet's) labels and ratio goal; UnknownTorrentError if none."""
    torrent = session.torrents.find(info_hash)
    if torrent is not None:
        return session.memory.prefs.get(torrent.metainfo.info_hash, TorrentPrefs())
    record = session.magnets.record(info_hash)
    return record.prefs


def set_torrent_prefs(
    session: Session,
    info_hash: bytes,
    *,
    labels: Any = UNCHANGED,
    ratio_mode: Any = UNCHANGED,
    own_ratio: Any = UNCHANGED,
) -> TorrentPrefs:
    """Change some of a torrent's preferences (checked first: ValueError names a bad one)."""
    changes: dict[str, Any] = {}
    if labels is not UNCHANGED:
        changes["labels"] = check_labels(labels)
    if ratio_mode is not UNCHANGED:
        changes["ratio_mode"] = check_mode(ratio_mode, "seed ratio mode")
    if own_ratio is not UNCHANGED:
        changes["own_ratio"] = None if own_ratio is None else check_ratio(own_ratio, "seed ratio")
    torrent = session.torrents.find(info_hash)
    if torrent is None:  # a magnet still fetching: its record carries them to the torrent
        record = session.magnets.record(info_hash)
        prefs = replace(record.prefs, **changes)
        record.labels = list(prefs.labels)
        record.seed_ratio_mode, record.seed_ratio = prefs.ratio_mode, prefs.own_ratio
        session.magnets.save_record(info_hash)
        return prefs
    key = torrent.metainfo.info_hash
    prefs = replace(session.memory.prefs.get(key, TorrentPrefs()), **changes)
    apply_torrent_prefs(session, torrent, prefs)
    return prefs


def apply_torrent_prefs(session: Session, torrent: Any, prefs: TorrentPrefs) -> None:
    """Give a live torrent these preferences now, and remember them."""
    session.memory.prefs[torrent.metainfo.info_hash] = prefs
    ratio = prefs.seed_ratio(session.config.torrent.seed_ratio)
    torrent.config = replace(torrent.config, seed_ratio=ratio)
    session.memory.save(torrent)


def _usable_folder(folder: str) -> Path:
    """The folder as given, if it is or can become a download folder (blocking: a thread)."""
    path = Path(folder)
    if not path.is_absolute():
        raise ValueError(f"download-dir: {folder!r:.200} is not an absolute folder")
    if path.exists() and not path.is_dir():
        raise ValueError(f"download-dir: {folder!r:.200} is not a folder")
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"download-dir: {folder!r:.200}: {parent} is not writable")
    return path


def session_seed_ratio(session: Session) -> float | None:
    """The session's seed ratio value, in force or kept while turned off (None: never one)."""
    ratio = session.config.torrent.seed_ratio
    return ratio if ratio is not None else session.memory.saved_settings.seed_ratio


def set_session_prefs(
    session: Session,
    *,
    download_dir: Any = UNCHANGED,
    seed_ratio: Any = UNCHANGED,
    seed_ratio_limited: Any = UNCHANGED,
) -> Deferred[None]:
    """Change the session's download folder (for torrents added from now on) or seed ratio
    (for every torrent following the session's); saved in settings.json.

    As Transmission's seedRatioLimit and seedRatioLimited: a ratio given while
    the limit is off is kept, and applies once it is turned on. Fires once
    saved; errbacks with ValueError naming what cannot be used.
    """
    if seed_ratio is not UNCHANGED:
        seed_ratio = check_ratio(seed_ratio, "seed ratio")
    if seed_ratio_limited is not UNCHANGED and not isinstance(seed_ratio_limited, bool):
        raise ValueError(
            f"seed ratio limited: expected true or false, not {seed_ratio_limited!r:.30}"
        )
    if download_dir is UNCHANGED:
        checked: Deferred[Any] = Deferred()
        checked.callback(None)
    else:
        checked = session.run_blocking(_usable_folder, str(download_dir))

    def apply(folder: Path | None) -> Deferred[None]:
        config, saved = session.config, session.memory.saved_settings
        if folder is not None:
            config = replace(config, download_dir=folder)
            saved = replace(saved, download_dir=str(folder))
        ratio_changed = seed_ratio is not UNCHANGED or seed_ratio_limited is not UNCHANGED
        if ratio_changed:
            value = seed_ratio if seed_ratio is not UNCHANGED else session_seed_ratio(session)
            limited = (
                seed_ratio_limited
                if seed_ratio_limited is not UNCHANGED
                else config.torrent.seed_ratio is not None
            )
            if value is None:
                value = DEFAULT_SEED_RATIO
            ratio = value if limited else None
            config = replace(config, torrent=replace(config.torrent, seed_ratio=ratio))
            saved = replace(saved, seed_ratio_limited=limited, seed_ratio=value)
        session.config = config
        if ratio_changed:
            _follow_session_ratio(session)
        return session.memory.save_settings(saved)

    return checked.addCallback(apply)


def _follow_session_ratio(session: Session) -> None:
    for torrent in list(session.torrents.values()):
        prefs = session.memory.prefs.get(torrent.metainfo.info_hash, TorrentPrefs())
        if prefs.ratio_mode == RatioMode.SESSION:
            torrent.config = replace(torrent.config, seed_ratio=session.config.torrent.seed_ratio)


def restore_session_prefs(session: Session) -> None:
    """At start: take the saved folder and seed ratio the command line did not give.

    One the command line gave, at another value than the saved one, is saved.
    """
    config, saved = session.config, session.memory.saved_settings
    given = config.given
    if saved.download_dir is not None and "download_dir" not in given:
        config = replace(config, download_dir=Path(saved.download_dir))
    if saved.seed_ratio_limited is not None and "seed_ratio" not in given:
        ratio = saved.seed_ratio if saved.seed_ratio_limited else None
        config = replace(config, torrent=replace(config.torrent, seed_ratio=ratio))
    session.config = config
    updated = saved
    if "download_dir" in given and saved.download_dir not in (None, str(config.download_dir)):
        updated = replace(updated, download_dir=str(config.download_dir))
    ratio = config.torrent.seed_ratio
    if "seed_ratio" in given and saved.seed_ratio_limited is not None:
        if (saved.seed_ratio if saved.seed_ratio_limited else None) != ratio:
            updated = replace(updated, seed_ratio_limited=ratio is not None, seed_ratio=ratio)
    if updated != saved:
        session.memory.save_settings(updated)
