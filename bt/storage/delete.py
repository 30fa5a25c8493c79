"""Delete a torrent's files (the API's "remove with data"): only its own files.

Blocking: the session runs it in the disk threads after the torrent's storage
is closed. Folders the deletion leaves empty go too, up to (not including)
the download folder; a folder holding anything else stays. The torrent's part
file (bytes of pieces shared with skipped files, in the state folder) goes too.
"""

from __future__ import annotations

import os
from pathlib import Path

from bt.errors import StorageError
from bt.metainfo import Metainfo

__all__ = ["delete_files"]


def delete_files(root: Path, metainfo: Metainfo, parts: Path | None = None) -> int:
    """Remove every file of ``metainfo`` under ``root``, and ``parts``; returns how many
    of the torrent's files existed."""
    root_real = os.path.realpath(root)
    removed = 0
    folders: set[str] = set()
    for entry in metainfo.files:
        if entry.padding:
            continue
        path = os.path.join(root_real, *entry.path)
        parent = os.path.realpath(os.path.dirname(path))
        if os.path.commonpath([root_real, parent]) != root_real:
            continue  # a symlinked folder leading out of the download folder: not ours
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc.strerror}") from exc
        folder = os.path.dirname(path)
        while folder != root_real and folder.startswith(root_real + os.sep):
            folders.add(folder)
            folder = os.path.dirname(folder)
    for folder in sorted(folders, key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty (the user's own files) or already gone
    if parts is not None:
        try:
            parts.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {parts}: {exc.strerror}") from exc
    return removed
