"""Session: the daemon's root service, holding every torrent of the process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twisted.application.service import MultiService
from twisted.logger import Logger

from bt.metainfo import Metainfo


@dataclass(frozen=True)
class SessionConfig:
    """Settings shared by all torrents of one process."""

    download_dir: Path
    state_dir: Path
    listen: str = "tcp:6881"


class Session(MultiService):
    """Root service: owns the torrents; started and stopped by twistd."""

    log = Logger()

    def __init__(self, config: SessionConfig) -> None:
        super().__init__()
        self.config = config
        self.metainfos: dict[bytes, Metainfo] = {}

    def add_torrent(self, metainfo: Metainfo) -> None:
        self.metainfos[metainfo.info_hash] = metainfo

    def startService(self) -> None:
        super().startService()
        for metainfo in self.metainfos.values():
            self.log.info(
                "torrent {name} ({info_hash}): {pieces} pieces, {size} bytes",
                name=metainfo.name,
                info_hash=metainfo.info_hash.hex(),
                pieces=metainfo.num_pieces,
                size=metainfo.total_length,
            )
