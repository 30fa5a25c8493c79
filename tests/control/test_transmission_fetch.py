"""torrent-add by URL: the fetch is bounded in size and time (a loopback server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.protocols.policies import WrappingFactory
from twisted.web import server
from twisted.web.resource import Resource

from bt.control.transmission.errors import RpcError
from bt.control.transmission.fetch import TorrentFetcher


class Files(Resource):
    isLeaf = True

    def render_GET(self, request: server.Request) -> bytes | int:
        path = request.path
        if path == b"/ok.torrent":
            return b"d4:infod4:name1:xee"
        if path == b"/big":
            return b"x" * 5000  # declared: Content-Length 5000
        if path == b"/chunked":
            request.write(b"y" * 3000)  # no Content-Length: chunked
            request.write(b"y" * 3000)
            request.finish()
            return server.NOT_DONE_YET
        if path == b"/silent":
            return server.NOT_DONE_YET  # never answers
        request.setResponseCode(404)
        return b"no"


@pytest_twisted.async_yield_fixture
async def base() -> AsyncIterator[str]:
    site = server.Site(Files())
    connections = WrappingFactory(site)
    port = reactor.listenTCP(0, connections, interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}"
    await port.stopListening()
    for connection in list(connections.protocols):  # the silent request is still open
        connection.transport.abortConnection()

    def clients() -> list[Any]:
        return [s for s in reactor.getReaders() + reactor.getWriters() if "Client" in repr(s)]

    for _ in range(200):  # until both ends of every connection are closed (2 s at most)
        if not connections.protocols and not clients():
            break
        await deferLater(reactor, 0.01, lambda: None)


async def refused(fetcher: TorrentFetcher, url: str) -> str:
    try:
        await fetcher(url)
    except RpcError as exc:
        return exc.message
    raise AssertionError(f"{url} was fetched")


@pytest_twisted.ensureDeferred
async def test_a_torrent_by_url(base: str) -> None:
    assert await TorrentFetcher(reactor)(base + "/ok.torrent") == b"d4:infod4:name1:xee"


@pytest_twisted.ensureDeferred
async def test_too_large_missing_and_too_slow_are_said(base: str) -> Any:
    fetcher = TorrentFetcher(reactor, max_size=4000, timeout=0.5)
    assert "over 4000 bytes" in await refused(fetcher, base + "/big")
    assert "over 4000 bytes" in await refused(fetcher, base + "/chunked")
    assert "HTTP 404" in await refused(fetcher, base + "/nothing")
    assert "took over" in await refused(fetcher, base + "/silent")
    assert "cannot fetch" in await refused(fetcher, "http://127.0.0.1:1/x.torrent")
