"""The Transmission endpoints over HTTP: auth, the session-id exchange, the web files."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.task import Clock

from bt.control.api import ControlResource
from bt.control.auth import BearerAuth
from bt.control.transmission.resource import (
    CHALLENGE,
    SESSION_HEADER,
    TransmissionResource,
    TransmissionRouter,
)
from bt.control.transmission.rpc import Rpc
from control import AUTH, TOKEN, FakeSession, make_status

HASH = "ab" * 20
BASIC = {"Authorization": "Basic " + base64.b64encode(f"anyone:{TOKEN}".encode()).decode()}


@pytest.fixture
def web_home(tmp_path: Path) -> Path:
    home = tmp_path / "web"
    (home / "javascript").mkdir(parents=True)
    (home / "index.html").write_text("<html>transmission web</html>")
    (home / "javascript" / "main.js").write_text("var x = 1;")
    (tmp_path / "secret.txt").write_text("not for you")
    (home / "escape").symlink_to(tmp_path / "secret.txt")
    return home


@pytest.fixture
def rpc() -> Rpc:
    session = FakeSession()
    session.torrents[bytes.fromhex(HASH)] = make_status(HASH)
    return Rpc(session, clock=Clock(), run_blocking=defer.maybeDeferred)


@pytest.fixture
def client(rpc: Rpc, web_home: Path) -> StubTreq:
    api = BearerAuth(ControlResource(rpc.session, run_blocking=defer.maybeDeferred), token=TOKEN)
    site = TransmissionResource(rpc, lambda: TOKEN, web_home=web_home)
    return StubTreq(TransmissionRouter(api, site))


def url(path: str) -> str:
    return f"http://localhost{path}"


REQUEST = json.dumps({"method": "torrent-get", "arguments": {"fields": ["id", "name"]}})


@pytest_twisted.ensureDeferred
async def test_the_session_id_exchange_then_the_answer(client: StubTreq, rpc: Rpc) -> None:
    first = await client.post(url("/transmission/rpc"), data=REQUEST, headers=BASIC)
    assert first.code == 409
    (session_id,) = first.headers.getRawHeaders(SESSION_HEADER)
    assert session_id == rpc.session_id
    for path in ("/transmission/rpc", "/transmission/rpc/"):
        headers = {**BASIC, SESSION_HEADER: session_id}
        reply = await client.post(url(path), data=REQUEST, headers=headers)
        assert reply.code == 200
        assert reply.headers.getRawHeaders(SESSION_HEADER) == [session_id]
        body = json.loads(await reply.content())
        torrents = [{"id": 1, "name": "example"}]
        assert body == {"result": "success", "arguments": {"torrents": torrents}}
    stale = await client.post(
        url("/transmission/rpc"), data=REQUEST, headers={**BASIC, SESSION_HEADER: "0"}
    )
    assert stale.code == 409


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"anyone:wrong").decode()},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest x"},
        {"Authorization": "Bearer wrong"},
    ],
)
@pytest_twisted.ensureDeferred
async def test_no_or_wrong_credentials_are_a_basic_challenge(
    client: StubTreq, headers: dict[str, str]
) -> None:
    for path in ("/transmission/rpc", "/transmission/web/", "/transmission/web/javascript/main.js"):
        reply = await client.post(url(path), data=REQUEST, headers=headers)
        assert reply.code == 401
        assert reply.headers.getRawHeaders("WWW-Authenticate") == [CHALLENGE]
        assert CHALLENGE == 'Basic realm="Transmission"'


@pytest_twisted.ensureDeferred
async def test_the_bearer_token_works_too(client: StubTreq, rpc: Rpc) -> None:
    headers = {**AUTH, SESSION_HEADER: rpc.session_id}
    reply = await client.post(url("/transmission/rpc"), data=REQUEST, headers=headers)
    assert reply.code == 200


@pytest_twisted.ensureDeferred
async def test_bad_requests_are_200_with_transmissions_error_shape(
    client: StubTreq, rpc: Rpc
) -> None:
    headers = {**BASIC, SESSION_HEADER: rpc.session_id}
    for body, result in ((b"{nope", "request is not valid JSON"), (b'{"method": "x"}', None)):
        reply = await client.post(url("/transmission/rpc"), data=body, headers=headers)
        assert reply.code == 200
        answer = json.loads(await reply.content())
        assert answer["arguments"] == {}
        assert answer["result"] == (result or "method name not recognized")


@pytest_twisted.ensureDeferred
async def test_the_web_client_files_and_nothing_outside_them(client: StubTreq) -> None:
    index = await client.get(url("/transmission/web/"), headers=BASIC)
    assert index.code == 200 and b"transmission web" in await index.content()
    assert index.headers.getRawHeaders("content-type")[0].startswith("text/html")
    script = await client.get(url("/transmission/web/javascript/main.js"), headers=BASIC)
    assert script.code == 200 and await script.content() == b"var x = 1;"
    for path in (
        "/transmission/web/missing.js",
        "/transmission/web/%2e%2e/secret.txt",
        "/transmission/web/..%2fsecret.txt",
        "/transmission/web/escape",
        "/transmission/web/.hidden",
        "/transmission/nonsense",
    ):
        reply = await client.get(url(path), headers=BASIC)
        assert reply.code == 404, path
        assert b"not for you" not in await reply.content()
    for path in ("/transmission", "/transmission/", "/transmission/web"):
        moved = await client.get(url(path), headers=BASIC, allow_redirects=False)
        assert moved.code == 301
        assert moved.headers.getRawHeaders("Location") == ["/transmission/web/"]


@pytest_twisted.ensureDeferred
async def test_a_web_file_that_fails_to_read_is_a_500_not_a_hung_request(
    rpc: Rpc, web_home: Path
) -> None:
    def broken(*args: Any) -> defer.Deferred[Any]:
        return defer.fail(RuntimeError("symlink loop"))

    site = TransmissionResource(rpc, lambda: TOKEN, web_home=web_home, run_blocking=broken)
    reply = await StubTreq(site).get(url("/transmission/web/"), headers=BASIC)
    assert reply.code == 500
    assert b"see the log" in await reply.content()


@pytest_twisted.ensureDeferred
async def test_without_web_home_the_files_are_404_and_bts_api_is_untouched(rpc: Rpc) -> None:
    api = BearerAuth(ControlResource(rpc.session, run_blocking=defer.maybeDeferred), token=TOKEN)
    client = StubTreq(TransmissionRouter(api, TransmissionResource(rpc, lambda: TOKEN)))
    reply = await client.get(url("/transmission/web/"), headers=BASIC)
    assert reply.code == 404 and b"--web-home" in await reply.content()
    ours = await client.get(url("/api/v1/torrents"), headers=AUTH)
    assert ours.code == 200
    # bt's own API stays bearer-only: the Basic credentials open only /transmission.
    assert (await client.get(url("/api/v1/torrents"), headers=BASIC)).code == 401


@pytest_twisted.ensureDeferred
async def test_no_token_yet_refuses_everyone(rpc: Rpc) -> None:
    client = StubTreq(TransmissionResource(rpc, lambda: None))
    reply = await client.post(url("/transmission/rpc"), data=REQUEST, headers=BASIC)
    assert reply.code == 401


def test_site_root_carries_the_control_service(tmp_path: Path) -> Any:
    from bt.control.service import ControlService

    service = ControlService(FakeSession(), "tcp:0", tmp_path, web_home=tmp_path)
    root = service._connections.wrappedFactory.resource
    assert isinstance(root, TransmissionRouter)
    assert root.transmission.web_home == tmp_path
