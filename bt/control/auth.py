"""Bearer-token check in front of the whole control API.

The wrapper is the site's root and a leaf, so twisted.web hands it every
request before any child is looked up: nothing (not the metrics, not the
OpenAPI document, not even a 404) is reachable without the token. Browsers
cannot attach the header cross-origin without a CORS preflight, which the API
never grants, so a web page cannot drive the daemon either.
"""

from __future__ import annotations

import hmac

from twisted.web import server
from twisted.web.resource import IResource, Resource, getChildForRequest

from bt.control.api import error_reply, send_reply

__all__ = ["CHALLENGE", "BearerAuth"]

CHALLENGE = 'Bearer realm="bt"'


class BearerAuth(Resource):
    """Serves ``wrapped`` to requests carrying ``Authorization: Bearer <token>``; 401 otherwise.

    ``token`` may be None until the service has read or created it: every
    request is refused meanwhile.
    """

    isLeaf = True

    def __init__(self, wrapped: IResource, token: str | None) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.token = token

    def render(self, request: server.Request) -> bytes | int:
        presented = _bearer(request.getHeader(b"authorization"))
        if presented is None:
            return self._refuse(request, "this API needs an Authorization: Bearer <token> header")
        if self.token is None or not hmac.compare_digest(presented, self.token.encode("utf-8")):
            return self._refuse(request, "wrong bearer token", ', error="invalid_token"')
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
