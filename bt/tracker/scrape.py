"""HTTP scrape codec (BEP 48): the scrape URL, its query, and the tracker's answer.

Pure, like :mod:`bt.tracker.announce`: whatever bytes a tracker sends, the only
exception that comes out of :func:`parse_scrape_response` is
:class:`TrackerError`. Only the entries for the info hashes we asked about are
read; a tracker's garbage about other torrents is not our problem.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bt.errors import TrackerError
from bt.tracker.announce import append_query, decode_tracker_dict, kind_of

__all__ = ["ScrapeResult", "parse_scrape_response", "scrape_query", "scrape_url"]

_HASH_LENGTH = 20
_ANNOUNCE = "announce"


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """One swarm's counts, as the tracker sees them."""

    complete: int
    """Seeders."""
    downloaded: int
    """Completed downloads the tracker has recorded, ever."""
    incomplete: int
    """Leechers."""


def scrape_url(announce_url: str) -> str | None:
    """The scrape URL of an HTTP(S) announce URL, or None when it has none.

    BEP 48: the last path component must start with ``announce``, which becomes
    ``scrape`` (``/a/announce.php?p=1`` -> ``/a/scrape.php?p=1``). Any other URL
    has no scrape endpoint we may guess at. The query (a passkey) is kept; a
    fragment is dropped since it is never sent.
    """
    base = announce_url.split("#", 1)[0]
    # String surgery, not urlsplit/urlunsplit: the rest of the URL stays byte for byte.
    scheme, separator, rest = base.partition("://")
    if not separator or scheme.lower() not in ("http", "https"):
        return None
    netloc_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, path_and_query = rest[:netloc_end], rest[netloc_end:]
    path, question, query = path_and_query.partition("?")
    head, slash, last = path.rpartition("/")
    if not netloc or not slash or not last.startswith(_ANNOUNCE):
        return None
    scraped = f"{head}/scrape{last[len(_ANNOUNCE) :]}"
    return f"{scheme}://{netloc}{scraped}{question}{query}"


def scrape_query(url: str, info_hashes: Iterable[bytes]) -> str:
    """``url`` with one ``info_hash`` parameter per hash, quoted like an announce.

    Every byte is percent-encoded with nothing left safe (a 0x20 byte is
    ``%20``, never ``+``). An existing query (a passkey) is kept. An empty
    list is refused: a bare scrape asks a tracker for every torrent it has.
    """
    hashes = list(info_hashes)
    if not hashes:
        raise ValueError("a scrape needs at least one info hash")
    for info_hash in hashes:
        if len(info_hash) != _HASH_LENGTH:
            raise ValueError(f"info_hash must be {_HASH_LENGTH} bytes")
    base = url.split("#", 1)[0]
    return append_query(base, "&".join(f"info_hash={quote(h, safe='')}" for h in hashes))


def parse_scrape_response(body: bytes, info_hashes: Collection[bytes]) -> dict[bytes, ScrapeResult]:
    """The counts for each of ``info_hashes`` the tracker knows; every problem is a TrackerError.

    A hash missing from ``files`` is simply absent from the result (the
    tracker does not know that torrent). ``downloaded`` defaults to 0 because
    some trackers leave it out; ``complete`` and ``incomplete`` are required.
    """
    decoded = decode_tracker_dict(body, "scrape response")
    files = decoded.get(b"files")
    if files is None:
        raise TrackerError("scrape response has no 'files'")
    if not isinstance(files, dict):
        raise TrackerError(f"'files' is a {kind_of(files)}, not a dictionary")
    results: dict[bytes, ScrapeResult] = {}
    for info_hash in info_hashes:
        entry = files.get(info_hash)
        if entry is None:
            continue
        name = f"files[{info_hash.hex()}]"
        if not isinstance(entry, dict):
            raise TrackerError(f"{name} is a {kind_of(entry)}, not a dictionary")
        results[info_hash] = ScrapeResult(
            complete=_count(entry, b"complete", name, required=True),
            downloaded=_count(entry, b"downloaded", name, required=False),
            incomplete=_count(entry, b"incomplete", name, required=True),
        )
    return results


def _count(entry: dict[bytes, Any], key: bytes, name: str, *, required: bool) -> int:
    value = entry.get(key)
    field = f"{name}[{key.decode()!r}]"
    if value is None:
        if required:
            raise TrackerError(f"{field} is missing")
        return 0
    if not isinstance(value, int):
        raise TrackerError(f"{field} is a {kind_of(value)}, not an integer")
    if value < 0:
        raise TrackerError(f"{field} is negative ({value})")
    return value
