"""The control API's routes, status codes and error shape, against a fake session."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.error import ConnectionDone
from twisted.logger import LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from bt.control.api import ControlResource
from bt.errors import MoveError, StorageError
from bt.metainfo import parse_metainfo
from bt.status import UNCHANGED, FilePriority, FileStatus, TorrentState
from control import AUTH, TEST_MAX_BODY, FakeSession, make_status, stub_client, torrent_bytes

HASH = "ab" * 20
RAW = {**AUTH, "Content-Type": "application/x-bittorrent"}


@pytest.fixture
def session() -> FakeSession:
    three_files = tuple(FileStatus(i, f"f{i}", 10_000, FilePriority.NORMAL, 0) for i in range(3))
    fake = FakeSession()
    fake.torrents[bytes.fromhex(HASH)] = make_status(HASH, files=three_files)
    return fake


@pytest.fixture
def client(session: FakeSession) -> Any:
    return stub_client(session)


async def error_of(response: Any, status: int, *fragments: str) -> str:
    """Asserts the one error shape and returns its message."""
    assert response.code == status
    assert response.headers.getRawHeaders("content-type") == ["application/json"]
    body = await response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    message = body["error"]["message"]
    assert isinstance(message, str)
    for fragment in fragments:
        assert fragment in message
    assert "Traceback" not in message
    return message


async def ok(response: Any, status: int = 200) -> Any:
    assert response.code == status, await response.text()
    assert response.headers.getRawHeaders("content-type") == ["application/json"]
    return await response.json()


def answered(deferred: Any) -> list[Any]:
    """Filled once the response arrives (``called`` is already true while chained)."""
    results: list[Any] = []

    def keep(result: Any) -> Any:
        results.append(result)
        return result

    deferred.addBoth(keep)
    return results


def url(path: str) -> str:
    return f"http://localhost{path}"


# -- session -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_get_session_is_the_status_snapshot(client: Any, session: FakeSession) -> None:
    body = await ok(await client.get(url("/api/v1/session"), headers=AUTH))
    assert body == session.status().to_json()


@pytest_twisted.ensureDeferred
async def test_patch_session_takes_numbers_and_rate_strings(
    client: Any, session: FakeSession
) -> None:
    response = await client.patch(
        url("/api/v1/session"),
        json={"upload_limit": 1000, "download_limit": "2M"},
        headers=AUTH,
    )
    body = await ok(response)
    assert session.calls == [("set_limits", 1000.0, 2 * 1024 * 1024)]
    assert (body["upload_limit"], body["download_limit"]) == (1000.0, 2 * 1024 * 1024)


@pytest_twisted.ensureDeferred
async def test_patch_session_passes_only_the_fields_sent_and_zero_is_unlimited(
    client: Any, session: FakeSession
) -> None:
    await ok(await client.patch(url("/api/v1/session"), json={"download_limit": 0}, headers=AUTH))
    await ok(await client.patch(url("/api/v1/session"), json={"upload_limit": None}, headers=AUTH))
    assert session.calls == [("set_limits", UNCHANGED, None), ("set_limits", None, UNCHANGED)]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"upload_limit": -1}, "upload_limit"),
        ({"upload_limit": "fast"}, "upload_limit"),
        ({"download_limit": True}, "download_limit"),
        ({"download_limit": [1]}, "download_limit"),
        ({"upload": 5}, "'upload'"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_patch_session_names_the_bad_field(
    client: Any, session: FakeSession, body: dict[str, Any], fragment: str
) -> None:
    response = await client.patch(url("/api/v1/session"), json=body, headers=AUTH)
    await error_of(response, 400, fragment)
    assert session.calls == []


@pytest_twisted.ensureDeferred
async def test_a_limit_too_large_for_a_float_is_400(client: Any) -> None:
    body = b'{"download_limit": 1e400}'
    response = await client.patch(url("/api/v1/session"), data=body, headers=AUTH)
    await error_of(response, 400, "download_limit")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{nope", "not valid JSON"),
        (b"[1, 2]", "got an array"),
        (b"", "empty body"),
        (b'{"upload_limit": NaN}', "NaN"),
        (b"\xff\xfe{", "not valid JSON"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_json_is_400_about_the_body(client: Any, raw: bytes, fragment: str) -> None:
    response = await client.patch(url("/api/v1/session"), data=raw, headers=AUTH)
    await error_of(response, 400, "body", fragment)


@pytest_twisted.ensureDeferred
async def test_a_limit_the_session_refuses_is_400(client: Any, session: FakeSession) -> None:
    session.fail["set_limits"] = ValueError("too small")
    response = await client.patch(url("/api/v1/session"), json={"upload_limit": 1}, headers=AUTH)
    await error_of(response, 400, "upload_limit", "too small")


# -- listing and one torrent ---------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_listing_has_every_torrent_without_files(client: Any) -> None:
    body = await ok(await client.get(url("/api/v1/torrents"), headers=AUTH))
    assert [t["info_hash"] for t in body["torrents"]] == [HASH]
    assert "files" not in body["torrents"][0]
    assert body["torrents"][0]["state"] == "downloading"


@pytest.mark.parametrize("path", [f"/api/v1/torrents/{HASH}", f"/api/v1/torrents/{HASH.upper()}/"])
@pytest_twisted.ensureDeferred
async def test_one_torrent_has_its_files_and_any_case_hash(client: Any, path: str) -> None:
    body = await ok(await client.get(url(path), headers=AUTH))
    assert body["info_hash"] == HASH
    assert [f["priority"] for f in body["files"]] == ["normal"] * 3


@pytest_twisted.ensureDeferred
async def test_unknown_torrent_is_404(client: Any) -> None:
    response = await client.get(url(f"/api/v1/torrents/{'cd' * 20}"), headers=AUTH)
    await error_of(response, 404, "cd" * 20)


@pytest.mark.parametrize("bad", ["abc", "zz" * 20, "ab" * 21])
@pytest_twisted.ensureDeferred
async def test_a_malformed_info_hash_is_400(client: Any, bad: str) -> None:
    response = await client.post(url(f"/api/v1/torrents/{bad}/pause"), headers=AUTH)
    await error_of(response, 400, bad, "40 hex")


@pytest.mark.parametrize(
    "path", ["/", "/api", "/api/v1", "/api/v2/session", f"/api/v1/torrents/{HASH}/start"]
)
@pytest_twisted.ensureDeferred
async def test_unknown_paths_are_404_json(client: Any, path: str) -> None:
    await error_of(await client.get(url(path), headers=AUTH), 404, "no such path")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/torrents", "GET, POST, HEAD"),
        ("DELETE", "/api/v1/session", "GET, PATCH, HEAD"),
        ("GET", f"/api/v1/torrents/{HASH}/pause", "POST"),
        ("POST", "/metrics", "GET, HEAD"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_wrong_method_is_405_with_allow(
    client: Any, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, url(path), headers=AUTH)
    await error_of(response, 405, method, path)
    assert response.headers.getRawHeaders("allow") == [allow]


@pytest_twisted.ensureDeferred
async def test_head_answers_like_get_without_a_body(client: Any) -> None:
    response = await client.head(url("/api/v1/session"), headers=AUTH)
    assert response.code == 200
    assert await response.content() == b""


# -- adding ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_raw_upload_adds_and_points_to_the_torrent(client: Any, session: FakeSession) -> None:
    data = torrent_bytes("raw")
    info_hash = parse_metainfo(data).info_hash.hex()
    response = await client.post(
        url("/api/v1/torrents?paused=true&download_dir=/srv/x"), data=data, headers=RAW
    )
    body = await ok(response, 201)
    assert response.headers.getRawHeaders("location") == [f"/api/v1/torrents/{info_hash}"]
    assert (body["info_hash"], body["state"], body["name"]) == (info_hash, "paused", "raw")
    assert session.calls == [("add_torrent", "raw", True, Path("/srv/x"))]


@pytest_twisted.ensureDeferred
async def test_base64_upload_tolerates_line_breaks(client: Any, session: FakeSession) -> None:
    encoded = base64.encodebytes(torrent_bytes("b64", (20_000, 30_000))).decode()
    assert "\n" in encoded
    response = await client.post(
        url("/api/v1/torrents"), json={"torrent": encoded, "paused": False}, headers=AUTH
    )
    body = await ok(response, 201)
    assert [f["path"] for f in body["files"]] == ["b64/f0", "b64/f1"]
    assert session.calls == [("add_torrent", "b64", False, None)]


@pytest_twisted.ensureDeferred
async def test_path_upload_reads_the_file_on_the_daemons_side(
    client: Any, session: FakeSession, tmp_path: Path
) -> None:
    torrent = tmp_path / "a.torrent"
    torrent.write_bytes(torrent_bytes("from-path"))
    body = {"path": str(torrent), "download_dir": str(tmp_path)}
    response = await client.post(url("/api/v1/torrents"), json=body, headers=AUTH)
    assert (await ok(response, 201))["name"] == "from-path"
    assert session.calls == [("add_torrent", "from-path", False, tmp_path)]


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({}, ("exactly one of",)),
        ({"path": "/a", "torrent": "AAAA"}, ("exactly one of",)),
        ({"path": "relative.torrent"}, ("path", "not an absolute path")),
        ({"path": "/nonexistent/x.torrent"}, ("path", "cannot read")),
        ({"path": "/"}, ("path", "not a regular file")),
        ({"torrent": "!!!"}, ("torrent", "base64")),
        ({"torrent": 5}, ("torrent", "a number")),
        ({"torrent": base64.b64encode(b"d4:spami1ee").decode()}, ("torrent", ".torrent")),
        ({"torrent": "AAAA", "paused": "yes"}, ("paused",)),
        ({"torrent": "AAAA", "download_dir": "rel"}, ("download_dir",)),
        ({"torrent": "AAAA", "label": "x"}, ("unknown field", "'label'")),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_json_uploads_are_400_naming_the_field(
    client: Any, session: FakeSession, body: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    response = await client.post(url("/api/v1/torrents"), json=body, headers=AUTH)
    await error_of(response, 400, *fragments)
    assert session.calls == []


@pytest_twisted.ensureDeferred
async def test_bad_metainfo_is_400_with_the_metainfo_message(client: Any) -> None:
    response = await client.post(url("/api/v1/torrents"), data=b"not bencode", headers=RAW)
    await error_of(response, 400, "not valid bencode")


@pytest_twisted.ensureDeferred
async def test_a_bad_query_flag_is_400(client: Any) -> None:
    response = await client.post(
        url("/api/v1/torrents?paused=maybe"), data=torrent_bytes(), headers=RAW
    )
    await error_of(response, 400, "paused", "maybe")


@pytest_twisted.ensureDeferred
async def test_duplicate_is_409(client: Any) -> None:
    data = torrent_bytes("twice")
    await ok(await client.post(url("/api/v1/torrents"), data=data, headers=RAW), 201)
    response = await client.post(url("/api/v1/torrents"), data=data, headers=RAW)
    await error_of(response, 409, "twice")


@pytest_twisted.ensureDeferred
async def test_bodies_over_the_cap_are_413(client: Any, session: FakeSession) -> None:
    big = b"x" * (TEST_MAX_BODY + 1)
    await error_of(await client.post(url("/api/v1/torrents"), data=big, headers=RAW), 413)
    await error_of(await client.patch(url("/api/v1/session"), data=big, headers=AUTH), 413)
    assert session.calls == []


@pytest_twisted.ensureDeferred
async def test_a_torrent_file_over_the_cap_is_413(client: Any, tmp_path: Path) -> None:
    huge = tmp_path / "huge.torrent"
    huge.write_bytes(b"d" + b"x" * TEST_MAX_BODY)
    response = await client.post(url("/api/v1/torrents"), json={"path": str(huge)}, headers=AUTH)
    await error_of(response, 413, str(huge))


@pytest_twisted.ensureDeferred
async def test_other_content_types_are_415(client: Any) -> None:
    headers = {**AUTH, "Content-Type": "application/xml; charset=utf-8"}
    response = await client.post(url("/api/v1/torrents"), data=b"<x/>", headers=headers)
    await error_of(response, 415, "application/xml")


# -- actions -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_pause_answers_only_once_the_session_has_paused(
    client: Any, session: FakeSession
) -> None:
    session.hold = True
    answer = client.post(url(f"/api/v1/torrents/{HASH}/pause"), headers=AUTH)
    results = answered(answer)
    client.flush()
    assert results == []
    session.held.pop().callback(None)
    client.flush()
    body = await ok(await answer)
    assert body["state"] == "paused"


@pytest_twisted.ensureDeferred
async def test_delete_waits_and_passes_delete_data(client: Any, session: FakeSession) -> None:
    session.hold = True
    answer = client.delete(url(f"/api/v1/torrents/{HASH}?delete_data=true"), headers=AUTH)
    results = answered(answer)
    client.flush()
    assert results == []
    session.held.pop().callback(None)
    client.flush()
    assert await ok(await answer) == {"removed": HASH}
    assert session.calls == [("remove_torrent", bytes.fromhex(HASH), True)]
    assert session.torrents == {}


@pytest_twisted.ensureDeferred
async def test_delete_keeps_data_by_default(client: Any, session: FakeSession) -> None:
    await ok(await client.delete(url(f"/api/v1/torrents/{HASH}"), headers=AUTH))
    assert session.calls == [("remove_torrent", bytes.fromhex(HASH), False)]


@pytest.mark.parametrize(
    ("action", "state"), [("resume", "downloading"), ("recheck", "checking"), ("pause", "paused")]
)
@pytest_twisted.ensureDeferred
async def test_actions_answer_with_the_new_status(
    client: Any, session: FakeSession, action: str, state: str
) -> None:
    body = await ok(await client.post(url(f"/api/v1/torrents/{HASH}/{action}"), headers=AUTH))
    assert body["state"] == state
    assert session.calls == [(f"{action}_torrent", bytes.fromhex(HASH))]


@pytest.mark.parametrize("action", ["pause", "resume", "recheck"])
@pytest_twisted.ensureDeferred
async def test_actions_on_an_unknown_torrent_are_404(client: Any, action: str) -> None:
    response = await client.post(url(f"/api/v1/torrents/{'cd' * 20}/{action}"), headers=AUTH)
    await error_of(response, 404, "cd" * 20)


@pytest_twisted.ensureDeferred
async def test_move_answers_once_moved_with_the_new_folder(
    client: Any, session: FakeSession
) -> None:
    session.hold = True
    answer = client.post(
        url(f"/api/v1/torrents/{HASH}/move"), headers=AUTH, json={"download_dir": "/new/place"}
    )
    results = answered(answer)
    client.flush()
    assert results == []
    session.held.pop().callback(None)
    client.flush()
    body = await ok(await answer)
    assert body["download_dir"] == "/new/place"
    assert session.calls == [("move_torrent", bytes.fromhex(HASH), Path("/new/place"), True)]


@pytest_twisted.ensureDeferred
async def test_move_false_only_points_at_the_folder(client: Any, session: FakeSession) -> None:
    body = {"download_dir": "/found", "move": False}
    await ok(await client.post(url(f"/api/v1/torrents/{HASH}/move"), headers=AUTH, json=body))
    assert session.calls == [("move_torrent", bytes.fromhex(HASH), Path("/found"), False)]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "download_dir: expected an absolute path"),
        ({"download_dir": "relative"}, "download_dir"),
        ({"download_dir": "/x", "move": "yes"}, "move: expected true or false"),
        ({"download_dir": "/x", "where": 1}, "unknown field"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_bad_move_is_400_and_moves_nothing(
    client: Any, session: FakeSession, body: dict[str, Any], fragment: str
) -> None:
    response = await client.post(url(f"/api/v1/torrents/{HASH}/move"), headers=AUTH, json=body)
    await error_of(response, 400, fragment)
    assert session.calls == []


@pytest_twisted.ensureDeferred
async def test_a_refused_move_is_409_naming_the_file(client: Any, session: FakeSession) -> None:
    session.fail["move_torrent"] = MoveError("cannot move /a/x: /b/x exists with other content")
    body = {"download_dir": "/b"}
    response = await client.post(url(f"/api/v1/torrents/{HASH}/move"), headers=AUTH, json=body)
    await error_of(response, 409, "not moved", "/b/x exists with other content")


def test_nothing_is_written_after_the_client_went_away(session: FakeSession) -> None:
    session.hold = True
    request = DummyRequest([b"api", b"v1", b"torrents", HASH.encode(), b"pause"])
    request.method = b"POST"
    request.path = b"/api/v1/torrents/" + HASH.encode() + b"/pause"
    ControlResource(session).render(request)
    request.processingFailed(Failure(ConnectionDone()))
    session.held.pop().callback(None)
    assert request.written == []
    assert request.finished == 0
    assert session.torrents[bytes.fromhex(HASH)].state is TorrentState.PAUSED


# -- changing a torrent ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_patch_torrent_sets_limits_and_priorities_by_index(
    client: Any, session: FakeSession
) -> None:
    body = {"upload_limit": "500K", "file_priorities": {"0": "skip", "2": "high"}}
    result = await ok(await client.patch(url(f"/api/v1/torrents/{HASH}"), json=body, headers=AUTH))
    raw_hash = bytes.fromhex(HASH)
    assert session.calls == [
        ("set_torrent_limits", raw_hash, 500 * 1024, UNCHANGED),
        ("set_file_priorities", raw_hash, {0: FilePriority.SKIP, 2: FilePriority.HIGH}),
    ]
    assert result["upload_limit"] == 500 * 1024
    assert [f["priority"] for f in result["files"]] == ["skip", "normal", "high"]


@pytest_twisted.ensureDeferred
async def test_patch_torrent_takes_a_list_of_priorities(client: Any, session: FakeSession) -> None:
    body = {"file_priorities": ["high", "skip", "normal"]}
    result = await ok(await client.patch(url(f"/api/v1/torrents/{HASH}"), json=body, headers=AUTH))
    assert [f["priority"] for f in result["files"]] == ["high", "skip", "normal"]


@pytest_twisted.ensureDeferred
async def test_priorities_use_the_listed_file_indexes_when_padding_files_are_hidden(
    client: Any, session: FakeSession
) -> None:
    """BEP 47 padding files are not listed: index 1 is missing, index 2 is the last file."""
    raw_hash = bytes.fromhex(HASH)
    status = session.torrents[raw_hash]
    session.torrents[raw_hash] = replace(status, files=(status.files[0], status.files[2]))
    body = {"file_priorities": {"2": "skip"}}
    await ok(await client.patch(url(f"/api/v1/torrents/{HASH}"), json=body, headers=AUTH))
    body = {"file_priorities": ["high", "normal"]}
    await ok(await client.patch(url(f"/api/v1/torrents/{HASH}"), json=body, headers=AUTH))
    assert [call[2] for call in session.calls] == [
        {2: FilePriority.SKIP},
        {0: FilePriority.HIGH, 2: FilePriority.NORMAL},
    ]
    response = await client.patch(
        url(f"/api/v1/torrents/{HASH}"), json={"file_priorities": {"1": "skip"}}, headers=AUTH
    )
    assert response.code == 400


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({"file_priorities": ["high"]}, ("file_priorities", "1 priorities for 3 files")),
        ({"file_priorities": {"3": "high"}}, ("file_priorities", "no file 3")),
        ({"file_priorities": {"x": "high"}}, ("file_priorities", "'x'")),
        ({"file_priorities": {"-1": "high"}}, ("file_priorities", "'-1'")),
        ({"file_priorities": {"0": "urgent"}}, ("file_priorities[0]", "skip, normal, high")),
        ({"file_priorities": {"0": ["skip"]}}, ("file_priorities[0]",)),
        ({"file_priorities": "skip"}, ("file_priorities", "a string")),
        ({"download_limit": "x", "file_priorities": ["high"] * 3}, ("download_limit",)),
        ({"priorities": []}, ("unknown field",)),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_bad_patch_changes_nothing(
    client: Any, session: FakeSession, body: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    response = await client.patch(url(f"/api/v1/torrents/{HASH}"), json=body, headers=AUTH)
    await error_of(response, 400, *fragments)
    assert session.calls == []


@pytest_twisted.ensureDeferred
async def test_patch_unknown_torrent_is_404(client: Any) -> None:
    response = await client.patch(
        url(f"/api/v1/torrents/{'cd' * 20}"), json={"upload_limit": 1}, headers=AUTH
    )
    await error_of(response, 404)


@pytest_twisted.ensureDeferred
async def test_a_priority_the_session_refuses_is_400(client: Any, session: FakeSession) -> None:
    session.fail["set_file_priorities"] = ValueError("file 1 cannot be skipped")
    body = {"file_priorities": {"1": "skip"}}
    response = await client.patch(url(f"/api/v1/torrents/{HASH}"), json=body, headers=AUTH)
    await error_of(response, 400, "file_priorities", "cannot be skipped")


# -- failures ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_unexpected_errors_are_logged_and_500_without_details(
    client: Any, session: FakeSession
) -> None:
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        session.fail["status"] = ZeroDivisionError("secret internals")
        response = await client.get(url("/api/v1/session"), headers=AUTH)
    finally:
        globalLogPublisher.removeObserver(events.append)
    message = await error_of(response, 500, "GET /api/v1/session")
    assert "secret internals" not in message
    failures = [e["log_failure"] for e in events if "log_failure" in e]
    assert [f.type for f in failures] == [ZeroDivisionError]


@pytest_twisted.ensureDeferred
async def test_openapi_document_is_served(client: Any) -> None:
    body = await ok(await client.get(url("/api/v1/openapi.json"), headers=AUTH))
    assert body["openapi"] == "3.1.0"


def test_json_replies_never_carry_nan() -> None:
    from bt.control.replies import json_reply

    body = json.loads(json_reply(200, {"eta": float("inf"), "x": [float("nan")]}).body)
    assert body == {"eta": None, "x": [None]}


def test_the_daemons_requests_stop_storing_bodies_past_the_cap() -> None:
    from twisted.web.test.requesthelper import DummyChannel

    from bt.control.site import CappedRequest

    request = CappedRequest(DummyChannel())
    request.max_body = 10
    request.gotLength(None)
    request.handleContentChunk(b"x" * 8)
    assert not request.body_too_large
    request.handleContentChunk(b"x" * 8)
    request.handleContentChunk(b"x" * 8)
    assert request.body_too_large
    assert request.content.tell() == 8


@pytest_twisted.ensureDeferred
async def test_a_disk_error_is_reported_with_its_cause(client: Any, session: FakeSession) -> None:
    session.fail["set_file_priorities"] = StorageError(
        "cannot open /srv/a.iso: Read-only file system"
    )
    body = {"file_priorities": {"0": "skip"}}
    response = await client.patch(url(f"/api/v1/torrents/{HASH}"), json=body, headers=AUTH)
    message = await error_of(response, 500, "disk error")
    assert "Read-only file system" in message


MAGNET_HASH = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"


@pytest_twisted.ensureDeferred
async def test_a_magnet_is_added_and_shown_by_info_hash_while_fetching(
    client: Any, session: FakeSession
) -> None:
    magnet = f"magnet:?xt=urn:btih:{MAGNET_HASH}&dn=Debian"
    body = {"magnet": magnet, "paused": True, "download_dir": "/srv/x"}
    response = await client.post(url("/api/v1/torrents"), json=body, headers=AUTH)
    added = await ok(response, 201)
    assert response.headers.getRawHeaders("location") == [f"/api/v1/torrents/{MAGNET_HASH}"]
    assert (added["info_hash"], added["name"]) == (MAGNET_HASH, "Debian")
    assert added["state"] == "fetching metadata"
    assert session.calls == [("add_magnet", magnet, True, Path("/srv/x"))]
    listing = await ok(await client.get(url("/api/v1/torrents"), headers=AUTH), 200)
    shown = {t["info_hash"]: t["state"] for t in listing["torrents"]}
    assert shown[MAGNET_HASH] == "fetching metadata"
    again = await client.post(url("/api/v1/torrents"), json={"magnet": magnet}, headers=AUTH)
    assert again.code == 409


@pytest_twisted.ensureDeferred
async def test_a_v2_magnet_is_shown_by_its_truncated_hash(client: Any) -> None:
    v2 = "5e" * 32
    body = {"magnet": f"magnet:?xt=urn:btmh:1220{v2}"}
    response = await client.post(url("/api/v1/torrents"), json=body, headers=AUTH)
    added = await ok(response, 201)
    assert added["info_hash"] == v2[:40]
    assert response.headers.getRawHeaders("location") == [f"/api/v1/torrents/{v2[:40]}"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"magnet": "magnet:?xt=urn:btih:xyz"}, "magnet: "),
        ({"magnet": "magnet:?dn=nothing"}, "magnet: "),
        ({"magnet": 5}, "magnet: expected a string"),
        ({"magnet": f"magnet:?xt=urn:btih:{MAGNET_HASH}", "torrent": "AA=="}, "not several"),
        ({"magnet": "magnet:?xt=urn:btmh:1220" + "ab" * 31}, "SHA-256 multihash"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_bad_magnet_gets_one_line_naming_what_is_wrong(
    client: Any, body: dict[str, Any], why: str
) -> None:
    response = await client.post(url("/api/v1/torrents"), json=body, headers=AUTH)
    assert response.code == 400
    error = (await response.json())["error"]["message"]
    assert why in error and "\n" not in error
