"""What the v1 and v2 .torrent parsers share: file entries, field readers, path checks.

Layer 0 (pure). Every reader raises :class:`MetainfoError` naming the field, so
each bad input is one clear line whichever parser met it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bt.errors import MetainfoError

__all__ = [
    "MAX_COMPONENT_BYTES",
    "MAX_PATH_BYTES",
    "FileEntry",
    "check_component",
    "check_length",
    "check_writable",
    "decode_text",
    "require",
    "shown",
    "text",
]

_FORBIDDEN_IN_COMPONENT = ("/", "\\", "\x00")
#: NAME_MAX of every POSIX file system bt writes to: a longer component cannot be created.
MAX_COMPONENT_BYTES = 255
#: PATH_MAX (4,096) counts the terminating NUL; the download folder's own path adds to it.
MAX_PATH_BYTES = 4095


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the torrent, placed in the torrent's concatenated byte stream."""

    path: tuple[str, ...]
    """Components relative to the download folder (multi-file: torrent name first)."""
    length: int
    offset: int
    """Where this file starts in the torrent's byte stream."""
    padding: bool = False
    """A BEP 47 padding file (or a v2-only torrent's virtual one): zeros, never on disk."""
    pieces_root: bytes | None = None
    """The file's BEP 52 merkle root (32 bytes) for a non-empty file of a v2 or hybrid torrent."""


def check_writable(files: tuple[FileEntry, ...]) -> None:
    """Refuse paths no POSIX file system can hold, naming the file entry, before any write.

    A component over NAME_MAX bytes, a path over PATH_MAX, two files at one path, or
    a file where another file needs a folder would each fail only at the first write
    (ENAMETOOLONG, EISDIR, ENOTDIR), after the download started. Lengths are of the
    UTF-8 bytes, which is what the file system sees. Padding files (BEP 47) are never
    written, so they may repeat a path, as libtorrent's ``.pad/<size>`` names do.
    """
    owners: dict[tuple[str, ...], int] = {}  # a file's path -> its index
    folders: dict[tuple[str, ...], int] = {}  # a folder some file needs -> that file
    for index, entry in enumerate(files):
        if entry.padding:
            continue
        where = f"file {index} {shown(entry.path)!r}"
        for component in entry.path:
            check_length(component, where)
        size = len("/".join(entry.path).encode("utf-8"))
        if size > MAX_PATH_BYTES:
            raise MetainfoError(f"{where}: path of {size} bytes exceeds {MAX_PATH_BYTES}")
        if entry.path in owners:
            raise MetainfoError(f"{where}: same path as file {owners[entry.path]}")
        if entry.path in folders:
            raise MetainfoError(f"{where}: file {folders[entry.path]} needs it to be a folder")
        for depth in range(1, len(entry.path)):
            folder = entry.path[:depth]
            if folder in owners:
                other = owners[folder]
                raise MetainfoError(f"{where}: inside file {other} {shown(folder)!r}")
            folders.setdefault(folder, index)
        owners[entry.path] = index


def check_length(component: str, where: str) -> None:
    size = len(component.encode("utf-8"))
    if size > MAX_COMPONENT_BYTES:
        raise MetainfoError(f"{where}: a name of {size} bytes exceeds {MAX_COMPONENT_BYTES}")


def shown(path: tuple[str, ...], limit: int = 120) -> str:
    """A path for one line of error: its start and end when it is long."""
    joined = "/".join(path)
    return joined if len(joined) <= limit else f"{joined[: limit - 40]}...{joined[-37:]}"


def check_component(value: str, where: str) -> None:
    """Refuse any path component that could escape or confuse the download folder."""
    if value in ("", ".", ".."):
        raise MetainfoError(f"{where} is {value!r}, which is not a safe file name")
    for bad in _FORBIDDEN_IN_COMPONENT:
        if bad in value:
            raise MetainfoError(f"{where} {value!r} contains {bad!r}")
    if len(value) >= 2 and value[1] == ":" and value[0].isalpha():
        raise MetainfoError(f"{where} {value!r} is an absolute (drive) path")


def require(mapping: dict[bytes, Any], key: bytes, kind: type, where: str) -> Any:
    """``mapping[key]`` if it is there and of ``kind``; else the error naming ``where.key``."""
    label = f"{where}.{key.decode(errors='replace')}" if where else key.decode(errors="replace")
    if key not in mapping:
        raise MetainfoError(f"missing key {label!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        expected = {int: "an integer", bytes: "a string", list: "a list", dict: "a dictionary"}
        raise MetainfoError(f"{label} is not {expected[kind]}")
    return value


def text(mapping: dict[bytes, Any], key: bytes, where: str) -> str:
    """A UTF-8 string field, preferring its ``.utf-8`` variant when present."""
    utf8_key = key + b".utf-8"
    if isinstance(mapping.get(utf8_key), bytes):
        key = utf8_key
    raw = require(mapping, key, bytes, where)
    return decode_text(raw, f"{where}.{key.decode()}")


def decode_text(raw: bytes, label: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetainfoError(
            f"{label} is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
