"""Human-readable progress lines for the log: percent, rate, peers, ETA."""

from __future__ import annotations

from typing import Any, Protocol


class _Progress(Protocol):
    name: str

    @property
    def bytes_left(self) -> int: ...


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def eta(left: int, rate: float) -> float | None:
    return left / rate if rate > 1 else None


def plural(count: int, noun: str) -> str:
    """``1 peer``, ``3 peers``: English for a count of regular nouns."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def describe_progress(torrent: object) -> str:
    """One line: ``name: 42.0% (n/m pieces), 1.2 MiB/s down, 0 B/s up, 3 peers, ETA 1m20s``.

    A seed's line speaks of the upload side only (``seeding, 80 KiB/s up, 1 peer,
    uploaded 3.0 MiB``): the download rate of its last seconds is history.
    """
    metainfo = torrent.metainfo  # type: ignore[attr-defined]
    picker = torrent.picker  # type: ignore[attr-defined]
    down = torrent.download_rate  # type: ignore[attr-defined]
    up = torrent.upload_rate  # type: ignore[attr-defined]
    left = torrent.bytes_left  # type: ignore[attr-defined]
    peers = plural(len(torrent.links), "peer")  # type: ignore[attr-defined]
    done = metainfo.total_length - left
    percent = 100.0 * done / metainfo.total_length
    head = f"{metainfo.name}: {percent:.1f}% ({picker.have_count}/{metainfo.num_pieces} pieces)"
    if left:
        rates = f"{format_bytes(down.rate)}/s down, {format_bytes(up.rate)}/s up, {peers}"
        return f"{head}, {rates}, ETA {format_duration(eta(left, down.rate))}"
    upload = f"{format_bytes(up.rate)}/s up, {peers}, uploaded {format_bytes(up.total)}"
    return f"{head}, seeding, {upload}"


def describe_totals(torrent: object) -> str:
    """Byte counts for the log when a torrent stops; exact, for scripts and tests."""
    down = torrent.download_rate.total  # type: ignore[attr-defined]
    up = torrent.upload_rate.total  # type: ignore[attr-defined]
    return f"{torrent.metainfo.name}: uploaded {up} bytes, downloaded {down} bytes"  # type: ignore[attr-defined]


def describe_layout(metainfo: object) -> str:
    """The line a torrent logs as it starts: its pieces and files."""
    m: Any = metainfo
    return (
        f"{m.name}: {m.num_pieces} pieces of {m.piece_length} bytes, "
        f"{m.total_length} bytes in {len(m.files)} files"
    )


class ProgressLine:
    """When a torrent's progress line is due: every few seconds (a minute for a seed),
    and only when something moved: 1,000 idle seeds must not write 1,000 lines a minute."""

    def __init__(self) -> None:
        self._last = 0.0
        self._logged: tuple[int, int, int] | None = None

    def due(self, torrent: object, now: float) -> str | None:
        """The line to log now, if any."""
        config = torrent.config  # type: ignore[attr-defined]
        finished = torrent.is_finished  # type: ignore[attr-defined]
        interval = config.seed_progress_interval if finished else config.progress_interval
        if now - self._last < interval:
            return None
        down, up = torrent.download_rate, torrent.upload_rate  # type: ignore[attr-defined]
        moved = (down.total, up.total, len(torrent.links))  # type: ignore[attr-defined]
        if moved == self._logged:
            return None
        self._logged = moved
        self._last = now
        return describe_progress(torrent)
