"""The control API: HTTP + JSON over twisted.web, one route table, one error shape.

Every route lives in :data:`ROUTES`; the resource dispatches on it, answers 404
and 405 (with ``Allow``) from it, and the OpenAPI test checks the document
against it, so the routes served and the routes documented cannot drift.

Handlers return a :class:`Reply` or a ``Deferred[Reply]`` and raise
:class:`ApiError` for what the client got wrong; the session's own errors map
to status codes in one place (:meth:`ControlResource._reply_for_failure`).
Anything else is a bug: it is logged with its traceback and the client gets a
500 that says where, never the traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource

from bt import snapshot
from bt.control import fields as read
from bt.control import metrics, openapi
from bt.control.events import EventStreams
from bt.control.replies import JSON, ApiError, Reply, error_reply, json_reply, send_reply
from bt.errors import (
    DuplicateTorrentError,
    MagnetError,
    MetainfoError,
    MoveError,
    StorageError,
    UnknownTorrentError,
)
from bt.logs import Logger
from bt.magnet import MagnetLink, parse_magnet
from bt.metainfo import Metainfo, parse_metainfo
from bt.status import FilePriority, MagnetState, SessionStatus, TorrentStatus
from bt.untrusted import shown

__all__ = ["MAX_BODY", "ROUTES", "ApiError", "ControlResource", "Reply", "Route"]

#: Largest request body accepted (a .torrent of a huge torrent is a few MiB).
MAX_BODY = 64 * 1024 * 1024
TORRENT = "application/x-bittorrent"

log = Logger()


@dataclass(frozen=True)
class Route:
    method: str
    #: Path template; ``{info_hash}`` matches one segment.
    path: str
    #: Method of ControlResource (``_`` + handler) and the OpenAPI operationId.
    handler: str


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/session", "get_session"),
    Route("PATCH", "/api/v1/session", "patch_session"),
    Route("GET", "/api/v1/torrents", "list_torrents"),
    Route("POST", "/api/v1/torrents", "add_torrent"),
    Route("GET", "/api/v1/torrents/{info_hash}", "get_torrent"),
    Route("PATCH", "/api/v1/torrents/{info_hash}", "patch_torrent"),
    Route("DELETE", "/api/v1/torrents/{info_hash}", "remove_torrent"),
    Route("POST", "/api/v1/torrents/{info_hash}/pause", "pause_torrent"),
    Route("POST", "/api/v1/torrents/{info_hash}/resume", "resume_torrent"),
    Route("POST", "/api/v1/torrents/{info_hash}/recheck", "recheck_torrent"),
    Route("POST", "/api/v1/torrents/{info_hash}/move", "move_torrent"),
    Route("GET", "/api/v1/torrents/{info_hash}/peers", "list_peers"),
    Route("GET", "/api/v1/torrents/{info_hash}/trackers", "list_trackers"),
    Route("GET", "/api/v1/openapi.json", "get_openapi"),
    Route("GET", "/api/v1/events", "stream_events"),
    Route("GET", "/metrics", "get_metrics"),
)


class ControlSession(Protocol):
    """What the API needs of the session (see the session contract in docs/api.rst)."""

    def status(self) -> SessionStatus: ...
    def torrent_statuses(self) -> list[TorrentStatus]: ...
    def torrent_status(self, info_hash: bytes) -> TorrentStatus: ...
    def add_torrent(
        self, metainfo: Metainfo, *, paused: bool = ..., download_dir: Path | None = ...
    ) -> Any: ...
    def add_magnet(
        self, magnet: MagnetLink, *, paused: bool = ..., download_dir: Path | None = ...
    ) -> Any: ...
    def remove_torrent(self, info_hash: bytes, *, delete_data: bool = ...) -> Any: ...
    def pause_torrent(self, info_hash: bytes) -> Any: ...
    def resume_torrent(self, info_hash: bytes) -> None: ...
    def recheck_torrent(self, info_hash: bytes) -> None: ...
    def move_torrent(self, info_hash: bytes, folder: Path, *, move: bool = ...) -> Any: ...
    def set_torrent_limits(self, info_hash: bytes, **limits: float | None) -> None: ...
    def set_file_priorities(
        self, info_hash: bytes, priorities: Mapping[int, FilePriority]
    ) -> None: ...
    def set_limits(self, **limits: float | None) -> None: ...
    def get(self, info_hash: bytes) -> Any:
        """The live torrent (bt.torrent.Torrent), read for its peers and trackers."""


class ControlResource(Resource):
    """The whole API as one leaf: dispatch on :data:`ROUTES`, reply in JSON."""

    isLeaf = True

    def __init__(
        self,
        session: ControlSession,
        *,
        max_body: int = MAX_BODY,
        run_blocking: Callable[..., defer.Deferred[Any]] = threads.deferToThread,
    ) -> None:
        """``run_blocking(job, *args)`` runs file reads off the reactor (the session's
        disk threads in the daemon)."""
        super().__init__()
        self._session = session
        self._max_body = max_body
        self._run_blocking = run_blocking
        self._registry = metrics.make_registry(session)
        #: The open event streams; the session's ``events`` feeds them (bt.sessionevents).
        self.events = EventStreams(getattr(session, "events", None))

    def render(self, request: server.Request) -> int:
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        outcome = defer.maybeDeferred(self._dispatch, request)
        outcome.addErrback(self._reply_for_failure, request)
        # None: the handler answers on its own (an event stream).
        outcome.addCallback(
            lambda reply: None if gone or reply is None else send_reply(request, reply)
        )
        outcome.addErrback(lambda failure: log.failure("writing a reply failed", failure))
        return server.NOT_DONE_YET

    def _dispatch(self, request: server.Request) -> Reply | defer.Deferred[Reply] | None:
        path = unquote(request.path.decode("ascii", "replace"))
        segments = path.strip("/").split("/") if path.strip("/") else []
        matches = [(r, p) for r in ROUTES if (p := _match(r.path, segments)) is not None]
        if not matches:
            raise ApiError(404, f"no such path: {shown(path)} (the API lives under /api/v1/)")
        method = request.method.decode("ascii", "replace").upper()
        wanted = "GET" if method == "HEAD" else method
        chosen = next(((r, p) for r, p in matches if r.method == wanted), None)
        if chosen is None:
            allowed = sorted({r.method for r, _ in matches})
            if "GET" in allowed:
                allowed.append("HEAD")
            raise ApiError(
                405,
                f"{shown(method)} is not allowed on {shown(path)}; allowed: {', '.join(allowed)}",
                [("Allow", ", ".join(allowed))],
            )
        route, params = chosen
        arguments: dict[str, Any] = dict(params)
        if "info_hash" in arguments:
            arguments["info_hash"] = read.info_hash(arguments["info_hash"])
        result: Reply | defer.Deferred[Reply] | None = getattr(self, "_" + route.handler)(
            request, **arguments
        )
        return result

    def _reply_for_failure(self, failure: Failure, request: server.Request) -> Reply:
        """The session's and the client's errors as replies; anything else is a logged 500."""
        error = failure.value
        if isinstance(error, ApiError):
            return error_reply(error.status, error.message, error.headers)
        if isinstance(error, UnknownTorrentError):
            return error_reply(404, str(error) or "no such torrent")
        if isinstance(error, DuplicateTorrentError):
            return error_reply(409, str(error) or "the session already has this torrent")
        if isinstance(error, MetainfoError):  # may quote names from the torrent
            return error_reply(400, f"not a valid .torrent: {shown(str(error), 400)}")
        if isinstance(error, MoveError):  # the data is back where it was, the torrent too
            return error_reply(409, f"not moved: {error}")
        if isinstance(error, StorageError):  # the daemon's disk, named in the message
            where = request.path.decode("ascii", "replace")
            log.error("control API: {where}: {error}", where=where, error=error)
            return error_reply(500, f"disk error: {error}")
        method = request.method.decode("ascii", "replace")
        where = f"{shown(method)} {shown(request.path)}"
        log.failure("control API: {where} failed", failure, where=where)
        return error_reply(500, f"internal error in {where}; the daemon's log has the details")

    # -- request parts ---------------------------------------------------------------

    def _body(self, request: server.Request) -> bytes:
        too_large = ApiError(
            413,
            f"request body is over the limit of {self._max_body} bytes",
            [("Connection", "close")],
        )
        # Set by the daemon's CappedRequest (bt.control.site), which stops storing early.
        if getattr(request, "body_too_large", False):
            raise too_large
        content = request.content
        content.seek(0, 2)
        if content.tell() > self._max_body:
            raise too_large
        content.seek(0)
        data: bytes = content.read()
        return data

    def _json_object(self, request: server.Request, fields: set[str]) -> dict[str, Any]:
        raw = self._body(request)
        if not raw.strip():
            raise ApiError(400, "body: expected a JSON object, got an empty body")
        try:
            data = json.loads(raw, parse_constant=read.reject_constant)
        except RecursionError:
            raise ApiError(400, f"body: JSON nested deeper than {read.MAX_DEPTH} levels") from None
        except ValueError as exc:  # UnicodeDecodeError and over-long integers included
            raise ApiError(400, f"body: not valid JSON: {shown(str(exc))}") from None
        if not isinstance(data, dict):
            raise ApiError(400, f"body: expected a JSON object, got {read.json_type(data)}")
        if read.depth(data) > read.MAX_DEPTH:
            raise ApiError(400, f"body: JSON nested deeper than {read.MAX_DEPTH} levels")
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ApiError(
                400,
                f"body: unknown field {shown(', '.join(map(repr, unknown)))}; "
                f"known fields: {', '.join(sorted(fields))}",
            )
        return data

    # -- session ---------------------------------------------------------------------

    def _get_session(self, request: server.Request) -> Reply:
        return json_reply(200, self._session.status().to_json())

    def _patch_session(self, request: server.Request) -> Reply:
        limits = read.limits(self._json_object(request, {"upload_limit", "download_limit"}))
        if limits:
            try:
                self._session.set_limits(**limits)
            except ValueError as exc:
                raise ApiError(400, f"{read.limit_fields(limits)}: {exc}") from None
        return json_reply(200, self._session.status().to_json())

    def _stream_events(self, request: server.Request) -> Reply | None:
        return self.events.open(request)

    def _get_openapi(self, request: server.Request) -> Reply:
        return json_reply(200, openapi.document())

    def _get_metrics(self, request: server.Request) -> Reply:
        return Reply(200, metrics.render_metrics(self._registry), metrics.CONTENT_TYPE)

    # -- torrents --------------------------------------------------------------------

    def _list_torrents(self, request: server.Request) -> Reply:
        statuses = self._session.torrent_statuses()
        return json_reply(200, {"torrents": [s.to_json(files=False) for s in statuses]})

    def _add_torrent(self, request: server.Request) -> defer.Deferred[Reply]:
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        media = content_type.split(";")[0].strip().lower()
        if media == TORRENT:
            paused = read.query_bool(request, "paused")
            download_dir = read.optional_path(
                "download_dir", read.query_text(request, "download_dir")
            )
            loading = defer.succeed(parse_metainfo(self._body(request)))
        elif media in ("", JSON, "application/x-www-form-urlencoded", "text/plain"):
            fields = {"path", "torrent", "magnet", "paused", "download_dir"}
            body = self._json_object(request, fields)
            paused = body.get("paused", False)
            if not isinstance(paused, bool):
                raise ApiError(400, f"paused: expected true or false, got {read.quoted(paused)}")
            download_dir = read.optional_path("download_dir", body.get("download_dir"))
            if "magnet" in body:
                return defer.succeed(self._added_magnet(body, paused, download_dir))
            loading = self._metainfo_from_json(body)
        else:
            raise ApiError(
                415, f"Content-Type {shown(media)} is not accepted: send {TORRENT} or {JSON}"
            )
        return loading.addCallback(self._added, paused, download_dir)

    def _added(self, metainfo: Metainfo, paused: bool, download_dir: Path | None) -> Reply:
        torrent = self._session.add_torrent(metainfo, paused=paused, download_dir=download_dir)
        info_hash: bytes = torrent.info_hash
        location = f"/api/v1/torrents/{info_hash.hex()}"
        status = self._session.torrent_status(info_hash)
        return json_reply(201, status.to_json(), [("Location", location)])

    def _added_magnet(self, body: dict[str, Any], paused: bool, download_dir: Path | None) -> Reply:
        """``{"magnet": "magnet:?..."}``: shown at once, by info-hash, while it fetches."""
        if "path" in body or "torrent" in body:
            raise ApiError(400, 'body: give one of "path", "torrent" and "magnet", not several')
        uri = body["magnet"]
        if not isinstance(uri, str):
            raise ApiError(400, f"magnet: expected a string, got {read.json_type(uri)}")
        try:
            magnet = parse_magnet(uri)
            self._session.add_magnet(magnet, paused=paused, download_dir=download_dir)
        except MagnetError as exc:
            raise ApiError(400, f"magnet: {shown(str(exc), 400)}") from None
        status = self._session.torrent_status(magnet.key)  # v1, else the truncated v2 hash
        location = f"/api/v1/torrents/{magnet.key.hex()}"
        return json_reply(201, status.to_json(), [("Location", location)])

    def _metainfo_from_json(self, body: dict[str, Any]) -> defer.Deferred[Metainfo]:
        if ("path" in body) == ("torrent" in body):
            raise ApiError(
                400,
                'body: give exactly one of "path" (a .torrent file on the daemon\'s machine) '
                'or "torrent" (the .torrent file in base64)',
            )
        if "torrent" in body:
            return defer.succeed(read.torrent_base64("torrent", body["torrent"]))
        path = read.absolute_path("path", body["path"])
        # A file on the daemon's machine, maybe on a slow share: read it off the reactor.
        return self._run_blocking(read.torrent_file, "path", path, self._max_body)

    def _status_reply(self, info_hash: bytes) -> Reply:
        return json_reply(200, self._session.torrent_status(info_hash).to_json())

    def _get_torrent(self, request: server.Request, info_hash: bytes) -> Reply:
        return self._status_reply(info_hash)

    def _patch_torrent(self, request: server.Request, info_hash: bytes) -> Reply:
        files = [f.index for f in self._session.torrent_status(info_hash).files]
        fields = {"upload_limit", "download_limit", "file_priorities"}
        body = self._json_object(request, fields)
        limits = read.limits(body)
        priorities = (
            read.priorities(body["file_priorities"], files) if "file_priorities" in body else None
        )
        # Everything is validated before anything changes: a bad field changes nothing.
        if limits:
            try:
                self._session.set_torrent_limits(info_hash, **limits)
            except ValueError as exc:
                raise ApiError(400, f"{read.limit_fields(limits)}: {exc}") from None
        if priorities:
            try:
                self._session.set_file_priorities(info_hash, priorities)
            except ValueError as exc:
                raise ApiError(400, f"file_priorities: {exc}") from None
        return self._status_reply(info_hash)

    def _remove_torrent(self, request: server.Request, info_hash: bytes) -> defer.Deferred[Reply]:
        delete_data = read.query_bool(request, "delete_data")
        removed = defer.maybeDeferred(
            self._session.remove_torrent, info_hash, delete_data=delete_data
        )
        return removed.addCallback(lambda _: json_reply(200, {"removed": info_hash.hex()}))

    def _pause_torrent(self, request: server.Request, info_hash: bytes) -> defer.Deferred[Reply]:
        paused = defer.maybeDeferred(self._session.pause_torrent, info_hash)
        return paused.addCallback(lambda _: self._status_reply(info_hash))

    def _resume_torrent(self, request: server.Request, info_hash: bytes) -> Reply:
        self._session.resume_torrent(info_hash)
        return self._status_reply(info_hash)

    def _recheck_torrent(self, request: server.Request, info_hash: bytes) -> Reply:
        self._session.recheck_torrent(info_hash)
        return self._status_reply(info_hash)

    def _move_torrent(self, request: server.Request, info_hash: bytes) -> defer.Deferred[Reply]:
        body = self._json_object(request, {"download_dir", "move"})
        folder = read.absolute_path("download_dir", body.get("download_dir"))
        move = body.get("move", True)
        if not isinstance(move, bool):
            raise ApiError(400, f"move: expected true or false, got {read.quoted(move)}")
        moved = defer.maybeDeferred(self._session.move_torrent, info_hash, folder, move=move)
        return moved.addCallback(lambda _: self._status_reply(info_hash))

    def _live_torrent(self, info_hash: bytes) -> Any:
        """The torrent itself; None for a magnet still fetching its metadata (no peers yet)."""
        if self._session.torrent_status(info_hash).state == MagnetState.FETCHING_METADATA:
            return None
        return self._session.get(info_hash)

    def _list_peers(self, request: server.Request, info_hash: bytes) -> Reply:
        torrent = self._live_torrent(info_hash)
        peers = [] if torrent is None else snapshot.peer_statuses(torrent)
        return json_reply(200, {"peers": [peer.to_json() for peer in peers]})

    def _list_trackers(self, request: server.Request, info_hash: bytes) -> Reply:
        torrent = self._live_torrent(info_hash)
        now = 0.0 if torrent is None else torrent.reactor.seconds()
        trackers = [] if torrent is None else snapshot.tracker_statuses(torrent, now)
        return json_reply(200, {"trackers": [tracker.to_json() for tracker in trackers]})


# -- parsing what clients send -------------------------------------------------------


def _match(template: str, segments: list[str]) -> dict[str, str] | None:
    parts = template.strip("/").split("/")
    if len(parts) != len(segments):
        return None
    params: dict[str, str] = {}
    for part, segment in zip(parts, segments, strict=True):
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segment
        elif part != segment:
            return None
    return params
