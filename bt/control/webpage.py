"""bt's own web page: ``/`` (the page, or the log-in form), ``/login``, ``/logout``, ``/web/*``.

The files ship in the package (``bt/control/web/``) and are read once, when
the daemon starts, through importlib.resources: serving them never touches
the disk on the reactor. The page is served only to an authenticated browser
(the session cookie, or a bearer token); anyone else gets the log-in form,
which carries no script. The log-in form posts the token in its body, never
in a URL; the answer sets the session cookie (:mod:`bt.control.websessions`)
and redirects to ``/``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from html import escape
from importlib import resources
from urllib.parse import parse_qs

from twisted.web import server

from bt.control.replies import Reply, error_reply, send_reply
from bt.control.websessions import WebSessions, csrf_refusal, same_origin

__all__ = ["ASSET_PREFIX", "WebFront", "load_assets"]

#: Where the page's files are served.
ASSET_PREFIX = b"/web/"
_PAGE_PATHS = (b"/", b"/index.html", b"/login", b"/logout")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
#: The page: its own scripts and styles only; nothing from elsewhere, no framing.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: The log-in form: no script at all.
_LOGIN_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
#: The log-in form's own stylesheet is served to anyone (it says nothing).
_PUBLIC_ASSETS = frozenset({"login.css", "favicon.svg"})


def load_assets() -> dict[str, bytes]:
    """Every file of ``bt/control/web/`` by name (read once, at start)."""
    folder = resources.files("bt.control") / "web"
    assets: dict[str, bytes] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            assets[entry.name] = entry.read_bytes()
    if "index.html" not in assets or "login.html" not in assets:
        raise RuntimeError(f"bt's web page is missing from the package ({folder})")
    return assets


class WebFront:
    """Serves the page's paths; asks ``token()`` for the control token at each log-in."""

    def __init__(
        self,
        token: Callable[[], str | None],
        sessions: WebSessions | None = None,
        assets: dict[str, bytes] | None = None,
    ) -> None:
        self._token = token
        self.sessions = sessions if sessions is not None else WebSessions()
        self._assets = assets if assets is not None else load_assets()

    def owns(self, request: server.Request) -> bool:
        """Whether ``request`` is for the page rather than the API."""
        path = request.path
        return path in _PAGE_PATHS or path.startswith(ASSET_PREFIX)

    def render(self, request: server.Request, *, authenticated: bool) -> int:
        """Answer a request :meth:`owns`; ``authenticated`` by cookie or bearer token."""
        send_reply(request, self._reply(request, authenticated))
        return server.NOT_DONE_YET

    def _reply(self, request: server.Request, authenticated: bool) -> Reply:
        path, method = request.path, request.method.upper()
        if path == b"/login":
            if method != b"POST":
                return error_reply(405, "log in with POST /login", [("Allow", "POST")])
            return self._login(request)
        if path == b"/logout":
            if method != b"POST":
                return error_reply(405, "log out with POST /logout", [("Allow", "POST")])
            return self._logout(request)
        if method not in (b"GET", b"HEAD"):
            return error_reply(405, "the page's files are read-only", [("Allow", "GET, HEAD")])
        if path.startswith(ASSET_PREFIX):
            return self._asset(path[len(ASSET_PREFIX) :].decode("ascii", "replace"), authenticated)
        if authenticated:
            return self._html(200, self._assets["index.html"], _PAGE_POLICY)
        return self._login_form(200, "")

    def _asset(self, name: str, authenticated: bool) -> Reply:
        if not authenticated and name not in _PUBLIC_ASSETS:
            return error_reply(401, "log in first", [("Connection", "close")])
        data = self._assets.get(name)
        if data is None or name in ("index.html", "login.html"):
            return error_reply(404, f"no such file of the web page: {escape(name)[:100]}")
        content_type = _TYPES["." + name.rpartition(".")[2]]
        return Reply(200, data, content_type, _SAFETY)

    def _login(self, request: server.Request) -> Reply:
        # A cross-site form cannot log a browser in to this daemon with another token.
        if not same_origin(request):
            return self._login_form(403, "This log-in came from another site; refused.")
        request.content.seek(0)
        fields = parse_qs(request.content.read(4096).decode("utf-8", "replace"))
        presented = (fields.get("token") or [""])[-1].strip()
        token = self._token()
        if not presented or token is None or not _equal(presented, token):
            return self._login_form(401, "Wrong token.")
        self.sessions.revoke(self.sessions.of(request))
        self.sessions.set_cookie(request, self.sessions.create())
        return _see_other("/")

    def _logout(self, request: server.Request) -> Reply:
        session = self.sessions.of(request)
        if session is not None:
            refusal = csrf_refusal(request)
            if refusal is not None:
                return error_reply(403, refusal)
            self.sessions.revoke(session)
        self.sessions.clear_cookie(request)
        return _see_other("/")

    def _login_form(self, status: int, message: str) -> Reply:
        page = self._assets["login.html"].replace(
            b"<!--message-->", escape(message).encode("utf-8")
        )
        return self._html(status, page, _LOGIN_POLICY)

    @staticmethod
    def _html(status: int, body: bytes, policy: str) -> Reply:
        headers = (("Content-Security-Policy", policy), *_SAFETY)
        return Reply(status, body, _TYPES[".html"], headers)


_SAFETY = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Not no-referrer: with it Chromium sends "Origin: null" on the page's own posts.
    ("Referrer-Policy", "same-origin"),
)


def _equal(presented: str, token: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8"))


def _see_other(location: str) -> Reply:
    return Reply(303, b"", "text/plain; charset=utf-8", (("Location", location),))
