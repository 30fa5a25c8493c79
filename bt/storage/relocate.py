"""Move a torrent's files from one download folder to another (Transmission's set-location).

Blocking: the session runs it in the disk threads once the torrent is stopped
and its files are closed. Only the torrent's own files move (the paths of its
metainfo under the old folder); the part file stays in the state folder, where
it is keyed by info-hash, not by folder.

All or nothing: each file is renamed (``os.replace``); across file systems
(``EXDEV``) it is copied, flushed to disk and given the source's mode and
modification time (so the resume state, which checks size and mtime, still
applies and nothing is hashed or downloaded again). Sources of copies are
deleted only once every file is in its new place. When anything fails midway,
what had moved goes back and :class:`~bt.errors.MoveError` names the file and
the reason. A file already at the target is never overwritten unless it holds
the same bytes. Folders the move leaves empty go, up to (not including) the
old download folder; a folder holding anything else stays.
"""

from __future__ import annotations

import errno
import filecmp
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bt.errors import MoveError
from bt.storage.files import StorageFile

__all__ = ["Relocated", "relocate_files"]

#: Suffix of a copy being written across file systems (renamed into place when whole).
PARTIAL = ".bt-moving"


@dataclass
class Relocated:
    """What a move did: files renamed, copied, already there; sources it could not delete."""

    renamed: int = 0
    copied: int = 0
    already_there: int = 0
    left_behind: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Step:
    source: str
    target: str
    #: "rename" (undo: rename back), "copy" (undo: delete the copy), "same" (nothing).
    how: str


def relocate_files(old_root: Path, new_root: Path, files: Sequence[StorageFile]) -> Relocated:
    """Move every existing file of ``files`` from under ``old_root`` to under ``new_root``."""
    if not os.path.isabs(new_root):
        raise MoveError(f"{new_root}: the new download folder must be an absolute path")
    old_real = os.path.realpath(old_root)
    new_real = os.path.realpath(new_root)
    result = Relocated()
    if old_real == new_real:
        return result
    if os.path.lexists(new_real) and not os.path.isdir(new_real):
        raise MoveError(f"{new_root}: exists and is not a folder")
    plan = _plan(old_real, new_real, files)
    done: list[_Step] = []
    made: list[str] = []
    try:
        for source, target in plan:
            done.append(_move(source, target, made))
    except OSError as exc:
        failed = exc.filename if isinstance(exc.filename, str) else ""
        _undo(done, made)
        where = next((f"{s} to {t}" for s, t in plan if failed in (s, t, t + PARTIAL)), failed)
        raise MoveError(f"cannot move {where}: {exc.strerror or exc}") from exc
    for step in done:
        if step.how == "rename":
            result.renamed += 1
            continue
        if step.how == "copy":
            result.copied += 1
        else:
            result.already_there += 1
        try:
            os.unlink(step.source)
        except OSError:
            result.left_behind.append(step.source)
    _remove_empty_folders(old_real, [source for source, _ in plan])
    return result


def _plan(old_real: str, new_real: str, files: Sequence[StorageFile]) -> list[tuple[str, str]]:
    """(source, target) of each file to move; MoveError before anything moves if one
    would overwrite another file."""
    plan = []
    for entry in files:
        if entry.padding or not entry.path:
            continue
        source = os.path.join(old_real, *entry.path)
        parent = os.path.realpath(os.path.dirname(source))
        if os.path.commonpath([old_real, parent]) != old_real:
            continue  # a symlinked folder leading out of the download folder: not ours
        if not os.path.isfile(source) or os.path.islink(source):
            continue  # not downloaded yet (or skipped): nothing to move
        target = os.path.join(new_real, *entry.path)
        if os.path.lexists(target):
            if os.path.isdir(target) or os.path.islink(target):
                raise MoveError(f"cannot move {source}: {target} exists and is not a file")
            if os.path.samefile(source, target):
                raise MoveError(f"cannot move {source}: {target} is the same file")
            if not filecmp.cmp(source, target, shallow=False):
                raise MoveError(f"cannot move {source}: {target} exists with other content")
        plan.append((source, target))
    return plan


def _move(source: str, target: str, made: list[str]) -> _Step:
    """One file into place; the step says how to undo it."""
    _make_folders(os.path.dirname(target), made)
    if os.path.lexists(target):
        return _Step(source, target, "same")  # checked equal in _plan
    try:
        os.replace(source, target)
        return _Step(source, target, "rename")
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    partial = target + PARTIAL
    try:
        shutil.copyfile(source, partial)
        with open(partial, "rb+") as copy:
            os.fsync(copy.fileno())
        shutil.copymode(source, partial)
        info = os.stat(source)
        os.utime(partial, ns=(info.st_atime_ns, info.st_mtime_ns))
        os.replace(partial, target)
    except OSError:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise
    return _Step(source, target, "copy")


def _make_folders(folder: str, made: list[str]) -> None:
    """Create ``folder`` and its missing parents, noting each one created (for undo)."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for each in reversed(missing):
        os.mkdir(each)
        made.append(each)


def _undo(done: list[_Step], made: list[str]) -> None:
    """Put back what moved (best effort: the first error is the one reported)."""
    for step in reversed(done):
        try:
            if step.how == "rename":
                os.replace(step.target, step.source)
            elif step.how == "copy":
                os.unlink(step.target)
        except OSError:
            pass
    for folder in reversed(made):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _remove_empty_folders(root: str, sources: list[str]) -> None:
    folders: set[str] = set()
    for path in sources:
        folder = os.path.dirname(path)
        while folder != root and folder.startswith(root + os.sep):
            folders.add(folder)
            folder = os.path.dirname(folder)
    for folder in sorted(folders, key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty (the user's own files) or already gone
