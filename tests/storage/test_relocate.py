"""Moving a torrent's files to another folder: all or nothing, never clobbering."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bt.errors import MoveError
from bt.metainfo_fields import FileEntry
from bt.storage import relocate
from bt.storage.relocate import relocate_files

FILES = (
    FileEntry(("album", "a.bin"), 5, 0),
    FileEntry(("album", ".pad", "0"), 3, 5, padding=True),
    FileEntry(("album", "cd2", "deep", "b.bin"), 7, 8),
    FileEntry(("album", "c.bin"), 4, 15),
)
CONTENT = {"a.bin": b"aaaaa", "b.bin": b"bbbbbbb", "c.bin": b"cccc"}


def _write(root: Path) -> None:
    for entry in FILES:
        if entry.padding:
            continue
        path = root.joinpath(*entry.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(CONTENT[entry.path[-1]])
        os.utime(path, ns=(1_000_000_123, 1_500_000_456))


def _contents(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _expected() -> dict[str, bytes]:
    return {
        "album/a.bin": b"aaaaa",
        "album/c.bin": b"cccc",
        "album/cd2/deep/b.bin": b"bbbbbbb",
    }


def test_nested_files_move_on_one_file_system(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new" / "place"
    _write(old)
    (old / "mine.txt").write_bytes(b"the user's")
    result = relocate_files(old, new, FILES)
    assert result.renamed == 3 and result.copied == 0
    assert _contents(new) == _expected()
    assert not (new / "album" / ".pad").exists()  # padding never touches the disk
    # The torrent's folders are gone; the download folder and the user's file stay.
    assert _contents(old) == {"mine.txt": b"the user's"}
    assert not (old / "album").exists()
    assert (new / "album" / "a.bin").stat().st_mtime_ns == 1_500_000_456


def test_a_folder_holding_other_files_stays(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old)
    (old / "album" / "cd2" / "notes.txt").write_bytes(b"keep")
    relocate_files(old, new, FILES)
    assert _contents(old) == {"album/cd2/notes.txt": b"keep"}
    assert not (old / "album" / "cd2" / "deep").exists()


def _no_rename_across(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """os.replace fails with EXDEV for a file (as across file systems), not for the
    copy's own rename into place."""
    real = os.replace
    refused: list[str] = []

    def replace(source: Any, target: Any) -> None:
        if not str(source).endswith(relocate.PARTIAL):
            refused.append(str(source))
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))
        real(source, target)

    monkeypatch.setattr(relocate.os, "replace", replace)
    return refused


def test_across_file_systems_files_are_copied_then_sources_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old)
    (old / "album" / "a.bin").chmod(0o640)
    refused = _no_rename_across(monkeypatch)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(relocate.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    result = relocate_files(old, new, FILES)
    assert len(refused) == 3 and result.copied == 3 and result.renamed == 0
    assert len(synced) == 3
    assert _contents(new) == _expected()
    assert not old.joinpath("album").exists()
    copy = new / "album" / "a.bin"
    # Same mtime (the resume state still applies) and mode.
    assert copy.stat().st_mtime_ns == 1_500_000_456
    assert copy.stat().st_mode & 0o777 == 0o640
    assert not list(new.rglob("*" + relocate.PARTIAL))


def test_a_failed_copy_puts_everything_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third file fails to copy: the two copied are deleted, the sources all kept."""
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old)
    _no_rename_across(monkeypatch)
    real_copy = shutil.copyfile

    def copyfile(source: str, target: str) -> Any:
        if source.endswith("c.bin"):
            raise OSError(errno.ENOSPC, "No space left on device", target)
        return real_copy(source, target)

    monkeypatch.setattr(relocate.shutil, "copyfile", copyfile)
    with pytest.raises(MoveError, match=r"c\.bin.*No space left on device"):
        relocate_files(old, new, FILES)
    assert _contents(old) == _expected()
    assert not new.exists()  # the folders made for the move are gone too


def test_a_failed_rename_midway_moves_the_others_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old)
    real = os.replace

    def replace(source: Any, target: Any) -> None:
        if str(source).endswith("c.bin"):
            raise PermissionError(errno.EACCES, "Permission denied", str(source))
        real(source, target)

    monkeypatch.setattr(relocate.os, "replace", replace)
    with pytest.raises(MoveError, match=r"old/album/c\.bin to .*new/album/c\.bin.*Permission"):
        relocate_files(old, new, FILES)
    assert _contents(old) == _expected()
    assert not new.exists()


def test_an_existing_different_target_is_never_overwritten(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old)
    target = new / "album" / "c.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"xxxx")
    with pytest.raises(MoveError, match=r"c\.bin exists with other content"):
        relocate_files(old, new, FILES)
    assert target.read_bytes() == b"xxxx"
    assert _contents(old) == _expected()  # checked before anything moved
    assert _contents(new) == {"album/c.bin": b"xxxx"}


def test_an_identical_target_is_taken_as_moved(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old)
    (new / "album").mkdir(parents=True)
    (new / "album" / "c.bin").write_bytes(b"cccc")
    result = relocate_files(old, new, FILES)
    assert result.already_there == 1 and result.renamed == 2
    assert _contents(new) == _expected()
    assert not old.joinpath("album").exists()


def test_missing_files_are_skipped(tmp_path: Path) -> None:
    """A file not downloaded yet (or skipped) has nothing to move."""
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old)
    (old / "album" / "a.bin").unlink()
    result = relocate_files(old, new, FILES)
    assert result.renamed == 2
    assert set(_contents(new)) == {"album/c.bin", "album/cd2/deep/b.bin"}


def test_a_relative_target_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "old")
    with pytest.raises(MoveError, match="absolute"):
        relocate_files(tmp_path / "old", Path("somewhere/else"), FILES)
    assert _contents(tmp_path / "old") == _expected()


def test_a_target_that_is_a_file_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "old")
    (tmp_path / "new").write_bytes(b"")
    with pytest.raises(MoveError, match="not a folder"):
        relocate_files(tmp_path / "old", tmp_path / "new", FILES)


def test_the_same_folder_moves_nothing(tmp_path: Path) -> None:
    _write(tmp_path / "old")
    result = relocate_files(tmp_path / "old", tmp_path / "old" / ".", FILES)
    assert result.renamed == result.copied == 0
    assert _contents(tmp_path / "old") == _expected()
