"""The web page's log-in: the cookie, what it opens, and the CSRF rule (in memory)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.web.test.requesthelper import DummyRequest

from bt.control.api import ControlResource
from bt.control.auth import CHALLENGE, BearerAuth
from bt.control.webpage import WebFront, load_assets
from bt.control.websessions import COOKIE, WebSessions, csrf_refusal, same_origin
from control import AUTH, TOKEN, FakeSession, torrent_bytes

HOST = "http://127.0.0.1:9092"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def web_client(
    session: FakeSession | None = None, sessions: WebSessions | None = None
) -> tuple[StubTreq, WebFront, FakeSession]:
    session = session if session is not None else FakeSession()
    resource = ControlResource(session, run_blocking=defer.maybeDeferred)
    front = WebFront(lambda: TOKEN, sessions)
    return StubTreq(BearerAuth(resource, TOKEN, web=front)), front, session


async def log_in(client: StubTreq, token: str = TOKEN, **headers: str) -> Any:
    return await client.post(
        f"{HOST}/login",
        data=f"token={token}".encode(),
        headers={**FORM, **headers},
        allow_redirects=False,
    )


def session_cookie(response: Any) -> str:
    [header] = response.headers.getRawHeaders("set-cookie")
    name_value = header.split(";")[0]
    name, _, value = name_value.partition("=")
    assert name == COOKIE.decode()
    return value


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE.decode()}={value}"}


# -- the files ---------------------------------------------------------------------------


def test_the_pages_files_are_found_through_importlib_resources() -> None:
    assets = load_assets()
    for name in ("index.html", "login.html", "app.js", "api.js", "style.css", "login.css"):
        assert assets[name], name
    # Nothing fetched from elsewhere: no absolute URL in any file of the page.
    for name, data in assets.items():
        text = data.decode("utf-8").replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in text and "https://" not in text, name


# -- logging in --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_without_a_login_the_root_shows_only_the_login_form() -> None:
    client, _, _ = web_client()
    response = await client.get(f"{HOST}/")
    assert response.code == 200
    body = (await response.content()).decode()
    assert 'action="/login"' in body and "<script" not in body
    policy = response.headers.getRawHeaders("content-security-policy")[0]
    assert "script-src" not in policy and "default-src 'none'" in policy


@pytest.mark.parametrize("path", ["/web/app.js", "/web/style.css", "/web/index.html"])
@pytest_twisted.ensureDeferred
async def test_the_pages_files_need_a_login(path: str) -> None:
    client, _, _ = web_client()
    response = await client.get(f"{HOST}{path}")
    assert response.code in (401, 404)
    assert b"app.js" not in await response.content()


@pytest_twisted.ensureDeferred
async def test_the_login_forms_stylesheet_is_public() -> None:
    client, _, _ = web_client()
    response = await client.get(f"{HOST}/web/login.css")
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["text/css; charset=utf-8"]


@pytest_twisted.ensureDeferred
async def test_the_right_token_sets_a_strict_httponly_cookie_that_is_not_the_token() -> None:
    client, front, _ = web_client()
    response = await log_in(client)
    assert response.code == 303
    assert response.headers.getRawHeaders("location") == ["/"]
    [header] = response.headers.getRawHeaders("set-cookie")
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "SameSite=Strict" in header and "Path=/" in header
    assert "Secure" not in header  # plain HTTP here; over TLS it is added
    value = session_cookie(response)
    assert TOKEN not in value and len(value) >= 40
    assert len(front.sessions) == 1


@pytest.mark.parametrize("token", ["wrong", f"{TOKEN}x", ""])
@pytest_twisted.ensureDeferred
async def test_a_wrong_token_sets_no_cookie(token: str) -> None:
    client, front, _ = web_client()
    response = await log_in(client, token)
    assert response.code == 401
    assert response.headers.getRawHeaders("set-cookie") is None
    assert b"Wrong token" in await response.content()
    assert len(front.sessions) == 0


@pytest_twisted.ensureDeferred
async def test_a_login_posted_from_another_site_is_refused() -> None:
    client, front, _ = web_client()
    response = await log_in(client, Origin="http://evil.example")
    assert response.code == 403
    assert response.headers.getRawHeaders("set-cookie") is None
    assert len(front.sessions) == 0


@pytest_twisted.ensureDeferred
async def test_the_token_is_never_taken_from_the_url() -> None:
    client, front, _ = web_client()
    response = await client.post(
        f"{HOST}/login?token={TOKEN}", data=b"", headers=FORM, allow_redirects=False
    )
    assert response.code == 401
    response = await client.get(f"{HOST}/login?token={TOKEN}")
    assert response.code == 405
    assert len(front.sessions) == 0


@pytest_twisted.ensureDeferred
async def test_the_cookie_opens_the_page_and_its_files() -> None:
    client, _, _ = web_client()
    value = session_cookie(await log_in(client))
    page = await client.get(f"{HOST}/", headers=cookie(value))
    assert page.code == 200
    body = (await page.content()).decode()
    assert '<script type="module" src="/web/app.js">' in body
    policy = page.headers.getRawHeaders("content-security-policy")[0]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    # Not no-referrer: Chromium then sends "Origin: null" with the page's own posts.
    assert page.headers.getRawHeaders("referrer-policy") == ["same-origin"]
    script = await client.get(f"{HOST}/web/app.js", headers=cookie(value))
    assert script.code == 200
    assert script.headers.getRawHeaders("content-type") == ["text/javascript; charset=utf-8"]
    for name in ("nope.js", "../control.token", "%2e%2e/control.token", "sub/app.js", ""):
        missing = await client.get(f"{HOST}/web/{name}", headers=cookie(value))
        assert missing.code == 404, name


@pytest_twisted.ensureDeferred
async def test_the_bearer_token_opens_the_page_too() -> None:
    client, _, _ = web_client()
    page = await client.get(f"{HOST}/", headers=AUTH)
    assert b"/web/app.js" in await page.content()


# -- the cookie on the API ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_cookie_reads_the_api_like_the_bearer_token() -> None:
    client, _, _ = web_client()
    value = session_cookie(await log_in(client))
    for path in ("/api/v1/session", "/api/v1/torrents", "/metrics"):
        response = await client.get(f"{HOST}{path}", headers=cookie(value))
        assert response.code == 200, path


@pytest.mark.parametrize("value", ["", "made-up", TOKEN])
@pytest_twisted.ensureDeferred
async def test_an_unknown_cookie_or_the_token_as_a_cookie_is_refused(value: str) -> None:
    client, _, session = web_client()
    await log_in(client)
    response = await client.get(f"{HOST}/api/v1/session", headers=cookie(value))
    assert response.code == 401
    assert response.headers.getRawHeaders("www-authenticate")[0].startswith(CHALLENGE)
    assert session.calls == []


@pytest_twisted.ensureDeferred
async def test_a_wrong_bearer_token_is_refused_even_with_a_good_cookie() -> None:
    client, _, _ = web_client()
    value = session_cookie(await log_in(client))
    headers = {**cookie(value), "Authorization": "Bearer wrong"}
    response = await client.get(f"{HOST}/api/v1/session", headers=headers)
    assert response.code == 401


@pytest_twisted.ensureDeferred
async def test_a_cookie_state_change_needs_the_custom_header() -> None:
    client, _, session = web_client()
    value = session_cookie(await log_in(client))
    body = torrent_bytes()
    headers = {**cookie(value), "Content-Type": "application/x-bittorrent"}
    refused = await client.post(f"{HOST}/api/v1/torrents", data=body, headers=headers)
    assert refused.code == 403
    assert "X-BT-Request" in (await refused.json())["error"]["message"]
    assert session.calls == []
    allowed = await client.post(
        f"{HOST}/api/v1/torrents", data=body, headers={**headers, "X-BT-Request": "1"}
    )
    assert allowed.code == 201


@pytest_twisted.ensureDeferred
async def test_a_cookie_state_change_from_another_origin_is_refused() -> None:
    client, _, session = web_client()
    value = session_cookie(await log_in(client))
    headers = {**cookie(value), "X-BT-Request": "1", "Origin": "http://evil.example"}
    response = await client.patch(f"{HOST}/api/v1/session", json={}, headers=headers)
    assert response.code == 403
    assert session.calls == []
    same = {**headers, "Origin": HOST}
    response = await client.patch(f"{HOST}/api/v1/session", json={}, headers=same)
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_bearer_requests_need_no_custom_header() -> None:
    client, _, _ = web_client()
    response = await client.post(
        f"{HOST}/api/v1/torrents",
        data=torrent_bytes(),
        headers={**AUTH, "Content-Type": "application/x-bittorrent"},
    )
    assert response.code == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/session"),
        ("POST", "/api/v1/torrents"),
        ("DELETE", f"/api/v1/torrents/{'ab' * 20}"),
        ("GET", "/metrics"),
        ("GET", "/no/such/path"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_with_the_web_front_the_api_still_needs_a_credential(method: str, path: str) -> None:
    client, _, session = web_client()
    response = await client.request(method, f"{HOST}{path}")
    assert response.code == 401
    assert session.calls == []


# -- logging out -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_logout_forgets_the_session_and_clears_the_cookie() -> None:
    client, front, _ = web_client()
    value = session_cookie(await log_in(client))
    out = await client.post(
        f"{HOST}/logout", headers={**cookie(value), "X-BT-Request": "1"}, allow_redirects=False
    )
    assert out.code == 303
    [header] = out.headers.getRawHeaders("set-cookie")
    assert header.startswith(f"{COOKIE.decode()}=;") and "Max-Age=0" in header
    assert len(front.sessions) == 0
    response = await client.get(f"{HOST}/api/v1/session", headers=cookie(value))
    assert response.code == 401


@pytest_twisted.ensureDeferred
async def test_logout_without_the_custom_header_is_refused() -> None:
    client, front, _ = web_client()
    value = session_cookie(await log_in(client))
    out = await client.post(f"{HOST}/logout", headers=cookie(value), allow_redirects=False)
    assert out.code == 403
    assert len(front.sessions) == 1


# -- the sessions themselves -------------------------------------------------------------


def test_sessions_expire() -> None:
    clock = Clock()
    sessions = WebSessions(clock, lifetime=60)
    value = sessions.create()
    assert sessions.valid(value)
    clock.now += 59
    assert sessions.valid(value)
    clock.now += 2
    assert not sessions.valid(value)
    assert len(sessions) == 0


def test_sessions_are_bounded_the_oldest_forgotten() -> None:
    sessions = WebSessions(Clock(), limit=3)
    values = [sessions.create() for _ in range(5)]
    assert len(sessions) == 3
    assert [sessions.valid(v) for v in values] == [False, False, True, True, True]


def test_session_ids_are_random_and_distinct() -> None:
    sessions = WebSessions(Clock())
    values = {sessions.create() for _ in range(50)}
    assert len(values) == 50


@pytest_twisted.ensureDeferred
async def test_an_expired_cookie_shows_the_login_form_again() -> None:
    clock = Clock()
    client, _, _ = web_client(sessions=WebSessions(clock, lifetime=60))
    value = session_cookie(await log_in(client))
    clock.now += 61
    page = await client.get(f"{HOST}/", headers=cookie(value))
    assert b'action="/login"' in await page.content()


def request(method: bytes, **headers: bytes) -> DummyRequest:
    dummy = DummyRequest([b""])
    dummy.method = method
    dummy.isSecure = lambda: False  # type: ignore[attr-defined]
    for name, value in headers.items():
        dummy.requestHeaders.setRawHeaders(name.replace("_", "-"), [value])
    return dummy


def test_the_csrf_rule_on_twisted_requests() -> None:
    host = b"127.0.0.1:9092"
    assert csrf_refusal(request(b"GET", host=host)) is None
    assert csrf_refusal(request(b"HEAD", host=host, origin=b"http://evil")) is None
    assert csrf_refusal(request(b"POST", host=host)) is not None
    assert csrf_refusal(request(b"POST", host=host, x_bt_request=b"1")) is None
    assert csrf_refusal(request(b"DELETE", host=host, x_bt_request=b" ")) is not None
    evil = request(b"POST", host=host, x_bt_request=b"1", origin=b"http://evil")
    assert "Origin" in (csrf_refusal(evil) or "")
    same = request(b"PATCH", host=host, x_bt_request=b"1", origin=b"http://127.0.0.1:9092")
    assert csrf_refusal(same) is None
    assert not same_origin(request(b"POST", origin=b"http://127.0.0.1:9092"))  # no Host
    assert not same_origin(request(b"POST", host=host, origin=b"null"))


def test_the_cookie_is_secure_over_tls() -> None:
    sessions = WebSessions(Clock())
    dummy = request(b"POST", host=b"h")
    dummy.isSecure = lambda: True  # type: ignore[attr-defined]
    sessions.set_cookie(dummy, sessions.create())
    [header] = dummy.responseHeaders.getRawHeaders(b"set-cookie")
    assert b"; Secure" in header and b"SameSite=Strict" in header and b"HttpOnly" in header


# -- the cookie on the event stream ------------------------------------------------------


def test_the_cookie_opens_the_event_stream_and_a_stale_one_does_not() -> None:
    from bt.control.site import ControlSite
    from bt.events import Kind
    from control.test_control_events import Daemon

    daemon = Daemon()
    front = WebFront(lambda: TOKEN)
    daemon.site = ControlSite(BearerAuth(daemon.api, TOKEN, web=front), reactor=daemon.clock)
    value = front.sessions.create()
    stream = daemon.connect(f"Cookie: {COOKIE.decode()}={value}", token=None)
    daemon.publish(Kind.STATE_CHANGED)
    status, headers, _ = stream.response()
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert stream.kinds() == ["state-changed"]
    front.sessions.revoke(value)
    refused = daemon.connect(f"Cookie: {COOKIE.decode()}={value}", token=None)
    assert refused.response()[0] == 401
