"""HTTPTracker over an in-memory HTTP server: exact queries, every answer shape, bounded waits.

Driven synchronously with ``treq.testing.StubTreq`` (``flush()`` moves bytes) and
``task.Clock`` (timeouts), so nothing touches a socket or the global reactor.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest
from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent, StubTreq
from twisted.internet import defer, task
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TimeoutError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.client import RedirectAgent
from twisted.web.iweb import IAgent
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from bt import bencode
from bt.errors import TrackerError
from bt.tracker.announce import (
    AnnounceRequest,
    AnnounceResponse,
    encode_compact_peers,
    encode_compact_peers6,
)
from bt.tracker.http import HTTPTracker, make_http_client

INFO_HASH = b" +/%\x00\x7f\x80\xfe\xff=&?#~.-_abc"
PEER_ID = b"-BT0001-\x01 +/%\xff\x80abcde"
QUERY = (
    b"info_hash=%20%2B%2F%25%00%7F%80%FE%FF%3D%26%3F%23~.-_abc"
    b"&peer_id=-BT0001-%01%20%2B%2F%25%FF%80abcde"
    b"&port=6881&uploaded=10&downloaded=20&left=30&compact=1&event=started&numwant=50&key=k3y"
)
URL = "http://tracker.example/announce"

REQUEST = AnnounceRequest(
    info_hash=INFO_HASH,
    peer_id=PEER_ID,
    port=6881,
    uploaded=10,
    downloaded=20,
    left=30,
    event="started",
    key="k3y",
)

Responder = Callable[[Request], bytes | int]


class FakeTracker(Resource):
    """Records each request's raw URI and answers with ``respond(request)``."""

    isLeaf = True

    def __init__(self, respond: Responder) -> None:
        super().__init__()
        self.respond = respond
        self.requests: list[Request] = []
        self.lost: list[Request] = []
        """Requests whose connection closed before the response was finished."""

    def render_GET(self, request: Request) -> bytes | int:
        self.requests.append(request)
        request.notifyFinish().addErrback(lambda _: self.lost.append(request))
        return self.respond(request)


def answer(**fields: object) -> Responder:
    data = bencode.encode({key.replace("_", " "): value for key, value in fields.items()})
    return lambda request: data


def result_of(d: defer.Deferred[Any]) -> Any:
    """The result a Deferred already has: a value, or a Failure."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def succeeded(d: defer.Deferred[Any]) -> Any:
    result = result_of(d)
    if isinstance(result, Failure):
        result.raiseException()
    return result


def tracker_error(d: defer.Deferred[Any]) -> str:
    result = result_of(d)
    assert isinstance(result, Failure), f"expected a failure, got {result!r}"
    result.trap(TrackerError)
    return str(result.value)


class Setup:
    def __init__(self, respond: Responder, url: str = URL, **options: Any) -> None:
        self.resource = FakeTracker(respond)
        self.stub = StubTreq(self.resource)
        self.clock = task.Clock()
        self.tracker = HTTPTracker(url, self.stub, self.clock, **options)  # type: ignore[arg-type]

    def announce(self, request: AnnounceRequest = REQUEST) -> defer.Deferred[AnnounceResponse]:
        d = self.tracker.announce(request)
        self.stub.flush()
        return d


def watch(d: defer.Deferred[Any]) -> list[Any]:
    """A list that receives ``d``'s result when it fires (``d.called`` is true while paused)."""
    outcome: list[Any] = []

    def record(result: Any) -> Any:
        outcome.append(result)
        return result

    d.addBoth(record)
    return outcome


# --- the request --------------------------------------------------------------------


def test_query_is_percent_encoded_byte_for_byte() -> None:
    setup = Setup(answer(interval=60))
    succeeded(setup.announce())
    assert setup.resource.requests[0].uri == b"/announce?" + QUERY


def test_passkey_query_is_kept_and_tracker_id_sent_back() -> None:
    setup = Setup(answer(interval=60), url="http://tracker.example/a?passkey=s3cr3t")
    request = AnnounceRequest(**{**vars_of(REQUEST), "event": None, "tracker_id": b"t id"})
    succeeded(setup.announce(request))
    uri = setup.resource.requests[0].uri
    assert uri.startswith(b"/a?passkey=s3cr3t&info_hash=%20%2B")
    assert b"event=" not in uri
    assert uri.endswith(b"&key=k3y&trackerid=t%20id")


