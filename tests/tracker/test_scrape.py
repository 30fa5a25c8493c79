"""BEP 48 scrape: URL rule, exact query, strict parsing, and HTTPScraper over StubTreq."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_http_tracker import (
    FailingAgent,
    FakeTracker,
    Responder,
    result_of,
    tracker_error,
    watch,
)
from treq.client import HTTPClient
from treq.testing import StubTreq
from twisted.internet import defer, task
from twisted.internet.error import ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from bt import bencode
from bt.errors import TrackerError
from bt.tracker.http_scrape import HTTPScraper
from bt.tracker.scrape import ScrapeResult, parse_scrape_response, scrape_query, scrape_url

HASH_A = b" +/%\x00\x7f\x80\xfe\xff=&?#~.-_abc"
HASH_B = b"b" * 20
QUOTED_A = "%20%2B%2F%25%00%7F%80%FE%FF%3D%26%3F%23~.-_abc"


# --- scrape_url ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("announce", "scrape"),
    [
        ("http://x/announce", "http://x/scrape"),
        ("http://x/a/announce.php?p=1", "http://x/a/scrape.php?p=1"),
        ("http://x/announce?x2%0644", "http://x/scrape?x2%0644"),
        ("https://x:8443/path/announce", "https://x:8443/path/scrape"),
        ("http://x/announce?passkey=/announce#frag", "http://x/scrape?passkey=/announce"),
        ("http://x/a", None),
        ("http://x/announce/x", None),
        ("http://x/a%064announce", None),
        ("http://x/x%064announce", None),
        ("http://x", None),
        ("http://x?announce", None),
        ("udp://x:80/announce", None),
        ("x/announce", None),
    ],
)
def test_scrape_url_follows_bep_48(announce: str, scrape: str | None) -> None:
    assert scrape_url(announce) == scrape


# --- scrape_query -------------------------------------------------------------------


def test_query_repeats_info_hash_quoted_byte_for_byte() -> None:
    query = scrape_query("http://x/scrape", [HASH_A, HASH_B])
    assert query == f"http://x/scrape?info_hash={QUOTED_A}&info_hash={'b' * 20}"


def test_query_keeps_a_passkey_and_drops_a_fragment() -> None:
    assert (
        scrape_query("http://x/scrape?pk=1#f", [HASH_B])
        == f"http://x/scrape?pk=1&info_hash={'b' * 20}"
    )
    assert scrape_query("http://x/scrape?", [HASH_B]) == f"http://x/scrape?info_hash={'b' * 20}"


@pytest.mark.parametrize("hashes", [[], [b"short"]])
def test_query_refuses_no_hash_or_a_bad_one(hashes: list[bytes]) -> None:
    with pytest.raises(ValueError):
        scrape_query("http://x/scrape", hashes)


# --- parse_scrape_response ----------------------------------------------------------


def body(**fields: Any) -> bytes:
    return bencode.encode({key.replace("_", " "): value for key, value in fields.items()})


def test_parse_gives_the_counts_of_the_hashes_asked_for() -> None:
    data = body(
        files={
            HASH_A: {b"complete": 5, b"downloaded": 50, b"incomplete": 10, b"name": b"x"},
            HASH_B: {b"complete": 0, b"incomplete": 1},
            b"c" * 20: {b"complete": "garbage about a torrent we did not ask for"},
        },
        flags={b"min_request_interval": 900},
    )
    assert parse_scrape_response(data, [HASH_A, HASH_B]) == {
        HASH_A: ScrapeResult(complete=5, downloaded=50, incomplete=10),
        HASH_B: ScrapeResult(complete=0, downloaded=0, incomplete=1),
    }


def test_hashes_missing_from_files_are_simply_absent() -> None:
    assert parse_scrape_response(body(files={}), [HASH_A]) == {}


def test_failure_reason_is_the_error_message() -> None:
    with pytest.raises(TrackerError, match=r"^unregistered torrent$"):
        parse_scrape_response(body(failure_reason=b"unregistered torrent"), [HASH_A])


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"<html>", "not bencode"),
        (b"le", "not a dictionary"),
        (body(interval=60), "no 'files'"),
        (body(files=[]), "'files' is a list"),
        (body(files={HASH_B: 3}), f"files[{HASH_B.hex()}] is a integer"),
        (body(files={HASH_B: {b"incomplete": 1}}), "['complete'] is missing"),
        (body(files={HASH_B: {b"complete": b"1", b"incomplete": 1}}), "['complete'] is a string"),
        (body(files={HASH_B: {b"complete": 1, b"incomplete": -1}}), "['incomplete'] is negative"),
        (
            body(files={HASH_B: {b"complete": 1, b"incomplete": 1, b"downloaded": []}}),
            "['downloaded']",
        ),
        (body(failure_reason=7), "'failure reason' is a integer"),
    ],
)
def test_garbage_is_a_tracker_error_naming_the_field(data: bytes, named: str) -> None:
    with pytest.raises(TrackerError) as raised:
        parse_scrape_response(data, [HASH_B])
    assert named in str(raised.value)


def only_tracker_error(data: bytes, hashes: list[bytes]) -> None:
    try:
        results = parse_scrape_response(data, hashes)
    except TrackerError:
        return
    assert set(results) <= set(hashes)
    assert all(isinstance(r, ScrapeResult) for r in results.values())


@given(st.binary(max_size=300))
def test_garbage_bytes_only_ever_raise_tracker_error(data: bytes) -> None:
    only_tracker_error(data, [HASH_A, HASH_B])


values = st.recursive(
    st.integers(-(2**70), 2**70) | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from([b"complete", b"downloaded", b"incomplete", HASH_B])
            | st.binary(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(st.sampled_from([b"files", b"failure reason", b"flags"]), values, max_size=3)
)
def test_well_formed_bencode_with_wrong_values_only_raises_tracker_error(
    fields: dict[bytes, object],
) -> None:
    only_tracker_error(bencode.encode(fields), [HASH_B])


# --- HTTPScraper --------------------------------------------------------------------

URL = "http://tracker.example/announce?passkey=s3cr3t"
DISPLAY = "http://tracker.example/scrape"


class Setup:
    def __init__(self, respond: Responder, url: str = URL, **options: Any) -> None:
        self.resource = FakeTracker(respond)
        self.stub = StubTreq(self.resource)
        self.clock = task.Clock()
        self.scraper = HTTPScraper(url, self.stub, self.clock, **options)  # type: ignore[arg-type]

    def scrape(self, *hashes: bytes) -> defer.Deferred[dict[bytes, ScrapeResult]]:
        d = self.scraper.scrape(hashes or (HASH_A, HASH_B))
        self.stub.flush()
        return d


def test_scraper_sends_the_exact_query_and_parses_the_answer() -> None:
    answer = body(files={HASH_A: {b"complete": 1, b"downloaded": 2, b"incomplete": 3}})
    setup = Setup(lambda request: answer)
    assert result_of(setup.scrape()) == {HASH_A: ScrapeResult(1, 2, 3)}
    assert setup.resource.requests[0].uri == (
        f"/scrape?passkey=s3cr3t&info_hash={QUOTED_A}&info_hash={'b' * 20}".encode()
    )
    assert setup.clock.getDelayedCalls() == []
    assert repr(setup.scraper) == f"<HTTPScraper {DISPLAY}>"


def test_scraper_errors_name_the_redacted_url() -> None:
    setup = Setup(lambda request: body(failure_reason=b"scrape disabled"))
    assert tracker_error(setup.scrape()) == f"{DISPLAY}: scrape disabled"


def test_scraper_non_200_status_is_an_error() -> None:
    def respond(request: Request) -> bytes:
        request.setResponseCode(404)
        return b"no"

    assert tracker_error(Setup(respond).scrape()) == f"{DISPLAY}: HTTP status 404 Not Found"


def test_scraper_body_over_the_cap_is_refused() -> None:
    assert "over the 100 byte cap" in tracker_error(
        Setup(lambda r: b"x" * 500, max_body=100).scrape()
    )


def test_scraper_times_out_on_a_stalled_body_and_closes_the_connection() -> None:
    def respond(request: Request) -> int:
        request.write(b"d5:files")
        return NOT_DONE_YET

    setup = Setup(respond, timeout=10.0)
    d = setup.scrape()
    outcome = watch(d)
    setup.clock.advance(9)
    assert outcome == []  # d.called is already true: it waits on the body reader
    setup.clock.advance(1)
    assert tracker_error(d) == f"{DISPLAY}: scrape timed out after 10.0 s"
    setup.stub.flush()
    assert setup.resource.lost == setup.resource.requests
    assert setup.clock.getDelayedCalls() == []


def test_cancelling_a_scrape_closes_the_request() -> None:
    setup = Setup(lambda request: NOT_DONE_YET)
    d = setup.scrape()
    d.cancel()
    assert tracker_error(d) == f"{DISPLAY}: scrape cancelled"
    setup.stub.flush()
    assert setup.resource.lost == setup.resource.requests
    assert setup.clock.getDelayedCalls() == []


def test_scraper_network_failure_is_a_tracker_error_and_a_bug_is_not() -> None:
    refused = HTTPScraper(URL, HTTPClient(FailingAgent(ConnectionRefusedError())), task.Clock())
    assert tracker_error(refused.scrape([HASH_B])).startswith(
        f"{DISPLAY}: scrape ConnectionRefusedError"
    )
    buggy = HTTPScraper(URL, HTTPClient(FailingAgent(ZeroDivisionError())), task.Clock())
    result = result_of(buggy.scrape([HASH_B]))
    assert isinstance(result, Failure) and result.check(ZeroDivisionError)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://tracker.example/a", "no scrape URL"),
        ("udp://tracker.example:80/announce", "no scrape URL"),
        ("http://t:x/announce", "not a valid http"),
        ("http:///announce", "no scrape URL"),
        ("http://tracker.example/ännounce/announce", "not a valid http"),
    ],
)
def test_scraper_refuses_urls_without_a_usable_scrape_url(url: str, reason: str) -> None:
    with pytest.raises(TrackerError, match=reason):
        HTTPScraper(url, StubTreq(Resource()), task.Clock())  # type: ignore[arg-type]
