"""How the CLI shows things to people: rich tables and plain lines.

Machine-readable output is ``--json``, never these; so these may change shape.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bt.metainfo import Metainfo
from bt.progress import format_bytes, format_duration
from bt.untrusted import shown

__all__ = [
    "event_line",
    "files_table",
    "hash_lines",
    "metainfo_lines",
    "rate",
    "size_text",
    "status_lines",
    "status_table",
]


def rate(value: float | None) -> str:
    return "unlimited" if value is None else f"{format_bytes(value)}/s"


def event_line(kind: str, data: Any, at: datetime.datetime) -> str:
    """One line for one event of ``bt events``: time, kind, then the torrent or a summary."""
    when = at.strftime("%H:%M:%S")
    if kind == "progress":
        torrents = data.get("torrents", []) if isinstance(data, dict) else []
        down = sum(t.get("download_rate") or 0.0 for t in torrents)
        up = sum(t.get("upload_rate") or 0.0 for t in torrents)
        return f"{when}  {kind:<17}  {len(torrents)} torrents, down {rate(down)}, up {rate(up)}"
    if not isinstance(data, dict):
        return f"{when}  {shown(kind)}"
    line = f"{when}  {shown(kind):<17}  {shown(str(data.get('name', '')))}"
    line += f" ({str(data.get('info_hash', ''))[:8]}): {shown(str(data.get('state', '')))}"
    if data.get("error"):
        line += f" ({shown(str(data['error']))})"
    return line


def _progress_row(progress: float, width: int) -> Table:
    """A bar and a percentage side by side, for one cell of the status table."""
    row = Table.grid(padding=(0, 1))
    row.add_row(
        ProgressBar(total=1.0, completed=max(0.0, min(1.0, progress)), width=width),
        Text(f"{100 * progress:5.1f}%", no_wrap=True),
    )
    return row


def _eta(torrent: Mapping[str, Any]) -> str:
    if torrent.get("state") != "downloading":
        return "-"
    return format_duration(torrent.get("eta"))


#: Below this many columns the status table drops the hash and stacks the rates.
WIDE = 110


def status_table(torrents: Sequence[Mapping[str, Any]], width: int = WIDE) -> Table:
    """One row per torrent: name, state, progress, size, rates, peers, ETA, ratio."""
    wide = width >= WIDE
    table = Table(box=None, pad_edge=False, header_style="bold", collapse_padding=not wide)
    if wide:
        table.add_column("Hash", no_wrap=True, style="dim")
    table.add_column("Name", overflow="fold", min_width=12)
    table.add_column("State", no_wrap=True)
    table.add_column("Progress", no_wrap=True)
    headings = ("Size", "Down", "Up") if wide else ("Size", "Down/Up")
    for heading in (*headings, "Peers", "ETA", "Ratio"):
        table.add_column(heading, justify="right", no_wrap=True)
    down = up = 0.0
    for torrent in torrents:
        state = str(torrent.get("state", "?"))
        name = Text(str(torrent.get("name", "")))
        if torrent.get("error"):
            name.append(f"\n{torrent['error']}", style="red")
        down_rate = float(torrent.get("download_rate") or 0.0)
        up_rate = float(torrent.get("upload_rate") or 0.0)
        down += down_rate
        up += up_rate
        rates = (
            (rate(down_rate), rate(up_rate)) if wide else (f"{rate(down_rate)}\n{rate(up_rate)}",)
        )
        table.add_row(
            *((_hash_cell(torrent),) if wide else ()),
            name,
            Text(state, style=_STATE_STYLES.get(state, "")),
            _progress_row(float(torrent.get("progress") or 0.0), 12 if wide else 8),
            format_bytes(torrent.get("wanted", torrent.get("size", 0)) or 0),
            *rates,
            _peers(torrent, state),
            _eta(torrent),
            f"{float(torrent.get('ratio') or 0.0):.2f}",
        )
    count = len(torrents)
    table.caption = (
        f"{count} torrent{'s' if count != 1 else ''}, {rate(down)} down, {rate(up)} up; "
        "peers (seeds)"
    )
    return table


#: Above this many torrents ``bt status`` prints plain aligned lines instead: a rich
#: table lays out every cell, about 0.5 ms a row (8 s for 10,000 torrents).
RICH_ROWS = 200


def status_lines(torrents: Sequence[Mapping[str, Any]], width: int = WIDE) -> list[str]:
    """The status table's columns as plain aligned lines, for thousands of torrents."""
    wide = width >= WIDE
    headings = ("Hash",) * wide + ("Name", "State", "Progress", "Size", "Down", "Up")
    headings += ("Peers", "ETA", "Ratio")
    rows: list[tuple[str, ...]] = []
    down = up = 0.0
    for torrent in torrents:
        state = str(torrent.get("state", "?"))
        name = str(torrent.get("name", ""))
        if torrent.get("error"):
            name = f"{name} ({torrent['error']})"
        down_rate = float(torrent.get("download_rate") or 0.0)
        up_rate = float(torrent.get("upload_rate") or 0.0)
        down += down_rate
        up += up_rate
        rows.append(
            (_hash_cell(torrent).replace("\n", " "),) * wide
            + (name, state, f"{100 * float(torrent.get('progress') or 0.0):5.1f}%")
            + (format_bytes(torrent.get("wanted", torrent.get("size", 0)) or 0), rate(down_rate))
            + (rate(up_rate), _peers(torrent, state), _eta(torrent))
            + (f"{float(torrent.get('ratio') or 0.0):.2f}",)
        )
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headings)]
    name_at = 1 if wide else 0
    others = sum(widths) - widths[name_at] + 2 * (len(widths) - 1)
    widths[name_at] = max(12, min(widths[name_at], width - others))
    left = name_at + 3  # hash, name, state and progress are left-aligned, the rest right

    def line(cells: tuple[str, ...]) -> str:
        shown = []
        for i, (cell, size) in enumerate(zip(cells, widths, strict=True)):
            if len(cell) > size:
                cell = cell[: size - 1] + "\u2026"
            shown.append(cell.ljust(size) if i < left else cell.rjust(size))
        return "  ".join(shown).rstrip()

    count = len(torrents)
    caption = f"{count} torrent{'s' if count != 1 else ''}, {rate(down)} down, {rate(up)} up"
    return [line(headings), *map(line, rows), f"{caption}; peers (seeds)"]


