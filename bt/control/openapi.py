"""The OpenAPI 3.1 description of the control API, served at ``/api/v1/openapi.json``.

Written by hand as a Python dict (no generator, no extra dependency); the test
suite checks that its paths and operationIds are exactly the route table of
:mod:`bt.control.api`.
"""

from __future__ import annotations

import copy
from typing import Any

from bt import __version__
from bt.status import FilePriority, MagnetState, TorrentState

__all__ = ["document"]

_REF = "#/components/"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"{_REF}{kind}/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    names = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict",
             413: "TooLarge", 415: "UnsupportedMediaType", 503: "Unavailable"}  # fmt: skip
    return {str(code): _ref("responses", names[code]) for code in codes}


_NUMBER_OR_NULL = {"type": ["number", "null"], "minimum": 0}
_LIMIT = {
    "description": 'Bytes/s; a string such as "500K" or "2M" (binary units); 0 or null: unlimited.',
    "oneOf": [{"type": ["number", "null"], "minimum": 0}, {"type": "string"}],
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer", "description": "The HTTP status code."},
                    "message": {
                        "type": "string",
                        "description": "What was wrong and where (the field or path).",
                    },
                },
            }
        },
    },
    "SessionStatus": {
        "type": "object",
        "properties": {
            "version": {"type": "string"},
            "torrents": {"type": "integer"},
            "peers": {"type": "integer"},
            "download_rate": {"type": "number"},
            "upload_rate": {"type": "number"},
            "downloaded": {"type": "integer"},
            "uploaded": {"type": "integer"},
            "upload_limit": _NUMBER_OR_NULL,
            "download_limit": _NUMBER_OR_NULL,
            "listen_port": {"type": "integer"},
            "dht_nodes": {
                "type": ["integer", "null"],
                "description": "Nodes in the DHT routing table; null: no DHT (--no-dht).",
            },
            "dht_lookups": {"type": ["integer", "null"], "description": "DHT lookups started."},
            "dht_announces": {
                "type": ["integer", "null"],
                "description": "DHT announce_peer queries sent.",
            },
        },
    },
    "FileStatus": {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "path": {"type": "string", "description": "Relative to download_dir, / separated."},
            "size": {"type": "integer"},
            "priority": _ref("schemas", "FilePriority"),
            "done": {"type": "integer", "description": "Bytes of this file in verified pieces."},
        },
    },
    "FilePriority": {"type": "string", "enum": [p.value for p in FilePriority]},
    "TorrentSummary": {
        "type": "object",
        "description": "A torrent's status without its files (the listing's items).",
        "properties": {
            "info_hash": {
                "type": "string",
                "pattern": "^[0-9a-f]{40}$",
                "description": "The id every call takes: the v1 info-hash, or for a v2-only "
                "torrent the first 20 bytes of its v2 info-hash.",
            },
            "name": {"type": "string"},
            "state": {
                "type": "string",
                "enum": [s.value for s in (*TorrentState, *MagnetState)],
            },
            "error": {"type": ["string", "null"]},
            "size": {"type": "integer"},
            "wanted": {"type": "integer", "description": "Bytes of the files not skipped."},
            "done": {"type": "integer", "description": "Verified bytes of wanted."},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "pieces": {"type": "integer"},
            "pieces_have": {"type": "integer"},
            "piece_length": {"type": "integer"},
            "download_rate": {"type": "number"},
            "upload_rate": {"type": "number"},
            "downloaded": {"type": "integer"},
            "uploaded": {"type": "integer"},
            "ratio": {"type": "number"},
            "peers": {"type": "integer"},
            "seeds": {"type": "integer"},
            "eta": {"type": ["number", "null"], "description": "Seconds; null when unknown."},
            "hash_failures": {"type": "integer"},
            "tracker_errors": {"type": "integer"},
            "upload_limit": _NUMBER_OR_NULL,
            "download_limit": _NUMBER_OR_NULL,
            "download_dir": {"type": "string"},
            "private": {"type": "boolean"},
            "peers_tried": {
                "type": "integer",
                "description": "A magnet fetching its metadata: the peers it talked to.",
            },
            "dht_peers": {"type": "integer", "description": "Peers the DHT found for it."},
            "format": {
                "type": ["string", "null"],
                "enum": ["v1", "v2", "hybrid", None],
                "description": "BEP 52 format; null for a magnet still fetching its metadata.",
            },
            "info_hash_v1": {
                "type": ["string", "null"],
                "pattern": "^[0-9a-f]{40}$",
                "description": "SHA-1 info-hash; null for a v2-only torrent.",
            },
            "info_hash_v2": {
                "type": ["string", "null"],
                "pattern": "^[0-9a-f]{64}$",
                "description": "SHA-256 info-hash (BEP 52); null for a v1 torrent. For a "
                "v2-only torrent info_hash is its first 40 hex digits.",
            },
        },
    },
    "TorrentStatus": {
        "allOf": [
            _ref("schemas", "TorrentSummary"),
            {
                "type": "object",
                "properties": {"files": {"type": "array", "items": _ref("schemas", "FileStatus")}},
            },
        ]
    },
    "TorrentEvent": {
        "type": "object",
        "description": "The data of torrent-added, metadata-received, state-changed, "
        "finished and removed: the torrent's fields of the same names.",
        "required": ["info_hash", "name", "state", "error"],
        "properties": {
            "info_hash": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
            "name": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in (*TorrentState, *MagnetState)]},
            "error": {"type": ["string", "null"]},
        },
    },
    "ProgressEvent": {
        "type": "object",
        "description": "The data of progress: what GET /api/v1/torrents returns.",
        "required": ["torrents"],
        "properties": {"torrents": {"type": "array", "items": _ref("schemas", "TorrentSummary")}},
    },
    "Limits": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"upload_limit": _LIMIT, "download_limit": _LIMIT},
    },
    "AddTorrent": {
        "type": "object",
        "additionalProperties": False,
        "description": 'Exactly one of "path", "torrent" and "magnet".',
        "properties": {
            "path": {"type": "string", "description": "Absolute path of a .torrent file."},
            "torrent": {"type": "string", "contentEncoding": "base64"},
            "magnet": {"type": "string", "description": "A magnet link (BEP 9)."},
            "paused": {"type": "boolean", "default": False},
            "download_dir": {"type": "string", "description": "Absolute folder for the data."},
        },
    },
    "PeerStatus": {
        "type": "object",
        "properties": {
            "address": {"type": "string", "description": "host:port ([v6]:port)."},
            "client": {"type": "string", "description": "The peer id's first 8 bytes."},
            "outgoing": {"type": "boolean", "description": "We dialled it."},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "download_rate": {"type": "number"},
            "upload_rate": {"type": "number"},
            "am_choking": {"type": "boolean"},
            "am_interested": {"type": "boolean"},
            "peer_choking": {"type": "boolean"},
            "peer_interested": {"type": "boolean"},
        },
    },
    "TrackerStatus": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "Its URL, secrets redacted."},
            "errors": {"type": "integer", "description": "Failed announces in this process."},
            "failures": {"type": "integer", "description": "Failed announces in a row now."},
            "last_announce_ago": {
                "type": ["number", "null"],
                "description": "Seconds since the last successful announce.",
            },
        },
    },
    "MoveTorrent": {
        "type": "object",
        "additionalProperties": False,
        "required": ["download_dir"],
        "properties": {
            "download_dir": {"type": "string", "description": "Absolute folder for the data."},
            "move": {
                "type": "boolean",
                "default": True,
                "description": "false: move nothing, look for the data there (checked again).",
            },
        },
    },
    "TorrentPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "upload_limit": _LIMIT,
            "download_limit": _LIMIT,
            "file_priorities": {
                "description": "By file index, or one priority per file in order.",
                "oneOf": [
                    {
                        "type": "object",
                        "propertyNames": {"pattern": "^[0-9]+$"},
                        "additionalProperties": _ref("schemas", "FilePriority"),
                    },
                    {"type": "array", "items": _ref("schemas", "FilePriority")},
                ],
            },
        },
    },
}

