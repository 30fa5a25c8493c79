"""Commands that ask the running daemon: status, add, remove, and the rest.

Each takes the parsed arguments and a :class:`ControlClient`. Commands acting
on several torrents resolve them all first (one listing), then carry on past a
failure on one of them and exit 1 at the end, like ``rm``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bt.cli.client import CliError, ControlClient, resolve_torrents
from bt.cli.render import (
    RICH_ROWS,
    dht_line,
    event_line,
    files_table,
    rate,
    status_lines,
    status_table,
    stdout_console,
)
from bt.errors import MagnetError, MetainfoError
from bt.magnet import is_magnet, parse_magnet
from bt.metainfo import load_metainfo
from bt.units import parse_rate

__all__ = ["COMMANDS"]

T = TypeVar("T")

#: Default of --up/--down: not given (None already means "unlimited").
NOT_GIVEN: Any = object()


def _each(items: Iterable[T], act: Callable[[T], None]) -> int:
    """Run ``act`` on every item, reporting failures as they come; 1 if any failed."""
    status = 0
    for item in items:
        try:
            act(item)
        except CliError as exc:
            print(f"bt: {exc.message}", file=sys.stderr)
            status = max(status, exc.status)
    return status


def _resolve(client: ControlClient, refs: list[str]) -> list[Mapping[str, Any]]:
    listing = client.torrents().get("torrents", [])
    return resolve_torrents(listing, refs)


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def status(args: argparse.Namespace, client: ControlClient) -> int:
    document = client.torrents()
    if args.torrents:
        document = {"torrents": resolve_torrents(document.get("torrents", []), args.torrents)}
    if args.json:
        _print_json(document)
        return 0
    torrents = document.get("torrents", [])
    if not torrents:
        print("no torrents")
    elif len(torrents) > RICH_ROWS:
        print("\n".join(status_lines(torrents, stdout_console().width)))
    else:
        console = stdout_console()
        console.print(status_table(torrents, console.width))
    dht = dht_line(client.session())
    if dht is not None:
        print(dht)
    return 0


def add(args: argparse.Namespace, client: ControlClient) -> int:
    download_dir = os.path.abspath(args.download_dir) if args.download_dir else None

    def add_one(path: str) -> None:
        if is_magnet(path):
            try:
                parse_magnet(path)  # refuse a bad link here, saying what is wrong
            except MagnetError as exc:
                raise CliError(str(exc)) from None
            added = client.add_magnet(path, paused=args.paused, download_dir=download_dir) or {}
            paused = " (paused)" if args.paused else ""
            print(f"added {added.get('name')} {added.get('info_hash')}{paused}: fetching metadata")
            return
        try:
            load_metainfo(path)  # refuse a bad file here, naming it
            data = Path(path).read_bytes()
        except MetainfoError as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:
            raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None
        added = client.add(data, paused=args.paused, download_dir=download_dir) or {}
        paused = " (paused)" if args.paused else ""
        print(f"added {added.get('name')} {added.get('info_hash')}{paused}")

    return _each(args.files, add_one)


def remove(args: argparse.Namespace, client: ControlClient) -> int:
    def remove_one(torrent: Mapping[str, Any]) -> None:
        client.remove(torrent["info_hash"], args.delete_data)
        data = " and its data" if args.delete_data else ""
        print(f"removed {torrent['name']}{data}")

    return _each(_resolve(client, args.torrents), remove_one)


def _action(verb: str, past: str) -> Callable[[argparse.Namespace, ControlClient], int]:
    def run(args: argparse.Namespace, client: ControlClient) -> int:
        def act(torrent: Mapping[str, Any]) -> None:
            client.action(torrent["info_hash"], verb)
            print(f"{past} {torrent['name']}")

        return _each(_resolve(client, args.torrents), act)

    run.__name__ = verb
    return run


def files(args: argparse.Namespace, client: ControlClient) -> int:
    (torrent,) = _resolve(client, [args.torrent])
    detail = client.torrent(torrent["info_hash"])
    if args.json:
        _print_json(detail)
    else:
        stdout_console().print(files_table(detail))
    return 0


def priority(args: argparse.Namespace, client: ControlClient) -> int:
    (torrent,) = _resolve(client, [args.torrent])
    detail = client.torrent(torrent["info_hash"])
    known = {entry.get("index") for entry in detail.get("files") or []}
    unknown = [index for index in args.indexes if index not in known]
    if unknown:
        plural = "es" if len(unknown) > 1 else ""
        count = len(known)
        command = f"bt files {shlex.quote(args.torrent)}"
        quote = '"' if "'" in command else "'"
        raise CliError(
            f"file index{plural} {', '.join(map(str, unknown))} out of range: "
            f"{torrent['name']} has {count} file{'s' if count != 1 else ''} "
            f"(see {quote}{command}{quote})"
        )
    changes = {str(index): args.priority for index in args.indexes}
    client.patch_torrent(torrent["info_hash"], {"file_priorities": changes})
    indexes = ", ".join(str(i) for i in args.indexes)
    plural = "s" if len(args.indexes) > 1 else ""
    print(f"{torrent['name']}: file{plural} {indexes} set to {args.priority}")
    return 0


def move(args: argparse.Namespace, client: ControlClient) -> int:
    (torrent,) = _resolve(client, [args.torrent])
    folder = os.path.abspath(args.folder)
    client.move(torrent["info_hash"], folder, move=args.move)
    how = "moved to" if args.move else "now looks for its data in"
    print(f"{torrent['name']}: {how} {folder}")
    return 0


def parse_limit(text: str) -> float | None:
    """A rate for ``--up``/``--down``: ``500K``, ``2M``; ``0`` or ``none`` for unlimited."""
    if text.strip().lower() in ("none", "unlimited"):
        return None
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def limit(args: argparse.Namespace, client: ControlClient) -> int:
    changes: dict[str, Any] = {}
    for key, given in (("upload_limit", args.up), ("download_limit", args.down)):
        if given is not NOT_GIVEN:
            changes[key] = None if given is None else int(given)
    if args.torrent is None:
        where = "global limits"
        result = client.patch_session(changes) if changes else client.session()
    else:
        (torrent,) = _resolve(client, [args.torrent])
        where = f"{torrent['name']} limits"
        result = client.patch_torrent(torrent["info_hash"], changes) if changes else torrent
    shown = {**changes, **(result or {})}
    print(
        f"{where}: up {rate(shown.get('upload_limit'))}, down {rate(shown.get('download_limit'))}"
    )
    return 0


def events(args: argparse.Namespace, client: ControlClient) -> int:
    """Follow the daemon's event stream, one line per event, until it ends or ^C."""
    for event_id, kind, data in client.events(args.last_event_id):
        if kind == "progress" and not args.progress:
            continue
        if args.json:
            print(json.dumps({"id": event_id, "event": kind, "data": data}), flush=True)
        else:
            print(event_line(kind, data, datetime.datetime.now()), flush=True)
    raise CliError("the daemon ended the event stream (it stopped?)", 1)


COMMANDS: dict[str, Callable[[argparse.Namespace, ControlClient], int]] = {
    "status": status,
    "add": add,
    "remove": remove,
    "pause": _action("pause", "paused"),
    "resume": _action("resume", "resumed"),
    "recheck": _action("recheck", "rechecking"),
    "files": files,
    "move": move,
    "priority": priority,
    "limit": limit,
    "events": events,
}