def _hash_cell(torrent: Mapping[str, Any]) -> str:
    """The id's first 8 hex digits; a hybrid's v2 hash below it, a v2-only id marked."""
    shown = str(torrent.get("info_hash", ""))[:8]
    v2 = torrent.get("info_hash_v2")
    if not v2:
        return shown
    if torrent.get("info_hash_v1"):
        return f"{shown}\nv2 {str(v2)[:8]}"
    return f"{shown} v2"


def _peers(torrent: Mapping[str, Any], state: str) -> str:
    dht = f", {torrent['dht_peers']} DHT" if torrent.get("dht_peers") else ""
    if state == "fetching metadata":  # a magnet: no seeds to count yet, the peers asked
        return f"{torrent.get('peers', 0)}, {torrent.get('peers_tried', 0)} tried{dht}"
    return f"{torrent.get('peers', 0)} ({torrent.get('seeds', 0)}){dht}"


def dht_line(session: Mapping[str, Any]) -> str | None:
    """The DHT's summary under the table; None when the daemon runs no DHT."""
    if session.get("dht_nodes") is None:
        return None
    return (
        f"DHT: {session['dht_nodes']} nodes, {session.get('dht_lookups', 0)} lookups, "
        f"{session.get('dht_announces', 0)} announces"
    )


_STATE_STYLES = {
    "fetching metadata": "blue",
    "downloading": "cyan",
    "seeding": "green",
    "finished": "green",
    "paused": "yellow",
    "error": "bold red",
    "checking": "magenta",
    "stopped": "dim",
}


