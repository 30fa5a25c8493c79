"""Bearer-token check in front of the whole control API.

The wrapper is the site's root and a leaf, so twisted.web hands it every
request before any child is looked up: nothing (not the metrics, not the
OpenAPI document, not even a 404) is reachable without the token. Browsers
cannot attach the header cross-origin without a CORS preflight, which the API
never grants, so a web page cannot drive the daemon either.

With a :class:`~bt.control.webpage.WebFront` (the daemon always has one), the
web page's session cookie is accepted as the token is, for the API and the
event stream alike; a cookie-authenticated request that changes state must
also pass :func:`~bt.control.websessions.csrf_refusal`. The front answers its
own paths (``/``, ``/login``, ``/logout``, ``/web/*``), given whether the
request is authenticated.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from twisted.web import server
from twisted.web.resource import IResource, Resource, getChildForRequest

from bt.control.api import error_reply, send_reply
from bt.control.websessions import csrf_refusal

if TYPE_CHECKING:
    from bt.control.webpage import WebFront

__all__ = ["CHALLENGE", "BearerAuth"]

CHALLENGE = 'Bearer realm="bt"'


class BearerAuth(Resource):
    """Serves ``wrapped`` to requests carrying ``Authorization: Bearer <token>``; 401 otherwise.

    With ``web``, also to requests carrying a live session cookie of the web
    page (403 for a state change that fails the CSRF rule), and the page's own
    paths go to ``web``. ``token`` may be None until the service has read or created it: every
    request is refused meanwhile.
    """

    isLeaf = True

    def __init__(
        self, wrapped: IResource, token: str | None, *, web: WebFront | None = None
    ) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.token = token
        self.web = web

    def render(self, request: server.Request) -> bytes | int:
        presented = _bearer(request.getHeader(b"authorization"))
        web = self.web
        if web is not None and web.owns(request):
            bearer_ok = presented is not None and self._right(presented)
            cookie_ok = web.sessions.of(request) is not None
            return web.render(request, authenticated=bearer_ok or cookie_ok)
        if presented is None:
            if web is not None and web.sessions.of(request) is not None:
                refusal = csrf_refusal(request)
                if refusal is not None:
                    send_reply(request, error_reply(403, refusal))
                    return server.NOT_DONE_YET
                return self._serve(request)
            return self._refuse(request, "this API needs an Authorization: Bearer <token> header")
        if not self._right(presented):
            return self._refuse(request, "wrong bearer token", ', error="invalid_token"')
        return self._serve(request)

    def _right(self, presented: bytes) -> bool:
        return self.token is not None and hmac.compare_digest(presented, self.token.encode("utf-8"))

    def _serve(self, request: server.Request) -> bytes | int:
        resource: Resource = getChildForRequest(self.wrapped, request)
        result: bytes | int = resource.render(request)
        return result

    def _refuse(self, request: server.Request, message: str, detail: str = "") -> int:
        # Closing after the 401 keeps a client without the token from holding a
        # connection slot (bt.control.site caps them).
        headers = [("WWW-Authenticate", CHALLENGE + detail), ("Connection", "close")]
        send_reply(request, error_reply(401, message, headers))
        return server.NOT_DONE_YET


def _bearer(header: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer`` header (scheme case-insensitive)."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()
