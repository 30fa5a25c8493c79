"""The session's memory of its torrents: which ones, with what settings.

Each torrent is two files in ``STATE_DIR/torrents/``: ``HASH.torrent`` (the
metainfo; ``HASH.magnet``, the link, while a magnet fetches it) and
``HASH.json`` (paused, folder, file priorities, limits), each written
atomically, so 1,000 torrents cost one small write per change, not a rewrite
of one big file. Progress lives beside them in the resume state.

Every function here blocks: the session runs them in its disk threads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bt.errors import BtError
from bt.magnet import MagnetLink, parse_magnet
from bt.metainfo import Metainfo, parse_metainfo
from bt.status import FilePriority
from bt.storage.resume import save_resume
from bt.torrentprefs import RatioMode, TorrentPrefs, check_labels, check_mode, check_ratio

__all__ = ["RegistryEntry", "TorrentRecord", "TorrentRegistry"]

FORMAT_VERSION = 1


@dataclass
class TorrentRecord:
    """What a user chose for one torrent; everything else comes from the metainfo."""

    paused: bool = False
    download_dir: str | None = None
    file_priorities: list[FilePriority] | None = None
    upload_limit: float | None = None
    download_limit: float | None = None
    added: float = 0.0
    #: Labels and the seed-ratio goal (bt.torrentprefs); absent from older records.
    labels: list[str] = field(default_factory=list)
    seed_ratio_mode: int = RatioMode.SESSION
    seed_ratio: float | None = None

    @property
    def prefs(self) -> TorrentPrefs:
        return TorrentPrefs(tuple(self.labels), self.seed_ratio_mode, self.seed_ratio)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = FORMAT_VERSION
        if self.file_priorities is not None:
            data["file_priorities"] = [str(p) for p in self.file_priorities]
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> TorrentRecord:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise BtError(f"{where}: not a torrent record of version {FORMAT_VERSION}")
        try:
            priorities = data.get("file_priorities")
            return cls(
                paused=bool(data.get("paused", False)),
                download_dir=_optional(data, "download_dir", str),
                file_priorities=None
                if priorities is None
                else [FilePriority(p) for p in priorities],
                upload_limit=_optional(data, "upload_limit", (int, float)),
                download_limit=_optional(data, "download_limit", (int, float)),
                added=float(data.get("added", 0.0)),
                labels=list(check_labels(data.get("labels", []))),
                seed_ratio_mode=check_mode(data.get("seed_ratio_mode", 0), "seed_ratio_mode"),
                seed_ratio=None
                if data.get("seed_ratio") is None
                else check_ratio(data["seed_ratio"], "seed_ratio"),
            )
        except (TypeError, ValueError) as exc:
            raise BtError(f"{where}: {exc}") from None


def _optional(data: dict[str, Any], key: str, kind: Any) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{key} has the wrong type ({type(value).__name__})")
    return value


@dataclass
class RegistryEntry:
    """One remembered torrent as read back; ``error`` set when it cannot be used."""

    info_hash_hex: str
    metainfo: Metainfo | None = None
    #: A magnet whose metadata had not arrived yet (then ``metainfo`` is None).
    magnet: MagnetLink | None = None
    record: TorrentRecord = field(default_factory=TorrentRecord)
    error: str | None = None


class TorrentRegistry:
    """Reads and writes ``STATE_DIR/torrents/``."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = Path(state_dir) / "torrents"

    def _paths(self, info_hash: bytes) -> tuple[Path, Path]:
        name = info_hash.hex()
        return self.folder / f"{name}.torrent", self.folder / f"{name}.json"

    def save(self, info_hash: bytes, record: TorrentRecord, torrent: bytes | None = None) -> None:
        """Remember ``record`` (and the .torrent bytes the first time)."""
        torrent_path, record_path = self._paths(info_hash)
        if torrent is not None:
            save_resume(torrent_path, torrent, "torrent copy")
        data = json.dumps(record.to_json(), indent=1).encode()
        save_resume(record_path, data, "torrent settings")

    def _magnet_path(self, info_hash: bytes) -> Path:
        return self.folder / f"{info_hash.hex()}.magnet"

    def save_magnet(self, info_hash: bytes, record: TorrentRecord, uri: str) -> None:
        """Remember a magnet still fetching its metadata (a restart fetches on)."""
        save_resume(self._magnet_path(info_hash), uri.encode() + b"\n", "magnet link")
        self.save(info_hash, record)

    def forget_magnet(self, info_hash: bytes) -> None:
        """The metadata is saved as HASH.torrent: the link is not needed any more."""
        self._magnet_path(info_hash).unlink(missing_ok=True)

    def forget(self, info_hash: bytes) -> None:
        for path in (*self._paths(info_hash), self._magnet_path(info_hash)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def load(self) -> Iterator[RegistryEntry]:
        """Every remembered torrent, oldest first; broken entries carry an ``error``."""
        try:
            names = sorted(p for p in os.listdir(self.folder) if p.endswith(".json"))
        except FileNotFoundError:
            return
        entries = []
        for name in names:
            hex_hash = name[: -len(".json")]
            entry = RegistryEntry(hex_hash)
            torrent_path = self.folder / f"{hex_hash}.torrent"
            record_path = self.folder / name
            try:
                entry.record = TorrentRecord.from_json(
                    json.loads(record_path.read_bytes()), str(record_path)
                )
                magnet_path = self.folder / f"{hex_hash}.magnet"
                if not torrent_path.exists() and magnet_path.exists():
                    entry.magnet = parse_magnet(magnet_path.read_text().strip())
                    if entry.magnet.key.hex() != hex_hash:
                        raise BtError(f"{magnet_path}: holds another torrent")
                else:
                    entry.metainfo = parse_metainfo(torrent_path.read_bytes())
                    if entry.metainfo.info_hash.hex() != hex_hash:
                        raise BtError(f"{torrent_path}: holds another torrent")
            except (OSError, ValueError, BtError) as exc:
                entry.metainfo = entry.magnet = None
                reason = getattr(exc, "strerror", None) or exc
                entry.error = f"{record_path.parent / hex_hash}: {reason}"
            entries.append(entry)
        entries.sort(key=lambda e: e.record.added)
        yield from entries
