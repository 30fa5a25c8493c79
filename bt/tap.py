"""twistd options and service construction: the only place that reads options.

``twistd bittorrent --torrent FILE`` lands here through the plugin in
``twisted/plugins/bittorrent.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from twisted.application import service
from twisted.python import usage

from bt.errors import MetainfoError
from bt.metainfo import Metainfo, load_metainfo


def default_state_dir() -> Path:
    """Where resume state lives unless ``--state-dir`` says otherwise (XDG convention)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "bt"


class Options(usage.Options):
    """Command line of ``twistd bittorrent``."""

    synopsis = "--torrent FILE [--torrent FILE ...] [options]"
    longdesc = (
        "Downloads the given torrents into --download-dir, verifies every piece, and "
        "keeps running to seed. Run 'twistd -n bittorrent ...' to stay in the foreground."
    )
    optParameters = [
        ["download-dir", "d", ".", "Folder the torrent's files are written into."],
        [
            "listen",
            "l",
            "tcp:6881",
            "Twisted server endpoint for incoming peers, e.g. tcp:6881:interface=0.0.0.0.",
        ],
        [
            "state-dir",
            "s",
            None,
            "Folder for resume state and the control token "
            "(default: $XDG_STATE_HOME/bt or ~/.local/state/bt).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["torrents"] = []
        self.metainfos: list[tuple[Path, Metainfo]] = []

    def opt_torrent(self, path: str) -> None:
        """A .torrent file to download and seed; repeat for several torrents."""
        self["torrents"].append(path)

    opt_t = opt_torrent

    def postOptions(self) -> None:
        if not self["torrents"]:
            raise usage.UsageError("--torrent FILE is required")
        download_dir = Path(self["download-dir"])
        if download_dir.exists() and not download_dir.is_dir():
            _fail(f"--download-dir {download_dir}: not a folder")
        self["download-dir"] = download_dir
        self["state-dir"] = Path(self["state-dir"]) if self["state-dir"] else default_state_dir()
        for path in self["torrents"]:
            try:
                self.metainfos.append((Path(path), load_metainfo(path)))
            except MetainfoError as exc:
                _fail(str(exc))


def _fail(message: str) -> None:
    """Stop twistd with one readable line, before it daemonises.

    A ``UsageError`` would make twistd print its whole usage text around the
    message; a bad torrent file deserves just the file and the problem.
    """
    print(f"twistd bittorrent: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def makeService(options: Options) -> service.IService:
    """Build the daemon's service tree from parsed options."""
    from bt.session import Session, SessionConfig

    config = SessionConfig(
        download_dir=options["download-dir"],
        state_dir=options["state-dir"],
        listen=options["listen"],
    )
    session = Session(config)
    for _path, metainfo in options.metainfos:
        session.add_torrent(metainfo)
    return session
