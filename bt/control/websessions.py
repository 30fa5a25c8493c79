"""The web page's log-in sessions: a random cookie mapped server-side, and the CSRF rule.

Logging in with the control token gives the browser a cookie holding a random
session id, never the token: the id means something only to this daemon, for
this process's life, until it expires or the user logs out. The cookie is
``HttpOnly`` (page scripts cannot read it), ``SameSite=Strict`` (another
site's page cannot make the browser send it) and ``Path=/``; ``Secure`` too
when the API is served over TLS.

Requests authenticated by the cookie that change state must also pass
:func:`csrf_refusal`: a custom header (which no cross-site form can send and
no cross-origin script can send without a CORS preflight the API never
grants) and, when the browser names one, an ``Origin`` equal to the request's
own. That holds even where SameSite is not honoured.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from twisted.web import server

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "MAX_SESSIONS",
    "SESSION_LIFETIME",
    "WebSessions",
    "csrf_refusal",
    "same_origin",
]

#: The cookie's name.
COOKIE = b"bt_session"
#: Header the page sends with every state-changing request (any non-empty value).
CSRF_HEADER = b"x-bt-request"
#: Seconds a log-in lasts, whatever the activity (a week).
SESSION_LIFETIME = 7 * 24 * 3600.0
#: Log-ins kept at once; the oldest is forgotten beyond (each browser log-in makes one).
MAX_SESSIONS = 64

_SAFE_METHODS = (b"GET", b"HEAD", b"OPTIONS")


class WebSessions:
    """Session ids handed out at log-in, each with its expiry; bounded, in memory."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        lifetime: float = SESSION_LIFETIME,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._limit = limit
        #: id -> expiry, oldest first.
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def create(self) -> str:
        """A new session id (256 random bits), valid for the lifetime."""
        now = self._clock()
        self._forget_expired(now)
        while len(self._expiry) >= self._limit:
            self._expiry.popitem(last=False)
        session = secrets.token_urlsafe(32)
        self._expiry[session] = now + self._lifetime
        return session

    def valid(self, session: str | None) -> bool:
        """Whether ``session`` is a live id (compared in constant time)."""
        if not session:
            return False
        now = self._clock()
        self._forget_expired(now)
        found = False
        for known in self._expiry:
            if hmac.compare_digest(known.encode("ascii"), session.encode("utf-8", "replace")):
                found = True
        return found

    def revoke(self, session: str | None) -> None:
        """Forget ``session`` (log-out); unknown ids are ignored."""
        if session:
            self._expiry.pop(session, None)

    def revoke_all(self) -> None:
        self._expiry.clear()

    def _forget_expired(self, now: float) -> None:
        while self._expiry:
            session, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                return
            del self._expiry[session]

    # -- the cookie ------------------------------------------------------------------

    def of(self, request: server.Request) -> str | None:
        """The request's live session id, or None (no cookie, unknown or expired)."""
        raw = request.getCookie(COOKIE)
        if raw is None:
            return None
        session = raw.decode("ascii", "replace")
        return session if self.valid(session) else None

    def set_cookie(self, request: server.Request, session: str) -> None:
        request.setHeader(b"set-cookie", self._cookie(request, session, int(self._lifetime)))

    def clear_cookie(self, request: server.Request) -> None:
        request.setHeader(b"set-cookie", self._cookie(request, "", 0))

    @staticmethod
    def _cookie(request: server.Request, value: str, max_age: int) -> bytes:
        attributes = [f"{COOKIE.decode()}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        attributes.append(f"Max-Age={max_age}")
        if request.isSecure():
            attributes.append("Secure")
        return "; ".join(attributes).encode("ascii")


def same_origin(request: server.Request) -> bool:
    """False when the browser names an ``Origin`` other than the request's own host.

    No ``Origin`` (old browsers, non-browser clients) passes: the custom header
    is the rule that does not depend on it.
    """
    origin = request.getHeader(b"origin")
    if origin is None:
        return True
    host = request.getHeader(b"host")
    if host is None:
        return False
    scheme = b"https" if request.isSecure() else b"http"
    return hmac.compare_digest(origin.strip().lower(), scheme + b"://" + host.strip().lower())


def csrf_refusal(request: server.Request) -> str | None:
    """Why a cookie-authenticated request may not change state, or None when it may."""
    if request.method.upper() in _SAFE_METHODS:
        return None
    if not same_origin(request):
        return "cross-origin request refused (its Origin is not this daemon's)"
    if not (request.getHeader(CSRF_HEADER) or b"").strip():
        return (
            "a request authenticated by the web page's cookie that changes something "
            "needs the header X-BT-Request: 1"
        )
    return None
