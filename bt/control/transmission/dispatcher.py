"""One Transmission RPC call: the JSON request in, the JSON reply out, errors in its shape.

A request is ``{"method": ..., "arguments": {...}, "tag": ...}``; the reply is
``{"result": "success", "arguments": {...}, "tag": ...}``, or, whatever went
wrong (bad JSON, an unknown method, a bad argument, a session error),
``{"result": "<what went wrong>", "arguments": {}, "tag": ...}``: always HTTP
200, as Transmission answers, never a 500. A bug is logged with its traceback
and named in ``result`` without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from bt.control.replies import ApiError
from bt.control.transmission.errors import RpcError
from bt.errors import BtError, DuplicateTorrentError, UnknownTorrentError
from bt.logs import Logger
from bt.untrusted import shown

__all__ = ["Dispatcher", "Method"]

Method = Callable[[dict[str, Any]], Any]

log = Logger()


class Dispatcher:
    """Calls the method a request names, and shapes whatever comes of it."""

    def __init__(self, methods: Mapping[str, Method]) -> None:
        self.methods = dict(methods)

    def handle(self, body: bytes) -> defer.Deferred[dict[str, Any]]:
        tag: Any = None
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            return defer.succeed(_failed("request is not valid JSON", None))
        if not isinstance(request, dict):
            return defer.succeed(_failed("request must be a JSON object", None))
        tag = request.get("tag")
        if tag is not None and (isinstance(tag, bool) or not isinstance(tag, int)):
            tag = None  # Transmission echoes integer tags only
        name = request.get("method")
        if not isinstance(name, str):
            return defer.succeed(_failed("no method name", tag))
        method = self.methods.get(name)
        if method is None:
            return defer.succeed(_failed("method name not recognized", tag))
        arguments = request.get("arguments", {})
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return defer.succeed(_failed("arguments must be a JSON object", tag))
        called = defer.maybeDeferred(method, arguments)
        called.addCallback(lambda result: {"result": "success", "arguments": result or {}})
        called.addErrback(_result_for_failure, name)
        called.addCallback(_logged, name)
        called.addCallback(lambda reply: {**reply, **({"tag": tag} if tag is not None else {})})
        return called


def _logged(reply: dict[str, Any], method: str) -> dict[str, Any]:
    if reply["result"] != "success":
        log.debug(
            "Transmission RPC: {method}: {result}", method=method, result=shown(reply["result"])
        )
    return reply


def _failed(message: str, tag: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {"result": message, "arguments": {}}
    if tag is not None:
        reply["tag"] = tag
    return reply


def _result_for_failure(failure: Failure, method: str) -> dict[str, Any]:
    error = failure.value
    if isinstance(error, RpcError):
        return {"result": error.message, "arguments": error.arguments}
    if isinstance(error, ApiError):  # a reader shared with bt's own API
        message = error.message
    elif isinstance(error, UnknownTorrentError | DuplicateTorrentError | BtError | ValueError):
        message = shown(str(error), 400) or type(error).__name__
    else:
        log.failure("Transmission RPC: {method} failed", failure, method=method)
        message = f"internal error in {method}; the daemon's log has the details"
    return {"result": message, "arguments": {}}
