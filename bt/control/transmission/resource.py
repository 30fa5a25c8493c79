"""The Transmission endpoints over HTTP: /transmission/rpc, /transmission/web/, and auth.

Transmission clients authenticate with HTTP Basic (any user name, the control
token as the password); the bearer token works too. Every refusal is a 401
naming ``Basic realm="Transmission"``: one realm for the RPC and the web
client's files, so a browser that logged in to one sends the credentials to
the other. Past the auth, an RPC request must carry the current
``X-Transmission-Session-Id``; without it the answer is 409 with the header,
and the client retries, as every Transmission client does (it keeps another
site's page from driving the daemon through the user's browser).

:class:`TransmissionRouter` sits in front of bt's own API (which keeps its
bearer-only auth) and hands it every path outside ``/transmission``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import mimetypes
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import IResource, Resource

from bt.control.replies import Reply, send_reply
from bt.control.transmission.rpc import Rpc
from bt.logs import Logger

__all__ = ["CHALLENGE", "SESSION_HEADER", "TransmissionResource", "TransmissionRouter"]

CHALLENGE = 'Basic realm="Transmission"'
SESSION_HEADER = "X-Transmission-Session-Id"
#: Largest static file served from --web-home (Transmission's whole client is ~1 MB).
MAX_STATIC = 16 * 1024 * 1024
#: Largest RPC request read (a base64 .torrent of a huge torrent).
MAX_REQUEST = 64 * 1024 * 1024

log = Logger()


class TransmissionResource(Resource):
    """``/transmission/rpc``, ``/transmission/web/...``, and the redirect from ``/transmission``."""

    isLeaf = True

    def __init__(
        self,
        rpc: Rpc,
        token: Callable[[], str | None],
        *,
        web_home: Path | None = None,
        run_blocking: Callable[..., defer.Deferred[Any]] | None = None,
    ) -> None:
        super().__init__()
        self.rpc = rpc
        self.token = token
        self.web_home = web_home
        self.run_blocking = run_blocking or rpc.run_blocking

    def render(self, request: server.Request) -> int | bytes:
        if not self._authorized(request):
            body = b"<h1>401: Unauthorized</h1>Use the control token as the password.\n"
            reply = Reply(
                401, body, "text/html", (("WWW-Authenticate", CHALLENGE), ("Connection", "close"))
            )
            send_reply(request, reply)
            return server.NOT_DONE_YET
        segments = [s for s in request.path.split(b"/") if s][1:]  # after "transmission"
        if segments[:1] == [b"rpc"] and len(segments) == 1:
            return self._rpc(request)
        if segments[:1] == [b"web"]:
            if request.path == b"/transmission/web":
                return self._redirect(request, b"/transmission/web/")
            return self._static(request, segments[1:])
        if not segments:
            return self._redirect(request, b"/transmission/web/")
        send_reply(request, Reply(404, b"no such path\n", "text/plain"))
        return server.NOT_DONE_YET

    # -- auth -------------------------------------------------------------------------

    def _authorized(self, request: server.Request) -> bool:
        token = self.token()
        header = request.getHeader(b"authorization")
        if token is None or header is None:
            return False
        scheme, _, value = header.strip().partition(b" ")
        value = value.strip()
        if scheme.lower() == b"bearer":
            presented = value
        elif scheme.lower() == b"basic":
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            presented = decoded.partition(b":")[2]
        else:
            return False
        return hmac.compare_digest(presented, token.encode("utf-8"))

    # -- the RPC ----------------------------------------------------------------------

    def _rpc(self, request: server.Request) -> int:
        session_id = self.rpc.session_id
        presented = request.getHeader(SESSION_HEADER.encode("ascii")) or b""
        if not hmac.compare_digest(presented, session_id.encode("ascii")):
            body = (
                "<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p>"
                f"<p><code>{SESSION_HEADER}: {session_id}</code></p>\n"
            ).encode("ascii")
            send_reply(request, Reply(409, body, "text/html", ((SESSION_HEADER, session_id),)))
            return server.NOT_DONE_YET
        if request.method != b"POST":
            reply = Reply(405, b"POST the RPC request\n", "text/plain", (("Allow", "POST"),))
            send_reply(request, reply)
            return server.NOT_DONE_YET
        body = self._body(request)
        if body is None:
            answered = defer.succeed(
                {"result": f"request is over {MAX_REQUEST} bytes", "arguments": {}}
            )
        else:
            answered = self.rpc.dispatcher.handle(body)
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)

        def write(result: dict[str, Any]) -> None:
            if gone:
                return
            text = json.dumps(result, ensure_ascii=False, allow_nan=False).encode("utf-8")
            headers = ((SESSION_HEADER, session_id),)
            send_reply(request, Reply(200, text, "application/json; charset=UTF-8", headers))

        answered.addCallback(write)
        answered.addErrback(lambda failure: log.failure("Transmission RPC reply failed", failure))
        return server.NOT_DONE_YET

    def _body(self, request: server.Request) -> bytes | None:
        if getattr(request, "body_too_large", False):
            return None
        content = request.content
        content.seek(0, 2)
        if content.tell() > MAX_REQUEST:
            return None
        content.seek(0)
        data: bytes = content.read()
        return data

    # -- the web client's files -------------------------------------------------------

    def _redirect(self, request: server.Request, where: bytes) -> int:
        location = (("Location", where.decode("ascii")),)
        send_reply(request, Reply(301, b"", "text/plain", location))
        return server.NOT_DONE_YET

    def _static(self, request: server.Request, segments: list[bytes]) -> int:
        if self.web_home is None:
            message = b"no web client here: start the daemon with --web-home DIR\n"
            send_reply(request, Reply(404, message, "text/plain"))
            return server.NOT_DONE_YET
        names = []
        for segment in segments:
            name = unquote(segment.decode("utf-8", "replace"))
            if name.startswith(".") or any(c in name for c in "/\\\0"):
                send_reply(request, Reply(404, b"no such file\n", "text/plain"))
                return server.NOT_DONE_YET
            names.append(name)
        reading = self.run_blocking(_read_static, self.web_home, names)

        def answer(found: tuple[bytes, str] | None) -> None:
            if found is None:
                reply = Reply(404, b"no such file\n", "text/plain")
            else:
                reply = Reply(200, found[0], found[1])
            send_reply(request, reply)

        def failed(failure: Failure) -> None:  # a bug: logged, and the client not left waiting
            log.failure("serving a web file", failure)
            send_reply(request, Reply(500, b"cannot read that file; see the log\n", "text/plain"))

        reading.addCallbacks(answer, failed)
        return server.NOT_DONE_YET


def _read_static(home: Path, names: list[str]) -> tuple[bytes, str] | None:
    """A file under ``home`` and its type (blocking: runs in a thread); None when absent.

    The path is resolved and must stay inside ``home`` (a symlink out of it
    is refused); a folder serves its index.html.
    """
    root = home.resolve()
    path = root.joinpath(*names).resolve()
    if path != root and root not in path.parents:
        return None
    try:
        if stat.S_ISDIR(path.stat().st_mode):
            path = path / "index.html"
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_STATIC:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
        kind += "; charset=utf-8"
    return data, kind


class TransmissionRouter(Resource):
    """The site's root: ``/transmission...`` to Transmission's endpoints, the rest to bt's API."""

    isLeaf = True

    def __init__(self, api: IResource, transmission: TransmissionResource) -> None:
        super().__init__()
        self.api = api
        self.transmission = transmission

    def render(self, request: server.Request) -> int | bytes:
        path = request.path
        if path == b"/transmission" or path.startswith(b"/transmission/"):
            return self.transmission.render(request)
        result: int | bytes = self.api.render(request)
        return result
