"""Take the :class:`~bt.status.SessionStatus` of a live session.

Kept out of session.py as bt.snapshot keeps torrents' status out of
torrent.py: reading state for people is not the session's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bt import __version__
from bt.dht.service import dht_counts
from bt.status import SessionStatus

if TYPE_CHECKING:
    from bt.session import Session

__all__ = ["session_status"]


def session_status(session: Session) -> SessionStatus:
    """The whole session: its torrents and magnets, peers, rates, limits and DHT."""
    torrents = list(session.torrents.values())
    return SessionStatus(
        version=__version__,
        torrents=len(torrents) + len(session.magnets.fetches),
        peers=sum(len(t.links) for t in torrents),
        download_rate=sum(t.download_rate.rate for t in torrents if t.links),
        upload_rate=sum(t.upload_rate.rate for t in torrents if t.links),
        downloaded=sum(t.download_rate.total for t in torrents),
        uploaded=sum(t.upload_rate.total for t in torrents),
        upload_limit=session.limits.upload.rate,
        download_limit=session.limits.download.rate,
        listen_port=session.port,
        **dht_counts(session.dht),
    )
