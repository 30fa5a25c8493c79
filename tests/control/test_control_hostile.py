"""Bad input to the control API is always a 4xx naming what was wrong; a 500 is a bug in bt.

Each case below once answered 500 with a traceback in the log. The properties at
the end throw garbage bodies, paths and query strings at the whole stack (the
daemon's Site, the token check, the routes) and require a 4xx or a success, never
a 500, and never a logged failure.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import capturedLogs

from bt.control.fields import MAX_DEPTH
from control import AUTH, TOKEN, FakeSession, make_status, stub_client
from control.test_control_site import Server

HASH = "ab" * 20
EXAMPLES = int(os.environ.get("BT_FUZZ_EXAMPLES", "200"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def client() -> Any:
    session = FakeSession()
    session.torrents[bytes.fromhex(HASH)] = make_status(HASH)
    return stub_client(session)


async def refused(response: Any, status: int, *fragments: str) -> str:
    assert response.code == status, await response.text()
    message: str = (await response.json())["error"]["message"]
    for fragment in fragments:
        assert fragment in message
    assert len(message) < 600
    return message


JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "body", "fragments"),
    [
        ("POST", "/api/v1/torrents", "[" * 100_000, ("nested deeper than",)),
        ("POST", "/api/v1/torrents", '{"path": ' + "[" * 50_000 + "}", ("nested deeper",)),
        ("POST", "/api/v1/torrents", '{"paused": ' + "[" * 500 + "]" * 500 + "}", ("nested",)),
        ("POST", "/api/v1/torrents", '{"path": "/srv/a\\u0000.torrent"}', ("path:", "NUL")),
        ("POST", "/api/v1/torrents", '{"path": "/srv/\\ud800.torrent"}', ("path:", "surrogate")),
        ("POST", "/api/v1/torrents", '{"path": "/' + "a" * 300 + '"}', ("path:", "255")),
        ("POST", "/api/v1/torrents", '{"path": "' + "/a" * 3000 + '"}', ("path:", "4095")),
        (
            "POST",
            "/api/v1/torrents",
            '{"torrent": "ZA==", "download_dir": "/a\\u0000"}',
            ("download_dir:", "NUL"),
        ),
        ("PATCH", "/api/v1/session", '{"upload_limit": ' + "9" * 400 + "}", ("upload_limit:",)),
        ("PATCH", "/api/v1/session", '{"upload_limit": ' + "9" * 5000 + "}", ("not valid JSON",)),
        ("PATCH", "/api/v1/session", '{"download_limit": 1e308}', ("download_limit:", "largest")),
        ("PATCH", "/api/v1/session", '{"upload_limit": "' + "9" * 400 + 'K"}', ("largest",)),
        ("PATCH", "/api/v1/session", b"\xff\xfe\x00{", ("not valid JSON",)),
        (
            "PATCH",
            f"/api/v1/torrents/{HASH}",
            '{"file_priorities": {"' + "9" * 5000 + '": "skip"}}',
            ("not a file index",),
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_bodies_are_4xx_naming_the_problem(
    client: Any, method: str, path: str, body: str | bytes, fragments: tuple[str, ...]
) -> None:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    with capturedLogs() as events:
        response = await client.request(
            method, f"http://localhost{path}", data=data, headers=JSON_HEADERS
        )
        await refused(response, 400, *fragments)
    assert not [e for e in events if "log_failure" in e]


@pytest_twisted.ensureDeferred
async def test_a_nul_in_a_query_path_is_a_400(client: Any) -> None:
    response = await client.post(
        "http://localhost/api/v1/torrents?download_dir=/srv/a%00b",
        data=b"d4:infode",
        headers={**AUTH, "Content-Type": "application/x-bittorrent"},
    )
    await refused(response, 400, "download_dir:", "NUL")


@pytest_twisted.ensureDeferred
async def test_what_the_client_sent_is_quoted_bounded_and_escaped(client: Any) -> None:
    response = await client.get(
        "http://localhost/api/v1/torrents/" + quote("\x1b[31m" + "x" * 5000), headers=AUTH
    )
    message = await refused(response, 400, "not an info-hash")
    assert "\x1b" not in message and "\\x1b[31m" in message
    response = await client.patch(
        "http://localhost/api/v1/session",
        data=json.dumps({"upload_limit": "\x07" * 10_000}).encode(),
        headers=JSON_HEADERS,
    )
    message = await refused(response, 400, "upload_limit:")
    assert "\x07" not in message


def test_the_depth_check_does_not_recurse() -> None:
    from bt.control.fields import depth

    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert depth(deep) == MAX_DEPTH + 1
    assert depth({"a": [1, {"b": "c"}]}) == 3
    assert depth(5) == 0


# -- properties over the whole stack -------------------------------------------------------


def exchange(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    server = Server(max_body=64 * 1024)
    server.session.torrents[bytes.fromhex(HASH)] = make_status(HASH)
    client = server.connect()
    with capturedLogs() as events:
        client.send(raw)
    failures = [e for e in events if "log_failure" in e]
    assert not failures, failures[0]["log_failure"].getTraceback()
    return client.replies()


def assert_never_a_500(replies: list[tuple[int, dict[str, str], bytes]], method: str) -> None:
    for status, headers, body in replies:
        assert status < 500, body
        json_error = status >= 400 and headers.get("content-type") == "application/json"
        if json_error and method != "HEAD":
            error = json.loads(body)["error"]
            assert error["status"] == status and error["message"]


ROUTE_PATHS = st.sampled_from(
    [
        "/api/v1/session",
        "/api/v1/torrents",
        f"/api/v1/torrents/{HASH}",
        f"/api/v1/torrents/{HASH}/pause",
        f"/api/v1/torrents/{HASH}/recheck",
    ]
)
METHODS = st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"])
FIELDS = st.sampled_from(
    ["path", "torrent", "paused", "download_dir", "upload_limit", "download_limit",
     "file_priorities", "\x00", ""]
)  # fmt: skip
#: Paths, rates and indexes of the shapes that hurt: NUL, lone surrogates, too long.
AWKWARD = st.one_of(
    st.text(st.sampled_from("/a.\x00\ud800é%\\"), max_size=12).map(lambda t: "/" + t),
    st.sampled_from(["/" + "a" * 300, "/a" * 3000, "9" * 400 + "K", "1e400", "-1", "0x10"]),
    st.sampled_from([10**400, 10**20, 1e308, -0.0, 2**63]),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=50)
    | AWKWARD,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5) | FIELDS, children, max_size=4)
    ),
    max_leaves=20,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(FIELDS, JSON_VALUES, max_size=4).map(
        lambda d: json.dumps(d, allow_nan=True).encode()
    ),
    JSON_VALUES.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.sampled_from([1, 16, 17, 999, 1500, 20_000]).map(lambda n: b"[" * n + b"]" * n),
    st.sampled_from([17, 1500, 20_000]).map(lambda n: b'{"path": ' + b"[" * n + b"]" * n + b"}"),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-bittorrent", "text/plain", "", "image/png", "\x7f"]
)


def request_bytes(method: str, path: bytes, content_type: str, body: bytes) -> bytes:
    head = (
        method.encode()
        + b" "
        + path
        + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Type: "
        + content_type.encode("latin-1")
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


@fuzz
@given(METHODS, ROUTE_PATHS, CONTENT_TYPES, BODIES)
def test_garbage_bodies_never_get_a_500(
    method: str, path: str, content_type: str, body: bytes
) -> None:
    assert_never_a_500(exchange(request_bytes(method, path.encode(), content_type, body)), method)


PATH_TEXT = st.lists(
    st.characters(codec="utf-8") | st.sampled_from(["/", "%", "%00", "%ff", "?", "&", "=", HASH]),
    max_size=30,
).map("".join)


@fuzz
@given(
    METHODS,
    st.one_of(
        PATH_TEXT.map(lambda t: b"/api/v1/torrents/" + quote(t, safe="/%?&=").encode()),
        PATH_TEXT.map(lambda t: b"/api/v1/" + quote(t, safe="/%?&=").encode()),
        st.binary(max_size=40).map(lambda b: f"/api/v1/torrents/{HASH}?".encode() + b),
        PATH_TEXT.map(
            lambda t: b"/api/v1/torrents?download_dir=" + quote(t, safe="%").encode() + b"&paused=1"
        ),
        st.binary(max_size=60).map(lambda b: b"/" + b.replace(b" ", b"").replace(b"\n", b"")),
    ),
    CONTENT_TYPES,
)
def test_garbage_paths_and_queries_never_get_a_500(
    method: str, path: bytes, content_type: str
) -> None:
    body = b"d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:" + b"p" * 20 + b"ee"
    assert_never_a_500(exchange(request_bytes(method, path, content_type, body)), method)


def test_a_full_v2_hash_in_the_path_names_the_torrent_by_its_first_20_bytes() -> None:
    from bt.control import fields

    v2 = bytes(range(32))
    assert fields.info_hash(v2.hex()) == v2[:20]
    assert fields.info_hash(v2[:20].hex().upper()) == v2[:20]
    for bad in (v2.hex()[:50], v2.hex() + "00", "g" * 40):
        with pytest.raises(fields.ApiError):
            fields.info_hash(bad)
