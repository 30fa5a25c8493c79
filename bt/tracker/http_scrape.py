"""HTTP(S) scrape (BEP 48) for callers that hold an announce URL but no tracker object.

The work is :meth:`bt.tracker.http.HTTPTracker.scrape`: the same timeouts, body
cap and error conversion as announces. This class only refuses, up front, an
announce URL that has no scrape twin.
"""

from __future__ import annotations

from collections.abc import Iterable

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from bt.errors import TrackerError
from bt.tracker.http import DEFAULT_TIMEOUT, MAX_BODY, HTTPTracker, redact
from bt.tracker.scrape import ScrapeResult, scrape_url

__all__ = ["HTTPScraper"]


class HTTPScraper:
    """Scrapes the tracker behind one HTTP(S) announce URL."""

    def __init__(
        self,
        announce_url: str,
        client: HTTPClient,
        clock: IReactorTime,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_body: int = MAX_BODY,
    ) -> None:
        url = scrape_url(announce_url)
        if url is None:
            raise TrackerError(f"{redact(announce_url)}: no scrape URL (BEP 48)")
        if not url.isascii():
            raise TrackerError(f"{redact(announce_url)}: not a valid http(s) tracker URL")
        self._tracker = HTTPTracker(announce_url, client, clock, timeout=timeout, max_body=max_body)
        self.url = url
        self.display_url = redact(url)

    def __repr__(self) -> str:
        return f"<HTTPScraper {self.display_url}>"

    def scrape(self, info_hashes: Iterable[bytes]) -> defer.Deferred[dict[bytes, ScrapeResult]]:
        """Counts for each hash the tracker knows; fails only with TrackerError (or a bug).

        Cancelling the returned Deferred closes the HTTP request.
        """
        return self._tracker.scrape(info_hashes)
