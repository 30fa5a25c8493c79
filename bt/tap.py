"""twistd options and service construction: the only place that reads options.

``twistd bittorrent --torrent FILE`` lands here through the plugin in
``twisted/plugins/bittorrent.py``.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

from twisted.application import service
from twisted.python import usage

from bt import startup
from bt.dht.config import DHTConfig, parse_node_address
from bt.endpoints import check_endpoint
from bt.errors import BtError, MagnetError, MetainfoError
from bt.logs import LEVELS
from bt.magnet import MagnetLink, is_magnet, parse_magnet
from bt.metainfo import Metainfo, load_metainfo
from bt.status import UNCHANGED
from bt.units import parse_duration, parse_rate

#: The control API's default address: loopback only, next to Transmission's 9091.
DEFAULT_CONTROL = "tcp:9092:interface=127.0.0.1"
#: Where the API listens when the default port is taken (a second daemon): any free port.
FALLBACK_CONTROL = "tcp:0:interface=127.0.0.1"


def default_state_dir() -> Path:
    """Where resume state lives unless ``--state-dir`` says otherwise (XDG convention)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "bt"


class Options(usage.Options):
    """Command line of ``twistd bittorrent``."""

    synopsis = "[--torrent FILE|MAGNET ...] [--watch-dir DIR] [options]"
    longdesc = (
        "Downloads torrents into --download-dir, verifies every piece, and keeps running "
        "to seed. Torrents come from --torrent, the --watch-dir folder, the control API "
        "(the 'bt' command), and the state folder, which remembers them across restarts. "
        "Run 'twistd -n bittorrent ...' to stay in the foreground."
    )
    optFlags = [
        ["recheck", None, "Hash all existing data at start, even with valid resume state."],
        [
            "exit-when-done",
            None,
            "Stop once every torrent is downloaded and its seeding goal met (without "
            "--seed-ratio/--seed-time: once downloaded). Exit status 0 only if every "
            "torrent completed verified. Use with -n.",
        ],
        ["no-dht", None, "Run no DHT node (BEP 5): peers come from trackers and PEX only."],
        [
            "dht-same-ip-nodes",
            None,
            "Let the DHT routing table hold several nodes of one IP address (a DHT on one host).",
        ],
    ]
    optParameters = [
        [
            "download-dir",
            "d",
            None,
            "Folder the torrent's files are written into (default: the one Transmission's "
            "session-set saved, else the current folder).",
        ],
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
        [
            "upload-limit",
            None,
            None,
            "Global upload limit in bytes/s, e.g. 500K or 2M (K, M, G: KiB, MiB, GiB); 0: "
            "none (default: the limit last set with 'bt limit', else none).",
        ],
        [
            "download-limit",
            None,
            None,
            "Global download limit in bytes/s, e.g. 500K or 2M; 0: none "
            "(default: the limit last set with 'bt limit', else none).",
        ],
        [
            "torrent-upload-limit",
            None,
            "0",
            "Upload limit of each torrent in bytes/s, e.g. 500K or 2M; 0: none.",
        ],
        [
            "torrent-download-limit",
            None,
            "0",
            "Download limit of each torrent in bytes/s, e.g. 500K or 2M; 0: none.",
        ],
        ["max-connections", None, "500", "Peer connections of the whole process at most."],
        ["max-peers", None, "50", "Peers of one torrent at most."],
        ["upload-slots", None, "4", "Peers unchoked per torrent (plus one optimistic); -1: all."],
        [
            "seed-ratio",
            None,
            None,
            "Stop seeding once uploaded/size reaches this, e.g. 2.0; 0: do not seed.",
        ],
        [
            "seed-time",
            None,
            None,
            "Stop seeding after this long, e.g. 90m, 12h or 2d; 0: do not seed.",
        ],
        ["watch-dir", "w", None, "Add every .torrent (and .magnet) file dropped into this folder."],
        [
            "control",
            "c",
            None,
            "Twisted endpoint of the control API and metrics (loopback unless an "
            f"interface= says otherwise); 'none' turns it off. Default: {DEFAULT_CONTROL}, "
            "or any free loopback port when that one is taken.",
        ],
        [
            "web-home",
            None,
            None,
            "Serve this folder's files at /transmission/web/ on the control endpoint "
            "(Transmission's web client: /usr/share/transmission/web).",
        ],
        ["log-level", None, "info", "Lowest level of bt's log events: " + ", ".join(LEVELS)],
        ["json-log", None, None, "Also log every event as one JSON line to FILE ('-': stdout)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["torrents"] = []
        self["dht-bootstrap"] = []
        self.metainfos: list[tuple[Path, Metainfo]] = []
        self.magnets: list[MagnetLink] = []

    def opt_torrent(self, path: str) -> None:
        """A .torrent file (or a 'magnet:?...' link) to download and seed; repeatable."""
        self["torrents"].append(path)

    opt_t = opt_torrent

    def opt_dht_bootstrap(self, address: str) -> None:
        """A DHT node HOST:PORT to join through, instead of the public routers; repeatable."""
        try:
            self["dht-bootstrap"].append(parse_node_address(address))
        except ValueError as exc:
            raise usage.UsageError(f"--dht-bootstrap: {exc}") from None

    def opt_version(self) -> None:
        """Show bt's version (and Twisted's and Python's), then exit."""
        import twisted
        from bt import __version__

        print(
            f"bt {__version__} (Twisted {twisted.__version__}, Python {platform.python_version()})"
        )
        sys.exit(0)

    def parseOptions(self, options: list[str] | None = None) -> None:
        """Every option error leaves through :func:`bt.startup.fail`: one line, on stderr.

        twistd would print its whole usage text to stdout and then the message;
        the usage text is for ``--help``.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as exc:
            # bt's own checks name the option and the value ("--max-peers: 'x' is ...");
            # getopt's ("option --bogus not recognized") get a pointer to --help too.
            message = str(exc)
            startup.fail(message, hint=not message.startswith("--"))

    def postOptions(self) -> None:
        self["download-dir-given"] = self["download-dir"] is not None
        download_dir = Path(self["download-dir"] or ".")
        if download_dir.exists() and not download_dir.is_dir():
            _fail(f"--download-dir {download_dir}: not a folder")
        self["download-dir"] = download_dir
        self["state-dir"] = Path(self["state-dir"]) if self["state-dir"] else default_state_dir()
        for name in ("upload-limit", "download-limit"):
            if self[name] is None:
                self[name] = UNCHANGED  # not given: the limit saved at run time, else none
            else:
                self._convert(name, parse_rate)
        self._convert("torrent-upload-limit", parse_rate)
        self._convert("torrent-download-limit", parse_rate)
        self._convert("max-connections", _positive_int)
        self._convert("max-peers", _positive_int)
        self._convert("upload-slots", _slots)
        if self["seed-ratio"] is not None:
            self._convert("seed-ratio", _ratio)
        if self["seed-time"] is not None:
            self._convert("seed-time", parse_duration)
        if self["log-level"] not in LEVELS:
            raise usage.UsageError(
                f"--log-level: {self['log-level']!r} is not a level; choose one of "
                + ", ".join(LEVELS)
            )
        if self["watch-dir"] is not None:
            self["watch-dir"] = Path(self["watch-dir"])
            if self["watch-dir"].exists() and not self["watch-dir"].is_dir():
                _fail(f"--watch-dir {self['watch-dir']}: not a folder")
        if self["web-home"] is not None:
            self["web-home"] = Path(self["web-home"])
            if not self["web-home"].is_dir():
                _fail(f"--web-home {self['web-home']}: not a folder")
        problem = check_endpoint("listen", self["listen"])
        if problem is not None:
            raise usage.UsageError(problem)
        #: Only the default control endpoint may move to another port when taken.
        self["control-fallback"] = FALLBACK_CONTROL if self["control"] is None else None
        if self["control"] is None:
            self["control"] = DEFAULT_CONTROL
        elif self["control"].strip().lower() in ("", "none", "off"):
            self["control"] = None
        else:
            from bt.control.service import loopback_by_default

            problem = check_endpoint("control", loopback_by_default(self["control"]))
            if problem is not None:
                raise usage.UsageError(problem)
        for path in self["torrents"]:
            try:
                if is_magnet(path):
                    self.magnets.append(parse_magnet(path))
                else:
                    self.metainfos.append((Path(path), load_metainfo(path)))
            except (MetainfoError, MagnetError) as exc:
                _fail(str(exc))

    def _convert(self, name: str, converter: Callable[[str], object]) -> None:
        try:
            self[name] = converter(str(self[name]))
        except ValueError as exc:
            raise usage.UsageError(f"--{name}: {exc}") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _slots(text: str) -> int:
    if text.strip() == "-1":
        return -1
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number of slots (or -1 for all)")
    return int(text)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a ratio such as 1.5") from None
    if not value >= 0:  # also refuses nan
        raise ValueError(f"{text!r} is not a ratio of 0 or more")
    return value


def _fail(message: str) -> None:
    """A problem with what an option names (a torrent file, a folder): one line, no hint."""
    startup.fail(message)


def makeService(options: Options) -> service.IService:
    """Build the daemon's service tree from parsed options."""
    from bt.errors import DuplicateTorrentError
    from bt.logs import JSONLogService, set_log_level
    from bt.session import Session, SessionConfig
    from bt.torrentconfig import TorrentConfig
    from bt.watchdir import WatchDirectory

    set_log_level(options["log-level"])
    twistd = startup.TwistdSettings(getattr(options, "parent", None))

    config = SessionConfig(
        download_dir=options["download-dir"],
        state_dir=options["state-dir"],
        listen=options["listen"],
        upload_limit=options["upload-limit"],
        download_limit=options["download-limit"],
        max_connections=options["max-connections"],
        recheck=bool(options["recheck"]),
        data_umask=twistd.data_umask,
        dht=dht_config(options),
        given=frozenset(
            name
            for name, option in (
                ("download_dir", "download-dir-given"),
                ("seed_ratio", "seed-ratio"),
            )
            if options[option] not in (None, False)
        ),
        torrent=TorrentConfig(
            max_peers=options["max-peers"],
            upload_slots=options["upload-slots"],
            upload_limit=options["torrent-upload-limit"],
            download_limit=options["torrent-download-limit"],
            seed_ratio=options["seed-ratio"],
            seed_time=options["seed-time"],
        ),
    )
    session = Session(config)
    if not twistd.switches_user:  # else as the service's user, at start (files it owns)
        _early(session.lock_state_dir)
    if options["json-log"]:
        json_log = JSONLogService(options["json-log"])
        if not twistd.switches_user:  # else the service's user opens it, after the fork
            _early(json_log.check_writable)
        json_log.setServiceParent(session)
    startup.QuietRepeatedSignals().setServiceParent(session)
    session.restore()
    for _path, metainfo in options.metainfos:
        try:
            session.add_torrent(metainfo)
        except DuplicateTorrentError:
            pass  # remembered from an earlier run, or given twice
    for magnet in options.magnets:
        try:
            session.add_magnet(magnet)
        except DuplicateTorrentError:
            pass  # fetched (or fetching) since an earlier run, or given twice
        except MagnetError as exc:
            startup.fail(str(exc))
    if options["watch-dir"] is not None:
        WatchDirectory(
            options["watch-dir"],
            session.add_torrent,
            add_magnet=session.add_magnet,
            run_blocking=session.run_blocking,
        ).setServiceParent(session)
    # Bound here, before twistd forks: a taken port is reported whole (see bt.startup).
    _early(session.listen)
    if options["control"] is not None:
        from bt.control.service import ControlService

        control = ControlService(
            session,
            options["control"],
            options["state-dir"],
            fallback=options["control-fallback"],
            web_home=options["web-home"],
        )
        control.setServiceParent(session)
        _early(control.listen)
        if not twistd.switches_user:
            _early(control.load_token)
    if options["exit-when-done"]:
        from bt.exitwhendone import ExitWhenDone, exit_with_status

        ExitWhenDone(
            session.torrents,
            session.reactor,
            exit_with_status,
            wait_for_first=options["watch-dir"] is not None or bool(options.magnets),
        ).setServiceParent(session)
    return session


def dht_config(options: Options) -> DHTConfig | None:
    """The DHT node's settings from the options; None with ``--no-dht``."""
    if options["no-dht"]:
        return None
    bootstrap = tuple(options["dht-bootstrap"])
    return DHTConfig(
        **({"bootstrap": bootstrap} if bootstrap else {}),
        one_node_per_ip=not options["dht-same-ip-nodes"],
    )


def _early(step: Callable[[], None]) -> None:
    """Run a start-up step now; a BtError (it names the option) stops twistd with one line."""
    try:
        step()
    except BtError as exc:
        startup.fail(str(exc))
