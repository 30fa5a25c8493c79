"""The ``bt`` command: make and inspect .torrent files, and drive a running daemon.

``bt create`` and ``bt info`` work on local files. Every other command asks
the daemon started with ``twistd bittorrent`` through its control API, found
through ``control.json`` and ``control.token`` in the daemon's state folder.

Exit status: 0 done, 1 the daemon or a file refused (``bt: <why>`` on
stderr), 2 a usage error or no daemon to ask.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bt import __version__
from bt.cli import commands, local
from bt.cli.client import CliError, ControlClient, locate_daemon
from bt.createv2 import FORMATS

__all__ = ["CliError", "build_parser", "main"]

PRIORITY_HELP = {
    "skip": "do not download these files",
    "normal": "download them (the default)",
    "high": "download them before the others",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``bt`` command; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in commands.COMMANDS:
            address = locate_daemon(args.state_dir, args.url, args.token, os.environ)
            return commands.COMMANDS[args.command](args, ControlClient(address))
        return args.run(args)
    except CliError as exc:
        print(f"bt: {exc.message}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # ``bt status | head``
        sys.stderr.close()
        return 0


def _daemon_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Where the daemon is; accepted before or after the command name."""
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("finding the daemon")
    group.add_argument(
        "--state-dir",
        metavar="DIR",
        default=default,
        help="the daemon's --state-dir (default: $BT_STATE_DIR, else $XDG_STATE_HOME/bt "
        "or ~/.local/state/bt)",
    )
    group.add_argument(
        "--url", default=default, help="the control API's URL (default: from control.json)"
    )
    group.add_argument(
        "--token",
        default=default,
        help="the bearer token (default: $BT_TOKEN, else the state folder's control.token)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bt",
        description="Make .torrent files and control a running bt daemon.",
        epilog="Run 'bt COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"bt {__version__}")
    _daemon_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, *, daemon: bool = True) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=help_text, description=help_text)
        if daemon:
            _daemon_options(child, top=False)
        return child

    create = command("create", "make a .torrent from a file or folder", daemon=False)
    create.add_argument("path", metavar="PATH", help="the file or folder to share")
    create.add_argument(
        "-t",
        "--tracker",
        metavar="URL",
        action="append",
        required=True,
        help="announce URL; each --tracker is another tier, commas put several in one tier",
    )
    create.add_argument("-p", "--private", action="store_true", help="private torrent (BEP 27)")
    create.add_argument(
        "-s",
        "--piece-size",
        metavar="SIZE",
        help="piece length, a power of two from 16K to 16M "
        "(default: the smallest giving at most 2000 pieces)",
    )
    create.add_argument(
        "--format",
        choices=FORMATS,
        default=FORMATS[0],
        help="v1 (the default, every client reads it), v2 (BEP 52 only) or hybrid "
        "(both in one torrent; v1 peers and v2 peers share one swarm); v2 and hybrid need "
        "a power-of-two piece size of at least 16K",
    )
    create.add_argument("-o", "--output", metavar="FILE", help="default: NAME.torrent here")
    create.add_argument("-c", "--comment", metavar="TEXT")
    create.add_argument(
        "-w", "--web-seed", metavar="URL", action="append", default=[], help="BEP 19 web seed"
    )
    create.add_argument("-f", "--force", action="store_true", help="overwrite FILE if it exists")
    create.set_defaults(run=local.run_create)

    info = command("info", "show what a .torrent file holds (no daemon needed)", daemon=False)
    info.add_argument("file", metavar="FILE.torrent")
    info.set_defaults(run=local.run_info)

    status = command("status", "list torrents with progress, rates and peers")
    status.add_argument("torrents", metavar="TORRENT", nargs="*", help="only these")
    status.add_argument("--json", action="store_true", help="the API's JSON document")

    add = command("add", "add .torrent files or magnet links to the daemon")
    add.add_argument("files", metavar="FILE.torrent|MAGNET", nargs="+")
    add.add_argument("--paused", action="store_true", help="add without starting")
    add.add_argument("--download-dir", metavar="DIR", help="default: the daemon's")

    remove = command("remove", "remove torrents (keeping their data unless --delete-data)")
    remove.add_argument("torrents", metavar="TORRENT", nargs="+")
    remove.add_argument("--delete-data", action="store_true", help="delete the files too")

    for name, what in (
        ("pause", "stop transferring"),
        ("resume", "start transferring again"),
        ("recheck", "hash the data on disk again"),
    ):
        command(name, what).add_argument("torrents", metavar="TORRENT", nargs="+")

    move = command("move", "move a torrent's data to another folder on the daemon's machine")
    move.add_argument("torrent", metavar="TORRENT")
    move.add_argument("folder", metavar="DIR", help="relative to this folder when not absolute")
    move.add_argument(
        "--no-move",
        dest="move",
        action="store_false",
        help="move nothing: the data is in DIR already (it is checked again)",
    )

    files = command("files", "list a torrent's files with their priorities")
    files.add_argument("torrent", metavar="TORRENT")
    files.add_argument("--json", action="store_true", help="the API's JSON document")

    priority = command("priority", "set files' download priority")
    priority.add_argument(
        "torrent",
        metavar="TORRENT",
        help="its name, or its info-hash (at least 4 hex digits of it)",
    )
    priority.add_argument(
        "indexes",
        metavar="FILE_INDEX",
        nargs="+",
        type=_file_index,
        help="a file's number in the # column of 'bt files TORRENT'; give several to set them all",
    )
    level = priority.add_mutually_exclusive_group(required=True)
    for name, what in PRIORITY_HELP.items():
        level.add_argument(
            f"--{name}", dest="priority", action="store_const", const=name, help=what
        )

    limit = command("limit", "show or set rate limits, global or of one torrent")
    limit.add_argument("torrent", metavar="TORRENT", nargs="?", help="default: global limits")
    for flag, direction in (("--up", "upload"), ("--down", "download")):
        limit.add_argument(
            flag,
            metavar="RATE",
            type=commands.parse_limit,
            default=commands.NOT_GIVEN,
            help=f"{direction} limit such as 500K or 2M; 0 or none: unlimited",
        )

    events = command("events", "follow what happens to torrents, one line per event")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument(
        "--progress", action="store_true", help="also the progress summaries (every second)"
    )
    events.add_argument(
        "--last-event-id",
        metavar="ID",
        type=_event_id,
        help="first the events after this id (from the daemon's short backlog)",
    )
    return parser


def _event_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an event id (a decimal integer)")
    return int(text)


def _file_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a file index (see 'bt files')")
    return value
