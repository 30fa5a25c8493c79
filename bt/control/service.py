"""ControlService: the control API's listener, token and endpoint file, started by twistd.

It binds in ``privilegedStartService`` (like the peer listener; ``makeService``
binds it earlier still, see :mod:`bt.startup`) and raises when the port cannot
be bound, so twistd exits non-zero instead of running a daemon nobody can
control. Only the default endpoint has a ``fallback``: a second daemon on the
machine finds 9092 taken and listens on a free loopback port instead, which
``control.json`` tells the CLI. The API listens on loopback unless the user
names another interface: a ``tcp:``/``tcp6:``/``ssl:`` endpoint without
``interface=`` gets the loopback one.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from twisted.application.service import Service
from twisted.internet import defer, threads
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.python.failure import Failure

from bt.control import transmission
from bt.control.api import ControlResource, ControlSession
from bt.control.auth import BearerAuth
from bt.control.events import EventStreams
from bt.control.files import ensure_token, remove_control_info, write_control_info
from bt.control.site import ControlConnections, ControlSite
from bt.control.webpage import WebFront
from bt.endpoints import describe_listen_error, server_endpoint
from bt.errors import BtError
from bt.logs import Logger

__all__ = ["ControlService", "loopback_by_default"]

_TCP_KINDS = {"tcp": "127.0.0.1", "ssl": "127.0.0.1", "tcp6": r"\:\:1"}
_ARGUMENT_SEPARATOR = re.compile(r"(?<!\\):")

log = Logger()


def loopback_by_default(description: str) -> str:
    """``description`` with ``interface=`` loopback added when a TCP endpoint names none."""
    if description.isdigit():
        description = f"tcp:{description}"
    kind, _, rest = description.partition(":")
    loopback = _TCP_KINDS.get(kind.lower())
    if loopback is None or _interface(rest) is not None:
        return description
    return f"{description}:interface={loopback}"


def _interface(arguments: str) -> str | None:
    for argument in _ARGUMENT_SEPARATOR.split(arguments):
        name, _, value = argument.partition("=")
        if name.strip().lower() == "interface":
            return value.replace("\\:", ":")
    return None


def _is_loopback(interface: str) -> bool:
    if interface.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


class ControlService(Service):
    """Serves the control API of ``session`` on ``endpoint`` and publishes it in ``state_dir``."""

    def __init__(
        self,
        session: ControlSession,
        endpoint: str,
        state_dir: Path,
        reactor: Any = None,
        *,
        fallback: str | None = None,
        web_home: Path | None = None,
    ) -> None:
        self.endpoint = loopback_by_default(endpoint)
        #: Where to listen instead when ``endpoint`` cannot be bound (the default one only).
        self.fallback = loopback_by_default(fallback) if fallback is not None else None
        self.state_dir = state_dir
        self._reactor = reactor
        blocking = getattr(session, "run_blocking", None) or threads.deferToThread
        api = ControlResource(session, run_blocking=blocking)
        # The web page (bt/control/web/) at /, logged in with the token (bt.control.webpage).
        self._web = WebFront(lambda: self._auth.token)
        self._auth = BearerAuth(api, token=None, web=self._web)
        # Transmission's RPC and web client under /transmission, with their own auth.
        root = transmission.mount(
            self._auth,
            session,
            lambda: self._auth.token,
            web_home=web_home,
            reactor=reactor,
            close=_stop_daemon,
        )
        # Bounded against hostile clients (connections, deadlines, bodies): see bt.control.site.
        self._connections = ControlConnections(ControlSite(root, reactor=reactor))
        self._port: IListeningPort | None = None
        #: Where the API listens, once it does (written to control.json).
        self.url: str | None = None

    def privilegedStartService(self) -> None:
        self.listen()
        super().privilegedStartService()

    def startService(self) -> None:
        self.listen()
        try:
            self.load_token()
            assert self.url is not None
            write_control_info(self.state_dir, self.url)
        except BaseException:
            self._stop_listening()
            raise
        super().startService()
        log.info("control API listening on {url}", url=self.url)

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        remove_control_info(self.state_dir)
        if self.event_streams is not None:
            self.event_streams.close()  # else a client that does not read would hold up the stop
        stopped = self._stop_listening()
        stopped.addCallback(lambda _: self._connections.close_all())
        return stopped

    @property
    def event_streams(self) -> EventStreams | None:
        """The API's open event streams (``GET /api/v1/events``, bt.control.events)."""
        api = self._auth.wrapped
        return api.events if isinstance(api, ControlResource) else None

    def _stop_listening(self) -> defer.Deferred[None]:
        port, self._port = self._port, None
        if port is None:
            return defer.succeed(None)
        return defer.maybeDeferred(port.stopListening)

    def load_token(self) -> None:
        """Read (or create) the API token; idempotent, so twistd may call it early."""
        if self._auth.token is None:
            self._auth.token = ensure_token(self.state_dir)

    def listen(self) -> None:
        """Bind now or raise BtError: a daemon nobody can control must not start."""
        if self._port is not None:
            return
        try:
            self._port = self._bind(self.endpoint)
        except CannotListenError as exc:
            if self.fallback is None:
                raise BtError(f"--control {self.endpoint}: {describe_listen_error(exc)}") from exc
            self._port = self._bind(self.fallback)
            self.url = _url(self._port, https=self.fallback.lower().startswith("ssl:"))
            log.warn(
                "control API: {endpoint} is taken ({error}); listening on {url} instead "
                "(written to {info}, where 'bt' finds it)",
                endpoint=self.endpoint,
                error=describe_listen_error(exc),
                url=self.url,
                info=str(self.state_dir / "control.json"),
            )
            return
        self.url = _url(self._port, https=self.endpoint.lower().startswith("ssl:"))

    def _bind(self, description: str) -> IListeningPort:
        """The listening port, CannotListenError when taken, BtError when ``description`` is bad."""
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        interface = _interface(description.partition(":")[2])
        if interface is not None and not _is_loopback(interface):
            log.warn(
                "control API endpoint {endpoint} is not loopback: anyone who can reach it and "
                "has the token controls the daemon; put TLS in front of it",
                endpoint=description,
            )
        endpoint = server_endpoint(reactor, "control", description)
        outcome: list[Any] = []
        endpoint.listen(self._connections).addBoth(outcome.append)
        if not outcome:
            raise BtError(f"--control {description}: did not start listening")
        if isinstance(outcome[0], Failure):
            error = outcome[0].value
            if isinstance(error, CannotListenError):
                raise error
            raise BtError(f"--control {description}: {describe_listen_error(error)}") from error
        port: IListeningPort = outcome[0]
        return port


def _stop_daemon() -> None:
    """Transmission's session-close: stop the daemon as SIGTERM would."""
    from twisted.internet import reactor

    log.info("stopping: a Transmission client sent session-close")
    reactor.stop()


def _url(port: IListeningPort, *, https: bool) -> str:
    """The URL clients use; a wildcard bind is reached through loopback."""
    host = port.getHost()
    scheme = "https" if https else "http"
    if isinstance(host, IPv4Address):
        address = "127.0.0.1" if host.host == "0.0.0.0" else host.host
        return f"{scheme}://{address}:{host.port}/"
    if isinstance(host, IPv6Address):
        address = "::1" if host.host in ("::", "::0") else host.host
        return f"{scheme}://[{address}]:{host.port}/"
    if isinstance(host, UNIXAddress) and host.name is not None:
        name = host.name.decode() if isinstance(host.name, bytes) else host.name
        return f"http+unix://{quote(name, safe='')}/"
    raise BtError(f"control API endpoint {port!r}: cannot tell clients its address")
