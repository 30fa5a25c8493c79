"""Commands that need no daemon: ``bt create`` and ``bt info``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bt.cli.client import CliError
from bt.cli.render import hash_lines, metainfo_lines, size_text
from bt.create import CreateError, Progress, create_torrent, parse_piece_length
from bt.errors import MetainfoError
from bt.metainfo import load_metainfo
from bt.progress import format_bytes

__all__ = ["run_create", "run_info"]


def run_create(args: argparse.Namespace) -> int:
    try:
        piece_length = parse_piece_length(args.piece_size) if args.piece_size else None
    except CreateError as exc:
        raise CliError(str(exc), 2) from None
    tiers = [[url.strip() for url in given.split(",") if url.strip()] for given in args.tracker]
    for url in (u for tier in tiers for u in tier):
        if "://" not in url:
            raise CliError(f"{url!r} is not a tracker URL such as http://host:port/announce", 2)
    name = Path(os.path.abspath(args.path)).name
    output = Path(args.output) if args.output else Path(f"{name}.torrent")
    if output.exists() and not args.force:
        raise CliError(f"{output} already exists; use --force to overwrite it")
    try:
        with _progress_bar(name) as progress:
            data, meta = create_torrent(
                args.path,
                tiers,
                piece_length=piece_length,
                private=args.private,
                comment=args.comment,
                web_seeds=args.web_seed,
                format=args.format,
                progress=progress,
            )
    except CreateError as exc:
        raise CliError(str(exc)) from None
    _write(output, data, force=args.force)
    count = sum(1 for entry in meta.files if not entry.padding)
    files = f"{count} files, " if meta.is_multi_file else ""
    print(
        f"created {output} ({meta.format}): {meta.name}, {files}{size_text(meta)} in "
        f"{meta.num_pieces} pieces of {format_bytes(meta.piece_length)}"
    )
    print("\n".join(hash_lines(meta)))
    return 0


@contextmanager
def _progress_bar(name: str) -> Iterator[Progress | None]:
    """A rich bar on stderr when it is a terminal; no output at all otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as Bar

    columns = (
        TextColumn("hashing {task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Bar(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(name, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _write(output: Path, data: bytes, *, force: bool) -> None:
    """Write whole or not at all; never replace an existing file unless ``force``."""
    folder = output.parent if str(output.parent) else Path(".")
    try:
        if not force:
            with open(output, "xb") as handle:
                handle.write(data)
            return
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, output)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise CliError(f"{output} already exists; use --force to overwrite it") from None
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None


def run_info(args: argparse.Namespace) -> int:
    try:
        meta = load_metainfo(args.file)
    except MetainfoError as exc:
        raise CliError(str(exc)) from None
    print("\n".join(metainfo_lines(meta)))
    return 0