def vars_of(request: AnnounceRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


# --- answers --------------------------------------------------------------------------


def test_compact_answer_gives_peers_and_leaves_no_timer() -> None:
    peers = [("10.0.0.1", 6881), ("10.0.0.2", 6882)]
    setup = Setup(answer(interval=1800, min_interval=60, peers=encode_compact_peers(peers)))
    response = succeeded(setup.announce())
    assert response.interval == 1800
    assert response.min_interval == 60
    assert response.peers == tuple(peers)
    assert setup.clock.getDelayedCalls() == []


def test_dictionary_answer_with_peers6_and_warning() -> None:
    setup = Setup(
        answer(
            interval=900,
            warning_message=b"upgrade your client",
            peers=[{"ip": b"10.0.0.1", "port": 1}, {"ip": b"bad", "port": 2}],
            peers6=encode_compact_peers6([("2001:db8::7", 7)]),
        )
    )
    response = succeeded(setup.announce())
    assert response.peers == (("10.0.0.1", 1), ("2001:db8::7", 7))
    assert response.malformed_peers == 1
    assert response.warning == "upgrade your client"


def test_gzip_encoded_answer_is_decoded() -> None:
    def respond(request: Request) -> bytes:
        request.setHeader(b"content-encoding", b"gzip")
        return gzip.compress(bencode.encode({b"interval": 60, b"peers": b""}))

    assert succeeded(Setup(respond).announce()).interval == 60


def test_failure_reason_is_an_error_with_the_reason_and_the_url() -> None:
    setup = Setup(answer(failure_reason=b"unregistered torrent"))
    assert tracker_error(setup.announce()) == f"{URL}: unregistered torrent"


def test_urls_in_errors_hide_passkeys_and_credentials() -> None:
    url = "https://user:pw@tracker.example/a?passkey=s3cr3t"
    message = tracker_error(Setup(answer(failure_reason=b"no"), url=url).announce())
    assert message == "https://tracker.example/a: no"


@pytest.mark.parametrize(
    "body",
    [b"<html>it works</html>", b"", b"le", b"d8:intervali-1ee", b"d5:peers3:abce"],
)
def test_garbage_bodies_are_tracker_errors(body: bytes) -> None:
    assert tracker_error(Setup(lambda request: body).announce()).startswith(URL + ": ")


def test_non_200_status_is_an_error_naming_the_status() -> None:
    def respond(request: Request) -> bytes:
        request.setResponseCode(503)
        return bencode.encode({b"interval": 60})

    setup = Setup(respond)
    assert tracker_error(setup.announce()) == f"{URL}: HTTP status 503 Service Unavailable"
    assert setup.clock.getDelayedCalls() == []


def test_a_hostile_status_text_is_cut_and_escaped() -> None:
    def respond(request: Request) -> bytes:
        request.setResponseCode(599, b"\x1b[31m" + b"s" * 10_000)
        return b""

    message = tracker_error(Setup(respond).announce())
    assert len(message) < 300 and message.isprintable()
    assert message.startswith(f"{URL}: HTTP status 599 \\x1b[31msss")


def test_a_hostile_url_from_a_torrent_is_shown_cut_and_escaped() -> None:
    tracker = HTTPTracker(
        "http://tracker.example/\x1b]0;x\x07" + "p" * 100_000, StubTreq(Resource()), task.Clock()
    )
    assert len(tracker.display_url) < 250 and tracker.display_url.isprintable()
    assert tracker.display_url.startswith("http://tracker.example/\\x1b]0;x\\x07ppp")


# --- bounds ---------------------------------------------------------------------------


def test_body_over_the_cap_with_a_known_length_is_refused_unread() -> None:
    setup = Setup(lambda request: b"x" * 2000, max_body=1000)
    assert "over the 1000 byte cap" in tracker_error(setup.announce())
    assert setup.clock.getDelayedCalls() == []


def test_body_over_the_cap_without_a_length_closes_the_connection() -> None:
    def respond(request: Request) -> int:
        request.write(b"x" * 800)  # no Content-Length: chunked, length unknown
        request.write(b"x" * 800)
        return NOT_DONE_YET

    setup = Setup(respond, max_body=1000)
    d = setup.announce()
    assert "over the 1000 byte cap" in tracker_error(d)
    setup.stub.flush()
    assert setup.resource.lost == setup.resource.requests
    assert setup.clock.getDelayedCalls() == []


def test_gzip_bomb_is_capped_after_decoding() -> None:
    def respond(request: Request) -> bytes:
        request.setHeader(b"content-encoding", b"gzip")
        return gzip.compress(b"0" * 200_000)  # about 300 bytes on the wire

    assert "byte cap" in tracker_error(Setup(respond, max_body=10_000).announce())


def test_no_headers_within_the_timeout_is_an_error() -> None:
    setup = Setup(lambda request: NOT_DONE_YET, timeout=10.0)
    d = setup.announce()
    outcome = watch(d)
    setup.clock.advance(9.9)
    assert outcome == []
    setup.clock.advance(0.1)
    assert tracker_error(d) == f"{URL}: timed out after 10.0 s"
    setup.stub.flush()
    assert setup.resource.lost == setup.resource.requests
    assert setup.clock.getDelayedCalls() == []


def test_a_stalled_body_times_out_and_closes_the_connection() -> None:
    def respond(request: Request) -> int:
        request.write(b"d8:interval")  # headers and a first chunk, then nothing
        return NOT_DONE_YET

    setup = Setup(respond, timeout=10.0)
    d = setup.announce()
    outcome = watch(d)
    setup.clock.advance(9)
    assert outcome == []
    setup.clock.advance(1)
    assert tracker_error(d) == f"{URL}: timed out after 10.0 s"
    setup.stub.flush()
    assert setup.resource.lost == setup.resource.requests
    assert setup.clock.getDelayedCalls() == []


def test_cancelling_an_announce_closes_the_request() -> None:
    setup = Setup(lambda request: NOT_DONE_YET)
    d = setup.announce()
    d.cancel()
    assert tracker_error(d) == f"{URL}: announce cancelled"
    setup.stub.flush()
    assert setup.resource.lost == setup.resource.requests
    assert setup.clock.getDelayedCalls() == []


# --- network failures and redirects -------------------------------------------------


@implementer(IAgent)
class FailingAgent:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def request(self, method: bytes, uri: bytes, headers: object = None, body: object = None):
        return defer.fail(self.error)


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (ConnectionRefusedError(), "ConnectionRefusedError"),
        (DNSLookupError("no such host"), "DNSLookupError"),
        (TimeoutError(), "TimeoutError"),
    ],
)
def test_network_failures_become_tracker_errors(error: Exception, named: str) -> None:
    client = HTTPClient(FailingAgent(error))
    tracker = HTTPTracker(URL, client, task.Clock())
    message = tracker_error(tracker.announce(REQUEST))
    assert message.startswith(f"{URL}: {named}")