def files_table(torrent: Mapping[str, Any]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", title=str(torrent.get("name")))
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Priority", no_wrap=True)
    table.add_column("Done", justify="right", no_wrap=True)
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Path", overflow="fold")
    for entry in torrent.get("files") or []:
        size = int(entry.get("size") or 0)
        done = int(entry.get("done") or 0)
        percent = 100.0 * done / size if size else 100.0
        priority = str(entry.get("priority", ""))
        table.add_row(
            str(entry.get("index")),
            Text(priority, style="dim" if priority == "skip" else ""),
            f"{percent:.1f}%",
            format_bytes(size),
            str(entry.get("path", "")),
        )
    return table


#: What ``bt info`` says of each format.
FORMAT_NAMES = {
    "v1": "v1",
    "v2": "v2 (BEP 52)",
    "hybrid": "hybrid (v1 and v2, BEP 52)",
}


def hash_lines(meta: Metainfo) -> list[str]:
    """The info-hashes of a torrent: one for v1, both for hybrid, v2 and its 20-byte id."""
    v1, v2 = meta.info_hash_v1, meta.info_hash_v2
    if v2 is None:
        return [f"info-hash:    {meta.info_hash.hex()}"]
    lines = [] if v1 is None else [f"info-hash v1: {v1.hex()}"]
    lines.append(f"info-hash v2: {v2.hex()}")
    if v1 is None:  # what bt's commands, trackers and the handshake use
        lines.append(f"info-hash:    {meta.info_hash.hex()} (v2, first 20 bytes)")
    return lines


def size_text(meta: Metainfo) -> str:
    """The files' bytes, and the stream with its BEP 47 pads when they add to it."""
    data = sum(entry.length for entry in meta.files if not entry.padding)
    text = f"{format_bytes(data)} ({data} bytes)"
    if data != meta.total_length:
        text += f", {format_bytes(meta.total_length)} with padding"
    return text


def metainfo_lines(meta: Metainfo) -> list[str]:
    """``bt info``: what a .torrent holds, one fact a line."""
    lines = [
        f"name:         {meta.name}",
        f"format:       {FORMAT_NAMES.get(meta.format, meta.format)}",
        *hash_lines(meta),
        f"size:         {size_text(meta)}",
        f"pieces:       {meta.num_pieces} x {format_bytes(meta.piece_length)}",
        f"private:      {'yes' if meta.private else 'no'}",
    ]
    if meta.created_by:
        lines.append(f"created by:   {meta.created_by}")
    if meta.creation_date is not None:
        try:
            when = datetime.datetime.fromtimestamp(meta.creation_date, datetime.UTC)
            lines.append(f"created:      {when:%Y-%m-%d %H:%M:%S} UTC")
        except (OverflowError, OSError, ValueError):
            lines.append(f"created:      {meta.creation_date} (not a valid time)")
    if meta.comment:
        lines.append(f"comment:      {meta.comment}")
    if meta.trackers:
        lines.append("trackers:")
        for number, tier in enumerate(meta.trackers, 1):
            lines.append(f"  tier {number}: {', '.join(tier)}")
    else:
        lines.append("trackers:     none")
    if meta.url_list:
        lines.append("web seeds:")
        lines.extend(f"  {url}" for url in meta.url_list)
    return lines + _file_lines(meta)


def _file_lines(meta: Metainfo) -> list[str]:
    """Each file with its size, and its v2 pieces root; the v1 view's pads marked.

    A v2-only torrent's pads are bt's own view of it (not in the .torrent), so
    they are not listed.
    """
    shown = [entry for entry in meta.files if not (entry.padding and meta.format == "v2")]
    pads = sum(1 for entry in shown if entry.padding)
    count = f"{len(shown) - pads} (and {pads} padding)" if pads else f"{len(shown)}"
    lines = [f"files:        {count}"]
    for entry in shown:
        path = "/".join(entry.path)
        flag = " (padding)" if entry.padding else ""
        lines.append(f"  {format_bytes(entry.length):>10}  {path}{flag}")
        if entry.pieces_root is not None:
            lines.append(f"{'':14}pieces root {entry.pieces_root.hex()}")
    return lines


def stdout_console() -> Console:
    """A console on the current stdout (looked up per call, so tests can capture it)."""
    return Console(highlight=False, soft_wrap=False)