_RESPONSES: dict[str, Any] = {
    name: _json(_ref("schemas", "Error"), text)
    for name, text in (
        ("BadRequest", "Bad JSON, a bad field or a malformed info-hash; the message names it."),
        ("Unauthorized", "Missing or wrong bearer token."),
        ("NotFound", "No torrent with this info-hash, or no such path."),
        ("MethodNotAllowed", "Wrong method; the Allow header lists the right ones."),
        ("Conflict", "The session already has this torrent."),
        ("TooLarge", "The body (or the .torrent file) is over 64 MiB."),
        ("UnsupportedMediaType", "Neither application/x-bittorrent nor JSON."),
        ("InternalError", "A bug; the daemon's log has the traceback."),
        ("Unavailable", "Too many event streams open (see Retry-After), or no events."),
    )
}
_RESPONSES["Unauthorized"]["headers"] = {
    "WWW-Authenticate": {"schema": {"type": "string", "const": 'Bearer realm="bt"'}}
}

_INFO_HASH_PARAMETER = {
    "name": "info_hash",
    "in": "path",
    "required": True,
    "description": (
        "The torrent's info-hash: 40 hex characters, any case; for a v2 or hybrid"
        " torrent also its 64-digit v2 hash or that hash's first 40 digits."
    ),
    "schema": {"type": "string", "pattern": "^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$"},
}