def test_a_bug_is_not_disguised_as_a_tracker_outage() -> None:
    tracker = HTTPTracker(URL, HTTPClient(FailingAgent(ZeroDivisionError())), task.Clock())
    result = result_of(tracker.announce(REQUEST))
    assert isinstance(result, Failure) and result.check(ZeroDivisionError)


def redirecting_tracker(
    url: str, limit: int
) -> tuple[FakeTracker, RequestTraversalAgent, HTTPTracker]:
    """A tracker behind ``RedirectAgent``, as :func:`make_http_client` builds it."""

    def respond(request: Request) -> bytes:
        if request.path == b"/old":
            request.redirect(b"http://tracker.example/new?" + request.uri.split(b"?", 1)[1])
            return b""
        if request.path == b"/loop":
            request.redirect(b"http://tracker.example/loop")
            return b""
        return bencode.encode({b"interval": 60})

    resource = FakeTracker(respond)
    agent = RequestTraversalAgent(resource)
    client = HTTPClient(RedirectAgent(agent, redirectLimit=limit))
    return resource, agent, HTTPTracker(url, client, task.Clock())


def test_redirects_are_followed_by_the_client_agent() -> None:
    resource, agent, tracker = redirecting_tracker("http://tracker.example/old", limit=5)
    d = tracker.announce(REQUEST)
    agent.flush()
    assert succeeded(d).interval == 60
    assert [r.path for r in resource.requests] == [b"/old", b"/new"]
    assert resource.requests[1].uri == b"/new?" + QUERY


def test_a_redirect_loop_is_a_tracker_error() -> None:
    resource, agent, tracker = redirecting_tracker("http://tracker.example/loop", limit=3)
    d = tracker.announce(REQUEST)
    for _ in range(5):
        agent.flush()
    assert "InfiniteRedirection" in tracker_error(d)
    assert len(resource.requests) == 4


@pytest.mark.parametrize(
    "url",
    ["udp://tracker.example:80/announce", "tracker.example/announce", "http:///a", "http://t:x/a"],
)
def test_a_url_that_is_not_http_is_refused_up_front(url: str) -> None:
    with pytest.raises(TrackerError, match="not a valid http"):
        HTTPTracker(url, StubTreq(Resource()), task.Clock())  # type: ignore[arg-type]


def test_make_http_client_uses_the_connect_timeout_and_a_closable_pool() -> None:
    reactor = MemoryReactorClock()
    client, pool = make_http_client(reactor, connect_timeout=7.0)
    d = client.get("http://127.0.0.1:8000/announce")
    host, port, _, timeout, _ = reactor.tcpClients[0]
    assert (host, port, timeout) == ("127.0.0.1", 8000, 7.0)
    d.cancel()
    d.addErrback(lambda failure: None)
    assert succeeded(pool.closeCachedConnections()) is None
