"""Nothing of the control API is reachable without the bearer token."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from bt.control.auth import CHALLENGE
from control import AUTH, TOKEN, FakeSession, stub_client

PATHS = [
    ("GET", "/api/v1/session"),
    ("GET", "/api/v1/torrents"),
    ("POST", "/api/v1/torrents"),
    ("DELETE", f"/api/v1/torrents/{'ab' * 20}"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/no/such/path"),
    ("GET", "/"),
]

BAD_HEADERS = [
    ({}, ""),
    ({"Authorization": "Bearer wrong-token"}, 'error="invalid_token"'),
    ({"Authorization": f"Bearer {TOKEN}x"}, 'error="invalid_token"'),
    ({"Authorization": f"Basic {TOKEN}"}, ""),
    ({"Authorization": "Bearer "}, ""),
    ({"Authorization": TOKEN}, ""),
]


async def assert_refused(response: Any, detail: str) -> None:
    assert response.code == 401
    [challenge] = response.headers.getRawHeaders("www-authenticate")
    assert challenge.startswith(CHALLENGE)
    assert detail in challenge
    body = await response.json()
    assert body["error"]["status"] == 401
    assert body["error"]["message"]


@pytest.mark.parametrize(("method", "path"), PATHS)
@pytest.mark.parametrize(("headers", "detail"), BAD_HEADERS)
@pytest_twisted.ensureDeferred
async def test_requests_without_the_right_token_are_401(
    method: str, path: str, headers: dict[str, str], detail: str
) -> None:
    session = FakeSession()
    response = await stub_client(session).request(
        method, f"http://localhost{path}", headers=headers
    )
    await assert_refused(response, detail)
    assert session.calls == []


@pytest_twisted.ensureDeferred
async def test_the_scheme_is_case_insensitive() -> None:
    headers = {"Authorization": f"bearer {TOKEN}"}
    response = await stub_client(FakeSession()).get("http://localhost/metrics", headers=headers)
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_every_request_is_refused_until_a_token_exists() -> None:
    client = stub_client(FakeSession(), token=None)  # type: ignore[arg-type]
    response = await client.get("http://localhost/api/v1/session", headers=AUTH)
    await assert_refused(response, "invalid_token")


@pytest.mark.parametrize("path", ["/api/v1/session", "/metrics", "/api/v1/openapi.json"])
@pytest_twisted.ensureDeferred
async def test_the_right_token_opens_every_path(path: str) -> None:
    response = await stub_client(FakeSession()).get(f"http://localhost{path}", headers=AUTH)
    assert response.code == 200