def _status(description: str) -> dict[str, Any]:
    return {"200": _json(_ref("schemas", "TorrentStatus"), description), **_errors(400, 404)}


def _list_of(key: str, schema: str) -> dict[str, Any]:
    items = {"type": "array", "items": _ref("schemas", schema)}
    return {"type": "object", "properties": {key: items}}


def _action(handler: str, summary: str) -> dict[str, Any]:
    return {"post": {"operationId": handler, "summary": summary, "responses": _status("Done.")}}


_PATHS: dict[str, Any] = {
    "/api/v1/session": {
        "get": {
            "operationId": "get_session",
            "summary": "The session's status: rates, totals, global limits.",
            "responses": {"200": _json(_ref("schemas", "SessionStatus"), "The session.")},
        },
        "patch": {
            "operationId": "patch_session",
            "summary": "Set the global rate limits (only the fields sent change).",
            "requestBody": {"required": True, **_json(_ref("schemas", "Limits"), "New limits.")},
            "responses": {
                "200": _json(_ref("schemas", "SessionStatus"), "The session after the change."),
                **_errors(400, 413),
            },
        },
    },
    "/api/v1/torrents": {
        "get": {
            "operationId": "list_torrents",
            "summary": "Every torrent's status, without files.",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "torrents": {
                                "type": "array",
                                "items": _ref("schemas", "TorrentSummary"),
                            }
                        },
                    },
                    "The torrents.",
                )
            },
        },
        "post": {
            "operationId": "add_torrent",
            "summary": "Add a torrent: the raw .torrent, or JSON with a path or base64.",
            "parameters": [
                {
                    "name": "paused",
                    "in": "query",
                    "schema": {"type": "boolean"},
                    "description": "Raw uploads only: add it paused.",
                },
                {
                    "name": "download_dir",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Raw uploads only: absolute folder for the data.",
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-bittorrent": {
                        "schema": {"type": "string", "contentMediaType": "application/x-bittorrent"}
                    },
                    "application/json": {"schema": _ref("schemas", "AddTorrent")},
                },
            },
            "responses": {
                "201": {
                    **_json(_ref("schemas", "TorrentStatus"), "Added."),
                    "headers": {
                        "Location": {
                            "description": "/api/v1/torrents/{info_hash}",
                            "schema": {"type": "string"},
                        }
                    },
                },
                **_errors(400, 409, 413, 415),
            },
        },
    },
    "/api/v1/torrents/{info_hash}": {
        "parameters": [_INFO_HASH_PARAMETER],
        "get": {
            "operationId": "get_torrent",
            "summary": "One torrent's status with its files.",
            "responses": _status("The torrent."),
        },
        "patch": {
            "operationId": "patch_torrent",
            "summary": "Set the torrent's limits and file priorities (only the fields sent).",
            "requestBody": {
                "required": True,
                **_json(_ref("schemas", "TorrentPatch"), "The changes."),
            },
            "responses": {**_status("The torrent after the change."), **_errors(413)},
        },
        "delete": {
            "operationId": "remove_torrent",
            "summary": "Stop and forget the torrent; with delete_data=true delete its files.",
            "parameters": [
                {"name": "delete_data", "in": "query", "schema": {"type": "boolean"}},
            ],
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"removed": {"type": "string"}}},
                    "Removed once stopped (and its data deleted).",
                ),
                **_errors(400, 404),
            },
        },
    },
    "/api/v1/torrents/{info_hash}/pause": {
        "parameters": [_INFO_HASH_PARAMETER],
        **_action("pause_torrent", "Pause: answered once peers are closed and state saved."),
    },
    "/api/v1/torrents/{info_hash}/resume": {
        "parameters": [_INFO_HASH_PARAMETER],
        **_action("resume_torrent", "Resume a paused or stopped torrent."),
    },
    "/api/v1/torrents/{info_hash}/recheck": {
        "parameters": [_INFO_HASH_PARAMETER],
        **_action("recheck_torrent", "Hash all of the torrent's data again."),
    },
    "/api/v1/torrents/{info_hash}/move": {
        "parameters": [_INFO_HASH_PARAMETER],
        "post": {
            "operationId": "move_torrent",
            "summary": "Move the torrent's data to another folder; answered once it runs there.",
            "requestBody": {
                "required": True,
                **_json(_ref("schemas", "MoveTorrent"), "Where to."),
            },
            "responses": {**_status("The torrent in its new folder."), **_errors(409, 413)},
        },
    },
    "/api/v1/torrents/{info_hash}/peers": {
        "parameters": [_INFO_HASH_PARAMETER],
        "get": {
            "operationId": "list_peers",
            "summary": "The torrent's connected peers (none for a magnet fetching metadata).",
            "responses": {
                "200": _json(_list_of("peers", "PeerStatus"), "The peers."),
                **_errors(400, 404),
            },
        },
    },
    "/api/v1/torrents/{info_hash}/trackers": {
        "parameters": [_INFO_HASH_PARAMETER],
        "get": {
            "operationId": "list_trackers",
            "summary": "The torrent's trackers, one per tier (none for a magnet).",
            "responses": {
                "200": _json(_list_of("trackers", "TrackerStatus"), "The trackers."),
                **_errors(400, 404),
            },
        },
    },
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "get_openapi",
            "summary": "This document.",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
        }
    },
    "/api/v1/events": {
        "get": {
            "operationId": "stream_events",
            "summary": "Server-sent events: torrents added, their metadata, state changes, "
            "completion, removal, and a progress summary every second while active.",
            "description": "text/event-stream; each event is 'id: N', 'event: KIND', "
            "'data: JSON' and a blank line; ': keep-alive' comments every 15 s. KIND is "
            "torrent-added, metadata-received, state-changed, finished or removed (data: "
            "TorrentEvent) or progress (data: ProgressEvent). A client too slow to read "
            "(over 1 MiB waiting, or nothing read for 60 s) is disconnected.",
            "parameters": [
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    "description": "The last id received: the events since are sent first, "
                    "from a backlog of the last 256 (progress not kept).",
                }
            ],
            "responses": {
                "200": {
                    "description": "The stream, open until the client or the daemon ends it.",
                    "content": {
                        "text/event-stream": {
                            "schema": {"type": "string"},
                            "x-events": {
                                "torrent-added": _ref("schemas", "TorrentEvent"),
                                "metadata-received": _ref("schemas", "TorrentEvent"),
                                "state-changed": _ref("schemas", "TorrentEvent"),
                                "finished": _ref("schemas", "TorrentEvent"),
                                "removed": _ref("schemas", "TorrentEvent"),
                                "progress": _ref("schemas", "ProgressEvent"),
                            },
                        }
                    },
                },
                **_errors(400, 503),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "get_metrics",
            "summary": "Prometheus text exposition, read from the session at scrape time.",
            "responses": {
                "200": {
                    "description": "Metrics.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "bt control API",
        "version": __version__,
        "description": "Control and observe a bt daemon. Every request needs the bearer "
        "token from the daemon's state folder (control.token).",
    },
    "security": [{"bearer": []}, {"webSession": []}],
    "paths": _PATHS,
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "The token in <state dir>/control.token.",
            },
            "webSession": {
                "type": "apiKey",
                "in": "cookie",
                "name": "bt_session",
                "description": "The web page's log-in (POST /login with the token); a state "
                "change with it also needs the header X-BT-Request (docs/web.rst).",
            },
        },
        "schemas": _SCHEMAS,
        "responses": _RESPONSES,
    },
}


def _add_common_responses(paths: dict[str, Any]) -> None:
    """Every operation can answer 401 (no token), 405 and 500."""
    for item in paths.values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            operation["responses"].setdefault("401", _ref("responses", "Unauthorized"))
            operation["responses"].setdefault("405", _ref("responses", "MethodNotAllowed"))
            operation["responses"].setdefault("500", _ref("responses", "InternalError"))


_add_common_responses(_PATHS)


def document() -> dict[str, Any]:
    """A fresh copy of the document (callers may change theirs)."""
    return copy.deepcopy(_DOCUMENT)
