"""Transmission's RPC (version 17, serving clients of 14 and later) on bt's control endpoint.

Modules, each with one job: :mod:`.resource` (HTTP, auth, the session-id
exchange, the web client's files), :mod:`.dispatcher` (one call in, one reply
out, Transmission's error shape), :mod:`.rpc` (the state: ids, clock, session),
:mod:`.methods`, :mod:`.sessionmethods` and :mod:`.adding` (the methods),
:mod:`.torrentfields` and :mod:`.sessionfields` (the field mapping),
:mod:`.ids` (stable integer ids), :mod:`.live` (trackers and peers of live
torrents), :mod:`.fetch` (a .torrent by URL). See docs/api.rst for the
compatibility table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.web.resource import IResource

from bt.control.transmission.fetch import TorrentFetcher
from bt.control.transmission.resource import TransmissionResource, TransmissionRouter
from bt.control.transmission.rpc import Rpc

__all__ = ["Rpc", "TransmissionResource", "TransmissionRouter", "mount"]


def mount(
    api: IResource,
    session: Any,
    token: Callable[[], str | None],
    *,
    web_home: Path | None = None,
    reactor: Any = None,
    close: Callable[[], None] | None = None,
) -> TransmissionRouter:
    """bt's API ``api`` with Transmission's endpoints beside it, under ``/transmission``."""
    if reactor is None:
        from twisted.internet import reactor
    rpc = Rpc(session, clock=reactor, close=close, fetch=TorrentFetcher(reactor))
    return TransmissionRouter(api, TransmissionResource(rpc, token, web_home=web_home))
